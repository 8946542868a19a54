import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import {
  agentStart, createFakeCluster, flush, startFakeCluster, type FakeCluster,
} from '../helpers/fake_launcher.js';

const PID_FILE = '/run/egg/master.pid';

/** Index in the timeline of the first entry starting with `prefix` (-1 if none). */
function at(c: FakeCluster, prefix: string): number {
  return c.launcher.timeline.findIndex(e => e.startsWith(prefix));
}

function lastAt(c: FakeCluster, prefix: string): number {
  let found = -1;
  c.launcher.timeline.forEach((e, i) => {
    if (e.startsWith(prefix)) found = i;
  });
  return found;
}

describe('shutdown on a signal', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('SIGTERM: logs the close in order, stops apps then the agent, exits 0', async () => {
    const c = await startFakeCluster({ options: { env: 'prod', pidFile: PID_FILE } });
    assert.deepEqual(c.host.pidFilesWritten, [PID_FILE]);
    c.logger.clear();
    c.host.signal('SIGTERM');
    await flush(5);

    const expected = [
      '[master] master is killed by signal SIGTERM, closing',
      '[master] send kill SIGTERM to app workers, will exit with code:0 after 5000ms',
      '[master] wait 5000ms',
      '[master] send kill SIGTERM to agent worker, will exit with code:0 after 5000ms',
      '[master] wait 5000ms',
      '[master] kill agent worker with signal SIGTERM',
      '[master] close done, exiting with code:0',
      '[master] exit with code:0',
    ];
    let from = -1;
    for (const line of expected) {
      const i = c.logger.entries.findIndex((e, n) => n > from && e.line === line);
      assert.ok(i > from, `"${line}" after the previous line\n${c.logger.lines().join('\n')}`);
      from = i;
    }
    assert.ok(c.logger.has(/^\[master\] system memory: total \d+, free \d+$/, 'info'));
    assert.ok(c.logger.has(/^\[master\] process info: heap_limit \d+, heap_used \d+$/, 'info'));
    assert.ok(c.logger.has('[master] exit with code:0', 'info'));
    assert.deepEqual(c.host.exits, [0]);
    assert.deepEqual(c.host.pidFilesRemoved, [PID_FILE]);
    assert.equal(c.master.closed, true);
  });

  for (const signal of ['SIGINT', 'SIGQUIT', 'SIGHUP'] as const) {
    it(`${signal} closes the same way`, async () => {
      const c = await startFakeCluster();
      c.host.signal(signal);
      await flush(5);
      assert.ok(c.logger.has(`[master] master is killed by signal ${signal}, closing`));
      assert.deepEqual(c.host.exits, [0]);
      for (const w of [...c.launcher.apps, c.launcher.agent!]) assert.equal(w.isAlive, false);
    });
  }

  it('disables refork and terminates every app (EGG_APP_CLOSE_TIMEOUT) before the agent (EGG_AGENT_CLOSE_TIMEOUT)', async () => {
    const c = await startFakeCluster({
      options: { env: 'prod' },
      env: { EGG_APP_CLOSE_TIMEOUT: '3000', EGG_AGENT_CLOSE_TIMEOUT: '4000', EGG_MASTER_CLOSE_TIMEOUT: '9000' },
      terminateMode: 'hang',
    });
    c.launcher.timeline.length = 0;
    c.host.signal('SIGTERM');
    await flush(5);
    for (const app of c.launcher.apps) {
      assert.deepEqual(app.terminateCalls, [3000], `${app.label} terminated with the app timeout`);
      const off = c.launcher.timeline.indexOf(`setRefork ${app.label} false`);
      const term = c.launcher.timeline.indexOf(`terminate ${app.label} 3000`);
      assert.ok(off >= 0 && off < term, `${app.label}: refork off before terminate`);
    }
    const agent = c.launcher.agent!;
    assert.deepEqual(agent.terminateCalls, [], 'the agent waits for the apps');
    assert.ok(c.logger.has('send kill SIGTERM to app workers, will exit with code:0 after 3000ms'));

    for (const app of c.launcher.apps.slice(0, 3)) app.die(0);
    await flush(5);
    assert.deepEqual(agent.terminateCalls, [], 'still one app running');
    c.launcher.apps[3]!.die(0);
    await flush(5);
    assert.deepEqual(agent.terminateCalls, [4000]);
    assert.ok(lastAt(c, 'exit app#') < at(c, 'terminate agent#1'));
    assert.ok(c.logger.has('send kill SIGTERM to agent worker, will exit with code:0 after 4000ms'));
    assert.deepEqual(c.host.exits, []);
    agent.die(0);
    await flush(5);
    assert.deepEqual(c.host.exits, [0]);
    assert.equal(c.launcher.apps.length, 4, 'nothing reforked');
  });

  it('EGG_MASTER_CLOSE_TIMEOUT is the fallback for both phases', async () => {
    const c = await startFakeCluster({ env: { EGG_MASTER_CLOSE_TIMEOUT: '1234' } });
    await c.master.close();
    for (const app of c.launcher.apps) assert.deepEqual(app.terminateCalls, [1234]);
    assert.deepEqual(c.launcher.agent!.terminateCalls, [1234]);
  });

  it('workers that ignore SIGTERM get SIGKILL from terminate() and the close still ends with 0', async () => {
    const c = await startFakeCluster({ terminateMode: 'escalate' });
    await c.master.close();
    for (const w of [...c.launcher.apps, c.launcher.agent!]) assert.deepEqual(w.signals, ['SIGTERM', 'SIGKILL']);
    assert.deepEqual(c.host.exits, [0]);
  });

  it('a duplicate signal within 1 s is ignored', async () => {
    const c = await startFakeCluster({ terminateMode: 'hang' });
    c.host.signal('SIGTERM');
    await flush();
    mock.timers.tick(999);
    c.host.signal('SIGTERM');
    c.host.signal('SIGINT');
    await flush();
    assert.deepEqual(c.host.exits, []);
    for (const w of c.launcher.apps) assert.deepEqual(w.signals, ['SIGTERM']);
    assert.equal(c.logger.lines().filter(l => l.includes('master is killed by signal')).length, 1);
    assert.ok(!c.logger.has('again while closing'));
  });

  it('a second signal more than 1 s later kills the workers (SIGKILL) and exits 1', async () => {
    const c = await startFakeCluster({ terminateMode: 'hang' });
    c.host.signal('SIGTERM');
    await flush();
    mock.timers.tick(1500);
    c.host.signal('SIGINT');
    await flush(5);
    assert.ok(c.logger.has('[master] receive signal SIGINT again while closing, killing workers now', 'warn'));
    for (const w of c.launcher.apps) assert.deepEqual(w.signals, ['SIGTERM', 'SIGKILL'], w.label);
    assert.ok(c.launcher.agent!.signals.includes('SIGKILL'));
    assert.equal(c.host.exits[0], 1);
    assert.ok(c.logger.has('[master] exit with code:1', 'error'));
  });

  it('a forced exit SIGKILLs every worker with its descendants (forceKill), not only the workers', async () => {
    const c = await startFakeCluster({ terminateMode: 'hang' });
    c.host.signal('SIGTERM');
    await flush();
    mock.timers.tick(1500);
    c.host.signal('SIGTERM');
    await flush(5);
    for (const w of [...c.launcher.apps, c.launcher.agent!]) {
      assert.ok(c.launcher.timeline.includes(`forceKill ${w.label}`), `${w.label} force-killed`);
    }
  });

  it('a signal during the cleanup of a failed start is the first signal, not a forced second one', async () => {
    const c = createFakeCluster({ terminateMode: 'hang' });
    await flush();
    await agentStart(c);
    c.launcher.apps[0]!.die(1); // the start failed: the others are being stopped (they hang)
    await flush();
    mock.timers.tick(50);
    c.host.signal('SIGTERM');
    await flush(5);
    assert.ok(!c.logger.has('again while closing'), 'not treated as a second signal');
    assert.deepEqual(c.host.exits, [], 'the cleanup goes on');
    for (const w of c.launcher.liveApps()) assert.deepEqual(w.signals, ['SIGTERM'], `${w.label}: no SIGKILL`);
    for (const w of c.launcher.liveApps()) w.die(0);
    c.launcher.agent!.die(0);
    await flush(5);
    assert.deepEqual(c.host.exits, [1]);
  });

  it('the host is disposed after the exit (an embedded master stops listening to signals and its parent)', async () => {
    const c = await startFakeCluster();
    await c.master.close();
    assert.deepEqual(c.host.exits, [0]);
    assert.equal(c.host.disposed, true);
    assert.equal(c.launcher.pool!.disposed, true, 'and its app pool');
  });

  it('a forced exit is the only exit', async () => {
    const c = await startFakeCluster({ terminateMode: 'hang' });
    c.host.signal('SIGTERM');
    await flush();
    mock.timers.tick(1500);
    c.host.signal('SIGTERM');
    await flush(10);
    assert.deepEqual(c.host.exits, [1]);
  });

  it('an uncaught error in the master closes with exit code 1', async () => {
    const c = await startFakeCluster();
    c.host.fatal(new TypeError('cannot read x of undefined'));
    await flush(5);
    assert.ok(c.logger.has('[master] uncaught error in the master, closing with code:1', 'error'));
    assert.ok(c.logger.errors('TypeError').length === 1);
    assert.deepEqual(c.host.exits, [1]);
    for (const w of [...c.launcher.apps, c.launcher.agent!]) assert.equal(w.isAlive, false, `${w.label} stopped`);
    assert.ok(c.logger.has('[master] close done, exiting with code:1'));
  });

  it('an uncaught error during startup closes with exit code 1 too', async () => {
    const c = createFakeCluster();
    await flush();
    c.host.fatal('a thrown string');
    await flush(5);
    assert.deepEqual(c.host.exits, [1]);
    assert.equal(c.launcher.pools.length, 0);
  });
});

