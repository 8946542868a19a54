/**
 * Process mode features beyond egg-cluster's basics: rolling reload (parent message and
 * SIGUSR2), SIGHUP, sticky sessions, the start timeout, and the callback style of startCluster.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard, type ClusterRun,
} from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 60_000 };

async function stopGracefully(run: ClusterRun, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  run.kill(signal);
  const exit = await run.waitForExit(15_000);
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 2000);
}

/**
 * Sequential GETs on fresh connections until stopped (or at most `maxMs`, a backstop so a
 * failed test cannot leave the loop running); every outcome is recorded.
 */
function keepRequesting(url: string, maxMs = 30_000): { stop: () => Promise<{ ok: number; failures: string[]; pids: Set<number> }> } {
  let running = true;
  const deadline = Date.now() + maxMs;
  const failures: string[] = [];
  const pids = new Set<number>();
  let ok = 0;
  const loop = (async () => {
    while (running && Date.now() < deadline) {
      try {
        const res = await httpGet(url, { timeoutMs: 3000 });
        if (res.status === 200) {
          ok++;
          pids.add(res.json().pid);
        } else {
          failures.push(`HTTP ${res.status}: ${res.body}`);
        }
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failures, pids };
    },
  };
}

describe('process mode: rolling reload', () => {
  const variants = [
    { trigger: 'parent message reload-worker', extra: {} },
    { trigger: 'SIGUSR2', extra: {} },
    { trigger: 'parent message reload-worker', extra: { env: 'prod' } },
    { trigger: 'SIGUSR2', extra: { sticky: true } },
  ] as const;
  // A worker stopped by the reload does an IPC round trip with the master after
  // server.close() (the drain barrier): connections handed to it before that are served, none
  // is stranded in flight (round robin: a `newconn` needs a live worker to answer; sticky: a
  // socket queued on the channel).
  const ROUNDS = 3;
  for (const { trigger, extra } of variants) {
    const opts = T;
    test(`${trigger}${Object.keys(extra).length ? ` ${JSON.stringify(extra)}` : ''}: every app worker is replaced, at most reload.surge at a time, without a failed request`, opts, async t => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 2, port, ...extra }));
      await run.ready();
      const agentPid = run.agentPids[0]!;
      const old = [...run.appPids];
      // three clients in parallel, three reloads in a row: 6 worker switches under load
      const traffic = [1, 2, 3].map(() => keepRequesting(`http://127.0.0.1:${port}/`));
      // the default surge: every worker at once outside production, one at a time in production
      const surge = 'env' in extra && extra.env === 'prod' ? 1 : 2;
      let maxLive = 0;
      const sampler = setInterval(() => { maxLive = Math.max(maxLive, run.appPids.filter(isAlive).length); }, 10);
      const stopTraffic = (): ReturnType<ReturnType<typeof keepRequesting>['stop']>[] => traffic.map(c => c.stop());
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const mark = run.mark('stdout');
          if (trigger === 'SIGUSR2') run.kill('SIGUSR2');
          else run.send({ action: 'reload-worker' });
          await run.waitForOutput(/\[master\] reload done, 2 workers/, 20_000, { stream: 'stdout', since: mark });
        }
      } catch (err) {
        clearInterval(sampler);
        await Promise.all(stopTraffic());
        throw err;
      }
      clearInterval(sampler);
      const results = await Promise.all(stopTraffic());
      const ok = results.reduce((n, r) => n + r.ok, 0);
      const failures = results.flatMap(r => r.failures);
      const served = new Set(results.flatMap(r => [...r.pids]));
      t.diagnostic(`${ok} requests during ${ROUNDS} reloads, ${failures.length} failed, served by ${served.size} pids; `
        + `at most ${maxLive} live app workers (workers 2, surge ${surge})`);
      assert.ok(maxLive <= 2 + surge, `${maxLive} live app workers at once`);
      assert.deepEqual(failures, [], `requests failed during the reload (${ok} succeeded)`);
      assert.ok(ok > 0);
      assert.equal(run.appPids.length, 2 + 2 * ROUNDS, run.context());
      const fresh = run.appPids.slice(-2);
      await assertGone(run.appPids.slice(0, -2), 2000);
      await assertGone(old, 2000);
      for (const pid of served) run.track(pid);
      assert.equal(run.messages.some(m => m.action === 'app-worker-died'), false, 'a reload is not a death');
      assert.doesNotMatch(run.stderr, /AppWorkerDiedError/);

      // the new workers serve, know the agent, got egg-ready; the agent knows them
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 4; i++) {
        const res = await httpGet(`${base}/egg-ready`);
        assert.ok(fresh.includes(res.json().pid), `served by ${res.json().pid}, new workers are ${fresh.join(', ')}`);
        assert.equal(res.json().eggReady, true);
      }
      const pids = await httpGet(`${base}/pids`);
      assert.deepEqual(pids.json().pids, [agentPid]);
      const info = (await httpGet(`${base}/agent-info`)).json();
      assert.deepEqual([...info.opids].map(Number).sort(), [...fresh].sort());
      await stopGracefully(run);
    });
  }
});

