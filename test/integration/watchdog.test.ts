/**
 * The watchdog and the memory limit (issue 10) with real processes: a worker stuck in
 * `while (true) {}` under load is replaced; workers that burn CPU with a loop delay below the
 * timeout are not; a leaking worker is replaced like a reload, one at a time, with 0 failed
 * requests. Each test prints its figure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard } from '../helpers/run_cluster.js';
import { startLoad } from '../helpers/load.js';

useLeakGuard();

const T = { timeout: 90_000 };
const TIMEOUT_MS = 2000;
const REPORT_MS = 1000;

/**
 * Keep-alive load where each loop keeps its own connection, so each failure is attributed to
 * the worker that answered that connection last (the pid in the body).
 */
function pinnedLoad(url: string, loops: number): { stop(): Promise<{ ok: number; failedByPid: Map<number, number>; okByPid: Map<number, number> }> } {
  let running = true;
  const okByPid = new Map<number, number>();
  const failedByPid = new Map<number, number>();
  let ok = 0;
  const one = (agent: http.Agent): Promise<number | Error> => new Promise(resolve => {
    const req = http.get(url, { agent, timeout: 15_000 }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { pid: number }).pid);
        } catch {
          resolve(new Error(`bad body ${res.statusCode}: ${body.slice(0, 80)}`));
        }
      });
      res.on('error', resolve);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', resolve);
  });
  const loop = async (): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let lastPid = 0;
    while (running) {
      const result = await one(agent);
      if (typeof result === 'number') {
        lastPid = result;
        ok++;
        okByPid.set(result, (okByPid.get(result) ?? 0) + 1);
      } else {
        failedByPid.set(lastPid, (failedByPid.get(lastPid) ?? 0) + 1);
      }
    }
    agent.destroy();
  };
  const all = Promise.all(Array.from({ length: loops }, loop));
  return {
    async stop() {
      running = false;
      await all;
      return { ok, failedByPid, okByPid };
    },
  };
}

/** GET `path` on fresh connections until every one of `want` workers answered it; their pids. */
async function hitEach(port: number, pathname: string, want: number): Promise<number[]> {
  const pids = new Set<number>();
  for (let i = 0; i < 50 && pids.size < want; i++) {
    pids.add((await httpGet(`http://127.0.0.1:${port}${pathname}`)).json<{ pid: number }>().pid);
  }
  assert.equal(pids.size, want, `only ${pids.size} of ${want} workers answered ${pathname}`);
  return [...pids];
}

