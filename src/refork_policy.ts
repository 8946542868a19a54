/**
 * When to refork a dead app worker: a sliding-window budget (at most `limit` reforks per
 * `windowMs`, cfork's 60 per 60 s) and an exponential backoff between consecutive quick
 * deaths (the first refork at once, then 1 s, 2 s, 4 s … capped at 30 s). Pure: the caller
 * passes the clock, so a unit test drives it without timers.
 *
 * egg-cluster's thread mode reforked every dead thread after a fixed 1 s, in every env,
 * without a limit (defect D11d).
 */

export interface ReforkPolicyConfig {
  /** Reforks allowed per window. */
  limit: number;
  windowMs: number;
  /** Backoff after the second consecutive quick death; doubles after each further one. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A worker that lived at least this long was healthy: its death starts a new streak. */
  stableMs: number;
}

export const DEFAULT_REFORK_POLICY: Readonly<ReforkPolicyConfig> = Object.freeze({
  limit: 60,
  windowMs: 60_000,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  stableMs: 10_000,
});

export interface ReforkState {
  /** Consecutive quick deaths so far (0: none yet). */
  readonly streak: number;
  /** When each granted refork runs (ascending); only those inside a window still matter. */
  readonly grants: readonly number[];
}

export const INITIAL_REFORK_STATE: ReforkState = Object.freeze({ streak: 0, grants: Object.freeze([]) });

export interface ReforkDecision {
  /** Wait this long, then refork. */
  delayMs: number;
  /** The backoff alone: `delayMs` is larger only when the budget is used up. */
  backoffMs: number;
  /** The window's budget was used up: the refork waits until the window has room. */
  budgetExhausted: boolean;
  state: ReforkState;
}

/** Backoff for the n-th consecutive quick death: 1 → 0, 2 → base, 3 → 2·base, … capped at max. */
export function backoffDelay(streak: number, config: Pick<ReforkPolicyConfig, 'baseDelayMs' | 'maxDelayMs'>): number {
  if (streak <= 1) return 0;
  // 2 ** 31 is already far past any cap; keeps the arithmetic finite for long streaks
  const factor = 2 ** Math.min(streak - 2, 31);
  return Math.min(config.baseDelayMs * factor, config.maxDelayMs);
}

/**
 * The earliest time at or after `at` when one more refork fits the window: fewer than
 * `limit` grants in `(t - windowMs, t]`, counting grants already scheduled for later.
 */
export function earliestSlot(grants: readonly number[], at: number, config: Pick<ReforkPolicyConfig, 'limit' | 'windowMs'>): number {
  if (config.limit <= 0) return Infinity;
  const relevant = grants.filter(g => g > at - config.windowMs);
  if (relevant.length < config.limit) return at;
  // once the grant `limit` places from the end leaves the window, the window has room
  const pivot = relevant[relevant.length - config.limit]!;
  return Math.max(at, pivot + config.windowMs);
}

/**
 * A worker that ran for `uptimeMs` died at `now`: when to refork it. Always reforks (a port
 * or a slot is never given up for good) but never faster than the budget allows.
 */
export function decideRefork(
  state: ReforkState,
  now: number,
  uptimeMs: number,
  config: ReforkPolicyConfig = DEFAULT_REFORK_POLICY,
): ReforkDecision {
  const streak = uptimeMs >= config.stableMs ? 1 : state.streak + 1;
  const backoffMs = backoffDelay(streak, config);
  const wanted = now + backoffMs;
  const at = earliestSlot(state.grants, wanted, config);
  const budgetExhausted = at > wanted;
  const grants = state.grants.filter(g => g > now - config.windowMs);
  if (Number.isFinite(at)) {
    grants.push(at);
    grants.sort((a, b) => a - b);
  }
  return { delayMs: at - now, backoffMs, budgetExhausted, state: { streak, grants } };
}

/**
 * The stateful wrapper the pools use, with an injectable clock. The window budget is shared by
 * the whole pool; the backoff streak belongs to a *lineage*: a worker and the reforks that
 * replace it (the same slot). Unrelated deaths of young workers (a chaos test, an OOM killer
 * picking different workers) do not add up into one long backoff; one slot that keeps dying
 * at boot does.
 */
export class ReforkPolicy {
  readonly config: ReforkPolicyConfig;
  #grants: readonly number[] = [];
  readonly #streaks = new Map<unknown, number>();

  constructor(config: Partial<ReforkPolicyConfig> = {}, private readonly now: () => number = Date.now) {
    this.config = { ...DEFAULT_REFORK_POLICY, ...config };
  }

  /** The state of one lineage (the default one when none is given). */
  state(lineage: unknown = DEFAULT_LINEAGE): ReforkState {
    return { streak: this.#streaks.get(lineage) ?? 0, grants: this.#grants };
  }

  /** A worker of `lineage` started at `startedAt` died just now. */
  onDeath(startedAt: number, lineage: unknown = DEFAULT_LINEAGE): ReforkDecision {
    const now = this.now();
    const decision = decideRefork(this.state(lineage), now, now - startedAt, this.config);
    this.#grants = decision.state.grants;
    this.#streaks.set(lineage, decision.state.streak);
    return decision;
  }

  /** A lineage ended (its slot is gone for good): forget its streak. */
  forget(lineage: unknown): void {
    this.#streaks.delete(lineage);
  }
}

const DEFAULT_LINEAGE = Symbol('default lineage');
