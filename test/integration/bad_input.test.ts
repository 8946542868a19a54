/**
 * Hardening: bad input and hostile messages, with real processes.
 *
 * Bad input: every wrong option, missing file, broken framework and failing agent or app
 * ends with exit code 1, one clear message that names the problem, and no process left.
 * Already covered elsewhere, so not repeated here:
 *   - agent / app throwing in its constructor, agent / app rejecting ready, a framework
 *     without Application, `require: ['./no-such-module']`, a baseDir without package.json
 *     (process_mode.test.ts, "start failures exit 1");
 *   - a port in use (process_edge.test.ts, "port already in use");
 *   - app workers that never become ready within startTimeout (process_features.test.ts,
 *     "startTimeout").
 *
 * Hostile messages: from a worker (raw `process.send`, test/fixtures/apps/bad-hostile) and
 * from the parent (the master's IPC channel), in process mode, plus egg-clutch's thread close
 * message sent by a worker in worker_threads mode: none may crash the master or change its
 * state.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FIXTURES, appDir, assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard, type ClusterRun,
} from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 30_000 };
const MB = 1024 * 1024;

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))?.length ?? 0;
}

async function stopGracefully(run: ClusterRun): Promise<void> {
  run.kill('SIGTERM');
  const exit = await run.waitForExit(15_000);
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 2000);
}

/** The master ended with code 1, closed its output, and nothing it started survives. */
async function assertFailedStart(run: ClusterRun, message: RegExp, times = 1): Promise<void> {
  const exit = await run.waitForExit(15_000);
  assert.deepEqual(exit, { code: 1, signal: null }, run.context());
  await run.waitForClose(5000);
  // on stderr, where egg-scripts looks for a failed start
  assert.equal(count(run.stderr, message), times, `${message} must appear ${times} time(s) on stderr\n${run.context()}`);
  assert.equal(run.messages.some(m => m.action === 'egg-ready'), false, JSON.stringify(run.messages));
  assert.doesNotMatch(run.stdout, /started on/);
  await assertGone(run.pids, 2000);
}

