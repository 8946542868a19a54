import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { AgentWorkerDiedError, AppWorkerDiedError, ClusterError } from '../../src/errors.js';
import {
  agentStart, createFakeCluster, flush, PORT, startFakeCluster, type FakeCluster,
} from '../helpers/fake_launcher.js';

function settled(c: FakeCluster): Promise<{ ok: true } | { ok: false; err: unknown }> {
  return c.master.ready().then(() => ({ ok: true as const }), (err: unknown) => ({ ok: false as const, err }));
}

describe('app worker dies during startup', () => {
  for (const env of ['prod', 'local']) {
    it(`ends the master with code 1 and rejects ready() (env ${env}), without refork`, async () => {
      const c = createFakeCluster({ options: { env } });
      const result = settled(c);
      await flush();
      await agentStart(c);
      const [a, b] = c.launcher.apps;
      a!.listen(PORT);
      await flush();
      b!.die(1);
      await flush();
      assert.ok(c.logger.has('[master] app_worker#2:3002 start fail, exiting with code:1', 'error'));
      assert.deepEqual(c.host.exits, [1]);
      assert.equal(c.launcher.apps.length, 4, 'no refork during startup');
      assert.equal(c.host.parentMessagesOf('app-worker-died').length, 0, 'not a death after launch');
      assert.equal(c.host.parentMessagesOf('egg-ready').length, 0);
      // the others are stopped
      for (const w of [c.launcher.agent!, ...c.launcher.apps]) assert.equal(w.isAlive, false, `${w.label} stopped`);
      const r = await result;
      assert.ok(!r.ok && r.err instanceof ClusterError && r.err.code === 'ERR_CLUSTER_APP_START');
      assert.ok(c.logger.has('[master] exit with code:1', 'error'));
    });
  }

  it('a worker that dies before the agent restarts nothing and exits once', async () => {
    const c = createFakeCluster({ options: { workers: 1, env: 'prod' } });
    void settled(c);
    await flush();
    await agentStart(c);
    c.launcher.apps[0]!.die(null, 'SIGKILL');
    c.launcher.agent!.die(1);
    await flush();
    assert.deepEqual(c.host.exits, [1]);
    assert.equal(c.launcher.agents.length, 1);
  });
});

