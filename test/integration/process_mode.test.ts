/**
 * Process mode with real processes: a master forked with an IPC channel (as egg-scripts and
 * egg-mock do), the fake framework (test/fixtures/framework) and the fixture apps.
 * Runs against the built package (lib/): `npm run build` first.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  FRAMEWORK, ROOT, appDir, assertGone, fakeApp, freePort, httpGet, indexesInOrder, isAlive, readCmdline, runCluster,
  useLeakGuard, type ClusterRun,
} from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 40_000 };
const INFO_WORKER_LOGS = { EGG_APP_WORKER_LOGGER_LEVEL: 'INFO', EGG_AGENT_WORKER_LOGGER_LEVEL: 'INFO' };

/** GET `path` on new connections until every pid in `want` answered (node:cluster round robin). */
async function collectByPid<T extends { pid: number }>(url: string, want: number[], max = 30): Promise<Map<number, T>> {
  const seen = new Map<number, T>();
  for (let i = 0; i < max && want.some(pid => !seen.has(pid)); i++) {
    const res = await httpGet(url);
    assert.equal(res.status, 200, res.body);
    const body = res.json<T>();
    seen.set(body.pid, body);
  }
  return seen;
}

async function stopGracefully(run: ClusterRun, timeoutMs = 15_000): Promise<void> {
  run.kill('SIGTERM');
  const exit = await run.waitForExit(timeoutMs);
  assert.deepEqual(exit, { code: 0, signal: null }, run.context());
  await assertGone(run.pids, 2000);
}

describe('process mode: startup and messaging', () => {
  for (const workers of [1, 2]) {
    test(`workers: ${workers}: egg-ready at the parent, HTTP, agent round trip, egg-pids, egg-ready in the workers`, T, async () => {
      const port = await freePort();
      const run = runCluster(fakeApp('basic', { workers, port }));
      const ready = await run.ready();
      assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
      assert.equal(ready.data.port, port);
      assert.equal(ready.data.protocol, 'http');
      assert.equal(ready.from, 'master');
      // egg-scripts --daemon treats any byte on stderr during startup as a failed start
      assert.equal(run.stderr, '', 'stderr must stay empty during a normal startup');
      assert.match(run.stdout, new RegExp(`\\[master\\] fake-framework started on http://127\\.0\\.0\\.1:${port} \\(\\d+ms\\)`));

      assert.equal(run.agentPids.length, 1, run.context());
      assert.equal(run.appPids.length, workers, run.context());
      const agentPid = run.agentPids[0]!;
      const appPids = [...run.appPids].sort();

      const base = `http://127.0.0.1:${port}`;
      const home = await httpGet(`${base}/`);
      assert.equal(home.status, 200);
      assert.ok(appPids.includes(run.track(home.json().pid)), home.body);

      // every worker answers (round robin over fresh connections), and each one learned the
      // agent pid from egg-pids and got egg-ready with the master options
      const pids = await collectByPid<{ pid: number; pids: number[] | null }>(`${base}/pids`, appPids);
      assert.deepEqual([...pids.keys()].sort(), appPids, `requests must reach ${workers} distinct workers`);
      for (const [pid, body] of pids) assert.deepEqual(body.pids, [agentPid], `worker ${pid} egg-pids`);

      const eggReady = await collectByPid<{ pid: number; eggReady: boolean; data: any }>(`${base}/egg-ready`, appPids);
      for (const [pid, body] of eggReady) {
        assert.equal(body.eggReady, true, `worker ${pid} got egg-ready`);
        assert.equal(body.data?.baseDir, appDir('basic'), `worker ${pid} egg-ready data is the master options`);
      }

      for (let i = 0; i < workers; i++) {
        const ping = await httpGet(`${base}/ping-agent`);
        assert.equal(ping.status, 200, ping.body);
        assert.equal(ping.json().agentPid, agentPid);
      }

      // the agent learned the listening workers from egg-pids, and got egg-ready
      const info = await httpGet(`${base}/agent-info`);
      assert.equal(info.status, 200, info.body);
      assert.deepEqual([...info.json().opids].map(Number).sort(), appPids);
      assert.equal(info.json().eggReady, true);

      await stopGracefully(run);
    });
  }

  test('worker argv: entry paths, public keys only; the full options arrive over IPC', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('options-echo', { workers: 1, port, title: 'egg-clutch-it', mySecret: 's3cr3t' }));
    await run.ready();
    const appPid = run.appPids[0]!;
    const agentPid = run.agentPids[0]!;

    for (const [pid, entry] of [[appPid, 'app_worker.js'], [agentPid, 'agent_worker.js']] as const) {
      const argv = readCmdline(pid);
      // egg-scripts stop greps `<pkg>/lib/(app|agent)_worker.js` plus `"title":"…"`
      assert.equal(argv[1], path.join(ROOT, 'lib', entry), `argv of ${pid}: ${JSON.stringify(argv)}`);
      assert.equal(argv.length, 3, `argv of ${pid}: ${JSON.stringify(argv)}`);
      const json = argv[2]!;
      assert.ok(json.includes('"baseDir"') && json.includes('"framework"'), json);
      assert.ok(json.includes('"title":"egg-clutch-it"'), json);
      const parsed = JSON.parse(json);
      assert.equal(parsed.baseDir, appDir('options-echo'));
      assert.ok(!argv.join(' ').includes('s3cr3t'), `secret on the command line of ${pid}: ${json}`);
      assert.ok(!json.includes('mySecret'), json);
    }

    const base = `http://127.0.0.1:${port}`;
    const appOptions = (await httpGet(`${base}/options`)).json();
    assert.equal(appOptions.mySecret, 's3cr3t');
    assert.equal(appOptions.title, 'egg-clutch-it');
    assert.equal(appOptions.baseDir, appDir('options-echo'));
    assert.equal(appOptions.port, port);
    assert.equal(typeof appOptions.clusterPort, 'number');
    const agentOptions = await httpGet(`${base}/agent-options`);
    assert.equal(agentOptions.status, 200, agentOptions.body);
    assert.equal(agentOptions.json().mySecret, 's3cr3t');
    assert.equal(agentOptions.json().clusterPort, appOptions.clusterPort);

    // the master's "start appWorker with args" line shows the argv, so no secret either
    const argsLine = run.stdout.split('\n').find(l => l.includes('start appWorker with args'));
    assert.ok(argsLine, run.context());
    assert.ok(!argsLine.includes('s3cr3t'), argsLine);

    await stopGracefully(run);
  });
});

