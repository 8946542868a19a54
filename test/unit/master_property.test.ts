import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import fc from 'fast-check';
import { flush, PORT, startFakeCluster, type FakeCluster } from '../helpers/fake_launcher.js';

const INTERNAL_ACTIONS = [
  'agent-start', 'agent-exit', 'app-exit', 'app-start', 'error', 'egg-ready', 'egg-pids', 'realport',
  'agent-worker-died', 'app-worker-died', 'message', 'debug', 'listening',
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'egg-clutch:options', 'sticky-session:connection',
];

/** The generators, with or without `reload-worker` (a rolling reload runs workers + 1 on purpose). */
function arbitraries(withReload: boolean): fc.Arbitrary<Event> {
  const actions = withReload ? [...INTERNAL_ACTIONS, 'reload-worker'] : INTERNAL_ACTIONS;
  const action = fc.oneof(fc.constantFrom(...actions), fc.string({ maxLength: 8 }).filter(a => withReload || a !== 'reload-worker'));
  const pid = fc.oneof(
    fc.constantFrom('1000', '2001', '2002', '2003', '3001', '3002', '3003', '3004', '3005', '3006', '9999', '', '-1'),
    fc.integer().map(String),
  );
  const data = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.record({ port: fc.oneof(fc.constant(PORT), fc.integer({ min: -1, max: 70000 }), fc.string({ maxLength: 4 })), protocol: fc.constantFrom('http', 'https', 'ftp') }, { requiredKeys: [] }),
    fc.record({ workerId: fc.integer({ min: 3000, max: 3010 }), code: fc.integer(), address: fc.record({ port: fc.constant(PORT) }) }),
  );
  const envelope = fc.record({
    action,
    to: fc.oneof(fc.constantFrom('master', 'agent', 'app', 'parent'), fc.string({ maxLength: 6 }), fc.constant(undefined)),
    from: fc.constantFrom('master', 'agent', 'app', 'parent', undefined),
    receiverPid: fc.option(pid, { nil: undefined }),
    receiverWorkerId: fc.option(pid, { nil: undefined }),
    data,
  }, { requiredKeys: ['action'] });
  /** Anything a channel could carry: strings, numbers, null, arrays, objects with random/internal actions. */
  const message = fc.oneof(
    { arbitrary: envelope, weight: 6 },
    { arbitrary: fc.constantFrom(...actions), weight: 2 },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
    { arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constant(null), fc.boolean()), weight: 1 },
    { arbitrary: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }), weight: 1 },
    { arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), weight: 1 },
  );

  const index = fc.nat({ max: 7 });
  const events: Array<fc.WeightedArbitrary<Event>> = [
    { arbitrary: fc.record({ kind: fc.constant('agentMsg' as const), msg: message }), weight: 4 },
    { arbitrary: fc.record({ kind: fc.constant('appMsg' as const), index, msg: message }), weight: 4 },
    { arbitrary: fc.record({ kind: fc.constant('parentMsg' as const), msg: message }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('appListen' as const), index, port: fc.constantFrom<number | 'socket'>(PORT, PORT, 7002, 'socket') }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('appDie' as const), index, code: fc.constantFrom(0, 1, null), signal: fc.constantFrom<NodeJS.Signals | null>(null, 'SIGKILL', 'SIGTERM') }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('appDisconnect' as const), index }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('agentDie' as const), code: fc.constantFrom(0, 1, null) }), weight: 1 },
    { arbitrary: fc.constant({ kind: 'agentStart' as const }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(1000, 10_000) }), weight: 2 },
  ];
  if (withReload) {
    events.push({ arbitrary: fc.record({ kind: fc.constant('reload' as const), via: fc.constantFrom<'parent' | 'agent'>('parent', 'agent') }), weight: 1 });
}
return fc.oneof(...events);
}

type Event =
  | { kind: 'agentMsg'; msg: unknown }
  | { kind: 'appMsg'; index: number; msg: unknown }
  | { kind: 'parentMsg'; msg: unknown }
  | { kind: 'appListen'; index: number; port: number | 'socket' }
  | { kind: 'appDie'; index: number; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'appDisconnect'; index: number }
  | { kind: 'agentDie'; code: number | null }
  | { kind: 'agentStart' }
  | { kind: 'reload'; via: 'parent' | 'agent' }
  | { kind: 'tick'; ms: number };

function liveApp(c: FakeCluster, i: number) {
  const live = c.launcher.liveApps();
  return live.length ? live[i % live.length] : undefined;
}

