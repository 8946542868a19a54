/**
 * startMode 'worker_threads' with real threads: a master forked with an IPC channel (as
 * egg-scripts and egg-mock do) runs the agent and the app workers as worker threads of its
 * own process, with the fake framework (test/fixtures/framework).
 * Runs against the built package (lib/): `npm run build` first.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, fakeApp, freePort, httpGet, indexesInOrder, runCluster, useLeakGuard, type ClusterRun, type RunOptions,
} from '../helpers/run_cluster.js';
import { listDescendants } from '../../src/launcher/terminate.js';
import { startCluster } from '../../src/index.js';
import { normalizeOptions } from '../../src/options.js';

useLeakGuard();

const T = { timeout: 40_000 };
/** Gives the fake framework egg 3's thread behaviour (see the file). */
const THREADS_PRELOAD = path.join(FIXTURES, 'start', 'threads_fake_egg.js');

/**
 * runCluster, with pid tracking pinned to the master. In thread mode the master's log lines
 * carry thread ids where process mode has pids (`agent_worker#1:1 start`, `app_worker#1:2
 * start`); the leak guard would take them for processes (pid 1, 2 … are real processes here,
 * and the guard SIGKILLs survivors). The only process of a thread cluster is the master.
 */
function runThreads(options: Record<string, unknown>, runOptions?: RunOptions): ClusterRun {
  const run = runCluster(options, runOptions);
  const pids = run.pids;
  pids.add = (pid: number) => (pid === run.pid ? Set.prototype.add.call(pids, pid) as Set<number> : pids);
  return run;
}

function threadsApp(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return fakeApp(name, { startMode: 'worker_threads', require: [THREADS_PRELOAD], ...extra });
}

async function twoPorts(): Promise<[number, number]> {
  const p1 = await freePort();
  let p2 = await freePort();
  while (p2 === p1) p2 = await freePort();
  return [p1, p2];
}

/** SIGTERM, exit 0, and the master's output closed: nothing of the cluster is left. */
async function stopGracefully(run: ClusterRun, timeoutMs = 15_000): Promise<void> {
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(timeoutMs), { code: 0, signal: null }, run.context());
  await run.waitForClose(5000);
}