describe('process mode: shutdown', () => {
  test('SIGTERM: app workers, then the agent, then exit 0, with the egg-cluster log lines', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port }), { env: INFO_WORKER_LOGS });
    await run.ready();
    const [app1, app2] = run.appPids as [number, number];
    const agentPid = run.agentPids[0]!;
    run.kill('SIGTERM');
    const exit = await run.waitForExit();
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    await run.waitForClose(5000);

    const out = run.stdout;
    const [killed, appsKill, agentKill, done, exitLine] = indexesInOrder(out, [
      '[master] master is killed by signal SIGTERM, closing',
      '[master] send kill SIGTERM to app workers',
      '[master] send kill SIGTERM to agent worker',
      '[master] close done, exiting with code:0',
      '[master] exit with code:0',
    ]) as [number, number, number, number, number];
    assert.ok(killed < appsKill && agentKill < done && done < exitLine);

    const lineAt = (pid: number, text: string): number => {
      const m = new RegExp(`^.* INFO ${pid} ${text.replace(/[[\]]/g, '\\$&')}$`, 'm').exec(out);
      assert.ok(m, `no "${text}" line from ${pid}\n${run.context()}`);
      return m.index;
    };
    for (const pid of [app1, app2]) {
      const received = lineAt(pid, '[app_worker] receive signal SIGTERM, exiting with code:0');
      const exited = lineAt(pid, '[app_worker] exit with code:0');
      assert.ok(appsKill < received && received < exited && exited < agentKill,
        `app worker ${pid} must stop between the app and the agent phase`);
    }
    const agentReceived = lineAt(agentPid, '[agent_worker] receive signal SIGTERM, exiting with code:0');
    const agentExited = lineAt(agentPid, '[agent_worker] exit with code:0');
    assert.ok(agentKill < agentReceived && agentReceived < agentExited && agentExited < done);
    assert.doesNotMatch(run.stderr, /ERROR|Error/, 'a clean shutdown logs no error');
    await assertGone(run.pids, 1000);
  });

  test('graceful drain: a request in flight at SIGTERM completes with 200', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-request', { workers: 1, port }), { env: INFO_WORKER_LOGS });
    await run.ready();
    const pending = httpGet(`http://127.0.0.1:${port}/slow?ms=1500&id=drain-1`);
    await run.waitForOutput(/\[slow-request\] \d+ slow request start drain-1/);
    const sigtermAt = Date.now();
    run.kill('SIGTERM');
    const res = await pending;
    const answeredAfter = Date.now() - sigtermAt;
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { pid: run.appPids[0], id: 'drain-1', slept: 1500 });
    const exit = await run.waitForExit();
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    assert.ok(run.exitedAt! >= sigtermAt + answeredAfter - 50, 'the master exits after the response');
    await run.waitForClose(5000);
    assert.match(run.stdout, /\[app_worker\] beforeExit success/);
    await assertGone(run.pids, 1000);
  });

  test('close timeout: an agent that ignores SIGTERM is SIGKILLed after EGG_AGENT_CLOSE_TIMEOUT', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('ignore-sigterm', { workers: 1, port }), {
      env: { EGG_AGENT_CLOSE_TIMEOUT: '1000', EGG_APP_CLOSE_TIMEOUT: '3000' },
    });
    await run.ready();
    const trap = await run.waitForOutput(/\[ignore-sigterm\] agent (\d+) installed SIGTERM trap/);
    const agentPid = Number(trap[1]);
    assert.equal(agentPid, run.agentPids[0]);
    const start = Date.now();
    run.kill('SIGTERM');
    const exit = await run.waitForExit(5000);
    const took = Date.now() - start;
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    assert.ok(took >= 1000, `the master waited the agent close timeout (took ${took}ms)`);
    assert.ok(took < 5000, `took ${took}ms`);
    assert.match(run.output, new RegExp(`\\[ignore-sigterm\\] agent ${agentPid} ignoring SIGTERM`));
    assert.equal(isAlive(agentPid), false, 'the agent was killed');
    await assertGone(run.pids, 1000);
  });

  test('master SIGKILLed: the workers do not outlive it', T, async t => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port }));
    await run.ready();
    const workers = run.workerPids;
    assert.equal(workers.length, 3, run.context());
    const start = Date.now();
    run.kill('SIGKILL');
    assert.deepEqual(await run.waitForExit(), { code: null, signal: 'SIGKILL' });
    const appsGone = await assertGone(run.appPids, 5000).then(() => Date.now() - start);
    const agentGone = await assertGone(run.agentPids, 5000).then(() => Date.now() - start);
    t.diagnostic(`after SIGKILL of the master: app workers gone in ${appsGone}ms, agent gone in ${agentGone}ms`);
    await run.waitForClose(5000);
    // graceful-process in the agent: exit 110 on disconnect
    assert.match(run.stderr, /\[agent_worker\] receive disconnect event on child_process fork mode, exiting with code:110/);
  });
});

