/**
 * Faults under load, each bounded in time, each printing its figures:
 * - an uncaught exception in the only app worker (it disconnects and lingers, as egg's
 *   graceful does): how long until a new worker serves;
 * - SIGTERM to the whole process group (systemd KillMode=control-group, `kill -TERM -pgid`)
 *   while requests are in flight and load keeps coming: every request in flight completes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard } from '../helpers/run_cluster.js';
import { startLoad } from '../helpers/load.js';

useLeakGuard();

test('uncaught exception with workers: 1, under load: a new worker serves soon after the disconnect', { timeout: 60_000 }, async t => {
  const port = await freePort();
  // each round throws as soon as the previous replacement serves, i.e. within the default
  // minUptimeMs (1 s) of its listening, which the policy would rightly call a crash loop and
  // back off; minUptimeMs 0 keeps every round on the "serving worker" path measured here
  const run = runCluster(fakeApp('f-faults', { workers: 1, port, env: 'prod', restartPolicy: { minUptimeMs: 0 } }));
  await run.ready();
  const url = `http://127.0.0.1:${port}/`;
  const load = startLoad(url, { concurrency: 4, keepAlive: false, maxMs: 30_000 });
  const rounds: Array<{ servedMs: number; lingering: boolean }> = [];
  for (let i = 0; i < 3; i++) {
    const old = (await httpGet(url)).json<{ pid: number }>().pid;
    const since = run.mark();
    await httpGet(`${url}throw`);
    // replaced on whichever the master sees first: the disconnect, or the exit of a worker that
    // had nothing left to finish (egg's graceful does not keep an idle process alive)
    const disconnected = await run.waitForOutput(/\[master\] app_worker#\d+:\d+ (?:disconnected|exit \(code: \S+, signal: \S+\)), refork now/, 10_000, { since });
    const disconnectedAt = Date.now();
    // the first answer from another pid
    let servedMs = -1;
    for (;;) {
      try {
        const res = await httpGet(url, { timeoutMs: 2000 });
        if (res.status === 200 && res.json<{ pid: number }>().pid !== old) {
          servedMs = Date.now() - disconnectedAt;
          run.track(res.json<{ pid: number }>().pid);
          break;
        }
      } catch {
        // refused while nothing listens
      }
      if (Date.now() - disconnectedAt > 15_000) break;
      await new Promise(resolve => setImmediate(resolve));
    }
    assert.ok(servedMs >= 0, `no new worker served within 15 s of ${disconnected[0]}\n${run.context()}`);
    rounds.push({ servedMs, lingering: isAlive(old) });
  }
  const result = await load.stop();
  t.diagnostic(`uncaught exception -> a new worker serves: ${rounds.map(r => `${r.servedMs} ms`).join(', ')} after the disconnect `
    + `(old worker still alive then: ${rounds.map(r => r.lingering).join(', ')}); `
    + `load: ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.byCode)}`);
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(20_000), { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 5000);
});

test('SIGTERM to the whole process group with requests in flight and load: every request in flight completes, exit 0', { timeout: 60_000 }, async t => {
  const port = await freePort();
  const run = runCluster(fakeApp('f-faults', { workers: 2, port, env: 'prod' }), { detached: true });
  await run.ready();
  const url = `http://127.0.0.1:${port}/`;
  const load = startLoad(url, { concurrency: 8, maxMs: 20_000 });
  // 10 slow requests in flight on the workers (1.5 s each)
  const slow = Array.from({ length: 10 }, () => httpGet(`${url}slow?ms=1500`, { timeoutMs: 10_000 }).then(
    res => ({ ok: res.status === 200, detail: `HTTP ${res.status}` }),
    (err: NodeJS.ErrnoException) => ({ ok: false, detail: err.code ?? err.message }),
  ));
  // the slow requests reach the workers before the signal: wait until the load has been served a bit
  while (load.result.ok < 50) await new Promise(resolve => setImmediate(resolve));
  const signalledAt = Date.now();
  process.kill(-run.pid, 'SIGTERM');
  const slowResults = await Promise.all(slow);
  const exit = await run.waitForExit(20_000);
  const result = await load.stop();
  t.diagnostic(`group SIGTERM: master exited after ${Date.now() - signalledAt} ms; slow requests in flight: `
    + `${slowResults.filter(r => r.ok).length}/${slowResults.length} completed; load: ${result.ok} ok, `
    + `${result.failed} failed after the signal ${JSON.stringify(result.byCode)} (new requests are refused once the listeners `
    + 'close; a keep-alive request racing the close of its idle socket can be reset)');
  assert.deepEqual(slowResults.filter(r => !r.ok), [], 'every request in flight completes');
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 5000);
});
