import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lifecycle, type AppFacts, type ClusterFacts } from '../../src/lifecycle.js';

/** A lifecycle with a hand-driven clock. */
function lifecycle(config: ConstructorParameters<typeof Lifecycle>[0] = {}): { lc: Lifecycle; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { lc: new Lifecycle(config, () => clock.now), clock };
}

const LAUNCHED: ClusterFacts = { allStarted: true, closed: false, production: true };

function app(over: Partial<AppFacts> = {}): AppFacts {
  return { startTime: 0, listenedAt: undefined, slot: 0, stopping: false, reloadFork: false, replaced: false, ...over };
}

describe('Lifecycle: app workers', () => {
  it('a serving worker (listened >= minUptimeMs) is replaced at once, however often, outside the budget', () => {
    const { lc, clock } = lifecycle({ limit: 3 });
    for (let i = 0; i < 10; i++) {
      clock.now += 5000;
      const action = lc.appGone(app({ startTime: clock.now - 3000, listenedAt: clock.now - 2000 }), LAUNCHED, 'exit');
      assert.deepEqual(action, { type: 'refork', delayMs: 0, serving: true, streak: 0, budgetExhausted: false }, `death ${i + 1}`);
    }
  });

  it('a worker that dies before it listens backs off per slot: at once, then base, doubling, capped', () => {
    const { lc, clock } = lifecycle({ baseDelayMs: 100, maxDelayMs: 400 });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const action = lc.appGone(app({ startTime: clock.now - 50 }), LAUNCHED, 'exit');
      assert.equal(action.type, 'refork');
      if (action.type === 'refork') delays.push(action.delayMs);
      clock.now += 1000;
    }
    assert.deepEqual(delays, [0, 100, 200, 400, 400]);
    // another slot has a streak of its own
    const other = lc.appGone(app({ slot: 1, startTime: clock.now - 50 }), LAUNCHED, 'exit');
    assert.equal(other.type === 'refork' && other.delayMs, 0);
  });

  it('a worker that listened for less than minUptimeMs is a quick death too', () => {
    const { lc, clock } = lifecycle({ minUptimeMs: 1000, baseDelayMs: 100 });
    lc.appGone(app({ startTime: clock.now - 900, listenedAt: clock.now - 10 }), LAUNCHED, 'exit');
    const second = lc.appGone(app({ startTime: clock.now - 900, listenedAt: clock.now - 999 }), LAUNCHED, 'exit');
    assert.deepEqual(second.type === 'refork' && [second.serving, second.delayMs], [false, 100]);
    const served = lc.appGone(app({ startTime: clock.now - 2000, listenedAt: clock.now - 1000 }), LAUNCHED, 'exit');
    assert.deepEqual(served.type === 'refork' && [served.serving, served.delayMs], [true, 0]);
    // serving again resets the slot's streak: the next quick death is at once
    const after = lc.appGone(app({ startTime: clock.now - 50 }), LAUNCHED, 'exit');
    assert.equal(after.type === 'refork' && after.delayMs, 0);
  });

  it('the budget delays quick deaths once used up', () => {
    const { lc, clock } = lifecycle({ limit: 2, windowMs: 10_000, baseDelayMs: 0, stableMs: 0 });
    const a = lc.appGone(app({ slot: 0, startTime: clock.now }), LAUNCHED, 'exit');
    const b = lc.appGone(app({ slot: 1, startTime: clock.now }), LAUNCHED, 'exit');
    const c = lc.appGone(app({ slot: 2, startTime: clock.now }), LAUNCHED, 'exit');
    assert.deepEqual([a, b].map(x => x.type === 'refork' && x.budgetExhausted), [false, false]);
    assert.ok(c.type === 'refork' && c.budgetExhausted && c.delayMs === 10_000, JSON.stringify(c));
  });

  it('disconnect replaces; the exit of a replaced worker does nothing more', () => {
    const { lc, clock } = lifecycle();
    const worker = app({ startTime: clock.now - 60_000, listenedAt: clock.now - 59_000 });
    assert.equal(lc.appGone(worker, LAUNCHED, 'disconnect').type, 'refork');
    assert.deepEqual(lc.appGone({ ...worker, replaced: true }, LAUNCHED, 'exit'), { type: 'none', reason: 'replaced' });
  });

  it('during startup an exit fails the start, a disconnect waits for that exit', () => {
    const { lc } = lifecycle();
    const starting = { ...LAUNCHED, allStarted: false };
    assert.deepEqual(lc.appGone(app(), starting, 'exit'), { type: 'fail-start' });
    assert.deepEqual(lc.appGone(app(), starting, 'disconnect'), { type: 'none', reason: 'starting' });
  });

  it('no refork: closing, stopped by the master, a reload fork that never listened, outside production', () => {
    const { lc } = lifecycle();
    assert.deepEqual(lc.appGone(app(), { ...LAUNCHED, closed: true }, 'exit'), { type: 'none', reason: 'closed' });
    assert.deepEqual(lc.appGone(app({ stopping: true }), LAUNCHED, 'exit'), { type: 'none', reason: 'expected' });
    assert.deepEqual(lc.appGone(app({ reloadFork: true }), LAUNCHED, 'exit'), { type: 'none', reason: 'reload-fork' });
    assert.deepEqual(lc.appGone(app(), { ...LAUNCHED, production: false }, 'exit'), { type: 'none', reason: 'not-production' });
  });

  it('limit 0: never refork', () => {
    const { lc, clock } = lifecycle({ limit: 0 });
    assert.deepEqual(lc.appGone(app({ listenedAt: clock.now - 5000 }), LAUNCHED, 'exit'), { type: 'give-up' });
  });
});