describe('bad options: startCluster rejects, the master exits 1 and starts nothing', () => {
  const missingDir = path.join(os.tmpdir(), `egg-clutch-it-missing-${process.pid}`, 'app');
  const cases: Array<{ name: string; options: Record<string, unknown>; expect: RegExp }> = [
    {
      name: 'workers: "abc"',
      options: { workers: 'abc' },
      expect: /InvalidOptionError: options\.workers must be a positive integer \(1 to 1024\), got "abc" \(string\)/,
    },
    {
      name: 'workers: -1',
      options: { workers: -1 },
      expect: /InvalidOptionError: options\.workers must be a positive integer \(1 to 1024\), got -1 \(number\)/,
    },
    {
      name: 'port: "x"',
      options: { port: 'x' },
      expect: /InvalidOptionError: options\.port must be a port number from 1 to 65535, got "x" \(string\)/,
    },
    {
      name: 'port: 70000',
      options: { port: 70000 },
      expect: /InvalidOptionError: options\.port must be a port number from 1 to 65535, got 70000 \(number\)/,
    },
    {
      name: 'startMode: "cluster"',
      options: { startMode: 'cluster' },
      expect: /InvalidOptionError: options\.startMode must be "process" or "worker_threads", got "cluster" \(string\)/,
    },
    {
      name: 'https key and cert files that do not exist',
      options: { https: { key: '/nope.key', cert: '/nope.crt' } },
      expect: /InvalidOptionError: options\.https\.key file "\/nope\.key" does not exist: give an existing file path, or the PEM content/,
    },
    {
      name: 'https cert file that does not exist (the key exists)',
      options: { https: { key: path.join(appDir('https'), 'server.key'), cert: '/nope.crt' } },
      expect: /InvalidOptionError: options\.https\.cert file "\/nope\.crt" does not exist/,
    },
    {
      name: 'sticky with startMode "worker_threads"',
      options: { sticky: true, startMode: 'worker_threads' },
      expect: /InvalidOptionError: options\.sticky is not supported with startMode "worker_threads": sticky sessions pass sockets between processes/,
    },
    {
      name: 'restartPolicy: { limit: -1 }',
      options: { restartPolicy: { limit: -1 } },
      expect: /InvalidOptionError: options\.restartPolicy\.limit must be a non-negative integer, got -1 \(number\)/,
    },
    {
      name: 'restartPolicy: { bogus: 1 }',
      options: { restartPolicy: { bogus: 1 } },
      expect: /InvalidOptionError: options\.restartPolicy\.bogus is not a restart policy setting; use limit, windowMs/,
    },
    {
      name: 'secretKeys: "x"',
      options: { secretKeys: 'x' },
      expect: /InvalidOptionError: options\.secretKeys must be an array of option names, got "x" \(string\)/,
    },
    {
      name: 'framework: an npm name that is not installed',
      options: { framework: 'no-such-framework-xyz' },
      expect: /FrameworkError: no-such-framework-xyz is not found in \[.*\]: install it in the app \(npm i no-such-framework-xyz\) or set options\.framework to its absolute path/,
    },
    {
      name: 'framework: an absolute path that does not exist',
      options: { framework: '/abs/missing/path' },
      expect: /FrameworkError: \/abs\/missing\/path should exist: options\.framework points to a folder that is not there/,
    },
    {
      name: 'baseDir: a folder that does not exist',
      options: { baseDir: missingDir },
      expect: new RegExp(`InvalidOptionError: ${escape(path.join(missingDir, 'package.json'))} should exist: options\\.baseDir must be the root folder of an egg app`),
    },
  ];

  for (const c of cases) {
    test(c.name, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 1, port, ...c.options }));
      await assertFailedStart(run, c.expect);
      // nothing was started: no worker, not even the master's banner
      assert.deepEqual(run.workerPids, [], run.context());
      assert.doesNotMatch(run.stdout, /\[master\] =+ .* start =+/);
    });
  }
});

describe('bad environment variables: the same start error as a bad option (issue 8 item 7)', () => {
  // Before: the cluster started, then SIGTERM exited 1 without stopping a worker (the close
  // could not read its timeout), SIGUSR2 crashed the master, and a failed start hung.
  const MS = 'must be a whole number of milliseconds from 0 to 2147483647';
  const cases: Array<{ env: Record<string, string>; expect: RegExp }> = [
    { env: { EGG_APP_CLOSE_TIMEOUT: 'abc' }, expect: new RegExp(`InvalidOptionError: environment variable EGG_APP_CLOSE_TIMEOUT ${MS}, got "abc"\\. Set it to a number such as 5000, or unset it`) },
    { env: { EGG_AGENT_CLOSE_TIMEOUT: '-5' }, expect: new RegExp(`InvalidOptionError: environment variable EGG_AGENT_CLOSE_TIMEOUT ${MS}, got "-5"`) },
    { env: { EGG_MASTER_CLOSE_TIMEOUT: '5s' }, expect: new RegExp(`InvalidOptionError: environment variable EGG_MASTER_CLOSE_TIMEOUT ${MS}, got "5s"`) },
    { env: { GRACEFUL_TIMEOUT: '3000ms' }, expect: new RegExp(`InvalidOptionError: environment variable GRACEFUL_TIMEOUT ${MS}, got "3000ms"`) },
    // the master's own logger would print nothing at this level: the error still reaches stderr
    { env: { EGG_MASTER_LOGGER_LEVEL: 'verbose' }, expect: /InvalidOptionError: environment variable EGG_MASTER_LOGGER_LEVEL must be a log level: one of ALL, DEBUG, INFO, WARN, ERROR, NONE/ },
    { env: { EGG_APP_WORKER_LOGGER_LEVEL: 'warning' }, expect: /InvalidOptionError: environment variable EGG_APP_WORKER_LOGGER_LEVEL must be a log level/ },
  ];
  for (const c of cases) {
    const [[name, value]] = Object.entries(c.env) as [[string, string]];
    test(`${name}=${value}: exit 1, one clear message, no process started`, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 1, port }), { env: c.env });
      await assertFailedStart(run, c.expect);
      assert.deepEqual(run.workerPids, [], run.context());
      assert.doesNotMatch(run.stdout, /\[master\] =+ .* start =+/);
    });
  }

  test('the smallest and largest valid close timeouts: SIGUSR2 reloads, SIGTERM closes with exit 0', T, async () => {
    const port = await freePort();
    const env = { EGG_APP_CLOSE_TIMEOUT: '0', EGG_AGENT_CLOSE_TIMEOUT: '2147483647', GRACEFUL_TIMEOUT: '0' };
    const run = runCluster(fakeApp('basic', { workers: 1, port }), { env });
    await run.ready();
    const mark = run.mark('stdout');
    run.kill('SIGUSR2');
    await run.waitForOutput(/\[master\] reload done, 1 workers/, 15_000, { stream: 'stdout', since: mark });
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    await stopGracefully(run);
    assert.match(run.stdout, /\[master\] send kill SIGTERM to app workers, will exit with code:0 after 0ms/);
    assert.match(run.stdout, /\[master\] send kill SIGTERM to agent worker, will exit with code:0 after 2147483647ms/);
    assert.doesNotMatch(run.stderr, /InvalidOptionError|TimeoutOverflowWarning/, run.context());
  });
});

