/**
 * The master's ops hook with the fake launcher: src/ops is loaded only with options.status,
 * the status server answers from the master's own state, the worker reports stay internal,
 * and shutdownDelay holds the drain back.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, describe, it, mock } from 'node:test';
import { detectPort } from 'detect-port';
import {
  agentStart, createFakeCluster, flush, listenAll, startFakeCluster, type FakeCluster,
} from '../helpers/fake_launcher.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { ClusterOptions } from '../../src/options.js';

const opsModules = (): string[] => Object.keys(require.cache).filter(k => /[/\\]src[/\\]ops[/\\]/.test(k));

function get(port: number, path: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    }).on('error', reject);
  });
}

/** Turn the event loop until `check` holds (I/O included), at most `rounds` times. */
async function until(check: () => boolean, what: string, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (check()) return;
    await new Promise<void>(resolve => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

const dropUptime = (value: unknown): unknown => JSON.parse(JSON.stringify(value), (k, v) => (k === 'uptimeMs' ? 0 : v));

const clusters: FakeCluster[] = [];
afterEach(async () => {
  // every master here exits (or is closed) so its status server is closed
  for (const c of clusters.splice(0)) {
    if (!c.host.exits.length) {
      void c.master.close();
      await until(() => c.host.exits.length > 0, 'the master exits');
    }
  }
});

describe('ops hook: loaded only when options.status is set', () => {
  // first in this file: nothing else here has loaded src/ops yet
  it('status unset: a whole start and close loads no module of src/ops, and master.status() is undefined', async () => {
    assert.deepEqual(opsModules(), [], 'precondition: this test file itself loads nothing of src/ops');
    const c = await startFakeCluster();
    clusters.push(c);
    assert.equal(c.master.status(), undefined);
    await c.master.close();
    assert.deepEqual(opsModules(), []);
    assert.ok(!c.logger.has('status server'));
  });

  it('status set: src/ops is loaded, and the status server logs where it listens', async () => {
    const port = await detectPort();
    const c = createFakeCluster({ options: { status: { port } } });
    clusters.push(c);
    await until(() => c.logger.has('status server listening'), 'the status server listens');
    assert.ok(opsModules().some(k => /ops[/\\]index\.ts$/.test(k)), opsModules().join(', '));
    assert.ok(c.logger.has(`[master] status server listening on http://127.0.0.1:${port} (GET /livez, /readyz, /status)`, 'info'));
  });
});

describe('ops hook: the status server', () => {
  it('/readyz: 503 while starting, 200 after egg-ready, 503 from the close signal on; /livez 200 throughout', async () => {
    const port = await detectPort();
    const c = createFakeCluster({ options: { status: { port }, shutdownDelay: 60_000, workers: 2 } });
    clusters.push(c);
    await until(() => c.logger.has('status server listening'), 'the status server listens');
    assert.deepEqual(await get(port, '/readyz'), { status: 503, body: 'starting\n', type: 'text/plain; charset=utf-8' });
    assert.equal((await get(port, '/livez')).status, 200);
    await flush();
    await agentStart(c);
    await listenAll(c);
    assert.equal(c.master.isStarted, true);
    assert.deepEqual(await get(port, '/readyz'), { status: 200, body: 'ready\n', type: 'text/plain; charset=utf-8' });
    c.host.signal('SIGTERM');
    // the delay holds the drain: no worker was asked to stop, yet readiness is 503
    assert.deepEqual(await get(port, '/readyz'), { status: 503, body: 'closing\n', type: 'text/plain; charset=utf-8' });
    assert.equal(c.launcher.apps.every(w => w.signals.length === 0), true);
    assert.equal((await get(port, '/livez')).status, 200);
    assert.equal((await get(port, '/nope')).status, 404);
    assert.equal((await get(port, '/status')).status, 200);
    // the forced exit (a second signal after the first second) ends it without waiting a minute
    mock.timers.enable({ apis: ['Date'], now: Date.now() + 1500 });
    c.host.signal('SIGTERM');
    mock.timers.reset();
    assert.deepEqual(c.host.exits, [1]);
  });

  it('/status is master.status(): master, agent and workers, with the figures of the last report', async () => {
    const port = await detectPort();
    const c = await startFakeCluster({ options: { status: { port }, workers: 2, env: 'prod', secretKeys: ['token'], token: 'hunter2' } });
    clusters.push(c);
    await until(() => c.logger.has('status server listening'), 'the status server listens');
    const [w1, w2] = c.launcher.apps;
    const report = {
      v: 1, seq: 1, ts: Date.now(), rss: 50_000_000, heapUsed: 7_000_000, heapTotal: 9_000_000, external: 1000,
      elu: 0.25, eventLoopDelayP99Ms: 1.5, eventLoopDelayMaxMs: 3, cpuUserUs: 1, cpuSystemUs: 1, requests: 42, inFlight: 2,
    };
    const userMessages: unknown[] = [];
    c.master.on('message', m => userMessages.push(m));
    const parentBefore = c.host.parentMessages.length;
    w1!.say({ action: 'egg-clutch:report', data: report });
    // a report with another version is ignored
    w2!.say({ action: 'egg-clutch:report', data: { ...report, v: 2, rss: 1 } });
    await flush();

    const res = await get(port, '/status');
    assert.equal(res.type, 'application/json; charset=utf-8');
    const status = JSON.parse(res.body);
    assert.deepEqual(dropUptime(status), dropUptime(c.master.status()));
    assert.deepEqual(Object.keys(status), ['master', 'agent', 'workers']);
    assert.deepEqual(dropUptime(status.master), { pid: 1000, uptimeMs: 0, state: 'ready' });
    assert.deepEqual(dropUptime(status.agent), { pid: 2001, state: 'started', uptimeMs: 0, restarts: 0, lastExit: null });
    assert.deepEqual(dropUptime(status.workers), [
      { id: 1, pid: 3001, state: 'listening', uptimeMs: 0, restarts: 0, lastExit: null, rss: 50_000_000, heapUsed: 7_000_000, elu: 0.25, eventLoopDelayP99Ms: 1.5, requests: 42, inFlight: 2 },
      { id: 2, pid: 3002, state: 'listening', uptimeMs: 0, restarts: 0, lastExit: null, rss: null, heapUsed: null, elu: null, eventLoopDelayP99Ms: null, requests: null, inFlight: null },
    ]);
    assert.ok(!res.body.includes('hunter2') && !res.body.includes('baseDir'), 'no option values');
    // the report is the master's own: no user listener, no other worker, not the parent saw it
    assert.deepEqual(userMessages, []);
    assert.equal(c.host.parentMessages.length, parentBefore);
    assert.equal(c.launcher.apps.some(w => w.received('egg-clutch:report').length > 0), false);
    assert.equal(c.launcher.agent!.received('egg-clutch:report').length, 0);
  });

  it('restarts and lastExit: per worker slot, and for the agent', async () => {
    const port = await detectPort();
    const c = await startFakeCluster({ options: { status: { port }, workers: 2, env: 'prod' } });
    clusters.push(c);
    const [w1] = c.launcher.apps;
    w1!.die(null, 'SIGKILL'); // a serving worker: replaced at once in production
    await flush();
    const replacement = c.launcher.apps[2]!;
    replacement.listen(7001);
    c.launcher.agent!.die(1, null); // the agent is restarted in every env
    await until(() => c.launcher.agents.length === 2, 'the agent restarts');
    const status = c.master.status()!;
    const byId = new Map(status.workers.map(w => [w.id, w]));
    assert.deepEqual([...byId.keys()], [2, 3]);
    assert.equal(byId.get(3)!.restarts, 1);
    assert.equal(byId.get(3)!.lastExit!.signal, 'SIGKILL');
    assert.equal(byId.get(3)!.lastExit!.code, null);
    assert.equal(byId.get(2)!.restarts, 0);
    assert.equal(status.agent.restarts, 1);
    assert.deepEqual({ ...status.agent.lastExit, at: 'x' }, { code: 1, signal: null, at: 'x' });
    assert.equal(status.agent.state, 'starting');
  });

  it('/livez turns 503 when the master cannot recover: an agent that is not restarted (limit 0), three checks later', async () => {
    const port = await detectPort();
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    try {
      const c = await startFakeCluster({ options: { status: { port }, workers: 1, env: 'local', restartPolicy: { limit: 0 } } });
      clusters.push(c);
      await until(() => c.logger.has('status server listening'), 'the status server listens');
      c.launcher.agent!.die(1, null);
      await flush();
      assert.ok(c.logger.has('agent_worker not restarted'));
      mock.timers.tick(20_000);
      assert.deepEqual(await get(port, '/livez'), { status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' }, 'two checks missed');
      mock.timers.tick(10_000);
      assert.deepEqual(await get(port, '/livez'),
        { status: 503, body: 'no agent for 3 exception checks in a row\n', type: 'text/plain; charset=utf-8' });
      assert.equal((await get(port, '/readyz')).status, 200, 'the app workers still serve');
    } finally {
      mock.timers.reset();
    }
  });

  it('/livez turns 503 when no app worker has listened for 30 s', async () => {
    const port = await detectPort();
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    try {
      const c = await startFakeCluster({ options: { status: { port }, workers: 1, env: 'local' } });
      clusters.push(c);
      await until(() => c.logger.has('status server listening'), 'the status server listens');
      c.launcher.apps[0]!.die(1, null); // local env: not reforked
      await flush();
      mock.timers.tick(29_000);
      assert.equal((await get(port, '/livez')).status, 200);
      assert.deepEqual(await get(port, '/readyz'), { status: 503, body: 'no app worker listening\n', type: 'text/plain; charset=utf-8' });
      mock.timers.tick(1000);
      const res = await get(port, '/livez');
      assert.equal(res.status, 503);
      assert.match(res.body, /^no app worker listening for 30000 ms/);
    } finally {
      mock.timers.reset();
    }
  });

  it('a status port in use is a start error: exit 1, nothing left running', async () => {
    const blocker = http.createServer();
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const c = createFakeCluster({ options: { status: { port } } });
      clusters.push(c);
      await assert.rejects(c.master.ready(), /status server cannot listen on 127\.0\.0\.1:\d+: port \d+ is in use by another process; stop it or choose another options\.status\.port/);
      assert.deepEqual(c.host.exits, [1]);
      assert.equal(c.launcher.liveApps().length + c.launcher.agents.filter(a => a.isAlive).length, 0);
    } finally {
      blocker.close();
    }
  });
});

describe('options.status / shutdownDelay at start', () => {
  for (const [name, options, env, pattern] of [
    ['status: true', { status: true }, {}, /options\.status must be an object \{ port, host\? \}/],
    ['status without a port', { status: { host: '0.0.0.0' } }, {}, /options\.status\.port must be a port number/],
    ['an unknown status key', { status: { port: 7002, path: '/x' } }, {}, /options\.status\.path is not a status server setting/],
    ['a bad status host', { status: { port: 7002, host: 'http://x' } }, {}, /options\.status\.host must be an IP address or a host name/],
    ['a negative shutdownDelay', { shutdownDelay: -5 }, {}, /options\.shutdownDelay must be a number of milliseconds from 0/],
    ['shutdownDelay "5s"', { shutdownDelay: '5s' }, {}, /options\.shutdownDelay must be a number of milliseconds/],
    ['EGG_CLUSTER_STATUS_PORT=70000', {}, { EGG_CLUSTER_STATUS_PORT: '70000' }, /environment variable EGG_CLUSTER_STATUS_PORT must be a port number from 1 to 65535 \(the master's status server\), got "70000"/],
    ['EGG_CLUSTER_STATUS_HOST with a space', {}, { EGG_CLUSTER_STATUS_PORT: '7002', EGG_CLUSTER_STATUS_HOST: 'local host' }, /EGG_CLUSTER_STATUS_HOST must be an IP address or a host name/],
    ['EGG_CLUSTER_SHUTDOWN_DELAY=soon', {}, { EGG_CLUSTER_SHUTDOWN_DELAY: 'soon' }, /EGG_CLUSTER_SHUTDOWN_DELAY must be a whole number of milliseconds/],
  ] as const) {
    it(`${name}: InvalidOptionError, nothing forked`, async () => {
      const c = createFakeCluster({ options: options as ClusterOptions, env: { ...env } });
      await assert.rejects(c.master.ready(), (err: Error) => err instanceof InvalidOptionError && pattern.test(err.message));
      await flush();
      assert.equal(c.launcher.agents.length + c.launcher.apps.length, 0);
    });
  }

  it('the env variables turn the server on and set the delay; options win over them', async () => {
    const c = createFakeCluster({ env: { EGG_CLUSTER_STATUS_PORT: '7010', EGG_CLUSTER_STATUS_HOST: '0.0.0.0', EGG_CLUSTER_SHUTDOWN_DELAY: '5000' }, options: { status: { port: await detectPort() } } });
    clusters.push(c);
    assert.equal(c.master.options.status!.host, '0.0.0.0', 'the host from the env when the option has none');
    assert.notEqual(c.master.options.status!.port, 7010);
    assert.equal(c.master.options.shutdownDelay, 5000);
    await until(() => c.logger.has('status server listening'), 'the status server listens');
  });
});

describe('shutdownDelay', () => {
  afterEach(() => mock.timers.reset());

  it('the drain starts only after the delay; the workers are untouched meanwhile', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const c = await startFakeCluster({ options: { shutdownDelay: 2000, workers: 2 } });
    c.host.signal('SIGTERM');
    await flush();
    assert.ok(c.logger.has('[master] shutdownDelay: app workers keep serving for 2000ms, then the drain starts', 'info'));
    mock.timers.tick(1999);
    await flush();
    assert.deepEqual(c.launcher.timeline.filter(e => e.startsWith('terminate')), []);
    assert.equal(c.master.closed, true, 'no refork, no reload: the close has begun');
    mock.timers.tick(1);
    await flush(6);
    assert.deepEqual(c.launcher.timeline.filter(e => e.startsWith('terminate')).map(e => e.split(' ')[1]), ['app#1', 'app#2', 'agent#1']);
    assert.deepEqual(c.host.exits, [0]);
  });

  it('a second signal during the delay is the forced exit (after the first second), as in any close', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const c = await startFakeCluster({ options: { shutdownDelay: 10_000, workers: 2 } });
    c.host.signal('SIGTERM');
    await flush();
    mock.timers.tick(500);
    c.host.signal('SIGTERM'); // within the first second: the same signal forwarded twice
    await flush();
    assert.deepEqual(c.host.exits, []);
    mock.timers.tick(1000);
    c.host.signal('SIGINT');
    await flush();
    assert.deepEqual(c.host.exits, [1]);
    assert.ok(c.launcher.apps.every(w => w.signals.includes('SIGKILL')));
    mock.timers.tick(10_000);
    await flush(6);
    assert.deepEqual(c.host.exits, [1], 'the end of the delay does nothing after the forced exit');
  });

  it('close() or a fatal error during the delay ends the delay at once (a fatal error exits 1)', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    for (const how of ['close', 'fatal'] as const) {
      const c = await startFakeCluster({ options: { shutdownDelay: 10_000, workers: 2 } });
      c.host.signal('SIGTERM');
      await flush();
      assert.deepEqual(c.launcher.timeline.filter(e => e.startsWith('terminate')), [], `${how}: the delay runs`);
      if (how === 'close') void c.master.close();
      else c.host.fatal(new Error('boom during the delay'));
      await flush(8);
      assert.deepEqual(c.launcher.timeline.filter(e => e.startsWith('terminate')).map(e => e.split(' ')[1]), ['app#1', 'app#2', 'agent#1'], how);
      assert.deepEqual(c.host.exits, [how === 'close' ? 0 : 1], how);
    }
  });

  it('a signal before the cluster is ready does not wait', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const c = createFakeCluster({ options: { shutdownDelay: 10_000 } });
    await flush();
    await agentStart(c);
    c.host.signal('SIGTERM');
    await flush(8);
    assert.deepEqual(c.host.exits, [0]);
    assert.ok(!c.logger.has('[master] shutdownDelay:'));
  });
});
