import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { ClusterError } from '../../src/errors.js';
import { FakeHost } from '../helpers/fake_host.js';
import {
  agentStart, CLUSTER_PORT, createFakeCluster, flush, FRAMEWORK_NAME, listenAll, PORT, startFakeCluster,
  type FakeCluster,
} from '../helpers/fake_launcher.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The data of the (first) egg-ready the parent got. */
function parentReady(c: FakeCluster): { port?: number; debugPort?: number; address?: string; protocol?: string } {
  const msg = c.host.parentMessagesOf('egg-ready')[0];
  assert.ok(msg, 'the parent got egg-ready');
  return msg.data as { port?: number; debugPort?: number; address?: string; protocol?: string };
}

/** The ready() promise with a handler attached, so a rejection is never "unhandled". */
function settled(c: FakeCluster): Promise<{ ok: true } | { ok: false; err: unknown }> {
  return c.master.ready().then(() => ({ ok: true as const }), (err: unknown) => ({ ok: false as const, err }));
}

describe('Master startup', () => {
  it('forks the agent only after detectPort resolves, with that clusterPort', async () => {
    const port = deferred<number>();
    const c = createFakeCluster({ detectPort: () => port.promise });
    await flush();
    assert.equal(c.launcher.agents.length, 0, 'no agent before detectPort');
    port.resolve(17123);
    await flush();
    assert.equal(c.launcher.agents.length, 1);
    assert.equal(c.master.options.clusterPort, 17123);
    assert.equal(c.launcher.agentSpecs[0]!.options.clusterPort, 17123);
    assert.ok(c.logger.has('[master] agent_worker#1:2001 start with clusterPort:17123'));
  });

  it('detectPort failing ends the start with code 1 and rejects ready()', async () => {
    const c = createFakeCluster({ detectPort: () => Promise.reject(new Error('no free port')) });
    const result = settled(c);
    await flush();
    assert.deepEqual(c.host.exits, [1]);
    assert.equal(c.launcher.agents.length, 0);
    const r = await result;
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.err instanceof ClusterError && r.err.code === 'ERR_CLUSTER_PORT');
    assert.ok(c.logger.has(/cannot find a free port for the cluster client: no free port/, 'error'));
  });

  it('forks no app worker before the agent says agent-start', async () => {
    const c = createFakeCluster();
    await flush(5);
    assert.equal(c.launcher.agents.length, 1);
    assert.equal(c.launcher.pools.length, 0);
    assert.equal(c.launcher.apps.length, 0);
    await agentStart(c);
    assert.equal(c.launcher.pools.length, 1);
    assert.equal(c.launcher.apps.length, 4);
    assert.equal(c.master.registry.apps.size, 4, 'every fork registered');
  });

  it('ignores agent-start from the parent (not the agent)', async () => {
    const c = createFakeCluster();
    await flush();
    c.host.parentSend({ action: 'agent-start', to: 'master' });
    c.host.parentSend('agent-start');
    c.host.parentSend({ action: 'agent-start', receiverPid: String(c.host.pid) });
    await flush();
    assert.equal(c.launcher.pools.length, 0);
    assert.equal(c.master.registry.agentStarted, false);
  });

  it('ignores agent-start from an app worker', async () => {
    const c = await startFakeCluster();
    const started = c.logger.lines().filter(l => l.includes('agent_worker#1:2001 started')).length;
    c.launcher.apps[0]!.say({ action: 'agent-start', to: 'master' });
    c.launcher.apps[1]!.say('agent-start');
    await flush();
    assert.equal(c.launcher.pools.length, 1);
    assert.equal(c.logger.lines().filter(l => l.includes('agent_worker#1:2001 started')).length, started);
    for (const app of c.launcher.apps) assert.equal(app.received('agent-start').length, 0);
  });

  describe('stale agent', () => {
    afterEach(() => mock.timers.reset());

    it('agent-start from an agent that died is ignored', async () => {
      mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
      const c = await startFakeCluster();
      const old = c.launcher.agents[0]!;
      old.die(1);
      await flush();
      mock.timers.tick(1000);
      await flush();
      assert.equal(c.launcher.agents.length, 2);
      old.say({ action: 'agent-start', to: 'master' });
      await flush();
      assert.equal(c.master.registry.agentStarted, false, 'the new agent has not started');
      assert.equal(c.launcher.agents[1]!.received('egg-ready').length, 0);
      await c.master.close();
    });
  });

  for (const env of ['prod', 'local', 'unittest'] as const) {
    it(`starts the apps with count = workers in env ${env}`, async () => {
      const c = createFakeCluster({ options: { workers: 3, env } });
      await flush();
      await agentStart(c);
      const pool = c.launcher.pool!;
      assert.equal(pool.count, 3);
      assert.equal(c.launcher.apps.length, 3);
    });
  }

  it('disables refork for every fork until all listen, then enables it for all', async () => {
    const c = createFakeCluster({ options: { env: 'prod' } });
    await flush();
    await agentStart(c);
    const pool = c.launcher.pool!;
    for (const w of c.launcher.apps) assert.equal(pool.reforkEnabled.get(w), false, `${w.label} refork off at fork`);
    for (const w of c.launcher.apps.slice(0, 3)) w.listen(PORT);
    await flush();
    for (const w of c.launcher.apps) assert.equal(pool.reforkEnabled.get(w), false, `${w.label} still off with one not listening`);
    c.launcher.apps[3]!.listen(PORT);
    await flush();
    for (const w of c.launcher.apps) assert.equal(pool.reforkEnabled.get(w), true, `${w.label} on after all listen`);
  });

  it('ignores listening on another port; a realport message from an app moves the expected port', async () => {
    const c = createFakeCluster({ options: { workers: 1 } });
    await flush();
    await agentStart(c);
    const app = c.launcher.apps[0]!;
    app.listen(7002); // e.g. a websocket server of the app
    await flush();
    assert.equal(c.master.registry.app(app)?.state, 'starting');
    assert.equal(c.master.isStarted, false);
    assert.equal(c.launcher.agent!.received('egg-pids').length, 0);
    app.say({ action: 'realport', to: 'master', data: { port: 7002, protocol: 'http' } });
    await flush();
    assert.equal(c.master.realPort, 7002);
    app.listen(7002);
    await flush();
    assert.equal(c.master.isStarted, true);
    assert.equal(parentReady(c).port, 7002);
  });

  it('without options.port, waits for realport (and takes its protocol)', async () => {
    const c = createFakeCluster({ options: { workers: 2, port: undefined } });
    await flush();
    await agentStart(c);
    for (const app of c.launcher.apps) app.listen(7001);
    await flush();
    assert.equal(c.master.isStarted, false, 'port unknown yet: no listener counts');
    c.launcher.apps[0]!.say({ action: 'realport', to: 'master', data: { port: 7001, protocol: 'https' } });
    await flush();
    for (const app of c.launcher.apps) app.listen(7001);
    await flush();
    assert.equal(c.master.isStarted, true);
    assert.deepEqual(parentReady(c), { port: 7001, debugPort: undefined, address: 'https://127.0.0.1:7001', protocol: 'https' });
  });

  it('ignores realport with a port that is not an integer', async () => {
    const c = createFakeCluster();
    await flush();
    await agentStart(c);
    c.launcher.apps[0]!.say({ action: 'realport', to: 'master', data: { port: '8080', protocol: 'gopher' } });
    await flush();
    assert.equal(c.master.realPort, PORT);
    assert.equal(c.master.protocol, 'http');
  });

  it('accepts a unix socket listener whatever the port, and prints its path', async () => {
    const c = createFakeCluster({ options: { workers: 2 } });
    await flush();
    await agentStart(c);
    for (const app of c.launcher.apps) app.listenPath('/tmp/egg.sock');
    await flush();
    assert.equal(c.master.isStarted, true);
    assert.ok(c.logger.has(`[master] ${FRAMEWORK_NAME} started on /tmp/egg.sock (`));
    assert.equal(parentReady(c).address, '/tmp/egg.sock');
  });

  it('counts each worker once even if it reports listening twice', async () => {
    const c = createFakeCluster({ options: { workers: 2 } });
    await flush();
    await agentStart(c);
    const [a] = c.launcher.apps;
    a!.listen(PORT);
    a!.listen(PORT);
    await flush();
    assert.equal(c.master.isStarted, false);
    assert.equal(c.host.parentMessagesOf('egg-ready').length, 0);
  });

  it('sends nothing ready-related before the last worker listens', async () => {
    const c = createFakeCluster();
    await flush();
    await agentStart(c);
    for (const app of c.launcher.apps.slice(0, 3)) app.listen(PORT);
    await flush();
    assert.equal(c.host.parentMessagesOf('egg-ready').length, 0);
    assert.equal(c.launcher.agent!.received('egg-ready').length, 0);
    for (const app of c.launcher.apps) assert.equal(app.received('egg-ready').length, 0);
    assert.equal(c.master.isStarted, false);
  });

  describe('once every worker listens', () => {
    it('sends egg-ready to the parent exactly once with { port, debugPort, address, protocol }', async () => {
      const c = await startFakeCluster();
      const ready = c.host.parentMessagesOf('egg-ready');
      assert.equal(ready.length, 1);
      assert.deepEqual(ready[0], {
        action: 'egg-ready', to: 'parent', from: 'master',
        data: { port: PORT, debugPort: undefined, address: `http://127.0.0.1:${PORT}`, protocol: 'http' },
      });
    });

    it('sends egg-ready with the options to each app and to the agent', async () => {
      const c = await startFakeCluster();
      for (const target of [...c.launcher.apps, c.launcher.agent!]) {
        const got = target.received('egg-ready');
        assert.equal(got.length, 1, `${target.label} gets egg-ready once`);
        const data = got[0]!.data as Record<string, unknown>;
        assert.equal(data.workers, 4);
        assert.equal(data.port, PORT);
        assert.equal(data.clusterPort, CLUSTER_PORT);
        assert.equal(data.baseDir, c.master.options.baseDir);
      }
    });

    it('tells the agent the listening pids, growing with each worker', async () => {
      const c = await startFakeCluster();
      const pids = c.launcher.agent!.received('egg-pids').map(m => m.data);
      assert.deepEqual(pids, [[3001], [3001, 3002], [3001, 3002, 3003], [3001, 3002, 3003, 3004]]);
    });

    it('tells each newly listening app the agent pid, addressed to it alone', async () => {
      const c = await startFakeCluster();
      for (const app of c.launcher.apps) {
        const got = app.received('egg-pids');
        assert.deepEqual(got.map(m => [m.data, m.receiverWorkerId]), [[[2001], String(app.workerId)]],
          `${app.label} gets its own egg-pids only`);
      }
    });

    it('logs the agent start, the app starts and "<framework> started on <url>"', async () => {
      const c = await startFakeCluster();
      assert.ok(c.logger.has(`[master] =================== ${FRAMEWORK_NAME} start =====================`));
      assert.ok(c.logger.has(`[master] ${FRAMEWORK_NAME} version 1.0.0`));
      assert.ok(c.logger.has(/^\[master\] agent_worker#1:2001 started \(\d+ms\)$/, 'info'));
      assert.ok(c.logger.has(/^\[master\] app_worker#4:3004 started at 7001, remain 0 \(\d+ms\)$/));
      assert.ok(c.logger.has(new RegExp(`^\\[master\\] ${FRAMEWORK_NAME} started on http://127\\.0\\.0\\.1:7001 \\(\\d+ms\\)$`), 'info'));
      const agentStarted = c.logger.indexOf('agent_worker#1:2001 started');
      const clusterStarted = c.logger.indexOf(`${FRAMEWORK_NAME} started on`);
      assert.ok(agentStarted >= 0 && agentStarted < clusterStarted);
    });

    it('resolves ready() and sets isStarted', async () => {
      const c = createFakeCluster({ options: { workers: 1 } });
      let resolved = false;
      void c.master.ready().then(() => {
        resolved = true;
      });
      await flush();
      await agentStart(c);
      assert.equal(resolved, false);
      await listenAll(c);
      assert.equal(resolved, true);
      assert.equal(c.master.isStarted, true);
      assert.equal(c.master.isAllWorkerStarted, true);
    });

    it('calls a ready(callback) with no error', async () => {
      const c = createFakeCluster({ options: { workers: 1 } });
      const calls: unknown[] = [];
      c.master.ready(err => calls.push(err));
      await flush();
      await agentStart(c);
      await listenAll(c);
      assert.deepEqual(calls, [undefined]);
    });
  });

  describe('HOST only changes the printed address', () => {
    const table: Array<[string | undefined, string | null, string]> = [
      ['example.com', null, 'http://example.com:7001'],
      ['example.com', '::', 'http://example.com:7001'],
      ['0.0.0.0', null, 'http://127.0.0.1:7001'],
      [undefined, null, 'http://127.0.0.1:7001'],
      ['example.com', '10.0.0.5', 'http://10.0.0.5:7001'],
      [undefined, '::1', 'http://[::1]:7001'],
    ];
    for (const [HOST, listenAddress, expected] of table) {
      it(`HOST=${String(HOST)} listen address=${String(listenAddress)} -> ${expected}`, async () => {
        const c = createFakeCluster({ env: HOST === undefined ? {} : { HOST }, options: { workers: 1 } });
        await flush();
        await agentStart(c);
        c.launcher.apps[0]!.listen(PORT, listenAddress);
        await flush();
        const data = parentReady(c);
        assert.equal(data.address, expected);
        assert.equal(data.port, PORT);
        assert.ok(c.logger.has(`started on ${expected} (`));
        // the bind address is the app's business: nothing HOST-related goes to the workers
        assert.equal(c.master.options.hostname, undefined);
      });
    }
  });

  it('debugPort: the extra listener is not the app listener, and is announced', async () => {
    const c = createFakeCluster({ options: { workers: 1, debugPort: 7002 } });
    await flush();
    await agentStart(c);
    c.launcher.apps[0]!.listen(7002);
    await flush();
    assert.equal(c.master.isStarted, false);
    c.launcher.apps[0]!.listen(PORT);
    await flush();
    assert.equal(c.master.isStarted, true);
    assert.equal(parentReady(c).debugPort, 7002);
    assert.ok(c.logger.has(`[master] ${FRAMEWORK_NAME} started debug port on http://127.0.0.1:7002`));
  });

  it('under --inspect, tells the parent each worker\'s debug port', async () => {
    const c = createFakeCluster({ execArgv: ['--inspect'], options: { workers: 2 } });
    await flush();
    await agentStart(c);
    const debug = c.host.parentMessagesOf('debug');
    assert.deepEqual(debug.map(m => [m.from, (m.data as { pid: number }).pid]), [['agent', 2001], ['app', 3001], ['app', 3002]]);
    assert.equal(c.master.options.isDebug, true);
  });

  it('writes the pid file before forking anything', async () => {
    const c = createFakeCluster({ options: { pidFile: '/run/egg/master.pid' } });
    assert.deepEqual(c.host.pidFilesWritten, ['/run/egg/master.pid']);
    assert.equal(c.launcher.agents.length, 0);
    await flush();
    assert.equal(c.launcher.agents.length, 1);
  });

  it('a pid file that cannot be written ends the start with code 1, forking nothing', async () => {
    const host = new FakeHost();
    host.pidFileError = new Error('EACCES: permission denied');
    const c = createFakeCluster({ host, options: { pidFile: '/root/x.pid' } });
    const result = settled(c);
    await flush();
    assert.deepEqual(host.exits, [1]);
    assert.equal(c.launcher.agents.length, 0);
    const r = await result;
    assert.ok(!r.ok && r.err instanceof ClusterError);
    assert.ok(c.logger.has(/cannot write pidFile \/root\/x\.pid: EACCES/, 'error'));
  });

  it('warns when the pid file belonged to a process that is still running', async () => {
    const host = new FakeHost();
    host.pidFilePreviousOwner = 4242;
    const c = createFakeCluster({ host, options: { pidFile: '/run/egg/master.pid' } });
    assert.ok(c.logger.has('[master] pidFile /run/egg/master.pid belonged to pid 4242, which is still running; it now holds 1000', 'warn'));
    await flush();
    assert.equal(c.launcher.agents.length, 1, 'the start goes on');
  });

  describe('start timeout', () => {
    afterEach(() => mock.timers.reset());

    const table: Array<[string, (c: FakeCluster) => Promise<void>, RegExp]> = [
      ['the agent never starts', async () => {}, /agent started: no, app workers listening: 0\/4/],
      ['two of four app workers listen', async c => {
        await agentStart(c);
        c.launcher.apps[0]!.listen(PORT);
        c.launcher.apps[1]!.listen(PORT);
        await flush();
      }, /agent started: yes, app workers listening: 2\/4/],
    ];
    for (const [name, progress, detail] of table) {
      it(`${name}: exit 1 after options.startTimeout, saying how far it got`, async () => {
        mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
        const c = createFakeCluster({ options: { startTimeout: 5000 } });
        const result = settled(c);
        await flush();
        await progress(c);
        mock.timers.tick(4999);
        await flush();
        assert.deepEqual(c.host.exits, []);
        mock.timers.tick(1);
        await flush(5);
        assert.deepEqual(c.host.exits, [1]);
        const r = await result;
        assert.ok(!r.ok && r.err instanceof ClusterError && r.err.code === 'ERR_CLUSTER_START_TIMEOUT');
        assert.match((r as { err: Error }).err.message, /did not start within 5000ms/);
        assert.match((r as { err: Error }).err.message, detail);
        for (const w of [...c.launcher.agents, ...c.launcher.apps]) assert.equal(w.isAlive, false, `${w.label} stopped`);
      });
    }

    it('is cleared once the cluster is ready', async () => {
      mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
      const c = await startFakeCluster({ options: { startTimeout: 5000 } });
      mock.timers.tick(60_000);
      await flush();
      assert.deepEqual(c.host.exits, []);
    });
  });

  it('egg-ready to the workers carries the options without secrets', async () => {
    const PEM = '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----';
    const c = await startFakeCluster({
      options: { https: { key: PEM, cert: PEM, passphrase: 'pw-secret' }, apiToken: 'tok-secret', secretKeys: ['apiToken'] },
    });
    for (const target of [c.launcher.agent!, ...c.launcher.apps]) {
      const data = target.received('egg-ready')[0]!.data as { https: Record<string, unknown>; apiToken: unknown };
      assert.equal(data.apiToken, '[redacted]');
      assert.equal(data.https.passphrase, '[redacted]');
      assert.equal(data.https.key, '[redacted]');
    }
    const logged = c.logger.lines().join('\n');
    assert.ok(!logged.includes('pw-secret'));
    assert.ok(!logged.includes('tok-secret'));
    assert.ok(!logged.includes('BEGIN PRIVATE KEY'));
    // the workers themselves get the real options at fork (over IPC, not argv)
    assert.equal(c.launcher.agentSpecs[0]!.options.apiToken, 'tok-secret');
    assert.equal(parentReady(c).protocol, 'https');
  });

  it('registers the close signals, the exit handler, the parent channel and the fatal handler', () => {
    const c = createFakeCluster();
    for (const signal of ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'] as const) {
      assert.equal(c.host.listenerCount('signal', signal), 1, signal);
    }
    assert.equal(c.host.listenerCount('exit'), 1);
    assert.equal(c.host.listenerCount('parent'), 1);
    assert.equal(c.host.listenerCount('fatal'), 1);
  });

  it('sets NO_DEPRECATION in the env the workers inherit when NODE_ENV=production', () => {
    const c = createFakeCluster({ env: { NODE_ENV: 'production' } });
    assert.equal(c.host.env.NO_DEPRECATION, '*');
    assert.equal(c.master.isProduction, true);
  });

  it('an invalid option does not throw from the constructor: ready() rejects and nothing starts (3.x)', async () => {
    const c = createFakeCluster({ options: { workers: 'abc' } });
    await assert.rejects(c.master.ready(), /options\.workers must be/);
    await flush();
    assert.equal(c.launcher.agents.length, 0);
    assert.deepEqual(c.host.exits, []);
  });
});