describe('options that JSON cannot carry to the workers (issue 8 item 8)', () => {
  const SCRIPT = path.join(appDir('o-unsendable'), 'start.js');
  const cases: Array<{ mode: string; env: Record<string, string>; expect: RegExp }> = [
    // production: the options banner is JSON.stringify'd; this was a TypeError thrown by new Master()
    { mode: 'bigint', env: { NODE_ENV: 'production' }, expect: /InvalidOptionError: options\.custom\.limit is a BigInt: options travel to the agent and the app workers as JSON, and JSON has no BigInt\. Pass it as a string or a number/ },
    { mode: 'bigint', env: {}, expect: /InvalidOptionError: options\.custom\.limit is a BigInt/ },
    { mode: 'cycle', env: { NODE_ENV: 'production' }, expect: /InvalidOptionError: options\.custom\.self is a circular reference \(it points back to options\.custom\)/ },
    { mode: 'cycle', env: {}, expect: /InvalidOptionError: options\.custom\.self is a circular reference \(it points back to options\.custom\): options travel to the agent and the app workers as JSON, which cannot hold a cycle/ },
  ];
  for (const c of cases) {
    test(`a ${c.mode === 'bigint' ? 'BigInt' : 'circular object'} (${c.env.NODE_ENV ?? 'no NODE_ENV'}): exit 1, one clear message, no process started`, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 1, port, oUnsendable: c.mode }), { env: c.env, script: SCRIPT });
      await assertFailedStart(run, c.expect);
      assert.deepEqual(run.workerPids, [], run.context());
      assert.doesNotMatch(run.stderr, /TypeError/, run.context());
    });
  }

  test('a function is dropped as in egg-cluster, with a warning that names it; the cluster serves', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('options-echo', { workers: 1, port, oUnsendable: 'function' }), { script: SCRIPT });
    await run.ready();
    assert.match(run.stdout, /WARN \d+ \[master\] options\.onReady \(function\): options travel to the agent and the app workers as JSON, which drops or changes this value/);
    const res = await httpGet(`http://127.0.0.1:${port}/options`);
    assert.equal(res.status, 200, res.body);
    const appOptions = res.json();
    assert.equal('onReady' in appOptions, false);
    assert.deepEqual(appOptions.plain, { kept: true });
    // the master-side settings resolved from the environment stay in the master
    assert.equal('closeTimeouts' in appOptions, false);
    await stopGracefully(run);
  });
});