describe('process mode: worker deaths after startup', () => {
  test('agent SIGKILLed: AgentWorkerDiedError, agent-worker-died, a new agent that the workers use', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port }));
    await run.ready();
    const oldAgent = run.agentPids[0]!;
    const appPids = [...run.appPids].sort();
    process.kill(oldAgent, 'SIGKILL');

    await run.waitForMessage('agent-worker-died');
    await run.waitForOutput(new RegExp(
      `nodejs\\.AgentWorkerDiedError: \\[master\\] agent_worker#1:${oldAgent} died \\(code: null, signal: SIGKILL\\)`,
    ), 5000, { stream: 'stderr' });
    // no fixed wait: the first restart is at once
    await run.waitForOutput(/\[master\] try to start a new agent_worker after 0s/, 5000, { stream: 'stdout' });
    const started = await run.waitForOutput(/\[master\] agent_worker#2:(\d+) started \(\d+ms\)/, 5000, { stream: 'stdout' });
    // while there was no agent, the workers were told so (egg-pids []), then learned the new one
    const base = `http://127.0.0.1:${port}`;
    const seen = await collectByPid<{ pid: number; history: Array<number[] | null> }>(`${base}/pids`, appPids);
    for (const [pid, body] of seen) {
      const lastEmpty = body.history.map(p => JSON.stringify(p)).lastIndexOf('[]');
      assert.ok(lastEmpty >= 0, `worker ${pid} got egg-pids [] while the agent was down: ${JSON.stringify(body.history)}`);
    }
    const newAgent = Number(started[1]);
    assert.notEqual(newAgent, oldAgent);
    assert.deepEqual(run.agentPids, [oldAgent, newAgent]);
    await assertGone([oldAgent], 1000);

    for (let i = 0; i < 2; i++) {
      const ping = await httpGet(`${base}/ping-agent`);
      assert.equal(ping.status, 200, ping.body);
      assert.equal(ping.json().agentPid, newAgent);
    }
    // the workers learned the new agent pid; the new agent got the workers and egg-ready
    const pids = await collectByPid<{ pid: number; pids: number[] | null }>(`${base}/pids`, appPids);
    for (const [pid, body] of pids) assert.deepEqual(body.pids, [newAgent], `worker ${pid}`);
    const info = (await httpGet(`${base}/agent-info`)).json();
    assert.equal(info.agentPid, newAgent);
    assert.deepEqual([...info.opids].map(Number).sort(), appPids);
    assert.equal(info.eggReady, true);
    assert.equal(run.messages.filter(m => m.action === 'egg-ready').length, 1, 'egg-ready reaches the parent once');

    await stopGracefully(run);
  });

  test('app worker SIGKILLed in production: AppWorkerDiedError, app-worker-died, refork, HTTP keeps working', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('basic', { workers: 2, port, env: 'prod' }));
    await run.ready();
    const agentPid = run.agentPids[0]!;
    const [victim, survivor] = run.appPids as [number, number];
    process.kill(victim, 'SIGKILL');

    await run.waitForMessage('app-worker-died');
    await run.waitForOutput(new RegExp(
      `nodejs\\.AppWorkerDiedError: \\[master\\] app_worker#1:${victim} died \\(code: null, signal: SIGKILL`,
    ), 5000, { stream: 'stderr' });
    const base = `http://127.0.0.1:${port}`;
    // served while the replacement boots
    const during = await httpGet(`${base}/`);
    assert.equal(during.status, 200);

    const forked = await run.waitForOutput(/\[master\] app_worker#3:(\d+) start\b/, 5000);
    const newPid = Number(forked[1]);
    await run.waitForOutput(new RegExp(`\\[master\\] app_worker#3:${newPid} started at ${port}`), 10_000);
    assert.deepEqual(run.appPids, [victim, survivor, newPid]);
    await assertGone([victim], 1000);

    // the replacement serves, learned the agent pid and got egg-ready
    const ready = await collectByPid<{ pid: number; eggReady: boolean }>(`${base}/egg-ready`, [survivor, newPid]);
    assert.equal(ready.get(newPid)?.eggReady, true, `replacement ${newPid} got egg-ready`);
    assert.equal(ready.has(victim), false);
    const pids = await collectByPid<{ pid: number; pids: number[] | null }>(`${base}/pids`, [survivor, newPid]);
    assert.deepEqual(pids.get(newPid)?.pids, [agentPid]);
    const info = (await httpGet(`${base}/agent-info`)).json();
    assert.deepEqual([...info.opids].map(Number).sort(), [survivor, newPid].sort());
    assert.equal(run.messages.filter(m => m.action === 'egg-ready').length, 1, 'egg-ready reaches the parent once');

    await stopGracefully(run);
  });
});

