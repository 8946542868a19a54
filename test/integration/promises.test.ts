/**
 * README promises that the other integration suites do not prove yet, with real processes:
 *   - https with the key material given inline (Buffers; PEM strings with a passphrase and a
 *     `secretKeys` option): served over TLS, and the secrets reach the workers over IPC only:
 *     never a worker's command line, environment, a log line or an `egg-ready` payload;
 *   - `reusePort` where Node has no listen({ reusePort }) (Node 20): a warning on stdout, a
 *     normal listen, nothing on stderr;
 *   - sticky mode after a worker dies: only the dead worker's clients move, and they come
 *     back to its replacement; EADDRINUSE on the sticky port is a clear start error;
 *   - crash loops after launch: reforks back off (now, base, 2·base … max) while the healthy
 *     worker serves every request and the process count stays bounded;
 *   - children of workers (not detached) are ended at close, by SIGKILL after the close
 *     timeout when they ignore SIGTERM;
 *   - isDebug (`--inspect`): the parent learns the inspector port of the agent and of every
 *     app worker (egg-bin debug).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fork } from 'node:child_process';
import { describe, test } from 'node:test';
import {
  FIXTURES, ROOT, START_SCRIPT, appDir, assertGone, fakeApp, freePort, httpGet, isAlive, readCmdline, runCluster,
  useLeakGuard, type ClusterRun, type IpcMessage,
} from '../helpers/run_cluster.js';
import { reusePortSupport } from '../../src/worker/app_server.js';

useLeakGuard();

const T = { timeout: 30_000 };

async function stopGracefully(run: ClusterRun, timeoutMs = 15_000): Promise<void> {
  run.kill('SIGTERM');
  const exit = await run.waitForExit(timeoutMs);
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 2000);
}

/**
 * Sequential GETs on fresh connections until stopped (or at most `maxMs`, a backstop so a
 * failed test cannot leave the loop running); every outcome is recorded.
 */