describe('after close begins', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('no refork, no agent restart, no "died" errors or parent messages', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' }, terminateMode: 'hang' });
    c.host.signal('SIGTERM');
    await flush();
    c.launcher.apps[0]!.die(1); // dies on its own while closing
    c.launcher.agent!.die(1); // so does the agent
    await flush();
    mock.timers.tick(5000);
    await flush();
    assert.equal(c.launcher.pool!.reforks, 0);
    assert.equal(c.launcher.apps.length, 4);
    assert.equal(c.launcher.agents.length, 1);
    assert.equal(c.logger.errors('AppWorkerDiedError').length, 0);
    assert.equal(c.logger.errors('AgentWorkerDiedError').length, 0);
    assert.equal(c.host.parentMessagesOf('app-worker-died').length, 0);
    assert.equal(c.host.parentMessagesOf('agent-worker-died').length, 0);
    for (const app of c.launcher.apps.slice(1)) app.die(0);
    await flush(5);
    assert.deepEqual(c.host.exits, [0], 'the dead agent is not waited for');
  });

  it('a worker forked after close is stopped at once', async () => {
    const c = await startFakeCluster();
    const closing = c.master.close();
    c.launcher.pool!.forkOne();
    await flush(5);
    await closing;
    const late = c.launcher.apps[4]!;
    assert.deepEqual(late.terminateCalls, [0]);
    assert.equal(c.master.registry.app(late), undefined);
  });

  it('production: a worker forked after close is stopped without being reforked', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    const closing = c.master.close();
    c.launcher.pool!.forkOne();
    await flush(5);
    await closing;
    await flush(5);
    assert.equal(c.launcher.pool!.reforks, 0, `reforked ${c.launcher.pool!.reforks} times`);
    assert.equal(c.launcher.apps.length, 5);
  });

  it('a listening report or agent-start after close changes nothing', async () => {
    const c = createFakeCluster({ options: { workers: 1 } });
    await flush();
    await agentStart(c);
    c.launcher.agent!.terminateMode = 'hang';
    c.launcher.apps[0]!.terminateMode = 'hang';
    void c.master.close();
    c.launcher.apps[0]!.listen(7001);
    await flush();
    assert.equal(c.master.isStarted, false);
    assert.equal(c.host.parentMessagesOf('egg-ready').length, 0);
  });

  it('close() before detectPort resolves forks nothing and exits 0', async () => {
    const c = createFakeCluster();
    await c.master.close();
    await flush();
    assert.equal(c.launcher.agents.length, 0);
    assert.deepEqual(c.host.exits, [0]);
  });

  it('SIGTERM between agent-start and the app forks: the forks are stopped, exit 0', async () => {
    const c = createFakeCluster();
    await flush();
    c.launcher.agent!.say({ action: 'agent-start', to: 'master' });
    c.host.signal('SIGTERM'); // the 'fork' events are still on the next tick
    await flush(5);
    assert.equal(c.launcher.apps.length, 4);
    for (const app of c.launcher.apps) assert.deepEqual(app.terminateCalls, [0]);
    assert.deepEqual(c.host.exits, [0]);
  });

  it('production: SIGTERM between agent-start and the app forks does not start a refork loop', async () => {
    const c = createFakeCluster({ options: { env: 'prod' } });
    await flush();
    c.launcher.agent!.say({ action: 'agent-start', to: 'master' });
    c.host.signal('SIGTERM');
    await flush(10);
    assert.equal(c.launcher.pool!.reforks, 0, `reforked ${c.launcher.pool!.reforks} times`);
    assert.equal(c.launcher.apps.length, 4);
    assert.deepEqual(c.host.exits, [0]);
  });

  it('close() twice is one close and one exit', async () => {
    const c = await startFakeCluster();
    const a = c.master.close();
    const b = c.master.close();
    assert.equal(a, b);
    await a;
    assert.deepEqual(c.host.exits, [0]);
    for (const app of c.launcher.apps) assert.equal(app.terminateCalls.length, 1);
  });

  it('an app terminate() that rejects is logged and the agent is still stopped', async () => {
    const c = await startFakeCluster();
    const bad = c.launcher.apps[0]!;
    bad.terminate = () => Promise.reject(new Error('EPERM'));
    await c.master.close();
    assert.ok(c.logger.has(/^\[master\] app workers exit error: .*EPERM/s, 'error'));
    assert.deepEqual(c.launcher.agent!.terminateCalls, [5000]);
    assert.deepEqual(c.host.exits, [0]);
  });
});