describe('https key material given the wrong way (issue 7 §3)', () => {
  const httpsDir = appDir('https');
  const key = fs.readFileSync(path.join(httpsDir, 'server.key'), 'utf8');
  const cert = fs.readFileSync(path.join(httpsDir, 'server.crt'), 'utf8');
  // every 12-character slice of the base64 bodies: no part of the key or certificate may be printed
  const secrets = [key, cert].flatMap(pem => {
    const body = pem.split('\n').filter(l => l && !l.startsWith('-----')).join('');
    return Array.from({ length: body.length - 11 }, (_, i) => body.slice(i, i + 12));
  });
  const cases: Array<{ name: string; https: Record<string, unknown>; expect: RegExp }> = [
    { name: 'key as an array of PEM strings', https: { key: [key], cert },
      expect: /InvalidOptionError: options\.https\.key must be a file path, or the PEM content as one string or Buffer \(the private key\), got an array of 1 item \(not shown: it may hold key material\)\. Pass one private key/ },
    { name: 'cert as an array of PEM strings', https: { key, cert: [cert, cert] },
      expect: /InvalidOptionError: options\.https\.cert must be .*got an array of 2 items \(not shown: it may hold key material\)\. Pass a single certificate/ },
  ];
  for (const c of cases) {
    test(`${c.name}: exit 1, the option named, no key material printed`, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 1, port, https: c.https }), { env: { NODE_ENV: 'production' } });
      await assertFailedStart(run, c.expect);
      assert.deepEqual(run.workerPids, [], run.context());
      const leaked = secrets.find(s => run.output.includes(s));
      assert.equal(leaked, undefined, `key material printed: ${leaked}`);
    });
  }
});

describe('bad environment and broken apps: the master exits 1 after stopping its children', () => {
  test('pidFile in a folder that cannot be written (/proc): the message names the pidFile, no worker is started', T, async () => {
    const pidFile = '/proc/egg-clutch-it.pid';
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port, pidFile }));
    await assertFailedStart(run, new RegExp(
      `ClusterStartError: \\[master\\] cannot write pidFile ${escape(pidFile)}: .+; make its folder writable or choose another options\\.pidFile`,
    ));
    assert.deepEqual(run.agentPids, [], run.context());
    assert.deepEqual(run.appPids, [], run.context());
    assert.equal(fs.existsSync(pidFile), false);
  });

  const cases: Array<{ name: string; options: Record<string, unknown>; expect: RegExp; env?: Record<string, string>; noApps?: boolean }> = [
    {
      name: 'framework folder without Agent',
      options: { baseDir: appDir('basic'), framework: appDir('bad-framework-no-agent') },
      expect: new RegExp(`should define Agent in ${escape(appDir('bad-framework-no-agent'))}: the framework must export an Agent class`),
      noApps: true,
    },
    {
      name: 'require: an npm name that is not installed',
      options: fakeApp('basic', { require: ['no-such-module-xyz'] }),
      expect: new RegExp(`options\\.require "no-such-module-xyz" failed to load: cannot find it from ${escape(appDir('basic'))}; install it or give its absolute path`),
      noApps: true,
    },
    {
      name: 'the agent emits error before it is ready',
      options: fakeApp('bad-agent-emit-error'),
      expect: /Error: agent emitted boom/,
      noApps: true,
    },
    {
      name: 'an app worker emits error before it is ready',
      options: fakeApp('bad-app-emit-error'),
      expect: /Error: app emitted boom/,
    },
    {
      name: 'the agent never becomes ready (startTimeout)',
      options: fakeApp('bad-agent-never-ready', { startTimeout: 1500 }),
      expect: /the cluster did not start within 1500ms \(agent started: no, app workers listening: 0\/1\).*raise options\.startTimeout if startup is only slow/,
      noApps: true,
    },
  ];

  for (const c of cases) {
    test(c.name, T, async () => {
      const port = await freePort();
      const run = runCluster({ workers: 1, port, ...c.options }, { env: c.env });
      await assertFailedStart(run, c.expect);
      assert.equal(run.agentPids.length, 1, run.context());
      if (c.noApps) assert.deepEqual(run.appPids, [], run.context());
      // the master says that it gives up, once
      assert.equal(count(run.output, /\[master\] exit with code:1/), 1, run.context());
    });
  }
});

