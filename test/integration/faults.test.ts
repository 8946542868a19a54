/**
 * Availability under faults (real processes): an uncaught exception in a real egg 3 worker,
 * repeated SIGKILLs of serving workers under keep-alive load, an agent that can never start
 * again, and a failed reload followed by a crash. Each test prints its figure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard,
} from '../helpers/run_cluster.js';
import { startLoad } from '../helpers/load.js';

useLeakGuard();

const T = { timeout: 90_000 };

function tmpFile(label: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), `egg-clutch-${label}-`)), 'flag');
}

/** GET until `accept` says yes; resolves with the body and how many attempts failed to connect. */
async function pollUntil(url: string, accept: (body: string) => boolean, deadlineMs: number): Promise<{ body: string; refused: number }> {
  const deadline = Date.now() + deadlineMs;
  let refused = 0;
  for (;;) {
    try {
      const res = await httpGet(url, { timeoutMs: 2000 });
      if (res.status === 200 && accept(res.body)) return { body: res.body, refused };
    } catch {
      refused++;
    }
    if (Date.now() > deadline) throw new Error(`no accepted answer from ${url} within ${deadlineMs}ms (${refused} refused)`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

describe('capacity after faults', () => {
  test('uncaught exception in the only worker of a real egg 3 app: a new worker serves while the old one still finishes', T, async t => {
    const port = await freePort();
    const run = runCluster({ baseDir: path.join(FIXTURES, 'egg3-throw'), workers: 1, port, env: 'prod' });
    await run.ready(60_000);
    const url = `http://127.0.0.1:${port}/`;
    const first = await httpGet(url);
    const oldPid = Number(/pid (\d+)/.exec(first.body)![1]);
    const thrownAt = Date.now();
    await httpGet(`${url}throw`);
    // egg's graceful closes the server and disconnects; the worker lingers up to 30 s
    const { body, refused } = await pollUntil(url, b => !b.includes(String(oldPid)), 25_000);
    const servedMs = Date.now() - thrownAt;
    const newPid = Number(/pid (\d+)/.exec(body)![1]);
    run.track(newPid);
    const oldStillAlive = isAlive(oldPid);
    t.diagnostic(`uncaught exception -> a new worker serves after ${servedMs} ms (${refused} connection attempts refused meanwhile); `
      + `the old worker ${oldStillAlive ? 'is still finishing (alive)' : 'has exited'}`);
    assert.ok(oldStillAlive, 'the replacement was forked on disconnect, not after the old worker\'s exit (egg lingers up to 30 s)');
    assert.match(run.stdout, /\[master\] app_worker#1:\d+ disconnected, refork now/);
    assert.match(run.stderr, /new worker:\d+ fork/, 'cfork\'s refork line, which egg-cluster\'s tests and alerts grep');
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(30_000), { code: 0, signal: null }, run.context());
    await assertGone([...run.pids, oldPid], 5000);
  });

  test('SIGKILL of serving workers under keep-alive load (workers: 2): replaced at once, never zero listening, no ECONNREFUSED', T, async t => {
    const port = await freePort();
    const run = runCluster(fakeApp('f-faults', { workers: 2, port, env: 'prod' }));
    await run.ready();
    const load = startLoad(`http://127.0.0.1:${port}/`, { concurrency: 16, maxMs: 60_000 });
    const recoveries: number[] = [];
    const KILLS = 8;
    // when each worker was seen listening: the victims are workers that served, i.e. listened
    // at least restartPolicy.minUptimeMs (1 s) ago, the rule under test
    const listenedAt = new Map(run.appPids.map(pid => [pid, Date.now()]));
    for (let i = 0; i < KILLS; i++) {
      const before = run.appPids.length;
      // the oldest live worker: it has served the longest
      const victim = run.appPids.find(pid => isAlive(pid))!;
      while (Date.now() - listenedAt.get(victim)! < 1100) await new Promise(resolve => setTimeout(resolve, 20));
      const since = run.mark();
      const killedAt = Date.now();
      process.kill(victim, 'SIGKILL');
      const started = await run.waitForOutput(new RegExp(`app_worker#${before + 1}:(\\d+) started at`), 15_000, { since });
      listenedAt.set(Number(started[1]), Date.now());
      recoveries.push(Date.now() - killedAt);
    }
    const result = await load.stop();
    recoveries.sort((a, b) => a - b);
    t.diagnostic(`${KILLS} SIGKILLs: recovery (kill -> the replacement listens) median ${recoveries[KILLS >> 1]} ms, `
      + `min ${recoveries[0]}, max ${recoveries.at(-1)}; requests ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.byCode)}`);
    assert.doesNotMatch(run.stdout, /refork in \d+ms/, 'a serving worker is not a crash loop: no backoff');
    assert.equal(result.byCode.ECONNREFUSED ?? 0, 0, 'never zero listening workers');
    // only requests in flight on (or idle keep-alive sockets of) a killed worker may fail
    assert.ok(result.failed <= KILLS * 16, `${result.failed} failed`);
    assert.ok(result.ok > 100, `${result.ok} requests served`);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 2000);
  });

  test('an agent that can never start again: ClusterWorkerExceptionError and exit 1 after three checks (~30 s)', { timeout: 120_000 }, async t => {
    const flag = tmpFile('agent-crash');
    const port = await freePort();
    const run = runCluster(fakeApp('f-faults', { workers: 1, port, env: 'prod' }), { env: { F_AGENT_CRASH_FILE: flag } });
    try {
      await run.ready();
      fs.writeFileSync(flag, '1');
      const killedAt = Date.now();
      process.kill(run.agentPids[0]!, 'SIGKILL');
      const exit = await run.waitForExit(80_000);
      const ms = Date.now() - killedAt;
      t.diagnostic(`the master exited ${ms} ms after the agent was killed; ${run.agentPids.length - 1} replacement agents died at boot`);
      assert.deepEqual(exit, { code: 1, signal: null }, run.context());
      assert.match(run.stderr, /ClusterWorkerExceptionError: \[master\] 0 agent and 1 worker\(s\) alive, exit to avoid unknown state/);
      assert.ok(run.agentPids.length > 2, 'it kept restarting the agent meanwhile');
      await assertGone(run.pids, 5000);
    } finally {
      fs.rmSync(path.dirname(flag), { recursive: true, force: true });
    }
  });

  test('production: after a failed reload, an old worker that dies is reforked', T, async t => {
    const flag = tmpFile('app-crash');
    const port = await freePort();
    const run = runCluster(fakeApp('f-faults', { workers: 2, port, env: 'prod' }), { env: { F_APP_CRASH_FILE: flag } });
    try {
      await run.ready();
      fs.writeFileSync(flag, '1');
      run.send({ to: 'master', action: 'reload-worker' });
      await run.waitForOutput(/\[master\] reload stopped: a new app worker did not start; the old workers keep serving/, 15_000);
      fs.rmSync(flag);
      const [old] = run.appPids;
      const forks = run.appPids.length;
      const killedAt = Date.now();
      process.kill(old!, 'SIGKILL');
      await run.waitForOutput(new RegExp(`app_worker#${forks + 1}:\\d+ started at`), 15_000);
      t.diagnostic(`the old worker was replaced ${Date.now() - killedAt} ms after its SIGKILL`);
      const live = run.appPids.filter(pid => isAlive(pid));
      assert.equal(live.length, 2, run.context());
      run.kill('SIGTERM');
      assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.context());
      await assertGone(run.pids, 2000);
    } finally {
      fs.rmSync(path.dirname(flag), { recursive: true, force: true });
    }
  });
});