describe('process mode: more signals and options', () => {
  test('SIGHUP closes gracefully (a closed terminal)', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port }));
    await run.ready();
    await stopGracefully(run, 'SIGHUP');
    assert.match(run.stdout, /\[master\] master is killed by signal SIGHUP, closing/);
  });

  test('sticky: egg-ready on the real port; each client IP always reaches the same worker', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port, sticky: true }));
    const ready = await run.ready();
    assert.equal(ready.data.port, port);
    assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
    assert.match(run.stdout, new RegExp(`started on http://127\\.0\\.0\\.1:${port} \\(\\d+ms\\) with STICKY MODE!`));
    const byIp = new Map<string, number>();
    for (let i = 1; i <= 12; i++) {
      const ip = `127.0.0.${i}`;
      for (let j = 0; j < 3; j++) {
        const res = await httpGet(`http://127.0.0.1:${port}/`, { localAddress: ip });
        assert.equal(res.status, 200);
        const pid = res.json().pid;
        assert.ok(run.appPids.includes(pid));
        if (byIp.has(ip)) assert.equal(pid, byIp.get(ip), `client ${ip} moved between workers`);
        byIp.set(ip, pid);
      }
    }
    assert.equal(new Set(byIp.values()).size, 2, `12 client IPs spread over both workers: ${JSON.stringify([...byIp])}`);
    await stopGracefully(run);
  });

  test('startTimeout: a cluster that never gets ready exits 1 and names what did not start', T, async () => {
    const port = await freePort();
    // long enough for the agent to start on a loaded 2-core machine, short against the 30 s app boot
    const run = runCluster(fakeApp('slow-start', { workers: 2, port, startTimeout: 6000 }), { env: { SLOW_START_MS: '30000' } });
    const exit = await run.waitForExit(15_000);
    assert.deepEqual(exit, { code: 1, signal: null }, run.context());
    assert.match(run.stderr, /did not start within 6000ms \(agent started: yes, app workers listening: 0\/2\)/);
    assert.equal(run.messages.some(m => m.action === 'egg-ready'), false);
    await assertGone(run.pids, 2000);
  });
});

describe('startCluster(options, callback) (egg-cluster 2.x / egg-mock 5 style)', () => {
  const script = path.join(FIXTURES, 'start', 'start_callback.js');

  test('the callback is called without error once the cluster is ready', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port }), { script });
    const ready = await run.ready();
    const cb = await run.waitForMessage('test:callback');
    assert.deepEqual(cb.data, { ok: true });
    assert.ok(run.messages.indexOf(ready) < run.messages.indexOf(cb), 'egg-ready first, then the callback');
    await stopGracefully(run);
  });

  test('an option error goes to the callback (no throw, no unhandled rejection)', T, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-it-nopkg-'));
    try {
      const run = runCluster({ baseDir: dir, workers: 1 }, { script });
      const cb = await run.waitForMessage('test:callback');
      assert.match(cb.data.error, /should exist/);
      const exit = await run.waitForExit();
      assert.deepEqual(exit, { code: 0, signal: null }, run.context());
      assert.doesNotMatch(run.stderr, /UnhandledPromiseRejection|unhandled/i);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