// `graceful` is egg-clutch's close message for threads: harmless to processes
const WORKER_SETS = ['shapes', 'internal', 'parent', 'receivers', 'listening', 'big', 'graceful'];

/** Waits for `n` more `hostile-done` markers. */
async function hostileDone(run: ClusterRun, n: number): Promise<Array<{ role: string; pid: number }>> {
  const done = [];
  for (let i = 0; i < n; i++) done.push((await run.waitForMessage('hostile-done', 10_000)).data);
  return done;
}

/**
 * The master's state is what it was: the same agent and app workers, nothing reforked, one
 * egg-ready, no *-worker-died at the parent, the agent knows the listening workers and each
 * worker the agent, no error logged; a rolling reload still sees its new workers listen on
 * the real port (so realport was not changed).
 */
async function assertUnchanged(run: ClusterRun, port: number, before: { agent: number; apps: number[] }): Promise<void> {
  assert.deepEqual(run.agentPids, [before.agent], run.context());
  assert.deepEqual(run.appPids, before.apps, run.context());
  for (const pid of [run.pid, before.agent, ...before.apps]) assert.ok(isAlive(pid), `${pid} alive`);
  assert.equal(run.messages.filter(m => m.action === 'egg-ready').length, 1, 'egg-ready reaches the parent once');
  assert.deepEqual(run.messages.filter(m => /worker-died/.test(m.action)), []);
  // the master logged no error at all (its lines carry its pid)
  assert.doesNotMatch(run.stderr, new RegExp(`uncaught|ERROR ${run.pid} `, 'i'), run.context());
  const base = `http://127.0.0.1:${port}`;
  const info = await httpGet(`${base}/agent-info`);
  assert.equal(info.status, 200, info.body);
  assert.equal(info.json().agentPid, before.agent);
  assert.deepEqual([...info.json().opids].map(Number).sort(), [...before.apps].sort());
  for (let i = 0; i < 2; i++) {
    const pids = await httpGet(`${base}/pids`);
    assert.equal(pids.status, 200, pids.body);
    assert.deepEqual(pids.json().pids, [before.agent]);
  }

  const mark = run.mark('stdout');
  run.send({ action: 'reload-worker' });
  await run.waitForOutput(new RegExp(`\\[master\\] reload done, ${before.apps.length} workers`), 15_000, { stream: 'stdout', since: mark });
  const fresh = run.appPids.slice(before.apps.length);
  assert.equal(fresh.length, before.apps.length, run.context());
  for (const pid of fresh) {
    assert.match(run.stdout.slice(mark), new RegExp(`\\[master\\] app_worker#\\d+:${pid} started at ${port}, `));
  }
  const res = await httpGet(`${base}/`);
  assert.equal(res.status, 200);
  assert.ok(fresh.includes(res.json().pid), `served by ${res.json().pid}, new workers are ${fresh.join(', ')}`);
}

async function startHostile(workers = 2, extra: Record<string, unknown> = {}): Promise<{ run: ClusterRun; port: number; before: { agent: number; apps: number[] } }> {
  const port = await freePort();
  const run = runCluster(fakeApp('bad-hostile', { workers, port, ...extra }));
  await run.ready();
  assert.equal(run.appPids.length, workers, run.context());
  return { run, port, before: { agent: run.agentPids[0]!, apps: [...run.appPids] } };
}