describe('app worker dies after launch', () => {
  it('production: logs AppWorkerDiedError, updates the agent, tells the parent, reforks', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    const agent = c.launcher.agent!;
    const dead = c.launcher.apps[1]!;
    const agentPidsBefore = agent.received('egg-pids').length;
    dead.die(1);
    await flush();

    const errors = c.logger.errors('AppWorkerDiedError');
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof AppWorkerDiedError);
    assert.ok(c.logger.has(
      'nodejs.AppWorkerDiedError: [master] app_worker#2:3002 died (code: 1, signal: null, suicide: false, state: dead), current workers: ["1","3","4"]',
      'error'));
    const pids = agent.received('egg-pids');
    assert.equal(pids.length, agentPidsBefore + 1);
    assert.deepEqual(pids[pids.length - 1]!.data, [3001, 3003, 3004]);
    assert.equal(c.host.parentMessagesOf('app-worker-died').length, 1);
    assert.deepEqual(c.host.exits, []);

    // cfork reforked it (refork on for that worker since all had started)
    assert.equal(c.launcher.pool!.reforks, 1);
    assert.equal(c.launcher.apps.length, 5);
    const fresh = c.launcher.apps[4]!;
    assert.ok(c.master.registry.app(fresh), 'the new worker is registered');
    assert.equal(c.master.registry.app(dead), undefined, 'the dead one is not');
    assert.equal(c.launcher.pool!.reforkEnabled.get(fresh), true, 'after launch a refork is reforkable from its fork (the restart policy bounds a boot loop)');
  });

  it('production: the reforked worker gets egg-ready alone once it listens, and refork back on', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    const healthy = [c.launcher.apps[0]!, c.launcher.apps[2]!, c.launcher.apps[3]!];
    c.launcher.apps[1]!.die(1);
    await flush();
    const fresh = c.launcher.apps[4]!;
    fresh.listen(PORT);
    await flush();

    const ready = fresh.received('egg-ready');
    assert.equal(ready.length, 1);
    assert.equal(ready[0]!.receiverWorkerId, String(fresh.workerId));
    assert.equal((ready[0]!.data as { workers: number }).workers, 4);
    for (const w of healthy) assert.equal(w.received('egg-ready').length, 1, `${w.label} not told again`);
    assert.equal(c.host.parentMessagesOf('egg-ready').length, 1, 'the parent is not told again');
    assert.deepEqual(fresh.received('egg-pids').map(m => m.data), [[2001]]);
    const agentPids = c.launcher.agent!.received('egg-pids');
    assert.deepEqual(agentPids[agentPids.length - 1]!.data, [3001, 3003, 3004, 3005]);
    assert.equal(c.launcher.pool!.reforkEnabled.get(fresh), true);
    assert.ok(c.logger.has(/app_worker#5:3005 started at 7001, remain 0/));
  });

  it('production: a refork that dies before listening is reforked again, after the backoff (the slot is never given up)', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    try {
      const c = await startFakeCluster({ options: { env: 'prod' } });
      mock.timers.tick(5000); // the workers have served for 5 s
      c.launcher.apps[0]!.die(null, 'SIGKILL');
      await flush();
      assert.equal(c.launcher.apps.length, 5, 'a serving worker is replaced at once');
      const fresh = c.launcher.apps[4]!;
      fresh.die(1); // dies at boot: the first quick death of its slot, reforked at once
      await flush();
      assert.equal(c.launcher.apps.length, 6);
      c.launcher.apps[5]!.die(1); // the second one in a row: backoff 1000 ms
      await flush();
      assert.equal(c.launcher.apps.length, 6, 'not before the backoff');
      assert.ok(c.logger.has(/\[master\] app_worker#6:3006 exit \(code: 1, signal: null\), refork in 1000ms \(2 quick deaths in a row\)/));
      mock.timers.tick(999);
      await flush();
      assert.equal(c.launcher.apps.length, 6);
      mock.timers.tick(1);
      await flush();
      assert.equal(c.launcher.apps.length, 7, 'reforked when the backoff ends');
      assert.deepEqual(c.host.exits, [], 'a death after launch never ends the master');
      assert.equal(c.host.parentMessagesOf('app-worker-died').length, 3);
      await c.master.close();
    } finally {
      mock.timers.reset();
    }
  });

  it('production: a serving worker killed again and again is replaced at once every time (not a crash loop)', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    try {
      const c = await startFakeCluster({ options: { env: 'prod', workers: 2 } });
      for (let i = 0; i < 8; i++) {
        mock.timers.tick(1500); // each worker listened 1.5 s ago or more: serving
        const victim = c.launcher.liveApps()[0]!;
        const before = c.launcher.apps.length;
        victim.die(null, 'SIGKILL');
        await flush();
        assert.equal(c.launcher.apps.length, before + 1, `kill ${i + 1}: replaced at once`);
        c.launcher.apps.at(-1)!.listen(PORT);
        await flush();
        assert.equal(c.master.registry.listeningWorkerIds().length, 2);
      }
      assert.equal(c.logger.lines().filter(l => /refork in \d+ms/.test(l)).length, 0, 'no backoff');
      await c.master.close();
    } finally {
      mock.timers.reset();
    }
  });

  it('production: a worker that disconnects (uncaught exception) is replaced at once, and its exit later forks no other', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    try {
      const c = await startFakeCluster({ options: { env: 'prod', workers: 1 } });
      mock.timers.tick(5000);
      const old = c.launcher.apps[0]!;
      old.disconnect(); // graceful: server closed, finishing its requests
      await flush();
      assert.equal(c.launcher.apps.length, 2, 'the replacement is forked on disconnect');
      assert.equal(old.isAlive, true, 'the old one may still finish its requests');
      const fresh = c.launcher.apps[1]!;
      fresh.listen(PORT);
      await flush();
      assert.deepEqual(c.master.registry.listeningWorkerIds(), [fresh.workerId]);
      mock.timers.tick(30_000);
      old.die(0); // it exits once its requests are done
      await flush();
      assert.equal(c.launcher.apps.length, 2, 'no second replacement');
      assert.equal(c.host.parentMessagesOf('app-worker-died').length, 1);
      assert.equal(c.launcher.pool!.reforks, 1);
      await c.master.close();
    } finally {
      mock.timers.reset();
    }
  });

  it('production: a close cancels a refork that waits for its backoff', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    try {
      const c = await startFakeCluster({ options: { env: 'prod', workers: 1 } });
      c.launcher.apps[0]!.die(1); // quick death 1 (listened < 1 s ago): at once
      await flush();
      c.launcher.apps[1]!.die(1); // quick death 2: in 1000 ms
      await flush();
      assert.equal(c.launcher.apps.length, 2);
      const closing = c.master.close();
      mock.timers.tick(2000);
      await closing;
      await flush();
      assert.equal(c.launcher.apps.length, 2, 'no fork once the close began');
      assert.equal(c.launcher.pool!.disposed, true);
    } finally {
      mock.timers.reset();
    }
  });

  it('production: after a failed reload, the old workers are reforked again when they die', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    try {
      const c = await startFakeCluster({ options: { env: 'prod', workers: 1 } });
      c.host.parentSend({ action: 'reload-worker', to: 'master' });
      await flush();
      const fresh = c.launcher.apps.at(-1)!;
      fresh.die(1); // the reload's new worker cannot start: the reload stops
      await flush();
      assert.ok(c.logger.has('[master] reload stopped: a new app worker did not start; the old workers keep serving', 'error'));
      mock.timers.tick(5000);
      const old = c.launcher.apps[0]!;
      old.die(null, 'SIGKILL');
      await flush();
      assert.equal(c.launcher.apps.length, 3, 'the old worker is reforked');
      assert.equal(c.launcher.pool!.reforked.at(-1), old);
      await c.master.close();
    } finally {
      mock.timers.reset();
    }
  });

  it('production: a worker forked by a reload that dies before listening is not reforked', async () => {
    const c = await startFakeCluster({ options: { env: 'prod', workers: 1 } });
    c.host.parentSend({ action: 'reload-worker', to: 'master' });
    await flush();
    const fresh = c.launcher.apps.at(-1)!;
    assert.notEqual(fresh, c.launcher.apps[0]);
    fresh.die(1);
    await flush();
    assert.equal(c.launcher.apps.length, 2, 'no refork of the failed reload worker');
    assert.equal(c.launcher.apps[0]!.isAlive, true, 'the old worker keeps serving');
  });

  for (const env of ['local', 'unittest']) {
    it(`${env}: no refork, the master keeps running with fewer workers`, async () => {
      const c = await startFakeCluster({ options: { env } });
      c.launcher.apps[0]!.die(1);
      await flush();
      assert.equal(c.launcher.apps.length, 4);
      assert.equal(c.master.registry.apps.size, 3);
      assert.equal(c.host.parentMessagesOf('app-worker-died').length, 1);
      assert.deepEqual(c.host.exits, []);
      assert.equal(c.master.closed, false);
    });
  }

  it('debug mode: a worker killed by SIGKILL (the debugger) closes the cluster cleanly', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    try {
      const c = await startFakeCluster({ execArgv: ['--inspect'] });
      c.launcher.apps[0]!.die(null, 'SIGKILL');
      await flush();
      assert.ok(c.logger.has('[master] worker kill by debugger, exiting...', 'error'));
      assert.equal(c.logger.errors('AppWorkerDiedError').length, 0);
      mock.timers.tick(10);
      await flush(5);
      assert.deepEqual(c.host.exits, [0]);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('agent dies', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval'] }));
  afterEach(() => mock.timers.reset());

  it('D7: a dozen agent restarts add no listener to the master and no warning', async () => {
    const c = await startFakeCluster({ options: { restartPolicy: { stableMs: 0 } } });
    const events = ['agent-start', 'app-start', 'agent-exit', 'app-exit', 'message'] as const;
    const before = events.map(e => c.master.listenerCount(e));
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => { warnings.push(w); };
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 12; i++) {
        c.launcher.agent!.die(1);
        await flush();
        mock.timers.tick(1000);
        await flush();
        await agentStart(c);
      }
    } finally {
      process.removeListener('warning', onWarning);
    }
    assert.equal(c.launcher.agents.length, 13);
    assert.deepEqual(events.map(e => c.master.listenerCount(e)), before);
    // each agent handle carries only its own listeners
    for (const agent of c.launcher.agents) assert.ok(agent.listenerCount('message') <= 1);
    assert.deepEqual(warnings.map(w => w.name), []);
  });

  it('during startup (before agent-start): exit 1, no app forked', async () => {
    const c = createFakeCluster();
    const result = settled(c);
    await flush();
    c.launcher.agent!.die(1);
    await flush();
    assert.ok(c.logger.has('[master] agent_worker#1:2001 start fail, exiting with code:1', 'error'));
    assert.deepEqual(c.host.exits, [1]);
    assert.equal(c.launcher.pools.length, 0);
    const r = await result;
    assert.ok(!r.ok && r.err instanceof ClusterError && r.err.code === 'ERR_CLUSTER_AGENT_START');
    mock.timers.tick(5000);
    await flush();
    assert.equal(c.launcher.agents.length, 1, 'no restart for a start failure');
  });

  it('during startup (after agent-start, apps not listening yet): exit 1, apps stopped', async () => {
    const c = createFakeCluster();
    void settled(c);
    await flush();
    await agentStart(c);
    c.launcher.agent!.die(1);
    await flush();
    assert.deepEqual(c.host.exits, [1]);
    for (const w of c.launcher.apps) assert.equal(w.isAlive, false);
    assert.deepEqual(c.launcher.apps.map(w => w.terminateCalls.length), [1, 1, 1, 1]);
  });

  it('after launch: logs, tells apps and parent, restarts at once (no fixed 1 s wait)', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    const agent = c.launcher.agent!;
    agent.die(null, 'SIGKILL');
    await flush();
    assert.equal(c.logger.errors('AgentWorkerDiedError').length, 1);
    assert.ok(c.logger.errors('AgentWorkerDiedError')[0] instanceof AgentWorkerDiedError);
    assert.ok(c.logger.has('nodejs.AgentWorkerDiedError: [master] agent_worker#1:2001 died (code: null, signal: SIGKILL)', 'error'));
    for (const app of c.launcher.apps) {
      const pids = app.received('egg-pids');
      assert.deepEqual(pids[pids.length - 1]!.data, [], `${app.label} learns the agent is gone`);
    }
    assert.equal(c.host.parentMessagesOf('agent-worker-died').length, 1);
    assert.ok(c.logger.has('[master] try to start a new agent_worker after 0s ...'));
    assert.deepEqual(c.host.exits, []);

    mock.timers.tick(0);
    await flush();
    assert.equal(c.launcher.agents.length, 2, 'restarted on the next turn of the event loop');
    assert.ok(c.logger.has('[master] new agent_worker starting...', 'info'));
    assert.ok(c.logger.has('[master] agent_worker#2:2002 start with clusterPort:17001'));
    assert.equal(c.launcher.pools.length, 1, 'no new app pool');
  });

  it('the restarted agent gets egg-ready and the listening pids when it starts; apps get its pid', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    c.launcher.agent!.die(1);
    await flush();
    mock.timers.tick(1000);
    await flush();
    const fresh = c.launcher.agents[1]!;
    assert.equal(fresh.received('egg-ready').length, 0, 'not before it starts');
    await agentStart(c, fresh);
    const ready = fresh.received('egg-ready');
    assert.equal(ready.length, 1);
    assert.equal((ready[0]!.data as { workers: number }).workers, 4);
    assert.deepEqual(fresh.received('egg-pids').map(m => m.data), [[3001, 3002, 3003, 3004]]);
    for (const app of c.launcher.apps) {
      const pids = app.received('egg-pids');
      assert.deepEqual(pids[pids.length - 1]!.data, [2002], `${app.label} learns the new agent pid`);
      assert.equal(app.received('agent-start').length, 1, `${app.label} told the agent (re)started`);
      assert.equal(app.received('egg-ready').length, 1, `${app.label} not told egg-ready again`);
    }
    assert.equal(c.host.parentMessagesOf('egg-ready').length, 1);
    assert.ok(c.logger.has(/agent_worker#2:2002 started \(\d+ms\)/));
    assert.equal(c.master.registry.agentStarted, true);
  });

  it('messages are routed to the restarted agent by its new pid', async () => {
    const c = await startFakeCluster();
    c.launcher.agent!.die(1);
    await flush();
    mock.timers.tick(1000);
    await flush();
    const fresh = c.launcher.agents[1]!;
    await agentStart(c, fresh);
    c.launcher.apps[0]!.say({ action: 'hi', receiverPid: '2002' });
    c.launcher.apps[0]!.say({ action: 'old', receiverPid: '2001' });
    await flush();
    assert.equal(fresh.received('hi').length, 1);
    assert.equal(fresh.received('old').length, 0);
  });

  it('close() during the 1 s wait: no new agent (D8)', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    c.launcher.agent!.die(1);
    await flush();
    const closing = c.master.close();
    mock.timers.tick(1000);
    await flush();
    await closing;
    mock.timers.tick(5000);
    await flush();
    assert.equal(c.launcher.agents.length, 1);
    assert.ok(!c.logger.has('new agent_worker starting'));
    assert.deepEqual(c.host.exits, [0]);
  });

  it('a signal during the 1 s wait: no new agent', async () => {
    const c = await startFakeCluster();
    c.launcher.agent!.die(1);
    await flush();
    c.host.signal('SIGTERM');
    mock.timers.tick(2000);
    await flush();
    assert.equal(c.launcher.agents.length, 1);
    assert.deepEqual(c.host.exits, [0]);
  });

  it('agent deaths after launch never end the master by themselves, and quick ones back off (local env)', async () => {
    const c = await startFakeCluster();
    // quick deaths in a row: the first at once, then 1 s, then the backoff doubles (2 s)
    for (const delay of [0, 1000, 2000]) {
      c.launcher.agent!.die(1);
      await flush();
      assert.ok(c.logger.has(`[master] try to start a new agent_worker after ${delay / 1000}s ...`));
      const before = c.launcher.agents.length;
      if (delay > 0) {
        mock.timers.tick(delay - 1);
        await flush();
        assert.equal(c.launcher.agents.length, before, `not before ${delay} ms`);
      }
      mock.timers.tick(delay > 0 ? 1 : 0);
      await flush();
      assert.equal(c.launcher.agents.length, before + 1, `restarted after exactly ${delay} ms`);
    }
    assert.equal(c.launcher.agents.length, 4);
    assert.deepEqual(c.host.exits, []);
    assert.equal(c.host.parentMessagesOf('agent-worker-died').length, 3);
  });
});

