/**
 * What an app sees of its worker while it starts, as egg-cluster 2.x / @eggjs/cluster 3.x's
 * own suites check it (issue 7 §2, §3), with real processes and the fake framework:
 * - a start error runs the SIGTERM close (egg's beforeClose hooks, graceful-process's
 *   `[label] beforeExit success`) and exits 1 — app and agent, ready(err) and `error`;
 * - app.options.port holds the port taken from config.cluster.listen.port;
 * - the app has one `error` listener (its own) in its app.ready() callback and after;
 * - options.require may name an import-only ES module with top-level await.
 * Runs against the built package (lib/): `npm run build` first.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertGone, fakeApp, freePort, httpGet, runCluster, useLeakGuard } from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 40_000 };
const INFO_WORKER_LOGS = { EGG_APP_WORKER_LOGGER_LEVEL: 'INFO', EGG_AGENT_WORKER_LOGGER_LEVEL: 'INFO' };

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, 'g'))?.length ?? 0;
}

describe('a start error closes the worker like SIGTERM, then exits 1', () => {
  const cases = [
    { role: 'app', how: 'ready', error: /app ready failed on purpose/ },
    { role: 'app', how: 'emit', error: /app emitted error on purpose/ },
    { role: 'agent', how: 'ready', error: /agent ready failed on purpose/ },
    { role: 'agent', how: 'emit', error: /agent emitted error on purpose/ },
  ] as const;
  for (const c of cases) {
    test(`${c.role} ${c.how === 'ready' ? 'ready(err)' : 'emits error'} during boot: beforeClose hooks, "[${c.role}_worker] beforeExit success", exit 1`, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('w-start-error', { workers: 1, port }), { env: { ...INFO_WORKER_LOGS, W_FAIL: `${c.role}-${c.how}` } });
      const exit = await run.waitForExit(15_000);
      assert.deepEqual(exit, { code: 1, signal: null }, run.context());
      await run.waitForClose(5000);
      const label = `${c.role}_worker`;
      assert.match(run.output, c.error, run.context());
      assert.match(run.stderr, new RegExp(`\\[${label}\\] start error, exiting with code:1`), run.context());
      // the worker's own close ran: its beforeClose hook, then graceful-process's line
      const hook = new RegExp(`\\[w-start-error\\] ${c.role} (\\d+) beforeClose`);
      const hookAt = run.output.search(hook);
      const successAt = run.output.search(new RegExp(`\\[${label}\\] beforeExit success`));
      assert.ok(hookAt >= 0, `beforeClose hook ran\n${run.context()}`);
      assert.ok(successAt > hookAt, `"[${label}] beforeExit success" after the hook\n${run.context()}`);
      assert.equal(count(run.output, new RegExp(`\\[${label}\\] beforeExit success`)), 1, run.context());
      // on stdout, where egg-cluster's suites grep it (EGG_*_WORKER_LOGGER_LEVEL=INFO)
      assert.match(run.stdout, new RegExp(`\\[${label}\\] beforeExit success`), run.context());
      // exit 1 for real (egg-cluster: 0, defect D2), logged by graceful-process and the master
      assert.match(run.stderr, new RegExp(`\\[${label}\\] exit with code:1`), run.context());
      assert.match(run.stderr, new RegExp(`${label}#1:\\d+ (start fail|died \\(code: 1)`), run.context());
      assert.equal(run.messages.some(m => m.action === 'egg-ready'), false);
      await assertGone(run.pids, 1000);
    });
  }

  test('worker_threads: an app thread whose ready fails closes the same way and the cluster exits 1', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('w-start-error', { workers: 1, port, startMode: 'worker_threads' }), { env: { ...INFO_WORKER_LOGS, W_FAIL: 'app-ready' } });
    const exit = await run.waitForExit(15_000);
    assert.deepEqual(exit, { code: 1, signal: null }, run.context());
    await run.waitForClose(5000);
    const hookAt = run.output.search(/\[w-start-error\] app \d+ beforeClose/);
    assert.ok(hookAt >= 0, `beforeClose hook ran\n${run.context()}`);
    assert.ok(run.stdout.indexOf('[app_worker] beforeExit success') > -1, run.context());
    assert.match(run.stderr, /\[app_worker\] exit with code:1/, run.context());
  });

  test('a close that hangs after a start error is cut at the worker\'s close budget, still exit 1', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('w-start-error', { workers: 1, port }), {
      // the master's app close timeout 2000 ms: the worker's own budget is 1500 ms
      env: { ...INFO_WORKER_LOGS, W_FAIL: 'app-ready', W_CLOSE_HANG: '1', EGG_APP_CLOSE_TIMEOUT: '2000', EGG_AGENT_CLOSE_TIMEOUT: '1000' },
    });
    const exit = await run.waitForExit(15_000);
    assert.deepEqual(exit, { code: 1, signal: null }, run.context());
    await run.waitForClose(5000);
    assert.match(run.output, /\[w-start-error\] app \d+ beforeClose/, run.context());
    assert.match(run.stderr, /\[app_worker\] beforeExit fail, error: Timeout 1500ms/, run.context());
    assert.match(run.stderr, /\[app_worker\] exit with code:1/, run.context());
    await assertGone(run.pids, 1000);
  });
});

describe('what the app sees once it started', () => {
  test('app.options.port is the port from config.cluster.listen.port (egg-cluster "should use port in config")', T, async () => {
    const port = await freePort();
    // no options.port: the worker takes it from the app's config
    const run = runCluster(fakeApp('w-config-port', { workers: 1 }), { env: { W_PORT: String(port) } });
    const ready = await run.ready();
    assert.equal(ready.data.port, port, run.context());
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json().port, port);
  });

  test('one error listener (the app\'s own) in app.ready() callbacks and after; an error the app handles during boot is not a start error', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('w-error-listeners', { workers: 1, port }));
    await run.ready();
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { beforeReady: 1, afterReady: 1, handled: 1 });
  });

  test('options.require: an import-only ES module with top-level await loads in every worker before the framework', T, async () => {
    const port = await freePort();
    const run = runCluster({ ...fakeApp('w-esm', { workers: 2, port }), require: ['w-import-only-tla'] });
    await run.ready();
    // the agent and both app workers printed its marker
    assert.equal(count(run.stdout, /\[w-import-only-tla\] loaded in \d+/), 3, run.context());
    const seen = new Set<number>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const res = await httpGet(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 200, res.body);
      const body = res.json<{ pid: number; preload: { pid: number } | null }>();
      assert.equal(body.preload?.pid, body.pid, 'loaded in this worker');
      seen.add(body.pid);
    }
    assert.equal(seen.size, 2, `both workers answered: ${[...seen].join(', ')}`);
  });
});