describe('hostile messages from a worker: the master neither crashes nor changes state', () => {
  test('malformed messages, internal actions, spoofed parent messages, unknown receivers, 5 MB payloads', T, async () => {
    const { run, port, before } = await startHostile();
    // app workers: everything but realport, which app workers legitimately send
    run.send({ to: 'app', action: 'hostile', data: { sets: WORKER_SETS } });
    // the agent: everything, including realport (only app workers may report the port)
    run.send({ to: 'agent', action: 'hostile', data: { sets: [...WORKER_SETS, 'realport'] } });
    const done = await hostileDone(run, 3);
    assert.deepEqual(done.map(d => d.role).sort(), ['agent', 'app', 'app']);
    // only the markers reached the parent: nothing spoofed, nothing echoed
    assert.deepEqual(run.messages.map(m => m.action), ['egg-ready', 'hostile-done', 'hostile-done', 'hostile-done']);
    await assertUnchanged(run, port, before);
    await stopGracefully(run);
  });

  test('realport from an app worker that already listens: later workers still start on the real port', T, async () => {
    const { run, port, before } = await startHostile(1);
    run.send({ to: 'app', action: 'hostile', data: { sets: ['realport'] } });
    await hostileDone(run, 1);
    await assertUnchanged(run, port, before);
    await stopGracefully(run);
  });

  test('a bad listening report from an app worker that is still starting', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('bad-hostile', { workers: 2, port }), { env: { HOSTILE_AT_BOOT: 'listening' } });
    await hostileDone(run, 2);
    await run.ready();
    assert.doesNotMatch(run.stderr, /uncaught|TypeError/i, run.context());
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    await stopGracefully(run);
  });

  test('5 MB messages between app, agent and parent go through, the cluster keeps serving', T, async () => {
    const { run, port, before } = await startHostile(1);
    const res = await httpGet(`http://127.0.0.1:${port}/big?mb=5`);
    assert.equal(res.status, 200, res.body);
    const fromApp = await run.waitForMessage('big-received');
    assert.deepEqual(fromApp.data, { from: before.apps[0], length: 5 * MB });
    run.send({ to: 'agent', action: 'big', data: { from: 'parent', text: 'p'.repeat(5 * MB) } });
    const fromParent = await run.waitForMessage('big-received');
    assert.deepEqual(fromParent.data, { from: 'parent', length: 5 * MB });
    run.send({ to: 'agent', action: 'big-back', data: { mb: 5 } });
    const back = await run.waitForMessage('big-back');
    assert.equal(back.data.length, 5 * MB);
    const again = await httpGet(`http://127.0.0.1:${port}/ping-agent`);
    assert.equal(again.json().agentPid, before.agent);
    await stopGracefully(run);
  });
});

