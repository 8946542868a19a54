/**
 * The refork budget and backoff (src/refork_policy.ts): pure functions and a wrapper with an
 * injected clock. No timers, no processes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_REFORK_POLICY, INITIAL_REFORK_STATE, ReforkPolicy, backoffDelay, decideRefork, earliestSlot,
  type ReforkPolicyConfig,
} from '../../src/refork_policy.js';

const QUICK = 100; // a worker that lived 100 ms died "quickly" (stableMs is 10 s)
const STABLE = DEFAULT_REFORK_POLICY.stableMs;

/** A policy on a clock the test moves by hand. */
function clocked(config: Partial<ReforkPolicyConfig> = {}): { policy: ReforkPolicy; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { policy: new ReforkPolicy(config, () => clock.now), clock };
}

describe('refork policy: backoff', () => {
  test('first quick death reforks at once, then 1s, 2s, 4s … capped at 30s', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20, 1000].map(streak => backoffDelay(streak, DEFAULT_REFORK_POLICY));
    assert.deepEqual(delays, [0, 1000, 2000, 4000, 8000, 16000, 30_000, 30_000, 30_000, 30_000]);
  });

  test('consecutive quick deaths grow the delay; each refork is due when the worker dies', () => {
    const { policy, clock } = clocked();
    const seen: number[] = [];
    let startedAt = clock.now;
    for (let i = 0; i < 8; i++) {
      clock.now = startedAt + QUICK;
      const decision = policy.onDeath(startedAt);
      assert.equal(decision.budgetExhausted, false);
      seen.push(decision.delayMs);
      // the replacement starts after the delay, and dies quickly again
      startedAt = clock.now + decision.delayMs;
    }
    assert.deepEqual(seen, [0, 1000, 2000, 4000, 8000, 16000, 30_000, 30_000]);
  });

  test('a worker that lived stableMs or longer starts a new streak: refork at once', () => {
    const { policy, clock } = clocked();
    policy.onDeath(clock.now - QUICK);
    assert.equal(policy.onDeath(clock.now - QUICK).delayMs, 1000);
    assert.equal(policy.onDeath(clock.now - QUICK).delayMs, 2000);
    clock.now += 60_000;
    const afterStable = policy.onDeath(clock.now - STABLE);
    assert.equal(afterStable.delayMs, 0);
    assert.equal(afterStable.state.streak, 1);
    assert.equal(policy.onDeath(clock.now - QUICK).delayMs, 1000, 'the next quick death counts from the new streak');
  });
});

describe('refork policy: lineages', () => {
  test('quick deaths of unrelated workers do not add up; one slot dying again and again backs off', () => {
    const { policy, clock } = clocked();
    const a = Symbol('slot a');
    const b = Symbol('slot b');
    // a chaos run: a, then b, then a again — each a young worker of its own slot
    assert.equal(policy.onDeath(clock.now - QUICK, a).delayMs, 0);
    assert.equal(policy.onDeath(clock.now - QUICK, b).delayMs, 0, 'b has its own streak');
    assert.equal(policy.onDeath(clock.now - QUICK, a).delayMs, 1000, 'a died young twice in a row');
    assert.equal(policy.onDeath(clock.now - QUICK, a).delayMs, 2000);
    assert.equal(policy.state(b).streak, 1);
    assert.equal(policy.state(a).streak, 3);
  });

  test('the window budget is shared by every lineage', () => {
    const { policy, clock } = clocked({ limit: 2, windowMs: 10_000 });
    policy.onDeath(clock.now - STABLE, Symbol('x'));
    policy.onDeath(clock.now - STABLE, Symbol('y'));
    const third = policy.onDeath(clock.now - STABLE, Symbol('z'));
    assert.equal(third.budgetExhausted, true);
    assert.equal(third.delayMs, 10_000);
  });
});