describe('worker error events', () => {
  it('an agent error (spawn/IPC failure) is logged as ClusterAgentWorkerError, not thrown', async () => {
    const c = await startFakeCluster();
    assert.doesNotThrow(() => c.launcher.agent!.emit('error', new Error('spawn EAGAIN')));
    const [err] = c.logger.errors('ClusterAgentWorkerError');
    assert.ok(err);
    assert.equal(err.message, 'Got agent worker error: spawn EAGAIN');
    assert.equal((err as Error & { id?: number }).id, 1);
    assert.equal((err as Error & { workerId?: number }).workerId, 2001);
    assert.equal((err as Error & { status?: string }).status, 'started');
    assert.deepEqual(c.host.exits, []);
  });

  it('an app worker error is logged, not thrown', async () => {
    const c = await startFakeCluster();
    assert.doesNotThrow(() => c.launcher.apps[0]!.emit('error', new Error('EPIPE')));
    assert.ok(c.logger.has('nodejs.Error: EPIPE', 'error'));
    assert.deepEqual(c.host.exits, []);
  });

  it('an app worker disconnect is logged with its state', async () => {
    const c = await startFakeCluster({ options: { env: 'local' } });
    c.launcher.apps[1]!.disconnect();
    await flush();
    assert.ok(c.logger.has('[master] app_worker#2:3002 disconnect, suicide: false, state: disconnected, current workers: ["1","2","3","4"]', 'info'));
  });
});
