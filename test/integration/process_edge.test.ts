/**
 * Process mode, the less travelled paths: other signals, closing while starting or while the
 * agent restarts, a taken port, pidFile, debugPort, https, a parent that went away, and an
 * app worker death outside production.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fork } from 'node:child_process';
import { describe, test } from 'node:test';
import {
  FIXTURES, appDir, assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard, type ClusterRun,
} from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 40_000 };

async function stopGracefully(run: ClusterRun, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  run.kill(signal);
  const exit = await run.waitForExit(15_000);
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 2000);
}

describe('process mode: edge cases', () => {
  test('SIGINT closes gracefully too (egg-scripts forwards it)', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port }));
    await run.ready();
    await stopGracefully(run, 'SIGINT');
    assert.match(run.stdout, /\[master\] master is killed by signal SIGINT, closing/);
    assert.match(run.stdout, /\[master\] exit with code:0/);
  });

  test('SIGTERM while the app workers are still starting: exit 0, no egg-ready, nothing left', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-start', { workers: 2, port }), { env: { SLOW_START_MS: '20000' } });
    // both workers are inside their 20 s boot
    await run.waitForOutput(/\[slow-start\] app \d+ booting[\s\S]*\[slow-start\] app \d+ booting/);
    const start = Date.now();
    run.kill('SIGTERM');
    const exit = await run.waitForExit(10_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    assert.ok(Date.now() - start < 8000, 'did not wait for the boot to finish');
    assert.equal(run.messages.some(m => m.action === 'egg-ready'), false);
    assert.equal(run.appPids.length, 2);
    await assertGone(run.pids, 2000);
  });

  test('SIGTERM during an agent restart backoff: no new agent, exit 0', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port, restartPolicy: { baseDelayMs: 5000 } }));
    await run.ready();
    const agentPid = run.agentPids[0]!;
    process.kill(agentPid, 'SIGKILL');
    // the first death: restarted at once; the second one in a row waits the backoff (5 s)
    await run.waitForOutput(/\[master\] try to start a new agent_worker after 0s/);
    const second = await run.waitForOutput(/\[master\] agent_worker#2:(\d+) start with/);
    process.kill(Number(second[1]), 'SIGKILL');
    await run.waitForOutput(/\[master\] try to start a new agent_worker after 5s/);
    run.kill('SIGTERM');
    const exit = await run.waitForExit(10_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    await run.waitForClose(5000);
    assert.doesNotMatch(run.output, /agent_worker#3/);
    assert.deepEqual(run.agentPids, [agentPid, Number(second[1])]);
    await assertGone(run.pids, 1000);
  });


  test('port already in use: the app worker reports EADDRINUSE and the master exits 1', T, async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>(resolve => blocker.listen(port, resolve));
    try {
      const run = runCluster(fakeApp('basic', { workers: 1, port }));
      const exit = await run.waitForExit(15_000);
      assert.deepEqual(exit, { code: 1, signal: null }, run.context());
      await run.waitForClose(5000);
      assert.match(run.stderr, new RegExp(`\\[app_worker\\] server got error: .*EADDRINUSE.*${port}, code: EADDRINUSE`));
      assert.match(run.stderr, /\[master\] app_worker#1:\d+ start fail, exiting with code:1/);
      assert.equal(run.messages.some(m => m.action === 'egg-ready'), false);
      await assertGone(run.pids, 1000);
    } finally {
      await new Promise(resolve => blocker.close(resolve));
    }
  });

  test('pidFile: written with the master pid (folder created), removed at exit', T, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-it-pid-'));
    const pidFile = path.join(dir, 'nested', 'run', 'master.pid');
    try {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers: 1, port, pidFile }));
      await run.ready();
      assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(run.pid));
      await stopGracefully(run);
      assert.equal(fs.existsSync(pidFile), false, 'pidFile removed');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('debugPort: a second plain-HTTP listener, reported in egg-ready', T, async () => {
    const port = await freePort();
    let debugPort = await freePort();
    while (debugPort === port) debugPort = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port, debugPort }));
    const ready = await run.ready();
    assert.equal(ready.data.port, port);
    assert.equal(ready.data.debugPort, debugPort);
    assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
    assert.match(run.stdout, new RegExp(`started debug port on http://127\\.0\\.0\\.1:${debugPort}`));
    const res = await httpGet(`http://127.0.0.1:${debugPort}/via-debug`);
    assert.equal(res.status, 200);
    assert.ok(run.appPids.includes(res.json().pid));
    assert.equal(res.json().url, '/via-debug');
    await stopGracefully(run);
  });

  test('https: egg-ready reports https, requests are served over TLS', T, async () => {
    const port = await freePort();
    const dir = appDir('https');
    const cert = fs.readFileSync(path.join(dir, 'server.crt'));
    const run = runCluster(fakeApp('https', {
      workers: 1, port, https: { key: path.join(dir, 'server.key'), cert: path.join(dir, 'server.crt') },
    }));
    const ready = await run.ready();
    assert.equal(ready.data.protocol, 'https');
    assert.equal(ready.data.address, `https://127.0.0.1:${port}`);
    const res = await httpGet(`https://127.0.0.1:${port}/secure`, { ca: cert });
    assert.equal(res.status, 200);
    assert.equal(res.json().encrypted, true);
    assert.equal(res.json().pid, run.appPids[0]);
    await stopGracefully(run);
  });

  test('https: SIGTERM with an idle keep-alive client ends its connection by the idle grace, not at the drain deadline', T, async t => {
    const port = await freePort();
    const dir = appDir('https');
    const cert = fs.readFileSync(path.join(dir, 'server.crt'));
    // a 60 s close budget (the worker's drain deadline is ~30 s) and a 60 s keepAliveTimeout:
    // only the drain's idle grace can end the idle connection within this test's wait
    const run = runCluster(fakeApp('https', {
      workers: 1, port, https: { key: path.join(dir, 'server.key'), cert: path.join(dir, 'server.crt') },
    }), { env: { EGG_APP_CLOSE_TIMEOUT: '60000', HTTPS_KEEP_ALIVE_TIMEOUT_MS: '60000' } });
    await run.ready();
    const agent = new https.Agent({ keepAlive: true, ca: cert });
    try {
      const { closed } = await new Promise<{ closed: Promise<string | null> }>((resolve, reject) => {
        https.get(`https://127.0.0.1:${port}/idle`, { agent }, res => {
          let error: string | null = null;
          res.socket.on('error', err => { error = (err as NodeJS.ErrnoException).code ?? err.message; });
          const socketClosed = new Promise<string | null>(done => res.socket.once('close', () => done(error)));
          res.resume();
          res.on('end', () => resolve({ closed: socketClosed }));
        }).on('error', reject);
      });
      const sigtermAt = Date.now();
      run.kill('SIGTERM');
      // before the Drainer tracked TLS sockets, this idle connection was cut at the ~30 s
      // deadline: the exit below would time out
      assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.context());
      assert.equal(await closed, null, 'the idle connection was ended cleanly');
      t.diagnostic(`master exited ${Date.now() - sigtermAt} ms after SIGTERM with an idle keep-alive https client`);
    } finally {
      agent.destroy();
    }
    await assertGone(run.pids, 5000);
  });

  test('the parent disconnects after egg-ready (egg-scripts --daemon): the master keeps working', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port }));
    await run.ready();
    run.child.disconnect();
    const oldAgent = run.agentPids[0]!;
    // agent-worker-died can no longer reach the parent: that must not hurt the master
    process.kill(oldAgent, 'SIGKILL');
    const started = await run.waitForOutput(/\[master\] agent_worker#2:(\d+) started/, 5000);
    const newAgent = Number(started[1]);
    const ping = await httpGet(`http://127.0.0.1:${port}/ping-agent`);
    assert.equal(ping.status, 200, ping.body);
    assert.equal(ping.json().agentPid, newAgent);
    assert.ok(isAlive(run.pid), 'the master is alive');
    assert.doesNotMatch(run.stderr, /ERR_IPC_CHANNEL_CLOSED|channel closed|uncaught/i);
    await stopGracefully(run);
  });

  test('an app worker dies outside production: app-worker-died, no refork, the others keep serving', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port }));
    await run.ready();
    const [victim, survivor] = run.appPids as [number, number];
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    process.kill(victim, 'SIGKILL');
    await run.waitForMessage('app-worker-died');
    // cfork decides at once, and says so
    await run.waitForOutput(/\[cfork:master:\d+\] don't fork new work \(refork: false/);
    assert.doesNotMatch(run.output, /app_worker#3:/);
    assert.match(run.stderr, new RegExp(`AppWorkerDiedError: \\[master\\] app_worker#1:${victim} died`));
    for (let i = 0; i < 4; i++) {
      const again = await httpGet(`http://127.0.0.1:${port}/pids`);
      assert.equal(again.status, 200);
      assert.equal(again.json().pid, survivor);
    }
    const info = (await httpGet(`http://127.0.0.1:${port}/agent-info`)).json();
    assert.deepEqual(info.opids.map(Number), [survivor], 'the agent learned that only the survivor listens');
    await stopGracefully(run);
  });

  test('a second SIGTERM right after the first (a forwarded signal) is ignored: still exit 0', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('ignore-sigterm', { workers: 1, port }), { env: { EGG_AGENT_CLOSE_TIMEOUT: '1000' } });
    await run.ready();
    await run.waitForOutput(/\[ignore-sigterm\] agent \d+ installed SIGTERM trap/);
    run.kill('SIGTERM');
    run.kill('SIGTERM');
    const exit = await run.waitForExit(8000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    assert.equal(run.stdout.match(/master is killed by signal SIGTERM/g)?.length, 1);
    await assertGone(run.pids, 1000);
  });

  test('the agent dies while the app workers start: exit 1, the booting workers are stopped', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-start', { workers: 2, port }), { env: { SLOW_START_MS: '20000' } });
    await run.waitForOutput(/\[slow-start\] app \d+ booting[\s\S]*\[slow-start\] app \d+ booting/);
    process.kill(run.agentPids[0]!, 'SIGKILL');
    const exit = await run.waitForExit(10_000);
    assert.deepEqual(exit, { code: 1, signal: null }, run.context());
    assert.match(run.stderr, /\[master\] agent_worker#1:\d+ start fail, exiting with code:1/);
    assert.doesNotMatch(run.output, /try to start a new agent_worker/);
    assert.equal(run.messages.some(m => m.action === 'egg-ready' || m.action === 'agent-worker-died'), false,
      JSON.stringify(run.messages));
    await assertGone(run.pids, 2000);
  });

  test('an app worker dies during startup in production: exit 1, no refork', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-start', { workers: 2, port, env: 'prod' }), { env: { SLOW_START_MS: '20000' } });
    const booting = await run.waitForOutput(/\[slow-start\] app (\d+) booting/);
    process.kill(Number(booting[1]), 'SIGKILL');
    const exit = await run.waitForExit(10_000);
    assert.deepEqual(exit, { code: 1, signal: null }, run.context());
    assert.match(run.stderr, new RegExp(`\\[master\\] app_worker#\\d+:${booting[1]} start fail, exiting with code:1`));
    assert.doesNotMatch(run.output, /app_worker#3:|new worker:\d+ fork/);
    assert.equal(run.messages.some(m => m.action === 'app-worker-died'), false, 'not "died after launch"');
    await assertGone(run.pids, 2000);
  });

  test('master SIGKILLed while the workers boot: they exit too', T, async t => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-start', { workers: 2, port }), { env: { SLOW_START_MS: '20000' } });
    await run.waitForOutput(/\[slow-start\] app \d+ booting[\s\S]*\[slow-start\] app \d+ booting/);
    const start = Date.now();
    run.kill('SIGKILL');
    await run.waitForExit();
    const took = await assertGone(run.workerPids, 5000).then(() => Date.now() - start);
    t.diagnostic(`booting workers gone ${took}ms after SIGKILL of the master`);
  });

  test('an idle keep-alive connection does not hold the close', T, async () => {
    const port = await freePort();
    // drain budget GRACEFUL_TIMEOUT/2 = 4000 ms: a held socket would show
    const run = runCluster(fakeApp('basic', { workers: 1, port }), { env: { GRACEFUL_TIMEOUT: '8000', EGG_APP_CLOSE_TIMEOUT: '8000' } });
    await run.ready();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // one complete request; its socket then stays open, idle, in the agent's pool
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, res => {
          assert.equal(res.headers.connection, 'keep-alive');
          res.resume();
          res.on('end', () => resolve(req.socket as net.Socket));
        });
        req.on('error', reject);
      });
      assert.equal(socket.destroyed, false);
      const socketClosed = new Promise<void>(resolve => socket.once('close', () => resolve()));
      const start = Date.now();
      run.kill('SIGTERM');
      const exit = await run.waitForExit(15_000);
      const took = Date.now() - start;
      assert.deepEqual(exit, { code: 0, signal: null }, run.context());
      assert.ok(took < 2500, `close took ${took}ms with one idle keep-alive socket (drain budget 4000ms)`);
      await socketClosed;
      await assertGone(run.pids, 1000);
    } finally {
      agent.destroy();
    }
  });

  test('a request longer than the drain budget is cut, the master still exits 0 in time', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-request', { workers: 1, port }), { env: { GRACEFUL_TIMEOUT: '2000' } });
    await run.ready();
    const pending = httpGet(`http://127.0.0.1:${port}/slow?ms=30000&id=long`).then(
      res => ({ ok: true as const, res }),
      (err: Error) => ({ ok: false as const, err }),
    );
    await run.waitForOutput(/\[slow-request\] \d+ slow request start long/);
    const start = Date.now();
    run.kill('SIGTERM');
    const exit = await run.waitForExit(10_000);
    const took = Date.now() - start;
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    assert.ok(took >= 900 && took < 4000, `drain budget GRACEFUL_TIMEOUT/2 = 1000ms, close took ${took}ms`);
    const result = await pending;
    assert.equal(result.ok, false, 'the 30 s request was cut');
    await assertGone(run.pids, 1000);
  });

  test('SIGTERM while a reforked app worker boots (production): it is stopped too', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port, env: 'prod' }));
    await run.ready();
    process.kill(run.appPids[0]!, 'SIGKILL');
    await run.waitForOutput(/\[master\] app_worker#3:\d+ start\b/);
    run.kill('SIGTERM');
    const exit = await run.waitForExit(10_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    assert.equal(run.appPids.length, 3);
    assert.doesNotMatch(run.output, /app_worker#4:/);
    await assertGone(run.pids, 2000);
  });

  test('HOST only changes the address shown in egg-ready and the log', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port }), { env: { HOST: 'localhost' } });
    const ready = await run.ready();
    assert.equal(ready.data.address, `http://localhost:${port}`);
    assert.match(run.stdout, new RegExp(`started on http://localhost:${port} `));
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    await stopGracefully(run);
  });

  test('a message from the parent reaches the agent; an agent that exits 0 after start is restarted', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 1, port }));
    await run.ready();
    const oldAgent = run.agentPids[0]!;
    // the basic agent exits with data.code on `agent-exit`
    run.send({ action: 'agent-exit', to: 'agent', data: { code: 0 } });
    await run.waitForMessage('agent-worker-died');
    await run.waitForOutput(new RegExp(`AgentWorkerDiedError: \\[master\\] agent_worker#1:${oldAgent} died \\(code: 0, signal: null\\)`));
    const started = await run.waitForOutput(/\[master\] agent_worker#2:(\d+) started/, 5000);
    const ping = await httpGet(`http://127.0.0.1:${port}/ping-agent`);
    assert.equal(ping.json().agentPid, Number(started[1]));
    await stopGracefully(run);
  });
});

describe('embedding', () => {
  test('two masters one after the other in one process: the second gets its own workers, the first takes none of them', T, async () => {
    const ports = [await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (key.startsWith('EGG_') || key === 'NODE_ENV' || key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS') continue;
      env[key] = value;
    }
    const child = fork(path.join(FIXTURES, 'start', 'twice.js'), [JSON.stringify(ports)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env, execArgv: [],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const pids = (): number[] => [child.pid!, ...[...output.matchAll(/\b(?:agent|app)_worker#\d+:(\d+)\b/g)].map(m => Number(m[1]))];
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`twice.js did not exit within 30 s\n${output}`)), 30_000);
        child.once('exit', c => { clearTimeout(timer); resolve(c); });
      });
      assert.equal(code, 0, output);
      assert.match(output, /\[twice\] 1 ok, 2 workers listening/);
      assert.match(output, /\[twice\] 2 ok, 2 workers listening/);
      assert.equal(output.match(/app_worker#\d+:\d+ start, state/g)?.length, 4, `each master forked its own 2 workers\n${output}`);
      await assertGone(pids(), 5000);
    } finally {
      for (const pid of pids()) {
        try {
          if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
});