describe('worker_threads: startup and messaging', () => {
  test('ports [p1, p2]: egg-ready at the parent, HTTP on both ports, agent round trip, no child process', T, async () => {
    const [p1, p2] = await twoPorts();
    const run = runThreads(threadsApp('basic', { ports: [p1, p2] }));
    const ready = await run.ready();
    assert.equal(ready.from, 'master');
    assert.equal(ready.data.protocol, 'http');
    assert.match(ready.data.address, new RegExp(`^http://127\\.0\\.0\\.1:(${p1}|${p2})$`));
    // egg-scripts --daemon treats any byte on stderr during startup as a failed start
    assert.equal(run.stderr, '', 'stderr must stay empty during a normal startup');
    assert.match(run.stdout, /\[master\] agent_worker#1:\d+ start with worker_threads/);
    assert.match(run.stdout, /\[master\] app_worker#1 \(tid:\d+\) start/);
    assert.match(run.stdout, /\[master\] app_worker#2 \(tid:\d+\) start/);
    // agent and apps are threads: the master has no child process at all
    assert.deepEqual(listDescendants(run.pid), []);

    const a = await httpGet(`http://127.0.0.1:${p1}/`);
    const b = await httpGet(`http://127.0.0.1:${p2}/`);
    assert.equal(a.status, 200, a.body);
    assert.equal(b.status, 200, b.body);
    // one thread per port (the preload makes process.pid the threadId inside a thread)
    assert.notEqual(a.json().pid, b.json().pid);

    for (const port of [p1, p2]) {
      const pong = await httpGet(`http://127.0.0.1:${port}/ping-agent`);
      assert.equal(pong.status, 200, `app thread on ${port} -> agent thread -> back: ${pong.body}`);
      assert.ok(Number.isInteger(pong.json().agentPid));
    }
    const info = await httpGet(`http://127.0.0.1:${p1}/agent-info`);
    assert.equal(info.status, 200, info.body);
    // the agent knows both app threads (egg-pids carries thread ids) and got egg-ready
    assert.deepEqual([...info.json().opids].sort(), [a.json().pid, b.json().pid].sort());
    assert.equal(info.json().eggReady, true);
    const eggReady = await httpGet(`http://127.0.0.1:${p2}/egg-ready`);
    assert.equal(eggReady.json().eggReady, true);

    await stopGracefully(run);
  });

  test('port only: one app thread on it (ports defaults to [port])', T, async () => {
    const port = await freePort();
    const run = runThreads(threadsApp('basic', { port, workers: 4 }));
    const ready = await run.ready();
    assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
    assert.equal(ready.data.port, port);
    assert.doesNotMatch(run.stdout, /app_worker#2 \(tid/, 'workers is ports.length in thread mode');
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    await stopGracefully(run);
  });
});

describe('worker_threads: graceful shutdown', () => {
  test('SIGTERM: app.close() and agent.close() are awaited in the threads, then exit 0', T, async () => {
    const [p1, p2] = await twoPorts();
    const run = runThreads(threadsApp('slow-close', { ports: [p1, p2] }), { env: { SLOW_CLOSE_MS: '300' } });
    await run.ready();
    await stopGracefully(run);
    const out = run.stdout;
    assert.equal((out.match(/\[slow-close\] app \d+ beforeClose done/g) ?? []).length, 2, run.context());
    assert.match(out, /\[master\] gracefully close app worker#1 \(worker_threads\)/);
    assert.match(out, /\[master\] gracefully close app worker#2 \(worker_threads\)/);
    assert.doesNotMatch(out, /terminate (app|agent) worker#\d+ after/, 'no thread needed worker.terminate()');
    // apps close before the agent; the agent's close is awaited too; then the master exits
    indexesInOrder(out, [
      /\[slow-close\] app \d+ beforeClose done/,
      /\[slow-close\] app \d+ beforeClose done/,
      '[master] gracefully close agent worker#1 (worker_threads)',
      /\[slow-close\] agent \d+ beforeClose start/,
      /\[slow-close\] agent \d+ beforeClose done/,
      '[master] close done, exiting with code:0',
    ]);
  });

  test('a thread that does not close in time is terminated after EGG_APP_CLOSE_TIMEOUT', T, async () => {
    const port = await freePort();
    const run = runThreads(threadsApp('slow-close', { port }), {
      env: { SLOW_CLOSE_MS: '20000', GRACEFUL_TIMEOUT: '30000', EGG_APP_CLOSE_TIMEOUT: '300', EGG_AGENT_CLOSE_TIMEOUT: '300' },
    });
    await run.ready();
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.context());
    await run.waitForClose(5000);
    assert.match(run.stdout, /\[slow-close\] app \d+ beforeClose start/);
    assert.doesNotMatch(run.stdout, /\[slow-close\] app \d+ beforeClose done/);
    assert.match(run.stdout, /\[master\] terminate app worker#1 after 300ms timeout/);
    assert.match(run.stdout, /\[master\] terminate agent worker#1 after 300ms timeout/);
  });
});

describe('worker_threads: refork and reload', () => {
  test('production: a dead app thread is reforked on its own port', T, async () => {
    const [p1, p2] = await twoPorts();
    const run = runThreads(threadsApp('basic', { ports: [p1, p2], env: 'prod' }));
    await run.ready();
    const before = (await httpGet(`http://127.0.0.1:${p1}/`)).json().pid;
    const since = run.mark();
    await httpGet(`http://127.0.0.1:${p1}/exit?code=1`);
    await run.waitForMessage('app-worker-died');
    await run.waitForOutput(/\[master\] app_worker#1:\d+ exit \(code: 1, signal: null\), refork now/, 10_000, { since });
    await run.waitForOutput(new RegExp(`app_worker#3:\\d+ started at ${p1}`), 10_000, { since });
    const after = await httpGet(`http://127.0.0.1:${p1}/`);
    assert.equal(after.status, 200);
    assert.notEqual(after.json().pid, before);
    assert.equal((await httpGet(`http://127.0.0.1:${p2}/ping-agent`)).status, 200);
    await stopGracefully(run);
  });

  test('local env: no refork (egg-cluster reforked threads in every env: D11d)', T, async () => {
    const port = await freePort();
    const run = runThreads(threadsApp('basic', { port, env: 'local' }));
    await run.ready();
    await httpGet(`http://127.0.0.1:${port}/exit?code=1`);
    await run.waitForMessage('app-worker-died');
    await stopGracefully(run);
    // a first refork would have been immediate: it would show before the close
    assert.doesNotMatch(run.stdout, /refork/, run.context());
    assert.doesNotMatch(run.stdout, /app_worker#2 \(tid/);
  });

  test('reload-worker: each port gets a new thread; both keep serving', T, async () => {
    const [p1, p2] = await twoPorts();
    const run = runThreads(threadsApp('basic', { ports: [p1, p2], env: 'prod' }));
    await run.ready();
    const old = [(await httpGet(`http://127.0.0.1:${p1}/`)).json().pid, (await httpGet(`http://127.0.0.1:${p2}/`)).json().pid];
    run.send({ to: 'master', action: 'reload-worker' });
    await run.waitForOutput(/\[master\] reload done, 2 workers/, 20_000);
    const fresh = [(await httpGet(`http://127.0.0.1:${p1}/`)).json().pid, (await httpGet(`http://127.0.0.1:${p2}/`)).json().pid];
    for (const pid of fresh) assert.ok(!old.includes(pid), `a new thread serves (old ${JSON.stringify(old)}, now ${JSON.stringify(fresh)})`);
    assert.doesNotMatch(run.output, /AppWorkerDiedError/, 'threads replaced by a reload did not die');
    assert.equal(run.messages.filter(m => m.action === 'app-worker-died').length, 0);
    await stopGracefully(run);
  });
});

describe('worker_threads: options', () => {
  test('sticky with threads: startCluster rejects with a clear message', async () => {
    await assert.rejects(startCluster(threadsApp('basic', { sticky: true, port: 7001 })), {
      name: 'InvalidOptionError',
      message: /options\.sticky is not supported with startMode "worker_threads".*Use startMode "process"/,
    });
  });

  test('sticky with threads, from a start script: the master exits 1 and says why', T, async () => {
    const run = runThreads(threadsApp('basic', { sticky: true, port: await freePort() }));
    const exit = await run.waitForExit(10_000);
    assert.equal(exit.code, 1);
    assert.match(run.stderr, /InvalidOptionError: options\.sticky is not supported with startMode "worker_threads"/);
    assert.equal(run.messages.length, 0);
  });

  const ctx = { env: {}, cwd: FIXTURES, execArgv: [], cpus: 8 };
  const norm = (o: Record<string, unknown>, extra: Partial<typeof ctx & { nodeVersion: string; platform: string }> = {}) =>
    normalizeOptions({ startMode: 'worker_threads', ...o }, { ...ctx, ...extra });

  test('ports: one thread per port, workers = ports.length; default [port]; none: one thread', () => {
    assert.deepEqual(pick(norm({ ports: [7001, '7002'], workers: 8 }).options), { ports: [7001, 7002], workers: 2 });
    assert.deepEqual(pick(norm({ port: 7003 }).options), { ports: [7003], workers: 1 });
    assert.deepEqual(pick(norm({}).options), { ports: [], workers: 1 });
    assert.deepEqual(pick(normalizeOptions({ ports: [7001, 7002] }, ctx).options), { ports: [7001, 7002], workers: 8 },
      'process mode leaves workers alone');
  });

  test('ports must be distinct valid ports', () => {
    assert.throws(() => norm({ ports: [7001, 7001] }), { name: 'InvalidOptionError', message: /options\.ports must be distinct port numbers/ });
    assert.throws(() => norm({ ports: [7001, 'x'] }), { name: 'InvalidOptionError', message: /options\.ports\[1\]/ });
    assert.throws(() => norm({ ports: 7001 }), { name: 'InvalidOptionError', message: /options\.ports must be an array/ });
  });

  test('reusePort: shared port where Node supports it, else one thread per port with a warning', () => {
    const modern = { nodeVersion: 'v22.12.0', platform: 'linux' };
    const shared = norm({ reusePort: true, port: 7001, workers: 3 }, modern);
    assert.deepEqual(pick(shared.options), { ports: [], workers: 3 });
    assert.throws(() => norm({ reusePort: true, workers: 3 }, modern), { message: /options\.port is required with reusePort/ });

    const old = norm({ reusePort: true, port: 7001, workers: 3 }, { nodeVersion: 'v20.19.0', platform: 'linux' });
    assert.deepEqual(pick(old.options), { ports: [7001], workers: 1 });
    assert.match(old.warnings.join('\n'), /reusePort is not available \(Node\.js v20\.19\.0 .*one app thread per port/);
  });
});

function pick(o: { ports: number[]; workers: number }): { ports: number[]; workers: number } {
  return { ports: o.ports, workers: o.workers };
}
