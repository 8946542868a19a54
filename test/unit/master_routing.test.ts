import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { Envelope } from '../../src/protocol.js';
import {
  agentStart, createFakeCluster, flush, PORT, startFakeCluster, type FakeCluster, type FakeWorker,
} from '../helpers/fake_launcher.js';

/** What each worker received with this action, by label. */
function receivedBy(c: FakeCluster, action: string): Record<string, Array<Record<string, unknown>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const w of [...c.launcher.agents, ...c.launcher.apps]) {
    const got = w.received(action);
    if (got.length) out[w.label] = got;
  }
  return out;
}

function masterMessages(c: FakeCluster): Envelope[] {
  const seen: Envelope[] = [];
  c.master.on('message', msg => seen.push(msg));
  return seen;
}

function apps(c: FakeCluster): [FakeWorker, FakeWorker, FakeWorker, FakeWorker] {
  const [a, b, d, e] = c.launcher.apps;
  assert.ok(a && b && d && e);
  return [a, b, d, e];
}

describe('Master message routing (contract §1.4)', () => {
  it('agent -> every app when no `to` is given', async () => {
    const c = await startFakeCluster();
    c.launcher.agent!.say({ action: 'cache-update', data: { k: 1 } });
    await flush();
    const got = receivedBy(c, 'cache-update');
    assert.deepEqual(Object.keys(got).sort(), ['app#1', 'app#2', 'app#3', 'app#4']);
    assert.deepEqual(got['app#1'], [{ action: 'cache-update', data: { k: 1 }, from: 'agent' }]);
  });

  it('app -> the agent only when no `to` is given', async () => {
    const c = await startFakeCluster();
    apps(c)[1].say({ action: 'report', data: 42 });
    await flush();
    assert.deepEqual(receivedBy(c, 'report'), { 'agent#1': [{ action: 'report', data: 42, from: 'app' }] });
  });

  it('a bare string from a worker is normalized to { action, data }', async () => {
    const c = await startFakeCluster();
    c.launcher.agent!.say('ping');
    await flush();
    for (const app of c.launcher.apps) assert.deepEqual(app.received('ping'), [{ action: 'ping', data: 'ping', from: 'agent' }]);
  });

  it('app -> all apps (itself included) with to: app', async () => {
    const c = await startFakeCluster();
    apps(c)[2].say({ action: 'broadcast', to: 'app' });
    await flush();
    assert.deepEqual(Object.keys(receivedBy(c, 'broadcast')).sort(), ['app#1', 'app#2', 'app#3', 'app#4']);
  });

  it('to: parent goes to the master\'s parent, stamped with the sender', async () => {
    const c = await startFakeCluster();
    apps(c)[0].say({ action: 'stats', to: 'parent', data: [1] });
    c.launcher.agent!.say({ action: 'stats', to: 'parent', data: [2] });
    await flush();
    assert.deepEqual(c.host.parentMessagesOf('stats'), [
      { action: 'stats', to: 'parent', data: [1], from: 'app' },
      { action: 'stats', to: 'parent', data: [2], from: 'agent' },
    ]);
  });

  it('to: parent without a parent is dropped without error', async () => {
    const c = await startFakeCluster({ hasParent: false });
    apps(c)[0].say({ action: 'stats', to: 'parent' });
    await flush();
    assert.equal(c.host.parentMessages.length, 0);
  });

  it('receiverPid picks one app worker', async () => {
    const c = await startFakeCluster();
    c.launcher.agent!.say({ action: 'direct', receiverPid: '3003', data: 'x' });
    await flush();
    assert.deepEqual(Object.keys(receivedBy(c, 'direct')), ['app#3']);
  });

  it('receiverWorkerId picks one app worker and wins over receiverPid', async () => {
    const c = await startFakeCluster();
    apps(c)[0].say({ action: 'direct', receiverWorkerId: '3002', receiverPid: '3004' });
    await flush();
    assert.deepEqual(Object.keys(receivedBy(c, 'direct')), ['app#2']);
  });

  it('receiverPid of the agent reaches the agent', async () => {
    const c = await startFakeCluster();
    apps(c)[0].say({ action: 'direct', receiverPid: '2001', to: 'app' });
    await flush();
    assert.deepEqual(Object.keys(receivedBy(c, 'direct')), ['agent#1']);
  });

  it('receiverPid of the master is a message to the master', async () => {
    const c = await startFakeCluster();
    const seen = masterMessages(c);
    apps(c)[0].say({ action: 'hello-master', receiverPid: '1000' });
    await flush();
    assert.deepEqual(seen.map(m => [m.action, m.from]), [['hello-master', 'app']]);
    assert.deepEqual(receivedBy(c, 'hello-master'), {});
  });

  it('receiverPid of an unknown pid reaches nobody', async () => {
    const c = await startFakeCluster();
    const seen = masterMessages(c);
    c.launcher.agent!.say({ action: 'lost', receiverPid: '9999' });
    apps(c)[0].say({ action: 'lost', receiverPid: '9999', to: 'agent' });
    await flush();
    assert.deepEqual(receivedBy(c, 'lost'), {});
    assert.equal(c.host.parentMessagesOf('lost').length, 0);
    assert.equal(seen.length, 0);
  });

  it('parent -> master when no `to` is given (a master "message" event)', async () => {
    const c = await startFakeCluster();
    const seen = masterMessages(c);
    c.host.parentSend({ action: 'custom', data: 1, from: 'app' });
    await flush();
    assert.deepEqual(seen, [{ action: 'custom', data: 1, from: 'parent' }]);
  });

  it('parent -> apps / agent with to', async () => {
    const c = await startFakeCluster();
    c.host.parentSend({ action: 'to-apps', to: 'app' });
    c.host.parentSend({ action: 'to-agent', to: 'agent' });
    await flush();
    assert.deepEqual(Object.keys(receivedBy(c, 'to-apps')).sort(), ['app#1', 'app#2', 'app#3', 'app#4']);
    assert.deepEqual(receivedBy(c, 'to-agent'), { 'agent#1': [{ action: 'to-agent', to: 'agent', from: 'parent' }] });
  });

  it('skips apps whose channel is gone, and disconnected ones', async () => {
    const c = await startFakeCluster();
    const [a, b] = apps(c);
    a.disconnect();
    b.isConnected = false;
    c.launcher.agent!.say({ action: 'news' });
    await flush();
    assert.deepEqual(Object.keys(receivedBy(c, 'news')).sort(), ['app#3', 'app#4']);
    assert.equal(c.master.registry.app(a)?.state, 'disconnected');
  });

  it('the worker\'s own object is untouched: the master stamps the copy the channel delivered', async () => {
    const c = await startFakeCluster();
    const sent = { action: 'obj', data: { n: 1 } };
    const delivered: unknown[] = [];
    // the master's listener comes first; this one sees the object after the master handled it
    c.launcher.agent!.on('message', m => delivered.push(m));
    c.launcher.agent!.say(sent);
    await flush();
    assert.equal(delivered.length, 1);
    assert.notEqual(delivered[0], sent, 'the channel delivers a copy (IPC and postMessage do; so does the fake)');
    assert.equal((delivered[0] as { from?: string }).from, 'agent', 'the master stamps the delivered copy in place, without copying it again');
    assert.deepEqual(sent, { action: 'obj', data: { n: 1 } }, 'the sender\'s object is not stamped');
  });

  describe('hostile messages', () => {
    it('ignores junk (numbers, null, arrays, no action, bad to) without throwing', async () => {
      const c = await startFakeCluster();
      const seen = masterMessages(c);
      const junk: unknown[] = [42, null, undefined, [], ['agent-start'], {}, { action: 7 }, { action: 'x', to: 'everyone' }, '', true];
      for (const raw of junk) {
        c.launcher.agent!.say(raw);
        apps(c)[0].say(raw);
        c.host.parentSend(raw);
      }
      await flush();
      assert.equal(seen.length, 0);
      assert.equal(c.host.parentMessages.length, 1, 'only the real egg-ready');
      for (const w of [...c.launcher.apps, c.launcher.agent!]) {
        assert.ok(w.sent.every(m => ['egg-ready', 'egg-pids'].includes(String(m.action))), `${w.label} got only lifecycle messages`);
      }
    });

    const internal: Array<[string, unknown]> = [
      ['agent-exit', { code: 1, signal: null }],
      ['app-exit', { workerId: 3001, code: 1, signal: null }],
      ['app-start', { workerId: 3001, address: { port: PORT } }],
      ['error', new Error('boom').message],
      ['egg-ready', {}],
      ['agent-worker-died', undefined],
      ['app-worker-died', undefined],
      ['egg-pids', [1, 2, 3]],
      ['message', {}],
      ['newListener', {}],
    ];
    for (const [action, data] of internal) {
      it(`"${action}" sent to the master by a worker changes nothing and is only a "message" event`, async () => {
        const c = await startFakeCluster();
        const seen = masterMessages(c);
        const emitted: string[] = [];
        for (const name of ['agent-start', 'app-start', 'agent-exit', 'app-exit', 'realport', 'reload-worker'] as const) {
          c.master.on(name, () => emitted.push(name));
        }
        const before = {
          apps: c.master.registry.apps.size,
          states: [...c.master.registry.apps.values()].map(e => e.state),
          agent: c.master.registry.agent,
          agentStarted: c.master.registry.agentStarted,
          parent: c.host.parentMessages.length,
          sent: c.launcher.apps.map(w => w.sent.length),
        };
        assert.doesNotThrow(() => {
          apps(c)[0].say({ action, data, to: 'master' });
          c.launcher.agent!.say({ action, data, to: 'master' });
          c.host.parentSend({ action, data });
        });
        await flush();
        assert.deepEqual(emitted, []);
        assert.deepEqual(seen.map(m => [m.action, m.from]), [[action, 'app'], [action, 'agent'], [action, 'parent']]);
        assert.equal(c.master.registry.apps.size, before.apps);
        assert.deepEqual([...c.master.registry.apps.values()].map(e => e.state), before.states);
        assert.equal(c.master.registry.agent, before.agent);
        assert.equal(c.master.registry.agentStarted, before.agentStarted);
        assert.equal(c.host.parentMessages.length, before.parent);
        assert.deepEqual(c.launcher.apps.map(w => w.sent.length), before.sent);
        assert.deepEqual(c.host.exits, []);
        assert.equal(c.master.closed, false);
      });
    }

    it('an internal action during startup does not count as a listening worker', async () => {
      const s = createFakeCluster({ options: { workers: 1 } });
      await flush();
      await agentStart(s);
      s.launcher.apps[0]!.say({ action: 'app-start', to: 'master', data: { workerId: 3001, address: { port: PORT } } });
      s.launcher.apps[0]!.say({ action: 'egg-ready', to: 'master' });
      await flush();
      assert.equal(s.master.isStarted, false);
      assert.equal(s.host.parentMessagesOf('egg-ready').length, 0);
    });

    it('realport from the agent is ignored', async () => {
      const c = await startFakeCluster();
      let events = 0;
      c.master.on('realport', () => events++);
      c.launcher.agent!.say({ action: 'realport', to: 'master', data: { port: 9999, protocol: 'https' } });
      c.host.parentSend({ action: 'realport', data: { port: 9998 } });
      await flush();
      assert.equal(c.master.realPort, PORT);
      assert.equal(c.master.protocol, 'http');
      assert.equal(events, 0);
    });

    it('a forged from does not let an app pose as the agent', async () => {
      const c = await startFakeCluster();
      apps(c)[0].say({ action: 'x', from: 'agent' });
      await flush();
      // from is overwritten to 'app': no `to` from an app means -> agent, not -> apps
      assert.deepEqual(Object.keys(receivedBy(c, 'x')), ['agent#1']);
      assert.equal(c.launcher.agent!.received('x')[0]!.from, 'app');
    });

    it('a worker cannot forge the master\'s lifecycle messages to the parent', async () => {
      const c = await startFakeCluster({ options: { workers: 1 } });
      c.launcher.apps[0]!.say({ action: 'egg-ready', to: 'parent', data: { address: 'http://evil' } });
      c.launcher.agent!.say({ action: 'app-worker-died', to: 'parent' });
      await flush();
      assert.equal(c.host.parentMessagesOf('egg-ready').length, 1);
      assert.equal(c.host.parentMessagesOf('app-worker-died').length, 0);
    });
  });

  describe('while the agent is dead (D6)', () => {
    it('messages to the agent, or to its old pid, are dropped without throwing', async t => {
      const c = await startFakeCluster();
      const agent = c.launcher.agent!;
      // the restart is at once, but on a timer: keep it pending while the agent is dead
      mock.timers.enable({ apis: ['setTimeout'] });
      t.after(() => mock.timers.reset());
      agent.die(1);
      await flush();
      assert.equal(c.master.registry.agent, undefined);
      assert.doesNotThrow(() => {
        apps(c)[0].say({ action: 'to-agent' });
        apps(c)[0].say({ action: 'to-agent', to: 'agent' });
        apps(c)[1].say({ action: 'to-old-pid', receiverPid: String(agent.workerId) });
        c.host.parentSend({ action: 'to-agent', to: 'agent' });
      });
      await flush();
      assert.deepEqual(receivedBy(c, 'to-agent'), {});
      assert.deepEqual(receivedBy(c, 'to-old-pid'), {});
      await c.master.close();
    });
  });
});
