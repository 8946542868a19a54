import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  agentStart, createFakeCluster, flush, PORT, startFakeCluster, type FakeCluster, type FakeWorker,
} from '../helpers/fake_launcher.js';

function liveRegistered(c: FakeCluster): FakeWorker[] {
  return c.launcher.apps.filter(w => w.isAlive && c.master.registry.app(w));
}

function listening(c: FakeCluster): number {
  return c.master.registry.listeningWorkerIds().length;
}

/** Let each freshly forked worker of the reload listen, one at a time, checking the bounds on the way. */
async function driveReload(c: FakeCluster, workers: number): Promise<{ maxLive: number; minListening: number }> {
  let maxLive = 0;
  let minListening = Infinity;
  for (let guard = 0; guard < 20; guard++) {
    await flush();
    maxLive = Math.max(maxLive, liveRegistered(c).length);
    minListening = Math.min(minListening, listening(c));
    const starting = liveRegistered(c).find(w => c.master.registry.app(w)?.state === 'starting');
    if (!starting) break;
    starting.listen(PORT);
  }
  await flush();
  assert.ok(c.logger.has(`[master] reload done, ${workers} workers`), c.logger.lines().join('\n'));
  return { maxLive, minListening };
}

describe('rolling reload (reload-worker)', () => {
  it('surge 1: replaces every worker one by one, never below `workers` listening, at most one extra', async () => {
    const c = await startFakeCluster({ options: { workers: 3, reload: { surge: 1 } } });
    const old = [...c.launcher.apps];
    let emitted = 0;
    c.master.on('reload-worker', () => emitted++);
    c.host.parentSend({ action: 'reload-worker' });
    await flush();
    assert.equal(emitted, 1);
    assert.ok(c.logger.has('[master] reload 3 workers...'));
    assert.equal(c.launcher.apps.length, 4, 'one new worker first');
    assert.ok(old.every(w => w.isAlive), 'no old worker stopped before the new one listens');

    const { maxLive, minListening } = await driveReload(c, 3);
    assert.equal(maxLive, 4);
    assert.ok(minListening >= 3, `listening dropped to ${minListening}`);
    assert.ok(old.every(w => !w.isAlive), 'every old worker replaced');
    assert.equal(liveRegistered(c).length, 3);
    assert.equal(listening(c), 3);
    for (const w of old) assert.equal(w.terminateCalls.length, 1);
    // a replaced worker did not "die"
    assert.equal(c.logger.errors('AppWorkerDiedError').length, 0);
    assert.equal(c.host.parentMessagesOf('app-worker-died').length, 0);
    assert.deepEqual(c.host.exits, []);
    // each new worker got egg-ready, addressed to it alone
    for (const w of c.launcher.apps.slice(3)) {
      assert.deepEqual(w.received('egg-ready').map(m => m.receiverWorkerId), [String(w.workerId)]);
    }
    const agentPids = c.launcher.agent!.received('egg-pids');
    assert.deepEqual(agentPids[agentPids.length - 1]!.data, c.launcher.apps.slice(3).map(w => w.workerId));
  });

  it('outside production the default surge is every worker: all replacements boot at once, each old one drains when its own replacement listens', async () => {
    const c = await startFakeCluster({ options: { workers: 4 } });
    const old = [...c.launcher.apps];
    c.host.parentSend({ action: 'reload-worker' });
    await flush();
    assert.equal(c.launcher.apps.length, 8, 'four replacements forked at once');
    assert.ok(old.every(w => w.isAlive), 'no old worker stopped before a replacement listens');
    const fresh = c.launcher.apps.slice(4);
    fresh[0]!.listen(PORT);
    await flush();
    assert.equal(old.filter(w => !w.isAlive).length, 1, 'one replacement listens: one old worker drains');
    assert.equal(listening(c), 4, 'never below `workers` listening');
    for (const w of fresh.slice(1)) w.listen(PORT);
    await flush(5);
    assert.ok(old.every(w => !w.isAlive), 'every old worker replaced');
    assert.equal(liveRegistered(c).length, 4);
    assert.ok(c.logger.has('[master] reload done, 4 workers'));
  });

  for (const [env, surge] of [['prod', 1], ['unittest', 3]] as const) {
    it(`the default surge in env ${env} is ${surge}`, async () => {
      const c = await startFakeCluster({ options: { workers: 3, env } });
      assert.deepEqual(c.master.options.reload, { surge });
      c.host.parentSend({ action: 'reload-worker' });
      await flush();
      assert.equal(c.launcher.apps.length, 3 + surge);
      await c.master.close();
    });
  }

  it('surge 2 of 4: two lanes, never more than workers + 2', async () => {
    const c = await startFakeCluster({ options: { workers: 4, reload: { surge: 2 } } });
    c.host.parentSend({ action: 'reload-worker' });
    const { maxLive, minListening } = await driveReload(c, 4);
    assert.equal(maxLive, 6);
    assert.ok(minListening >= 4);
  });

  it('can be asked by the agent (egg-development) and by SIGUSR2', async () => {
    const c = await startFakeCluster({ options: { workers: 1 } });
    c.launcher.agent!.say({ action: 'reload-worker', to: 'master' });
    await driveReload(c, 1);
    c.host.signal('SIGUSR2');
    await flush();
    assert.ok(c.logger.has('[master] receive signal SIGUSR2, reloading app workers one by one', 'info'));
    await driveReload(c, 1);
    assert.equal(c.launcher.apps.length, 3);
    assert.equal(liveRegistered(c).length, 1);
  });

  it('is ignored before the cluster has started', async () => {
    const c = createFakeCluster({ options: { workers: 2 } });
    await flush();
    await agentStart(c);
    c.host.parentSend({ action: 'reload-worker' });
    await flush();
    assert.equal(c.launcher.apps.length, 2);
    assert.equal(c.launcher.timeline.filter(e => e === 'forkOne').length, 0);
  });

  it('stops when a new worker dies before listening; the old ones keep serving and count as real again', async () => {
    const c = await startFakeCluster({ options: { workers: 2, reload: { surge: 1 } } });
    c.host.parentSend({ action: 'reload-worker' });
    await flush();
    const fresh = c.launcher.apps[2]!;
    fresh.die(1);
    await flush();
    assert.ok(c.logger.has('[master] reload stopped: a new app worker did not start; the old workers keep serving', 'error'));
    assert.equal(c.launcher.apps.length, 3, 'no further fork');
    assert.equal(liveRegistered(c).length, 2);
    c.launcher.apps[0]!.die(1);
    await flush();
    assert.equal(c.logger.errors('AppWorkerDiedError').length, 2, 'the fresh one and the old one are real deaths');
  });

  it('reload requests during a reload are coalesced into one more reload', async () => {
    const c = await startFakeCluster({ options: { workers: 1 } });
    c.host.parentSend({ action: 'reload-worker' });
    await flush();
    c.host.parentSend({ action: 'reload-worker' });
    c.host.parentSend({ action: 'reload-worker' });
    await driveReload(c, 1); // the first
    await driveReload(c, 1); // the coalesced second
    await flush();
    assert.equal(c.launcher.timeline.filter(e => e === 'forkOne').length, 2);
    assert.equal(liveRegistered(c).length, 1);
  });

  it('close() during a reload stops it and exits once', async () => {
    const c = await startFakeCluster({ options: { workers: 2, reload: { surge: 1 } } });
    c.host.parentSend({ action: 'reload-worker' });
    await flush();
    await c.master.close();
    await flush();
    assert.equal(c.launcher.timeline.filter(e => e === 'forkOne').length, 1);
    assert.ok(c.launcher.apps.every(w => !w.isAlive));
    assert.deepEqual(c.host.exits, [0]);
    assert.ok(!c.logger.has('reload stopped'), 'a reload cancelled by a close is not a failed start');
    assert.deepEqual(c.logger.lines('error'), []);
  });

  it('a refork forked in the same tick as a reload lane\'s new worker is not taken for that worker', async () => {
    const c = await startFakeCluster({ options: { workers: 2, env: 'prod', reload: { surge: 1 } } });
    const [a, b] = c.launcher.apps as [FakeWorker, FakeWorker];
    // a dies and is reforked at once; before the next tick (when node:cluster emits 'fork') a
    // reload forks its first new worker
    a.die(1);
    c.host.parentSend({ action: 'reload-worker' });
    assert.deepEqual(c.launcher.timeline.filter(l => /^(refork|forkOne)/.test(l)), ['refork app#1', 'forkOne']);
    await flush();
    const [refork, fresh] = c.launcher.apps.slice(2) as [FakeWorker, FakeWorker];
    // the reload's own worker listens: the lane goes on and stops one old worker
    fresh.listen(PORT);
    await flush();
    assert.equal(b.terminateCalls.length, 1, 'the lane waited for the refork instead of its own worker');
    // the refork dies at boot: a quick death, reforked as any other, and the reload goes on
    refork.die(1);
    await flush();
    assert.equal(c.logger.errors('reload stopped').length, 0, c.logger.lines().join('\n'));
    assert.ok(c.logger.has('[master] reload done, 2 workers'), c.logger.lines().join('\n'));
    assert.ok(c.logger.lines().some(l => l.startsWith(`[master] app_worker#${refork.id}:${refork.workerId} exit (code: 1, signal: null), refork in `)),
      c.logger.lines().join('\n'));
  });

  it('production: replaced workers are not reforked', async () => {
    const c = await startFakeCluster({ options: { workers: 2, env: 'prod' } });
    c.host.parentSend({ action: 'reload-worker' });
    await driveReload(c, 2);
    assert.equal(c.launcher.pool!.reforks, 0);
    assert.equal(liveRegistered(c).length, 2);
  });

  it('production: a worker that finishes starting during a reload is still replaced without a refork', async () => {
    const c = await startFakeCluster({ options: { workers: 1, env: 'prod' } });
    c.launcher.apps[0]!.die(1); // cfork reforks app#2; it is still starting
    await flush();
    const refork = c.launcher.apps[1]!;
    c.host.parentSend({ action: 'reload-worker' }); // replaces app#2 with app#3
    await flush();
    refork.listen(PORT); // app#2 finishes starting while the reload waits for app#3
    await flush();
    assert.equal(c.launcher.pool!.reforkEnabled.get(refork), false, 'a worker being replaced keeps refork off');
    c.launcher.apps[2]!.listen(PORT);
    await flush(5);
    assert.equal(refork.isAlive, false);
    assert.equal(c.launcher.pool!.reforks, 1, 'only the first death was reforked');
    assert.equal(liveRegistered(c).length, 1);
  });
});