describe('process mode: start failures exit 1 and leave nothing behind', () => {
  const cases: Array<{ name: string; options: Record<string, unknown>; expect: RegExp[]; noApps?: boolean }> = [
    {
      name: 'agent throws in new Agent()',
      options: fakeApp('agent-throw'),
      // D2: the worker itself exits 1 (egg-cluster's workers exited 0 after a start error)
      expect: [/\[master\] agent_worker#1:\d+ start fail, exiting with code:1/, /agent boom/, /agent_worker#1:\d+ died \(code: 1, signal: null\)/],
      noApps: true,
    },
    {
      name: 'agent ready(err)',
      options: fakeApp('agent-ready-error'),
      expect: [/\[master\] agent_worker#1:\d+ start fail, exiting with code:1/, /agent ready failed/, /agent_worker#1:\d+ died \(code: 1, signal: null\)/],
      noApps: true,
    },
    {
      name: 'app throws in new Application()',
      options: fakeApp('app-throw', { workers: 2 }),
      expect: [/\[master\] app_worker#\d+:\d+ start fail, exiting with code:1/, /app boom/, /app_worker#\d+:\d+ died \(code: 1, signal: null/],
    },
    {
      name: 'app ready(err)',
      options: fakeApp('app-ready-error', { workers: 2 }),
      expect: [/\[master\] app_worker#\d+:\d+ start fail, exiting with code:1/, /app ready failed/, /app_worker#\d+:\d+ died \(code: 1, signal: null/],
    },
    {
      name: 'framework without Application',
      options: { baseDir: appDir('basic'), framework: appDir('framework-no-application') },
      expect: [/should define Application/, /\[master\] agent_worker#1:\d+ start fail, exiting with code:1/],
      noApps: true,
    },
    {
      name: 'options.require of a missing module',
      options: fakeApp('basic', { require: ['./no-such-module'] }),
      expect: [/\.\/no-such-module/, /\[master\] agent_worker#1:\d+ start fail, exiting with code:1/],
      noApps: true,
    },
  ];

  for (const c of cases) {
    test(c.name, T, async () => {
      const port = await freePort();
      const run = runCluster({ workers: 1, port, ...c.options });
      const exit = await run.waitForExit(15_000);
      assert.deepEqual(exit, { code: 1, signal: null }, run.context());
      await run.waitForClose(5000);
      for (const re of c.expect) assert.match(run.output, re, run.context());
      assert.equal(run.messages.some(m => m.action === 'egg-ready'), false);
      assert.doesNotMatch(run.stdout, /started on/);
      if (c.noApps) assert.deepEqual(run.appPids, []);
      assert.ok(run.agentPids.length >= 1, run.context());
      await assertGone(run.pids, 1000);
    });
  }

  test('baseDir without package.json: startCluster rejects, the master exits non-zero', T, async () => {
    const tmpNoPkg = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-it-nopkg-'));
    try {
      const run = runCluster({ baseDir: tmpNoPkg, framework: FRAMEWORK, workers: 1 });
      const exit = await run.waitForExit(10_000);
      assert.notEqual(exit.code, 0, run.context());
      assert.match(run.stderr, new RegExp(`${path.join(tmpNoPkg, 'package.json').replace(/[.]/g, '\\.')} should exist`));
      assert.deepEqual(run.agentPids, []);
      assert.deepEqual(run.appPids, []);
    } finally {
      fs.rmSync(tmpNoPkg, { recursive: true, force: true });
    }
  });
});

describe('process mode: unix socket', () => {
  test('config.cluster.listen.path: egg-ready address is the socket path, HTTP over the socket', T, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-it-sock-'));
    const sock = path.join(dir, 'app.sock');
    try {
      const run = runCluster(fakeApp('listen-path', { workers: 2 }), { env: { EGG_CLUTCH_TEST_SOCK: sock } });
      const ready = await run.ready();
      assert.equal(ready.data.address, sock);
      assert.match(run.stdout, new RegExp(`started on ${sock.replace(/[.]/g, '\\.')} \\(`));
      const seen = new Set<number>();
      for (let i = 0; i < 10 && seen.size < 2; i++) {
        const res = await httpGet({ socketPath: sock, path: '/hello' });
        assert.equal(res.status, 200);
        assert.equal(res.json().url, '/hello');
        seen.add(run.track(res.json().pid));
      }
      for (const pid of seen) assert.ok(run.appPids.includes(pid), `${pid} is an app worker`);
      await stopGracefully(run);
      assert.equal(fs.existsSync(sock), false, 'the socket file is removed at close (a restart can bind it again)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