describe('watchdog', () => {
  test('a worker stuck in while (true) {} under load is replaced within timeout + one heartbeat + its boot; the other worker loses no request', T, async t => {
    const port = await freePort();
    const run = runCluster(fakeApp('w-watchdog', { workers: 2, port, env: 'prod', watchdog: { timeout: TIMEOUT_MS } }));
    await run.ready(30_000);
    const bootMs = Date.now() - run.startedAt; // master start to ready: an upper bound of one worker's boot
    const load = pinnedLoad(`http://127.0.0.1:${port}/`, 8);
    const hung = (await httpGet(`http://127.0.0.1:${port}/hang`)).json<{ pid: number }>().pid;
    const hungAt = Date.now();
    const since = run.mark();
    const line = await run.waitForOutput(new RegExp(`\\[master\\] app_worker#\\d+:${hung} did not answer for (\\d+)ms, replacing it`), 20_000, { since });
    const detectedMs = Date.now() - hungAt;
    const fresh = await run.waitForOutput(/\[master\] app_worker#\d+:(\d+) started at/, 30_000, { since });
    const replacedMs = Date.now() - hungAt;
    const freshPid = Number(fresh[1]);
    await assertGone([hung], 5000);
    // the replacement serves beside the other worker
    assert.ok((await hitEach(port, '/', 2)).includes(freshPid));
    const result = await load.stop();
    const otherPid = [...result.okByPid.keys()].find(pid => pid !== hung && pid !== freshPid);
    t.diagnostic(`hung worker detected after ${detectedMs} ms (the master saw ${line[1]} ms of silence; timeout ${TIMEOUT_MS} + heartbeat ${REPORT_MS}), `
      + `replacement listening ${replacedMs} ms after the hang (boot about ${bootMs} ms); load: ${result.ok} ok, `
      + `failures by pid ${JSON.stringify([...result.failedByPid])}, ok by pid ${JSON.stringify([...result.okByPid])}`);
    assert.ok(detectedMs <= TIMEOUT_MS + REPORT_MS + 1000, `detected after ${detectedMs} ms`);
    assert.ok(replacedMs <= TIMEOUT_MS + REPORT_MS + 1000 + bootMs + 2000, `replaced after ${replacedMs} ms`);
    assert.ok(otherPid !== undefined && (result.okByPid.get(otherPid) ?? 0) > 0, 'the other worker served');
    for (const [pid, failed] of result.failedByPid) {
      assert.equal(pid, hung, `${failed} failed request(s) on connections of pid ${pid}, not the hung worker`);
    }
    assert.ok((result.failedByPid.get(hung) ?? 0) <= 8, 'at most the requests in flight on the hung worker failed');
    assert.doesNotMatch(run.output, /did not answer for \d+ms, replacing it[\s\S]*did not answer for \d+ms, replacing it/, 'one replacement');
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(30_000), { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 5000);
  });

  test('workers that burn CPU with a loop delay below the timeout are not replaced (bounded run)', T, async t => {
    const RUN_MS = 30_000; // the 30 s run
    const BLOCK_MS = 1500;
    const port = await freePort();
    const run = runCluster(fakeApp('w-watchdog', { workers: 2, port, env: 'prod', watchdog: { timeout: TIMEOUT_MS } }),
      { env: { W_BURN_TOTAL_MS: String(RUN_MS) } });
    await run.ready(30_000);
    const pids = await hitEach(port, `/burn?ms=${BLOCK_MS}`, 2);
    const since = run.mark();
    const load = startLoad(`http://127.0.0.1:${port}/`, { concurrency: 4, maxMs: RUN_MS + 20_000, timeoutMs: 10_000 });
    // the bounded run: each worker prints when its burn of RUN_MS ends
    const done = new RegExp(`\\[w-watchdog\\] app worker (${pids.join('|')}) burn done[\\s\\S]*burn done`);
    await run.waitForOutput(done, RUN_MS + 20_000, { since });
    const result = await load.stop();
    t.diagnostic(`${RUN_MS / 1000} s of CPU burn in ${BLOCK_MS} ms blocks on both workers (watchdog.timeout ${TIMEOUT_MS} ms): `
      + `${(run.output.match(/did not answer/g) ?? []).length} replacements; load ${result.ok} ok, ${result.failed} failed`);
    assert.doesNotMatch(run.output, /did not answer/);
    assert.ok(pids.every(isAlive), 'both burning workers still run');
    assert.ok(result.ok > 0);
    assert.equal(result.failed, 0, JSON.stringify(result.byCode));
    run.kill('SIGTERM');
    await run.waitForExit(30_000);
    await assertGone(run.pids, 5000);
  });
});

describe('watchdog, threads mode', () => {
  test('an app thread whose loop is blocked is terminated and a new thread serves', T, async t => {
    const port = await freePort();
    // one thread per port (Node < 22.12 has no reusePort): the hung thread's port is freed first
    const run = runCluster(fakeApp('w-watchdog', {
      workers: 1, port, startMode: 'worker_threads', env: 'prod', watchdog: { timeout: TIMEOUT_MS },
    }));
    await run.ready(30_000);
    const since = run.mark();
    await httpGet(`http://127.0.0.1:${port}/hang`);
    const hungAt = Date.now();
    const line = await run.waitForOutput(/\[master\] app_worker#1:\d+ did not answer for (\d+)ms, replacing it/, 20_000, { since });
    const detectedMs = Date.now() - hungAt;
    await run.waitForOutput(/\[master\] app_worker#2:\d+ started at/, 20_000, { since });
    const servedMs = Date.now() - hungAt;
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    t.diagnostic(`threads: hung thread detected after ${detectedMs} ms (${line[1]} ms of silence), a new thread listening after ${servedMs} ms`);
    assert.equal(res.status, 200);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(30_000), { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 5000);
  });
});

describe('maxMemory', () => {
  // todo: the 0-failed assertion fails in this build for the drain every rolling replacement
  // uses: 2 plain reloads of w-watchdog (2 workers) under the same load lose 12 requests to
  // ECONNRESET (keep-alive or not); these 2 memory replacements lose 0 to a few. It passes
  // once the drain does; everything else here is asserted and passes.
  for (const keepAlive of [false, true]) test(`workers leaking memory under load (${keepAlive ? 'keep-alive' : 'a new connection per request'}) are replaced like a reload, one at a time, with 0 failed requests`, T, async t => {
    const port = await freePort();
    const flag = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-leak-')), 'leak');
    fs.writeFileSync(flag, '');
    const run = runCluster(fakeApp('w-watchdog', { workers: 2, port, env: 'prod', watchdog: false, maxMemory: '160M' }),
      { env: { W_LEAK_FILE: flag, W_LEAK_MAX_MB: '320' } });
    await run.ready(30_000);
    // the replacements do not leak
    fs.rmSync(flag);
    const leakers = [...run.appPids];
    const since = run.mark();
    // either way node's agent reuses a connection for the next queued request: a connection
    // whose keep-alive answer went out just before the drain began gets its next request at
    // once, and must be answered, not reset (2–6 resets per run before the Drainer waited)
    const load = startLoad(`http://127.0.0.1:${port}/`, { concurrency: 8, maxMs: 60_000, timeoutMs: 10_000, keepAlive });
    const startedAt = Date.now();
    // sample the app processes the master runs while both are replaced
    let maxApps = 0;
    const sampler = setInterval(() => {
      maxApps = Math.max(maxApps, run.appPids.filter(isAlive).length);
    }, 50);
    try {
      const first = await run.waitForOutput(/\[master\] app_worker#\d+:(\d+) uses (\d+)MiB RSS, above maxMemory 160MiB for 3 samples in a row/, 30_000, { since });
      const firstPid = Number(first[1]);
      await assertGone([firstPid], 20_000);
      const second = await run.waitForOutput(/\[master\] app_worker#\d+:(\d+) uses (\d+)MiB RSS, above maxMemory/, 30_000, { since: since + first.index + 1 });
      const secondPid = Number(second[1]);
      await assertGone([secondPid], 20_000);
      const tookMs = Date.now() - startedAt;
      clearInterval(sampler);
      const result = await load.stop();
      // the second replacement began only after the first old worker had left
      const text = run.output.slice(since);
      t.diagnostic(`${keepAlive ? 'keep-alive' : 'new connections'}: both leaking workers (${leakers.join(', ')}) replaced in ${tookMs} ms (${first[2]} MiB and ${second[2]} MiB at the decision); `
        + `at most ${maxApps} app processes at once; load ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.byCode)}`);
      assert.deepEqual([firstPid, secondPid].sort(), [...leakers].sort());
      assert.ok(maxApps <= 3, `${maxApps} app processes at once (workers 2, one replacement at a time)`);
      assert.ok(result.ok > 0);
      assert.equal((text.match(/above maxMemory/g) ?? []).length, 2, 'each leaker replaced once');
      assert.doesNotMatch(text, /AppWorkerDiedError/);
      assert.equal(result.failed, 0, JSON.stringify(result.byCode));
    } finally {
      clearInterval(sampler);
      await load.stop();
    }
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(30_000), { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 5000);
  });
});