describe('Lifecycle: the agent', () => {
  it('before launch its death fails the start; after, the first restart is at once, repeats back off', () => {
    const { lc, clock } = lifecycle({ baseDelayMs: 1000 });
    assert.deepEqual(lc.agentGone({ startTime: clock.now, started: false }, { closed: false, launched: false }), { type: 'fail-start' });
    const delays = [];
    for (let i = 0; i < 3; i++) {
      const action = lc.agentGone({ startTime: clock.now - 100, started: i === 0 }, { closed: false, launched: true });
      assert.equal(action.type, 'restart');
      if (action.type === 'restart') delays.push(action.delayMs);
    }
    assert.deepEqual(delays, [0, 1000, 2000]);
    assert.deepEqual(lc.agentGone({ startTime: 0, started: true }, { closed: true, launched: true }), { type: 'none' });
  });

  it('limit 0: the agent is never restarted', () => {
    const { lc } = lifecycle({ limit: 0 });
    assert.deepEqual(lc.agentGone({ startTime: 0, started: true }, { closed: false, launched: true }), { type: 'give-up' });
  });

  it('exception check: a slow first boot counts (D21); once a replacement died at boot, only a started agent counts', () => {
    const { lc, clock } = lifecycle();
    const GRACE = 60_000;
    assert.equal(lc.agentPresent({ started: true, alive: true, startTime: 0 }, GRACE), 1);
    assert.equal(lc.agentPresent(undefined, GRACE), 0);
    // the started agent died; its replacement boots slowly but is alive: present
    lc.agentGone({ startTime: clock.now - 100_000, started: true }, { closed: false, launched: true });
    assert.equal(lc.agentPresent({ started: false, alive: true, startTime: clock.now - 30_000 }, GRACE), 1);
    assert.equal(lc.agentPresent({ started: false, alive: true, startTime: clock.now - 60_000 }, GRACE), 0, 'past the grace');
    // that replacement dies at boot: the next one does not count until it starts
    lc.agentGone({ startTime: clock.now - 200, started: false }, { closed: false, launched: true });
    assert.equal(lc.agentPresent({ started: false, alive: true, startTime: clock.now - 10 }, GRACE), 0);
    lc.agentStarted();
    assert.equal(lc.agentPresent({ started: false, alive: true, startTime: clock.now - 10 }, GRACE), 1, 'a start resets it');
  });
});
