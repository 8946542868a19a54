/**
 * A real egg 3 app (example/app) under egg-clutch: egg's own loader, messenger and
 * graceful close. egg writes its logs to example/app/logs and run/ (gitignored).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, assertGone, freePort, httpGet, runCluster, useLeakGuard } from '../helpers/run_cluster.js';
import { startLoad } from '../helpers/load.js';

useLeakGuard();

const BASE_DIR = path.join(ROOT, 'example', 'app');

test('egg 3: egg-ready, GET /, GET /agent round trip through egg\'s messenger, SIGTERM exits 0', { timeout: 90_000 }, async t => {
  const port = await freePort();
  const run = runCluster({ baseDir: BASE_DIR, workers: 2, port });
  const ready = await run.ready(60_000);
  t.diagnostic(`egg 3 cluster ready in ${Date.now() - run.startedAt}ms`);
  assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
  assert.equal(ready.data.port, port);
  assert.equal(ready.data.protocol, 'http');
  assert.match(run.stdout, /\[master\] egg started on http:\/\/127\.0\.0\.1:\d+ \(\d+ms\)/);
  assert.equal(run.agentPids.length, 1, run.context());
  assert.equal(run.appPids.length, 2, run.context());
  const agentPid = run.agentPids[0]!;
  const appPids = [...run.appPids].sort();

  const base = `http://127.0.0.1:${port}`;
  const workersSeen = new Set<number>();
  for (let i = 0; i < 20 && workersSeen.size < 2; i++) {
    const home = await httpGet(`${base}/`);
    assert.equal(home.status, 200, home.body);
    const m = /^hi, egg-clutch \(pid (\d+)\)$/.exec(home.body);
    assert.ok(m, home.body);
    workersSeen.add(run.track(Number(m[1])));
  }
  assert.deepEqual([...workersSeen].sort(), appPids, 'both workers serve');

  // egg's messenger: app -> agent (sendToAgent), agent -> that worker (sendTo pid)
  const agentSeen = new Set<number>();
  for (let i = 0; i < 20 && agentSeen.size < 2; i++) {
    const res = await httpGet(`${base}/agent`);
    assert.equal(res.status, 200, res.body);
    const body = res.json<{ worker: number; agent: number }>();
    assert.equal(body.agent, agentPid);
    assert.notEqual(body.worker, body.agent);
    assert.ok(appPids.includes(body.worker), res.body);
    agentSeen.add(body.worker);
  }
  assert.equal(agentSeen.size, 2, 'both workers reach the agent and get the answer back');

  const stopAt = Date.now();
  run.kill('SIGTERM');
  const exit = await run.waitForExit(20_000);
  t.diagnostic(`egg 3 cluster stopped in ${Date.now() - stopAt}ms`);
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  assert.match(run.stdout, /\[master\] close done, exiting with code:0/);
  await assertGone(run.pids, 2000);
});

test('egg 3, 4 workers, env unittest: reload-worker replaces them all at once under load, 0 failed requests', { timeout: 120_000 }, async t => {
  const port = await freePort();
  const run = runCluster({ baseDir: path.join(ROOT, 'test', 'fixtures', 'egg3-throw'), workers: 4, port, env: 'unittest' });
  await run.ready(60_000);
  const load = startLoad(`http://127.0.0.1:${port}/`, { concurrency: 8, maxMs: 90_000 });
  const mark = run.mark('stdout');
  const reloadAt = Date.now();
  run.send({ action: 'reload-worker' });
  await run.waitForOutput(/\[master\] reload done, 4 workers/, 90_000, { stream: 'stdout', since: mark });
  const reloadMs = Date.now() - reloadAt;
  const result = await load.stop();
  t.diagnostic(`reload of 4 egg 3 workers (surge 4): ${reloadMs} ms; requests ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.byCode)}`);
  assert.equal(result.failed, 0, JSON.stringify(result.byCode));
  assert.ok(result.ok > 0);
  assert.equal(run.appPids.length, 8, run.context());
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(20_000), { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 5000);
});
