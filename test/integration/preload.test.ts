/**
 * Preloads, the way users run egg in 2026: `NODE_OPTIONS="--import …"` (the TS hook of
 * @eggjs/bin, OpenTelemetry, Sentry, APM agents) or `--require`, and the same flags in the
 * master's execArgv. A preload delays a worker's main module by an unknown time; the worker
 * asks for its options once it listens, so nothing is lost (before that fix every app
 * worker waited for options that had been sent too early, until startTimeout).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, assertGone, fakeApp, freePort, httpGet, runCluster, useLeakGuard,
} from '../helpers/run_cluster.js';

useLeakGuard();

const PRELOAD = path.join(FIXTURES, 'preload');
const AWAIT = path.join(PRELOAD, 'await.mjs');
const BLOCK = path.join(PRELOAD, 'block.cjs');
const TS = path.join(PRELOAD, 'hook.ts');
const THREADS_PRELOAD = path.join(FIXTURES, 'start', 'threads_fake_egg.js');

interface Case {
  title: string;
  /** NODE_OPTIONS of the master (inherited by every worker) */
  nodeOptions?: string;
  /** the master's execArgv (inherited by every worker) */
  execArgv?: string[];
  /** options.require: loaded by the agent and each app worker, as a framework loads the app's files */
  requireModules?: string[];
  /** the tags the preloads print: `[preload:<tag>] ran in pid N` */
  tags: string[];
  /** why this case does not apply to worker_threads mode */
  notInThreads?: string;
}

const CASES: Case[] = [
  { title: 'NODE_OPTIONS --import of an ESM preload that awaits 300 ms', nodeOptions: `--import ${AWAIT}`, tags: ['await'] },
  { title: 'NODE_OPTIONS --require of a CJS preload that blocks 300 ms', nodeOptions: `--require ${BLOCK}`, tags: ['block'] },
  {
    // as @eggjs/bin runs a TypeScript app: the hook in NODE_OPTIONS, the app's .ts files loaded
    // by the framework in each worker (here through options.require). A .ts file given as a
    // second `--import` in NODE_OPTIONS is not a fair case: Node 20 runs NODE_OPTIONS preloads in
    // its loader-hooks thread too, where tsx is not active, and fails there now and then
    // ("Unknown file extension .ts", with `node -e` alone).
    title: 'NODE_OPTIONS --import tsx, the app\'s TypeScript loaded in each worker', nodeOptions: '--import tsx',
    requireModules: [TS], tags: ['ts'],
    // Node itself: tsx's hooks are not active in worker threads (a `new Worker()` that imports a
    // .ts file fails the same way without egg-clutch), so no manager can run this in threads
    notInThreads: 'tsx\'s --import hooks do not reach worker threads (Node 20); no manager can run this in threads',
  },
  { title: 'the master\'s execArgv: --import (awaits) and --require (blocks)', execArgv: ['--import', AWAIT, '--require', BLOCK], tags: ['await', 'block'] },
];

for (const mode of ['process', 'worker_threads'] as const) {
  describe(`preloads, ${mode} mode`, () => {
    for (const c of CASES) {
      const skip = mode === 'worker_threads' && c.notInThreads ? c.notInThreads : false;
      test(`${c.title}: starts, serves, round trip to the agent, SIGTERM exits 0`, { timeout: 60_000, skip }, async t => {
        const port = await freePort();
        const options = fakeApp('basic', {
          workers: 2, port, ...(mode === 'worker_threads' ? { startMode: mode } : {}), ...(c.requireModules ? { require: c.requireModules } : {}),
        });
        const execArgv = [...(c.execArgv ?? [])];
        // threads mode runs the fake framework's thread shim in the master (see threads.test.ts)
        if (mode === 'worker_threads') execArgv.push('--require', THREADS_PRELOAD);
        const run = runCluster(options, {
          env: c.nodeOptions ? { NODE_OPTIONS: c.nodeOptions } : {},
          execArgv,
        });
        const startedAt = Date.now();
        const ready = await run.ready(30_000);
        t.diagnostic(`ready in ${Date.now() - startedAt} ms`);
        assert.equal(ready.data.address, `http://127.0.0.1:${port}`);

        const url = `http://127.0.0.1:${port}/`;
        const seen = new Set<number>();
        for (let i = 0; i < 20; i++) {
          const res = await httpGet(url);
          assert.equal(res.status, 200, res.body);
          seen.add(res.json<{ pid: number }>().pid);
        }
        const pong = await httpGet(`${url}ping-agent`);
        assert.equal(pong.status, 200, pong.body);

        // every process of the cluster ran the preload before its own code
        const processes = mode === 'process' ? [...run.agentPids, ...run.appPids] : [];
        if (c.execArgv) processes.push(run.pid);
        for (const tag of c.tags) {
          const ran = new Set([...run.stdout.matchAll(new RegExp(`\\[preload:${tag}\\] ran in pid (\\d+)`, 'g'))].map(m => Number(m[1])));
          for (const pid of processes) assert.ok(ran.has(pid), `preload ${tag} did not run in ${pid}\n${run.context()}`);
        }
        if (mode === 'process') assert.equal(seen.size, 2, 'both app workers serve');

        run.kill('SIGTERM');
        assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.context());
        await assertGone(run.pids, 2000);
      });
    }
  });
}