async function apply(c: FakeCluster, ev: Event): Promise<void> {
  switch (ev.kind) {
    case 'agentMsg':
      if (c.launcher.agent?.isAlive) c.launcher.agent.say(ev.msg);
      break;
    case 'appMsg':
      liveApp(c, ev.index)?.say(ev.msg);
      break;
    case 'parentMsg':
      c.host.parentSend(ev.msg);
      break;
    case 'appListen': {
      const app = liveApp(c, ev.index);
      if (ev.port === 'socket') app?.listenPath('/tmp/egg.sock');
      else app?.listen(ev.port);
      break;
    }
    case 'appDie':
      liveApp(c, ev.index)?.die(ev.code, ev.signal);
      break;
    case 'appDisconnect':
      liveApp(c, ev.index)?.disconnect();
      break;
    case 'agentDie':
      if (c.launcher.agent?.isAlive) c.launcher.agent.die(ev.code, null);
      break;
    case 'agentStart':
      if (c.launcher.agent?.isAlive) c.launcher.agent.say({ action: 'agent-start', to: 'master' });
      break;
    case 'reload':
      // egg-development sends it from the agent; egg-bin / a parent can send it too
      if (ev.via === 'parent') c.host.parentSend({ action: 'reload-worker' });
      else if (c.launcher.agent?.isAlive) c.launcher.agent.say({ action: 'reload-worker', to: 'master' });
      break;
    case 'tick':
      mock.timers.tick(ev.ms);
      break;
  }
  await flush(2);
}

interface Observed {
  reloads: number;
}

function checkInvariants(c: FakeCluster, workers: number, seen: Observed, step: string): void {
  // a disconnected worker only finishes its requests (its replacement serves): not counted
  const live = [...c.master.registry.apps.values()].filter(e => e.handle.isAlive && e.state !== 'disconnected').length;
  // a rolling reload runs one extra worker during each switch, by design
  // a rolling reload runs at most `surge` extra workers during its switches (here 1)
  const limit = workers + (seen.reloads > 0 ? 1 : 0);
  assert.ok(live <= limit, `${step}: ${live} live registered app workers > ${limit}`);
  const ready = c.host.parentMessagesOf('egg-ready', 'master');
  assert.ok(ready.length <= 1, `${step}: the master sent egg-ready to the parent ${ready.length} times`);
  assert.ok(c.host.exits.length <= 1, `${step}: host.exit called ${c.host.exits.length} times: ${JSON.stringify(c.host.exits)}`);
}

/** What the runs went through, so a generator that stops reaching the interesting states is noticed. */
interface Coverage { runs: number; reforks: number; agentRestarts: number; reloads: number; exitsBeforeClose: number; forwardedToApps: number; maxEvents: number }

async function runProperty(withReload: boolean): Promise<Coverage> {
  const coverage: Coverage = { runs: 0, reforks: 0, agentRestarts: 0, reloads: 0, exitsBeforeClose: 0, forwardedToApps: 0, maxEvents: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom('prod', 'local'),
      fc.array(arbitraries(withReload), { minLength: 1, maxLength: 50, size: 'max' }),
      async (workers, env, events) => {
        mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
        try {
          const c = await startFakeCluster({ options: { workers, env, reload: { surge: 1 } } });
          const seen: Observed = { reloads: 0 };
          c.master.on('reload-worker', () => seen.reloads++);
          checkInvariants(c, workers, seen, 'after startup');
          for (const [i, ev] of events.entries()) {
            await apply(c, ev);
            checkInvariants(c, workers, seen, `after event #${i} ${ev.kind}`);
          }
          coverage.runs++;
          coverage.reforks += c.launcher.pools.reduce((n, p) => n + p.reforks, 0);
          coverage.agentRestarts += c.launcher.agents.length - 1;
          coverage.reloads += seen.reloads;
          coverage.exitsBeforeClose += c.host.exits.length;
          coverage.forwardedToApps += c.launcher.apps.reduce((n, w) => n + w.sent.filter(m => m.from !== 'master').length, 0);
          coverage.maxEvents = Math.max(coverage.maxEvents, events.length);
          await c.master.close();
          await flush(2);
          checkInvariants(c, workers, seen, 'after close');
          assert.equal(c.host.exits.length, 1, 'close() ends with exactly one exit');
        } finally {
          mock.timers.reset();
        }
      },
    ),
    { numRuns: Number(process.env.PROPERTY_RUNS) || 200 },
  );
  if (process.env.PROPERTY_VERBOSE) console.log('coverage', coverage);
  return coverage;
}

describe('Master under random events (property)', () => {
  it('never throws, never runs more workers than asked, sends egg-ready and exits at most once', async () => {
    const coverage = await runProperty(false);
    assert.ok(coverage.reforks > 0, 'some runs reforked an app worker');
    assert.ok(coverage.agentRestarts > 0, 'some runs restarted the agent');
    assert.ok(coverage.forwardedToApps > 0, 'some worker messages reached apps');
  });

  it('with dev reloads: at most one extra worker (the rolling switch)', async () => {
    const coverage = await runProperty(true);
    assert.ok(coverage.reloads > 0, 'some runs reloaded');
  });
});
