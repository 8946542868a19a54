/**
 * The master's status server with real processes (issue 10): readiness on SIGTERM with
 * shutdownDelay under load, liveness while every app worker is blocked, the /status shape and
 * the `egg-clutch status` table, bad values.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  assertGone, fakeApp, freePort, httpGet, ROOT, runCluster, useLeakGuard, type ClusterRun,
} from '../helpers/run_cluster.js';
import { startLoad } from '../helpers/load.js';

useLeakGuard();
const T = { timeout: 60_000 };

/** GET until `accept` says yes (each GET waits for its answer: no fixed sleep), with a deadline. */
async function pollUntil<T>(fn: () => Promise<T>, accept: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}: last ${JSON.stringify(value)}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

const statusOf = (port: number) => async (): Promise<any> => (await httpGet(`http://127.0.0.1:${port}/status`)).json();

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [path.join(ROOT, 'lib', 'bin', 'egg-clutch.js'), ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('status server (real processes)', () => {
  test('SIGTERM with shutdownDelay 2000 under load: /readyz 503 at once, the app serves and accepts during the delay, 0 failed requests, exit 0', T, async t => {
    const [port, statusPort] = [await freePort(), await freePort()];
    const run = runCluster(fakeApp('ops-block', { workers: 2, port, status: { port: statusPort }, shutdownDelay: 2000 }));
    await run.ready();
    const readyz = `http://127.0.0.1:${statusPort}/readyz`;
    assert.equal((await httpGet(readyz)).status, 200);
    const load = startLoad(`http://127.0.0.1:${port}/slow?ms=20`, { concurrency: 8, maxMs: 30_000 });
    await pollUntil(() => Promise.resolve(load.result.ok), ok => ok >= 50, 15_000, 'the load to be served');

    // probe readiness back to back from just before the signal: the first 503 tells when it turned
    let probing = true;
    let turnedAt = 0;
    const probes = (async () => {
      while (probing) {
        const res = await httpGet(readyz);
        if (res.status === 503) {
          turnedAt = Date.now();
          assert.equal(res.body, 'closing\n');
          return;
        }
      }
    })();
    const since = run.mark();
    const killedAt = Date.now();
    run.kill('SIGTERM');
    await probes;
    probing = false;
    const readyzMs = turnedAt - killedAt;
    const okAtSignal = load.result.ok;

    // the delay: the old keep-alive connections keep being served, and a new connection is accepted
    // keep the load on for a while into the delay: 100 more requests, or 1.5 s at most
    const capAt = Date.now() + 1500;
    await pollUntil(() => Promise.resolve(load.result.ok), ok => ok >= okAtSignal + 100 || Date.now() > capAt, 10_000, 'requests during the delay');
    const fresh = await httpGet(`http://127.0.0.1:${port}/`);
    const freshAt = Date.now() - killedAt;
    assert.equal(fresh.status, 200, 'a new connection during the delay is served');
    const result = await load.stop();
    const stoppedAt = Date.now() - killedAt;
    assert.ok(!/send kill SIGTERM to app workers/.test(run.output.slice(since)), `the drain had not begun when the load stopped (${stoppedAt} ms)`);
    assert.ok(result.ok > okAtSignal, 'requests were served during the delay');
    await run.waitForOutput(/send kill SIGTERM to app workers/, 10_000, { since });
    const drainAt = Date.now() - killedAt;
    const exit = await run.waitForExit(20_000);
    t.diagnostic(`/readyz turned 503 ${readyzMs} ms after SIGTERM; served during the delay: ${result.ok - okAtSignal} requests, `
      + `a new connection at ${freshAt} ms; load stopped at ${stoppedAt} ms; drain began at ~${drainAt} ms; `
      + `requests ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.byCode)}`);
    assert.ok(readyzMs <= 1000, `/readyz turned 503 ${readyzMs} ms after the signal (target 100 ms; generous bound for a loaded machine)`);
    assert.ok(drainAt >= 2000, `the drain began after the delay (${drainAt} ms)`);
    assert.equal(result.failed, 0, JSON.stringify(result.byCode));
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 5000);
  });

  test('/livez answers while every app worker\'s event loop is blocked (served by the master)', T, async t => {
    const [port, statusPort] = [await freePort(), await freePort()];
    // a blocked worker ignores SIGTERM: the close SIGKILLs it after 1 s
    const run = runCluster(fakeApp('ops-block', { workers: 2, port, status: { port: statusPort } }), { env: { EGG_APP_CLOSE_TIMEOUT: '1000' } });
    await run.ready();
    run.send({ action: 'ops-block', to: 'app' });
    const blocked = [await run.waitForMessage('ops-blocked'), await run.waitForMessage('ops-blocked')].map(m => m.data.pid as number);
    assert.deepEqual(blocked.sort(), [...run.appPids].sort(), 'both app workers said they block');
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = process.hrtime.bigint();
      const res = await httpGet(`http://127.0.0.1:${statusPort}/livez`, { timeoutMs: 5000 });
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      assert.equal(res.status, 200);
      assert.equal(res.body, 'ok\n');
    }
    const status = await statusOf(statusPort)();
    assert.equal(status.workers.length, 2);
    // the app port does not answer: the workers really are blocked
    await assert.rejects(httpGet(`http://127.0.0.1:${port}/`, { timeoutMs: 500 }), /timed out/);
    times.sort((a, b) => a - b);
    t.diagnostic(`/livez with every app worker blocked: median ${times[5]!.toFixed(1)} ms, max ${times[9]!.toFixed(1)} ms (target 100 ms)`);
    assert.ok(times[9]! < 1000, `/livez took ${times[9]} ms (generous bound)`);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(20_000), { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 5000);
  });

  test('/status from EGG_CLUSTER_STATUS_PORT: the shape, live worker figures, and `egg-clutch status` as a table', T, async t => {
    const [port, statusPort] = [await freePort(), await freePort()];
    const run = runCluster(fakeApp('ops-block', { workers: 2, port }), { env: { EGG_CLUSTER_STATUS_PORT: String(statusPort) } });
    await run.ready();
    await run.waitForOutput(new RegExp(`status server listening on http://127\\.0\\.0\\.1:${statusPort} `));
    for (let i = 0; i < 10; i++) assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    // reports arrive once a second: wait for those that count the 10 requests
    const status = await pollUntil(statusOf(statusPort),
      s => s.workers.length === 2 && s.workers.every((w: any) => w.rss !== null)
        && s.workers.reduce((n: number, w: any) => n + w.requests, 0) >= 10, 10_000, 'reports with the requests');
    assert.deepEqual(Object.keys(status), ['master', 'agent', 'workers']);
    assert.deepEqual(Object.keys(status.master), ['pid', 'uptimeMs', 'state']);
    assert.equal(status.master.pid, run.pid);
    assert.equal(status.master.state, 'ready');
    assert.deepEqual(Object.keys(status.agent), ['pid', 'state', 'uptimeMs', 'restarts', 'lastExit']);
    assert.equal(status.agent.pid, run.agentPids[0]);
    assert.equal(status.agent.state, 'started');
    assert.deepEqual(status.workers.map((w: any) => w.pid).sort(), [...run.appPids].sort());
    for (const w of status.workers) {
      assert.deepEqual(Object.keys(w), ['id', 'pid', 'state', 'uptimeMs', 'restarts', 'lastExit', 'rss', 'heapUsed', 'elu',
        'eventLoopDelayP99Ms', 'requests', 'inFlight']);
      assert.equal(w.state, 'listening');
      assert.equal(w.restarts, 0);
      assert.equal(w.lastExit, null);
      assert.ok(w.rss > 10 * 1024 * 1024 && w.rss < 1024 ** 3, `rss ${w.rss} bytes`);
      assert.ok(w.heapUsed > 0 && w.heapUsed < w.rss);
      assert.ok(w.elu >= 0 && w.elu <= 1);
      assert.ok(w.eventLoopDelayP99Ms >= 0);
      assert.equal(w.inFlight, 0);
    }
    const text = JSON.stringify(status);
    assert.ok(!text.includes(String(port)) && !text.includes('baseDir'), 'no option values in /status');
    t.diagnostic(`/status: ${text}`);

    const table = await cli(['status', '--port', String(statusPort)]);
    assert.equal(table.code, 0, table.stderr);
    for (const pid of [run.pid, ...run.agentPids, ...run.appPids]) assert.match(table.stdout, new RegExp(`│ ${pid} `));
    assert.match(table.stdout, /│ app#1 +│/);
    assert.match(table.stdout, /│ app#2 +│/);
    t.diagnostic(`egg-clutch status:\n${table.stdout}`);
    const json = await cli(['status', '--json', '--port', String(statusPort)]);
    assert.equal(JSON.parse(json.stdout).master.pid, run.pid);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null });
    const gone = await cli(['status', '--port', String(statusPort), '--timeout', '2000']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /cannot read the status of http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  test('worker_threads: each app thread reports too (rss is the process\'s, pid the thread id)', T, async t => {
    const [p1, p2, statusPort] = [await freePort(), await freePort(), await freePort()];
    const run = runCluster(fakeApp('ops-block', { startMode: 'worker_threads', ports: [p1, p2], status: { port: statusPort } }));
    await run.ready();
    assert.equal((await httpGet(`http://127.0.0.1:${p1}/`)).status, 200);
    const status = await pollUntil(statusOf(statusPort),
      s => s.workers.length === 2 && s.workers.every((w: any) => w.rss !== null) && s.workers.some((w: any) => w.requests >= 1),
      10_000, 'a report from each thread');
    assert.equal(status.master.pid, run.pid);
    assert.deepEqual(status.workers.map((w: any) => w.state), ['listening', 'listening']);
    assert.equal(status.workers.reduce((n: number, w: any) => n + w.requests, 0), 1);
    t.diagnostic(`/status (threads): ${JSON.stringify(status.workers)}`);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.context());
  });

  for (const [name, options, env, pattern] of [
    ['status: { port: "x" }', { status: { port: 'x' } }, {}, /options\.status\.port must be a port number from 1 to 65535, got "x"/],
    ['shutdownDelay: -1', { shutdownDelay: -1 }, {}, /options\.shutdownDelay must be a number of milliseconds from 0/],
    ['EGG_CLUSTER_SHUTDOWN_DELAY=later', {}, { EGG_CLUSTER_SHUTDOWN_DELAY: 'later' }, /environment variable EGG_CLUSTER_SHUTDOWN_DELAY must be a whole number of milliseconds/],
    ['EGG_CLUSTER_STATUS_PORT=0', {}, { EGG_CLUSTER_STATUS_PORT: '0' }, /environment variable EGG_CLUSTER_STATUS_PORT must be a port number from 1 to 65535 \(the master.s status server\), got "0"/],
  ] as const) {
    test(`bad value ${name}: a start error, exit 1, no child`, T, async () => {
      const run: ClusterRun = runCluster(fakeApp('ops-block', { workers: 1, port: await freePort(), ...options }), { env: { ...env } });
      const exit = await run.waitForExit(15_000);
      assert.equal(exit.code, 1, run.context());
      assert.match(run.stderr, pattern);
      assert.match(run.stderr, /InvalidOptionError/);
      assert.deepEqual([...run.agentPids, ...run.appPids], []);
      await run.waitForClose(5000);
    });
  }
});
