/**
 * Chaos: under HTTP load, SIGKILL random app workers many times and the agent a few times.
 * The cluster must keep serving; only requests in flight on a killed worker may fail; at the
 * end every worker slot is filled again and, after SIGTERM, no process is left.
 * Figures go to the test output (t.diagnostic) so CI shows them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard } from '../helpers/run_cluster.js';

useLeakGuard();

const WORKERS = 4;
const CONCURRENCY = 8;
const APP_KILLS = 20;
const AGENT_KILLS = 3;

function pick<T>(list: T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

test('kill -9 app workers and the agent under load: the cluster keeps serving', { timeout: 120_000 }, async t => {
  const port = await freePort();
  // the default restart policy: a serving worker is replaced at once, so the killed workers
  // come back without a backoff and the cluster never runs out of listeners
  const run = runCluster(fakeApp('basic', { workers: WORKERS, port, env: 'prod' }));
  await run.ready(30_000);
  const url = `http://127.0.0.1:${port}/`;

  let stop = false;
  const stats = { ok: 0, failed: 0, errors: new Map<string, number>() };
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) {
      try {
        const res = await httpGet(url, { timeoutMs: 5000 });
        if (res.status === 200) stats.ok++;
        else stats.failed++;
      } catch (err) {
        stats.failed++;
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
      }
    }
  });

  const killed: number[] = [];
  const recoveries: number[] = [];
  const started = Date.now();
  for (let i = 0; i < APP_KILLS + AGENT_KILLS; i++) {
    const killAgent = i % Math.ceil((APP_KILLS + AGENT_KILLS) / AGENT_KILLS) === 3;
    if (killAgent) {
      const agent = run.agentPids.at(-1)!;
      const restartsBefore = run.agentPids.length;
      process.kill(agent, 'SIGKILL');
      killed.push(agent);
      await run.waitForOutput(new RegExp(`agent_worker#${restartsBefore + 1}:\\d+ started`), 20_000);
    } else {
      const alive = run.appPids.filter(pid => !killed.includes(pid) && isAlive(pid));
      const victim = pick(alive);
      const startsBefore = run.appPids.length;
      const killedAt = Date.now();
      process.kill(victim, 'SIGKILL');
      killed.push(victim);
      // wait for the replacement to listen before the next kill: reforks are what is tested
      await run.waitForOutput(new RegExp(`app_worker#${startsBefore + 1}:\\d+ started at`), 20_000);
      recoveries.push(Date.now() - killedAt);
    }
  }
  const chaosMs = Date.now() - started;
  stop = true;
  await Promise.all(loops);

  // still serving, with every slot filled
  const final = await httpGet(url);
  assert.equal(final.status, 200);
  const alive = run.appPids.filter(pid => isAlive(pid));
  assert.equal(alive.length, WORKERS, `expected ${WORKERS} live app workers, got ${alive.length}\n${run.context()}`);

  recoveries.sort((a, b) => a - b);
  t.diagnostic(`chaos: ${APP_KILLS} app kills + ${AGENT_KILLS} agent kills in ${chaosMs} ms; app recovery (kill -> replacement `
    + `listens) median ${recoveries[recoveries.length >> 1]} ms, max ${recoveries.at(-1)} ms`);
  t.diagnostic(`requests: ${stats.ok} ok, ${stats.failed} failed (${JSON.stringify(Object.fromEntries(stats.errors))})`);
  assert.ok(stats.ok > 0);
  assert.equal(stats.errors.get('ECONNREFUSED') ?? 0, 0, 'never a moment without a listening worker');
  // Only requests in flight on a killed worker may fail: at most one per load loop per app kill.
  assert.ok(stats.failed <= APP_KILLS * CONCURRENCY,
    `${stats.failed} failed requests for ${APP_KILLS} kills with ${CONCURRENCY} concurrent clients`);
  assert.doesNotMatch(run.stderr, /uncaught|ERR_IPC_CHANNEL_CLOSED|TypeError/);

  run.kill('SIGTERM');
  const exit = await run.waitForExit(30_000);
  assert.equal(exit.code, 0, run.context());
  const goneMs = await assertGone(run.workerPids, 10_000);
  t.diagnostic(`all ${run.workerPids.length} worker pids gone ${goneMs} ms after the master exited`);
});