function keepRequesting(url: string, maxMs = 30_000): { stop: () => Promise<{ ok: number; failures: string[]; pids: Set<number> }> } {
  let running = true;
  const started = Date.now();
  const deadline = started + maxMs;
  const failures: string[] = [];
  const pids = new Set<number>();
  let ok = 0;
  const loop = (async () => {
    while (running && Date.now() < deadline) {
      const at = `request sent at +${Date.now() - started}ms`;
      try {
        const res = await httpGet(url, { timeoutMs: 3000 });
        if (res.status === 200) {
          ok++;
          pids.add(res.json().pid);
        } else {
          failures.push(`${at}: HTTP ${res.status}: ${res.body}`);
        }
      } catch (err) {
        failures.push(`${at}: ${(err as Error).message}`);
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

/** The egg-logger timestamp of a log line (`YYYY-MM-DD HH:mm:ss,SSS`) in ms; local time, for differences only. */
function logTime(stamp: string): number {
  const [date, time] = stamp.split(' ') as [string, string];
  return Date.parse(`${date}T${time.replace(',', '.')}`);
}

/** Pids of the live children of `ppid` whose command line contains `needle` (from /proc). */
function childrenOf(ppid: number, needle: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== ppid || fields[0] === 'Z') continue;
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // gone while we read
    }
  }
  return found;
}

/** Polls `check` every 20 ms (a file or a process state) until it is true; rejects at the deadline. */
async function waitFor(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

function parentPid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

// ---------------------------------------------------------------------------------------
// https with inline key material
// ---------------------------------------------------------------------------------------

const HTTPS_DIR = appDir('https');
const KEY_TEXT = fs.readFileSync(path.join(HTTPS_DIR, 'server.key'), 'utf8');
const CERT = fs.readFileSync(path.join(HTTPS_DIR, 'server.crt'));
/** Defined in test/fixtures/start/p_https_buffers.js (not on the master's argv). */
const SECRET = 'hunter2-secret';
const KEY_BODY_LINES = KEY_TEXT.split('\n').filter(line => line && !line.startsWith('-----'));

/**
 * Every 40-character run of the key: of its base64 body (as in the PEM text), and of the
 * base64 of the whole file (how a Buffer would travel as text).
 */
const KEY_RUNS: string[] = (() => {
  const runs = new Set<string>();
  for (const text of [KEY_BODY_LINES.join(''), Buffer.from(KEY_TEXT).toString('base64')]) {
    for (let i = 0; i + 40 <= text.length; i++) runs.add(text.slice(i, i + 40));
  }
  return [...runs];
})();

/** What a leak of the key, the cert or the secret would look like in `text`. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (const marker of ['BEGIN', 'PRIVATE KEY', SECRET, '"type":"Buffer"', '__eggClutchBuffer']) {
    if (text.includes(marker)) found.push(marker);
  }
  const run = KEY_RUNS.find(r => text.includes(r));
  if (run) found.push(`key material ${run}`);
  return found;
}

describe('https with inline key material: served over TLS, the secrets reach the workers over IPC only', () => {
  const script = path.join(FIXTURES, 'start', 'p_https_buffers.js');
  const variants = [
    { mode: 'buffer', title: 'key and cert as Buffers' },
    { mode: 'string', title: 'key and cert as PEM strings, a passphrase, secretKeys: ["mySecret"]' },
  ] as const;
  for (const { mode, title } of variants) {
    test(title, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('p-secrets', { workers: 2, port, pHttpsInline: mode }), { script });
      const ready = await run.ready();
      assert.equal(ready.data.protocol, 'https');
      assert.equal(ready.data.address, `https://127.0.0.1:${port}`);
      assert.equal(run.stderr, '', 'stderr must stay empty during a normal startup');
      assert.equal(run.appPids.length, 2, run.context());

      const base = `https://127.0.0.1:${port}`;
      const home = await httpGet(`${base}/secure`, { ca: CERT });
      assert.equal(home.status, 200, home.body);
      assert.equal(home.json().encrypted, true);
      assert.ok(run.appPids.includes(home.json().pid), home.body);

      // the workers got the material itself (Buffers stay Buffers), over IPC
      const options = (await httpGet(`${base}/options`, { ca: CERT })).json();
      const agent = await httpGet(`${base}/agent`, { ca: CERT });
      assert.equal(agent.status, 200, agent.body);
      const agentOptions = agent.json().options;
      for (const [who, received] of [['app', options], ['agent', agentOptions]] as const) {
        if (mode === 'buffer') {
          assert.equal(received.https.key.type, 'Buffer', `${who}: https.key arrived as a Buffer`);
          assert.equal(Buffer.from(received.https.key.data).toString('utf8'), KEY_TEXT, `${who}: https.key`);
          assert.equal(Buffer.from(received.https.cert.data).toString('utf8'), CERT.toString('utf8'), `${who}: https.cert`);
        } else {
          assert.equal(received.https.key, KEY_TEXT, `${who}: https.key`);
          assert.equal(received.https.passphrase, SECRET, `${who}: https.passphrase`);
          assert.equal(received.mySecret, SECRET, `${who}: mySecret`);
        }
      }

      // the egg-ready payload the workers got is redacted
      const eggReady = (await httpGet(`${base}/egg-ready`, { ca: CERT })).json();
      assert.equal(eggReady.eggReady, true);
      for (const [who, payload] of [['app', eggReady.data], ['agent', agent.json().data]] as const) {
        assert.equal(payload.https.key, '[redacted]', `${who} egg-ready https.key`);
        assert.equal(payload.https.cert, '[redacted]', `${who} egg-ready https.cert`);
        if (mode === 'string') {
          assert.equal(payload.https.passphrase, '[redacted]', `${who} egg-ready https.passphrase`);
          assert.equal(payload.mySecret, '[redacted]', `${who} egg-ready mySecret`);
        }
        assert.deepEqual(leaks(JSON.stringify(payload)), [], `${who} egg-ready payload`);
      }

      // no command line and no environment of the cluster carries them (egg-scripts and `ps` show both)
      const pids = [run.pid, ...run.agentPids, ...run.appPids];
      assert.equal(pids.length, 4);
      for (const pid of pids) {
        const cmdline = readCmdline(pid).join(' ');
        assert.deepEqual(leaks(cmdline), [], `command line of ${pid}: ${cmdline}`);
        assert.deepEqual(leaks(fs.readFileSync(`/proc/${pid}/environ`, 'utf8')), [], `environment of ${pid}`);
      }

      // nor the master's output, nor what the parent was sent
      await stopGracefully(run);
      await run.waitForClose(5000);
      assert.deepEqual(leaks(run.output), [], run.context());
      for (const line of KEY_BODY_LINES) assert.ok(!run.output.includes(line), `key line ${line} in the output`);
      assert.deepEqual(leaks(JSON.stringify(run.messages)), []);
      const optionsLine = run.stdout.split('\n').find(l => l.includes('[master] start with options:'));
      assert.ok(optionsLine, run.context());
      assert.ok(optionsLine.includes('"key":"[redacted]"') && optionsLine.includes('"cert":"[redacted]"'), optionsLine);
      if (mode === 'string') {
        assert.ok(optionsLine.includes('"passphrase":"[redacted]"'), optionsLine);
        assert.ok(optionsLine.includes('"mySecret":"[redacted]"'), optionsLine);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------
// reusePort where Node has no listen({ reusePort })
// ---------------------------------------------------------------------------------------

describe('reusePort', () => {
  const unavailable = reusePortSupport(process.version, process.platform);
  test('without SO_REUSEPORT support in Node: a warning on stdout, a normal listen, an empty stderr', {
    ...T,
    skip: unavailable ? false : `Node ${process.version} on ${process.platform} supports listen({ reusePort })`,
  }, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port, reusePort: true }));
    const ready = await run.ready();
    assert.equal(ready.data.port, port);
    // egg-scripts --daemon treats any byte on stderr during startup as a failed start
    assert.equal(run.stderr, '', 'stderr must stay empty during startup');
    const warning = `[app_worker] reusePort is not available (${unavailable}); listening without it`;
    for (const pid of run.appPids) {
      assert.ok(run.stdout.split('\n').some(l => l.includes(` WARN ${pid} `) && l.endsWith(warning)),
        `no warning "${warning}" from app worker ${pid} on stdout\n${run.context()}`);
    }
    const seen = new Set<number>();
    for (let i = 0; i < 10 && seen.size < 2; i++) {
      const res = await httpGet(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 200);
      seen.add(res.json().pid);
    }
    assert.deepEqual([...seen].sort(), [...run.appPids].sort(), 'both workers serve the shared port');
    await stopGracefully(run);
    assert.equal(run.stderr, '', run.context());
  });
});

// ---------------------------------------------------------------------------------------
// sticky mode: a worker dies
// ---------------------------------------------------------------------------------------

describe('sticky mode: a worker dies, a port in use', () => {
  const IPS = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

  test('only the dead worker\'s clients move, no request fails, and they come back to its replacement', T, async t => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 3, port, sticky: true, env: 'prod' }));
    await run.ready();
    const url = `http://127.0.0.1:${port}/`;
    const serve = async (ip: string): Promise<number> => {
      const res = await httpGet(url, { localAddress: ip, timeoutMs: 3000 });
      assert.equal(res.status, 200, res.body);
      return res.json().pid;
    };
    const before = new Map<string, number>();
    for (const ip of IPS) {
      const pid = await serve(ip);
      assert.equal(await serve(ip), pid, `${ip} is sticky`);
      assert.ok(run.appPids.includes(pid));
      before.set(ip, pid);
    }
    const victim = before.get(IPS[0]!)!;
    const moved = IPS.filter(ip => before.get(ip) === victim);
    const stayed = IPS.filter(ip => before.get(ip) !== victim);
    t.diagnostic(`before: ${JSON.stringify([...before])}; killing ${victim} (${moved.length} clients)`);

    process.kill(victim, 'SIGKILL');
    await run.waitForMessage('app-worker-died');
    // while it is reforked: every client is served; the others stay where they were
    const failures: string[] = [];
    const wrong: string[] = [];
    const during = new Map<string, Set<number>>();
    let rounds = 0;
    const started = /\[master\] app_worker#4:(\d+) started at/;
    while (!started.test(run.output) && rounds < 2000) {
      rounds++;
      for (const ip of IPS) {
        try {
          const pid = await serve(ip);
          if (pid === victim) wrong.push(`${ip} was sent to the dead worker`);
          if (stayed.includes(ip) && pid !== before.get(ip)) wrong.push(`${ip} moved from ${before.get(ip)} to ${pid}`);
          if (!during.has(ip)) during.set(ip, new Set());
          during.get(ip)!.add(pid);
        } catch (err) {
          failures.push(`${ip}: ${(err as Error).message}`);
        }
      }
    }
    const replacement = Number((await run.waitForOutput(started, 10_000))[1]);
    t.diagnostic(`${rounds} rounds of ${IPS.length} clients while app_worker#4 (${replacement}) started; `
      + `the moved clients went to ${JSON.stringify(moved.map(ip => [ip, [...(during.get(ip) ?? [])]]))}`);
    assert.ok(rounds >= 1, 'requests were sent while the replacement booted');
    assert.deepEqual(failures, []);
    assert.deepEqual(wrong, []);
    assert.equal(run.appPids[3], replacement, run.context());

    // the replacement takes the dead worker's slot: its clients come back, to it alone
    for (const ip of IPS) {
      for (let i = 0; i < 2; i++) {
        const pid = await serve(ip);
        if (moved.includes(ip)) assert.equal(pid, replacement, `${ip} (was on the dead ${victim}) is served by the replacement`);
        else assert.equal(pid, before.get(ip), `${ip} stays on ${before.get(ip)}`);
      }
    }
    assert.ok(isAlive(run.pid), 'the master is alive');
    assert.doesNotMatch(run.output, /uncaught|TypeError|RangeError/i, run.context());
    await stopGracefully(run);
  });

  for (const env of [undefined, 'prod']) {
    test(`the sticky port is in use (env ${env ?? 'default'}): exit 1 with a message naming the port, no refork, no process left`, T, async () => {
      const port = await freePort();
      const blocker = net.createServer();
      await new Promise<void>(resolve => blocker.listen(port, resolve));
      try {
        const run = runCluster(fakeApp('basic', { workers: 2, port, sticky: true, env }));
        const exit = await run.waitForExit(15_000);
        assert.deepEqual(exit, { code: 1, signal: null }, run.context());
        await run.waitForClose(5000);
        assert.match(run.stderr, new RegExp(`sticky server cannot listen on ${port}: port ${port} is in use by another process; `
          + 'stop it or choose another options\\.port'));
        assert.equal(run.messages.some(m => m.action === 'egg-ready'), false, JSON.stringify(run.messages));
        assert.doesNotMatch(run.stdout, /started on/);
        assert.equal(run.appPids.length, 2, 'the app workers had started on the private port; none was reforked when stopped');
        assert.doesNotMatch(run.output, /refork (now|in)|new worker:\d+ fork/);
        await assertGone(run.pids, 1000);
      } finally {
        await new Promise(resolve => blocker.close(resolve));
      }
    });
  }
});

// ---------------------------------------------------------------------------------------
// crash loops after launch
// ---------------------------------------------------------------------------------------

/**
 * `[master] app_worker#N:PID exit (code: …, signal: …), refork …`, or `… disconnected, refork …`
 * when the IPC channel closed before the exit was seen (the master replaces on whichever comes first).
 */
const EXIT_LINE = /^(\S+ \S+) INFO \d+ \[master\] app_worker#(\d+):(\d+) (?:exit \(code: (\S+), signal: (\S+)\)|disconnected), refork (?:now|in (\d+)ms \((\d+) quick deaths in a row\))$/gm;
/** `AppWorkerDiedError: [master] app_worker#N:PID died (code: …, signal: …` */
const DIED_LINE = /app_worker#(\d+):\d+ died \(code: (\S+), signal: (\S+),/g;
/** `[master] app_worker#N:PID start, state: …` (the master, when a worker is forked). */
const FORK_LINE = /^(\S+ \S+) INFO \d+ \[master\] app_worker#(\d+):(\d+) start, state:/gm;

describe('crash loops: reforks back off, the healthy worker serves, nothing spins', () => {
  test('a refork that dies after it listens: now, 200, 400, 800, 1000, 1000 ms; zero failed requests; SIGTERM ends it', T, async t => {
    const port = await freePort();
    const run = runCluster(fakeApp('p-crash-loop', {
      workers: 2, port, env: 'prod', restartPolicy: { baseDelayMs: 200, maxDelayMs: 1000 },
    }));
    await run.ready();
    const [victim, survivor] = run.appPids as [number, number];
    let maxLive = 0;
    let maxChildren = 0;
    const sample = (): void => {
      maxLive = Math.max(maxLive, run.appPids.filter(isAlive).length);
      maxChildren = Math.max(maxChildren, childrenOf(run.pid, 'app_worker.js').length);
    };
    sample();
    const sampler = setInterval(sample, 20);
    let traffic: ReturnType<typeof keepRequesting> | undefined;
    let results: Awaited<ReturnType<ReturnType<typeof keepRequesting>['stop']>> | undefined;
    try {
      process.kill(victim, 'SIGKILL');
      // a request in flight on the SIGKILLed worker may be lost (node:cluster handed it over):
      // the traffic starts once the master has seen that death
      await run.waitForOutput(/\[master\] app_worker#1:\d+ (?:exit \(code: null, signal: SIGKILL\)|disconnected), refork now/, 5000);
      traffic = keepRequesting(`http://127.0.0.1:${port}/`);
      // then the reforks #3 … #7 die one after the other
      await run.waitForOutput(/\[master\] app_worker#7:\d+ (?:exit \(code: 1, signal: null\)|disconnected), refork in/, 15_000);
      // replaced on 'disconnect', its exit (and its died line) may come a moment later: a
      // SIGTERM before it would make that exit an expected one of the close
      await run.waitForOutput(/app_worker#7:\d+ died \(code: 1, signal: null,/, 5000, { stream: 'stderr' });
    } finally {
      clearInterval(sampler);
      results = await traffic?.stop();
    }
    assert.ok(results);
    const sigtermAt = run.mark();
    run.kill('SIGTERM');
    const exit = await run.waitForExit(15_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    await run.waitForClose(5000);

    const exits = [...run.stdout.matchAll(EXIT_LINE)];
    const forks = [...run.stdout.matchAll(FORK_LINE)];
    t.diagnostic(exits.map(m => m[0].slice(m[0].indexOf('[master]'))).join('\n'));
    t.diagnostic(`${results.ok} requests served by ${JSON.stringify([...results.pids])}, ${results.failures.length} failed; `
      + `at most ${maxLive} live app workers (${maxChildren} app_worker children of the master)`);
    assert.deepEqual(exits.map(m => Number(m[2])), [1, 3, 4, 5, 6, 7], run.context());
    const died = new Map([...run.stderr.matchAll(DIED_LINE)].map(m => [Number(m[1]), [m[2], m[3]]]));
    assert.deepEqual(exits.map(m => died.get(Number(m[2]))), [['null', 'SIGKILL'], ...Array.from({ length: 5 }, () => ['1', 'null'])]);
    assert.deepEqual(exits.map(m => (m[6] === undefined ? 'now' : Number(m[6]))), ['now', 200, 400, 800, 1000, 1000]);
    assert.deepEqual(exits.slice(1).map(m => Number(m[7])), [2, 3, 4, 5, 6], 'quick deaths in a row');

    // each refork really waited its delay (the log timestamps: ms resolution)
    for (const m of exits) {
      const id = Number(m[2]);
      const next = forks.find(f => Number(f[2]) === (id === 1 ? 3 : id + 1));
      if (id === 7) {
        assert.equal(next, undefined, 'SIGTERM cancels the pending refork');
        continue;
      }
      assert.ok(next, `no fork after ${m[0]}`);
      const gap = logTime(next[1]!) - logTime(m[1]!);
      const delay = m[6] === undefined ? 0 : Number(m[6]);
      assert.ok(gap >= delay - 2 && gap < delay + 1000, `app_worker#${next[2]} forked ${gap}ms after ${m[0]}`);
    }
    assert.doesNotMatch(run.output.slice(sigtermAt), /app_worker#8:/);
    assert.doesNotMatch(run.output, /budget used up/);

    // the healthy worker served through it all, and nothing spun
    assert.deepEqual(results.failures, [], `requests failed (${results.ok} succeeded)`);
    assert.ok(results.ok > 20, `${results.ok} requests`);
    assert.ok(results.pids.has(survivor), 'the survivor served');
    const reforks = run.appPids.slice(2);
    assert.ok(reforks.some(pid => results.pids.has(pid)), 'requests reached the crashing reforks too (round robin)');
    for (const pid of results.pids) assert.ok(run.appPids.includes(pid) && pid !== victim, `served by ${pid}`);
    assert.ok(maxLive <= 3, `${maxLive} live app workers at once (workers: 2)`);
    assert.ok(maxChildren <= 3, `${maxChildren} app_worker children of the master at once (workers: 2)`);
    await assertGone(run.pids, 1000);
  });

  test('a refork that dies at boot, before it listens, is reforked too (with backoff)', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('p-crash-loop', {
      workers: 2, port, env: 'prod', restartPolicy: { baseDelayMs: 200, maxDelayMs: 1000 },
    }), { env: { P_CRASH_AT: 'boot' } });
    await run.ready();
    process.kill(run.appPids[0]!, 'SIGKILL');
    await run.waitForOutput(/\[p-crash-loop\] refork \d+ crashing at boot/);
    await run.waitForOutput(/\[master\] app_worker#3:\d+ died/, 5000);
    // README, Crash loops: "Nothing is given up for good": the slot gets a new worker after the backoff
    await run.waitForOutput(/\[master\] app_worker#3:\d+ (?:exit \(code: 1, signal: null\)|disconnected), refork in 200ms/, 3000);
    await run.waitForOutput(/\[master\] app_worker#4:\d+ start\b/, 3000);
    await stopGracefully(run);
  });
});

// ---------------------------------------------------------------------------------------
// children of workers
// ---------------------------------------------------------------------------------------

describe('children of the workers are ended at close', () => {
  for (const ignore of [false, true]) {
    const title = ignore
      ? 'grandchildren that ignore SIGTERM are SIGKILLed at the close timeout (1500 ms)'
      : 'SIGTERM: the agent\'s and the app worker\'s grandchildren get SIGTERM and are gone';
    test(title, T, async t => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-it-spawner-'));
      const marker = path.join(dir, 'signals.log');
      try {
        const port = await freePort();
        const env: Record<string, string> = { P_SPAWNER_MARKER: marker, P_SPAWNER_GUARD_PID: String(process.pid) };
        if (ignore) Object.assign(env, { P_SPAWNER_IGNORE_SIGTERM: '1', EGG_APP_CLOSE_TIMEOUT: '1500', EGG_AGENT_CLOSE_TIMEOUT: '1500' });
        const run = runCluster(fakeApp('p-spawner', { workers: 1, port }), { env });
        await run.ready();
        const agentLine = await run.waitForOutput(/\[p-spawner\] agent (\d+) spawned (\d+)/);
        const appLine = await run.waitForOutput(/\[p-spawner\] app (\d+) spawned (\d+)/);
        const agentChild = run.track(Number(agentLine[2]));
        const appChild = run.track(Number(appLine[2]));
        assert.equal(Number(agentLine[1]), run.agentPids[0]);
        assert.equal(Number(appLine[1]), run.appPids[0]);
        const res = await httpGet(`http://127.0.0.1:${port}/`);
        assert.equal(res.json().child, appChild);
        assert.equal(parentPid(agentChild), run.agentPids[0], 'the agent\'s child');
        assert.equal(parentPid(appChild), run.appPids[0], 'the app worker\'s child');
        assert.ok(isAlive(agentChild) && isAlive(appChild));
        // their SIGTERM handlers are installed (a node process still booting dies of SIGTERM at once)
        await waitFor(`${agentChild} ready and ${appChild} ready in ${marker}`, 5000, () => {
          const lines = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').split('\n') : [];
          return lines.includes(`${agentChild} ready`) && lines.includes(`${appChild} ready`);
        });

        const start = Date.now();
        run.kill('SIGTERM');
        const appChildGone = assertGone([appChild], 10_000).then(() => Date.now() - start);
        const agentChildGone = assertGone([agentChild], 10_000).then(() => Date.now() - start);
        const exit = await run.waitForExit(15_000);
        const took = Date.now() - start;
        assert.deepEqual(exit, { code: 0, signal: null }, run.context());
        const [appMs, agentMs] = await Promise.all([appChildGone, agentChildGone]);
        t.diagnostic(`master exited after ${took}ms; app worker's child gone after ${appMs}ms, agent's after ${agentMs}ms`);
        const signals = fs.readFileSync(marker, 'utf8');
        const suffix = ignore ? ' SIGTERM ignored' : ' SIGTERM';
        for (const pid of [appChild, agentChild]) {
          assert.ok(signals.split('\n').includes(`${pid}${suffix}`), `${pid} got SIGTERM first: ${JSON.stringify(signals)}`);
        }
        if (ignore) {
          // app phase: SIGKILL at its 1500 ms deadline; then the agent phase, another 1500 ms
          assert.ok(appMs >= 1400 && appMs < 3500, `the app worker's child was killed after ${appMs}ms`);
          assert.ok(agentMs >= 2800 && agentMs < 6000, `the agent's child was killed after ${agentMs}ms`);
        } else {
          assert.ok(appMs < 2000 && agentMs < 2000, `children gone after ${appMs} / ${agentMs}ms`);
        }
        await assertGone(run.pids, 2000);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------
// isDebug
// ---------------------------------------------------------------------------------------

describe('isDebug: a master started with --inspect', () => {
  test('the parent gets {action: "debug"} for the agent and each app worker, with their pid and inspector port', T, async t => {
    const port = await freePort();
    let agentDebugPort = await freePort();
    while (agentDebugPort === port) agentDebugPort = await freePort();
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (key.startsWith('EGG_') || key === 'NODE_ENV' || key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS') continue;
      env[key] = value;
    }
    env.EGG_AGENT_DEBUG_PORT = String(agentDebugPort);
    // run_cluster forks with execArgv: [] (no isDebug): this test forks the master itself.
    // Port 0: the master's inspector on a free port; node:cluster gives app workers the next ones.
    const child = fork(START_SCRIPT, [JSON.stringify(fakeApp('basic', { workers: 2, port }))], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env, cwd: ROOT, execArgv: ['--inspect=127.0.0.1:0'],
    });
    let output = '';
    const messages: IpcMessage[] = [];
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
    child.on('error', () => {});
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no egg-ready within 15 s\n${output}`)), 15_000);
      child.on('message', (msg: IpcMessage) => {
        messages.push(msg);
        if (msg.action === 'egg-ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(info => {
        clearTimeout(timer);
        reject(new Error(`master exited ${JSON.stringify(info)} before egg-ready\n${output}`));
      });
    });
    const pids = (): number[] => [child.pid!, ...[...output.matchAll(/\b(?:agent|app)_worker#\d+:(\d+) start\b/g)].map(m => Number(m[1]))];
    try {
      await ready;
      const agentPid = Number(/\bagent_worker#1:(\d+) start\b/.exec(output)?.[1]);
      const appPids = [...output.matchAll(/\bapp_worker#\d+:(\d+) start\b/g)].map(m => Number(m[1]));
      assert.equal(appPids.length, 2, output);
      const debug = messages.filter(m => m.action === 'debug');
      t.diagnostic(JSON.stringify(debug));
      const agentMsgs = debug.filter(m => m.from === 'agent');
      const appMsgs = debug.filter(m => m.from === 'app');
      assert.equal(debug.length, 3, JSON.stringify(messages));
      assert.equal(agentMsgs.length, 1);
      assert.deepEqual(agentMsgs[0]!.data, { debugPort: agentDebugPort, pid: agentPid, workerId: agentPid });
      assert.deepEqual(appMsgs.map(m => m.data.pid).sort(), [...appPids].sort());
      assert.ok(messages.indexOf(debug.at(-1)!) < messages.findIndex(m => m.action === 'egg-ready'), 'before egg-ready');
      // each reported port is the one the worker was started with (its last --inspect-port)
      for (const m of [...agentMsgs, ...appMsgs]) {
        const argv = readCmdline(m.data.pid as number);
        const inspectPort = argv.filter(a => a.startsWith('--inspect-port=')).at(-1);
        assert.equal(inspectPort, `--inspect-port=${m.data.debugPort}`, `argv of ${m.data.pid}: ${JSON.stringify(argv)}`);
        assert.equal(m.data.workerId, m.data.pid);
      }
      assert.notEqual(appMsgs[0]!.data.debugPort, appMsgs[1]!.data.debugPort);
      // and the agent's inspector really listens there
      const list = await httpGet(`http://127.0.0.1:${agentDebugPort}/json/list`);
      assert.equal(list.status, 200, list.body);
      assert.ok(list.json<Array<{ url: string }>>().some(target => target.url.endsWith('/agent_worker.js')), list.body);

      child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 0, signal: null }, output);
      await assertGone(pids(), 3000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const pid of pids()) {
        if (pid === child.pid || !isAlive(pid)) continue;
        try {
          // only a process running this package (a pid read from a log line could be reused)
          if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(ROOT)) continue;
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
});

describe('custom worker entries (options.agentWorkerFile / appWorkerFile)', () => {
  test('the master forks the given entries; they run egg-clutch\'s entry and the cluster serves', T, async () => {
    const port = await freePort();
    const entries = path.join(FIXTURES, 'custom-entry');
    const run = runCluster(fakeApp('basic', {
      workers: 2, port,
      agentWorkerFile: path.join(entries, 'agent_entry.js'),
      appWorkerFile: path.join(entries, 'app_entry.js'),
    }));
    await run.ready();
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    assert.equal(run.stdout.match(/\[custom-entry\] agent \d+/g)?.length, 1, run.context());
    assert.equal(run.stdout.match(/\[custom-entry\] app \d+/g)?.length, 2, run.context());
    for (const pid of [...run.agentPids, ...run.appPids]) {
      assert.match(readCmdline(pid).join(' '), /custom-entry\/(agent|app)_entry\.js/);
    }
    run.kill('SIGTERM');
    assert.equal((await run.waitForExit(15_000)).code, 0);
  });

  test('an entry that does not exist is a clear option error before anything is forked', T, async () => {
    const run = runCluster(fakeApp('basic', { workers: 1, appWorkerFile: './no-such-entry.js' }));
    const exit = await run.waitForExit(10_000);
    assert.equal(exit.code, 1, run.context());
    assert.match(run.stderr, /options\.appWorkerFile ".*no-such-entry\.js" does not exist/);
    assert.deepEqual(run.agentPids, []);
  });
});

describe('orphans: the master is SIGKILLed while the agent\'s close would be slow', () => {
  test('the agent does not wait for a slow agent.close(): it exits 110 within 1.5 s of losing its master', T, async t => {
    const port = await freePort();
    // agent.close() would take 10 s and the agent's own close budget would allow 19.5 s
    const run = runCluster(fakeApp('slow-close', { workers: 1, port }), {
      env: { SLOW_CLOSE_MS: '10000', EGG_AGENT_CLOSE_TIMEOUT: '20000' },
    });
    await run.ready();
    const start = Date.now();
    run.kill('SIGKILL');
    await run.waitForExit();
    // 4 s leaves room for a loaded machine and is far below the 10 s the close would take
    const goneMs = await assertGone([...run.agentPids, ...run.appPids], 4000);
    t.diagnostic(`workers gone ${Date.now() - start} ms after the master's SIGKILL (poll: ${goneMs} ms)`);
    await run.waitForClose(5000);
    assert.match(run.stderr, /\[agent_worker\] receive disconnect event on child_process fork mode, exiting with code:110/);
  });
});

describe('a forced exit (a second signal) leaves no descendant', () => {
  test('grandchildren that ignore SIGTERM are SIGKILLed with their workers by the forced exit', T, async t => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-it-forced-'));
    const marker = path.join(dir, 'signals.log');
    try {
      const port = await freePort();
      const run = runCluster(fakeApp('p-spawner', { workers: 1, port }), {
        env: {
          P_SPAWNER_MARKER: marker, P_SPAWNER_GUARD_PID: String(process.pid), P_SPAWNER_IGNORE_SIGTERM: '1',
          // long close timeouts: without the forced exit, the grandchildren would live 20 s more
          EGG_APP_CLOSE_TIMEOUT: '20000', EGG_AGENT_CLOSE_TIMEOUT: '20000',
        },
      });
      await run.ready();
      const agentChild = run.track(Number((await run.waitForOutput(/\[p-spawner\] agent \d+ spawned (\d+)/))[1]));
      const appChild = run.track(Number((await run.waitForOutput(/\[p-spawner\] app \d+ spawned (\d+)/))[1]));
      await waitFor('both grandchildren ready', 5000, () => {
        const lines = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').split('\n') : [];
        return lines.includes(`${agentChild} ready`) && lines.includes(`${appChild} ready`);
      });
      const first = Date.now();
      run.kill('SIGTERM');
      await waitFor('the grandchildren ignored the SIGTERM', 5000, () => {
        const lines = fs.readFileSync(marker, 'utf8').split('\n');
        return lines.includes(`${appChild} SIGTERM ignored`);
      });
      // the rule under test is time-based: a repeat within 1 s of the first signal is ignored
      await waitFor('1.1 s since the first signal', 3000, () => Date.now() - first >= 1100);
      run.kill('SIGTERM');
      const exit = await run.waitForExit(5000);
      assert.deepEqual(exit, { code: 1, signal: null }, run.context());
      assert.match(run.stdout + run.stderr, /receive signal SIGTERM again while closing, killing workers now/);
      const goneMs = await assertGone([appChild, agentChild, ...run.pids], 2000);
      t.diagnostic(`forced exit: workers and grandchildren gone ${goneMs} ms after the master's exit`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