describe('refork policy: sliding-window budget', () => {
  // no backoff (every worker lived long): only the budget limits the reforks
  test('at most `limit` reforks per window; the next one waits until the window has room', () => {
    const { policy, clock } = clocked({ limit: 3, windowMs: 10_000 });
    const t0 = clock.now;
    for (let i = 0; i < 3; i++) {
      clock.now = t0 + i * 1000;
      const d = policy.onDeath(clock.now - STABLE);
      assert.deepEqual([d.delayMs, d.budgetExhausted], [0, false], `refork #${i + 1}`);
    }
    clock.now = t0 + 2500;
    const fourth = policy.onDeath(clock.now - STABLE);
    assert.equal(fourth.budgetExhausted, true);
    // grants at t0, t0+1s, t0+2s: the window (t - 10s, t] drops t0 at t0+10s
    assert.equal(clock.now + fourth.delayMs, t0 + 10_000);
    assert.equal(fourth.backoffMs, 0);
  });

  test('deaths while the budget is used up queue one after another, never more than limit per window', () => {
    const { policy, clock } = clocked({ limit: 2, windowMs: 1000 });
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const d = policy.onDeath(clock.now - STABLE);
      times.push(clock.now + d.delayMs);
    }
    const t0 = times[0]!;
    assert.deepEqual(times.map(t => t - t0), [0, 0, 1000, 1000, 2000, 2000]);
    // the invariant itself: every window of windowMs holds at most `limit` reforks
    for (const t of times) {
      assert.ok(times.filter(u => u > t - 1000 && u <= t).length <= 2, `window ending at ${t - t0}`);
    }
  });

  test('the window slides: old reforks stop counting and are forgotten', () => {
    const { policy, clock } = clocked({ limit: 2, windowMs: 60_000 });
    policy.onDeath(clock.now - STABLE);
    policy.onDeath(clock.now - STABLE);
    clock.now += 60_001;
    const d = policy.onDeath(clock.now - STABLE);
    assert.deepEqual([d.delayMs, d.budgetExhausted], [0, false]);
    assert.equal(policy.state().grants.length, 1, 'grants outside the window are dropped');
  });

  test('backoff and budget combine: the later of the two wins', () => {
    const config = { ...DEFAULT_REFORK_POLICY, limit: 1, windowMs: 5000 };
    const first = decideRefork(INITIAL_REFORK_STATE, 0, QUICK, config);
    assert.equal(first.delayMs, 0);
    // second quick death: backoff 1s, but the window only has room at 5s
    const second = decideRefork(first.state, 100, QUICK, config);
    assert.deepEqual([second.backoffMs, second.delayMs, second.budgetExhausted], [1000, 4900, true]);
    // third: backoff 2s from 200 ms = 2.2s; the window has room again at 10s
    const third = decideRefork(second.state, 200, QUICK, config);
    assert.deepEqual([third.backoffMs, third.delayMs], [2000, 9800]);
  });

  test('defaults: 60 reforks per 60 s, cfork\'s limit', () => {
    assert.equal(DEFAULT_REFORK_POLICY.limit, 60);
    assert.equal(DEFAULT_REFORK_POLICY.windowMs, 60_000);
    const { policy, clock } = clocked();
    let exhaustedAt = -1;
    for (let i = 0; i < 61; i++) {
      if (policy.onDeath(clock.now - STABLE).budgetExhausted) {
        exhaustedAt = i;
        break;
      }
    }
    assert.equal(exhaustedAt, 60, 'the 61st refork within a minute waits');
  });

  test('limit 0 never reforks', () => {
    const { policy, clock } = clocked({ limit: 0 });
    const d = policy.onDeath(clock.now - STABLE);
    assert.equal(d.delayMs, Infinity);
    assert.equal(d.budgetExhausted, true);
  });
});

describe('refork policy: earliestSlot', () => {
  const cfg = { limit: 2, windowMs: 100 };
  test('room now', () => {
    assert.equal(earliestSlot([], 50, cfg), 50);
    assert.equal(earliestSlot([10], 50, cfg), 50);
    assert.equal(earliestSlot([10, 20], 200, cfg), 200, 'both grants left the window');
  });
  test('full: when the grant `limit` places from the end leaves the window', () => {
    assert.equal(earliestSlot([10, 20], 50, cfg), 110);
    assert.equal(earliestSlot([10, 20, 110], 50, cfg), 120, 'a grant already scheduled later counts too');
  });
  test('equal times leave the window together', () => {
    assert.equal(earliestSlot([10, 10], 50, cfg), 110);
  });
  test('pure: the state passed in is not changed', () => {
    const state = { streak: 2, grants: [1, 2] };
    const frozen = JSON.stringify(state);
    decideRefork(state, 10, QUICK, { ...DEFAULT_REFORK_POLICY, limit: 1 });
    assert.equal(JSON.stringify(state), frozen);
  });
});