describe('hostile messages from the parent: the master neither crashes nor changes state', () => {
  test('malformed messages, internal actions, spoofed master messages, unknown receivers', T, async () => {
    const { run, port, before } = await startHostile();
    const hostile: unknown[] = [
      'a bare string', 42, 0, true, null, [], [1, 2], {}, { action: '' }, { action: 42 }, { action: {} }, { to: 'master' },
      { action: 'x', to: 'nowhere' }, { action: 'x', to: 42 },
      { to: 'master', action: 'agent-exit', data: { code: 1, signal: null } },
      { to: 'master', action: 'app-exit', data: { workerId: before.apps[0] } },
      { to: 'master', action: 'app-start', data: { workerId: 1, address: { port: 1 } } },
      { to: 'master', action: 'agent-start' },
      { to: 'master', action: 'realport', data: { port: 1, protocol: 'https' } },
      { to: 'master', action: 'error', data: 'x' },
      { to: 'master', action: 'error' },
      { to: 'master', action: 'message' },
      { to: 'master', action: '__proto__' },
      { to: 'master', action: 'egg-clutch:listening', data: null },
      { to: 'app', action: 'x', receiverPid: '1' },
      { to: 'app', action: 'x', receiverPid: '999999' },
      { action: 'x', receiverWorkerId: {} },
      { action: 'agent-exit', receiverPid: String(run.pid) },
      { action: 'realport', receiverPid: String(run.pid), data: { port: 2 } },
      { to: 'parent', action: 'egg-ready', data: { port: 1 } },
      { to: 'parent', action: 'app-worker-died' },
      { to: 'parent', action: 'agent-worker-died', from: 'master' },
      { to: 'app', action: 'egg-clutch:options', data: null },
      { to: 'agent', action: 'egg-clutch:options', data: { baseDir: '/nope' } },
      { to: 'app', action: 'egg-clutch:listening', data: { port: 1 } },
    ];
    for (const msg of hostile) run.child.send(msg as object);
    // the master handles its parent channel in order: once the echo is back, all of the above went through
    run.send({ to: 'agent', action: 'echo', data: { id: 'after-hostile' } });
    const echo = await run.waitForMessage('echo');
    assert.deepEqual(echo.data, { id: 'after-hostile' });
    assert.deepEqual(run.messages.map(m => m.action), ['egg-ready', 'echo']);
    await assertUnchanged(run, port, before);

    // the reload replaced the workers: their pids are dead receivers now, and nobody else
    // gets what is sent to them
    const dead = before.apps;
    await assertGone(dead, 5000);
    const live = run.appPids.slice(dead.length);
    const since = run.mark('stdout');
    for (const pid of dead) {
      run.send({ to: 'app', action: 'hostile-ping', receiverPid: String(pid), data: { tag: 'dead' } });
      run.send({ action: 'hostile-ping', receiverWorkerId: String(pid), data: { tag: 'dead' } });
    }
    for (const pid of live) run.send({ to: 'app', action: 'hostile-ping', receiverPid: String(pid), data: { tag: 'live' } });
    for (const pid of live) await run.waitForOutput(new RegExp(`\\[bad-hostile\\] app ${pid} pong live`), 10_000, { stream: 'stdout', since });
    assert.doesNotMatch(run.stdout.slice(since), /pong dead/);
    await stopGracefully(run);
  });
});

describe('worker_threads: hostile messages between threads', () => {
  /** As threads.test.ts: the fake framework's messenger in a thread, pid tracking pinned to the master. */
  const THREADS_PRELOAD = path.join(FIXTURES, 'start', 'threads_fake_egg.js');
  function runThreads(options: Record<string, unknown>): ClusterRun {
    const run = runCluster({ startMode: 'worker_threads', require: [THREADS_PRELOAD], ...options }, {
      env: { EGG_APP_WORKER_LOGGER_LEVEL: 'INFO', EGG_AGENT_WORKER_LOGGER_LEVEL: 'INFO' },
    });
    const pids = run.pids;
    pids.add = (pid: number) => (pid === run.pid ? Set.prototype.add.call(pids, pid) as Set<number> : pids);
    return run;
  }

  test('the thread close message sent by a worker closes no thread', T, async () => {
    const p1 = await freePort();
    let p2 = await freePort();
    while (p2 === p1) p2 = await freePort();
    const run = runThreads(fakeApp('bad-hostile', { ports: [p1, p2] }));
    await run.ready();
    const closing = /receive graceful-exit from the master/;
    let since = run.mark('stdout');
    // the agent sends the close message to the app threads and to itself, then `hostile-ping` to the apps
    run.send({ to: 'agent', action: 'hostile', data: { sets: ['graceful', 'ping-apps'] } });
    await hostileDone(run, 1);
    for (let i = 0; i < 2; i++) {
      const m = await run.waitForOutput(/receive graceful-exit from the master|\[bad-hostile\] app \d+ pong ping-apps/, 10_000, { stream: 'stdout', since });
      assert.doesNotMatch(m[0], closing, run.context());
      since += m.index + m[0].length;
    }
    run.send({ to: 'agent', action: 'echo', data: { id: 'after-graceful' } });
    const echo = await run.waitForOutput(/receive graceful-exit from the master|\[bad-hostile\] agent \d+ echo after-graceful/, 10_000, { stream: 'stdout', since });
    assert.doesNotMatch(echo[0], closing, run.context());
    for (const port of [p1, p2]) assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    assert.deepEqual(run.messages.filter(m => /worker-died/.test(m.action)), []);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.context());
    await run.waitForClose(5000);
  });
});
