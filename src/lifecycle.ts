/**
 * The fault decisions of the master, in one place and without side effects: what to do when
 * an app worker disconnects or exits, when the agent exits, and what the exception check
 * counts. Events in, actions out; the master applies the actions (forks, timers, logs).
 * The clock is injected, so unit tests drive every rule without a process or a timer.
 *
 * The rules, and why:
 * - A serving worker (it listened, and for at least `minUptimeMs`) that dies or disconnects is
 *   replaced at once, outside the restart budget: the OOM killer or an operator killing a
 *   healthy worker is not a crash loop, and delaying its replacement empties the cluster.
 * - It is replaced on `disconnect`, not on `exit`: after an uncaught exception a worker closes
 *   its server and disconnects, then lingers up to 30 s to finish its requests (egg's
 *   graceful); nothing would serve meanwhile with `workers: 1`.
 * - A worker that dies before it serves is a quick death: reforked with the restart policy's
 *   backoff for its slot (its lineage) and within the budget (refork_policy.ts).
 * - Only production reforks app workers (egg-cluster's contract: local and unittest keep
 *   running with fewer workers, and egg-mock turns the death into a test failure).
 * - The agent is restarted in every env: its first death at once, repeats with backoff, never
 *   past the budget; `restartPolicy.limit: 0` means never.
 * - The exception check (production) counts an agent as present when it has started, or when
 *   it is booting for the first time since the last started agent died (a slow boot is not a
 *   missing agent, D21). Once a replacement has died at boot, only a started agent counts:
 *   an agent that cannot start again ends the cluster after three checks instead of leaving
 *   it in an unknown state forever.
 */
import { ReforkPolicy, type ReforkPolicyConfig } from './refork_policy.js';

/** What the lifecycle needs to know about one app worker. */
export interface AppFacts {
  /** Forked at (ms). */
  readonly startTime: number;
  /** Began listening at (ms); undefined while starting. */
  readonly listenedAt: number | undefined;
  /** Its slot (0..workers-1): the lineage of the restart policy's backoff. */
  readonly slot: number;
  /** The master is stopping it (close, reload switch): its death is expected. */
  readonly stopping: boolean;
  /** Forked by a reload and not listening yet: if it dies, the reload stops; no refork. */
  readonly reloadFork: boolean;
  /** A replacement was already forked for it (it disconnected earlier). */
  readonly replaced: boolean;
}

export interface ClusterFacts {
  /** Every app worker of the first start listened (egg-cluster's isAllWorkerStarted). */
  readonly allStarted: boolean;
  readonly closed: boolean;
  /** App workers are reforked only in production. */
  readonly production: boolean;
}

export type AppAction =
  /** It died while the cluster was starting: the start failed (exit 1). */
  | { type: 'fail-start' }
  /** Nothing to do (expected, already replaced, closing, not production). */
  | { type: 'none'; reason: 'closed' | 'expected' | 'replaced' | 'starting' | 'not-production' | 'reload-fork' }
  /** Fork a replacement in `delayMs`. */
  | { type: 'refork'; delayMs: number; serving: boolean; streak: number; budgetExhausted: boolean }
  /** The policy allows no restart at all (`limit: 0`). */
  | { type: 'give-up' };

export type AgentAction =
  | { type: 'fail-start' }
  | { type: 'none' }
  | { type: 'restart'; delayMs: number; streak: number; budgetExhausted: boolean }
  | { type: 'give-up' };

export interface LifecycleConfig extends ReforkPolicyConfig {
  /** A worker that listened at least this long before it died was serving (PM2's min_uptime). */
  minUptimeMs: number;
}

export const DEFAULT_MIN_UPTIME_MS = 1000;

export class Lifecycle {
  readonly apps: ReforkPolicy;
  readonly agents: ReforkPolicy;
  readonly minUptimeMs: number;
  /** Agents that died before `agent-start` since the last one that started. */
  #agentBootFailures = 0;

  constructor(config: Partial<LifecycleConfig> = {}, private readonly now: () => number = Date.now) {
    const { minUptimeMs, ...policy } = config;
    this.minUptimeMs = minUptimeMs ?? DEFAULT_MIN_UPTIME_MS;
    this.apps = new ReforkPolicy(policy, now);
    this.agents = new ReforkPolicy(policy, now);
  }

  /** Did this worker serve (listen for at least minUptimeMs)? */
  served(app: AppFacts): boolean {
    return app.listenedAt !== undefined && this.now() - app.listenedAt >= this.minUptimeMs;
  }

  /**
   * An app worker disconnected (its server is closed; it may still finish requests) or exited.
   * A worker is replaced once: on whichever of the two comes first.
   */
  appGone(app: AppFacts, cluster: ClusterFacts, cause: 'disconnect' | 'exit'): AppAction {
    if (cluster.closed) return { type: 'none', reason: 'closed' };
    if (app.stopping) return { type: 'none', reason: 'expected' };
    if (app.replaced) return { type: 'none', reason: 'replaced' };
    if (!cluster.allStarted) {
      // a disconnect during startup is followed by the exit, which fails the start
      return cause === 'exit' ? { type: 'fail-start' } : { type: 'none', reason: 'starting' };
    }
    if (app.reloadFork) return { type: 'none', reason: 'reload-fork' };
    if (!cluster.production) return { type: 'none', reason: 'not-production' };
    if (this.apps.config.limit <= 0) return { type: 'give-up' };
    if (this.served(app)) {
      // not a crash loop: at once, and its slot's streak starts over
      this.apps.forget(app.slot);
      return { type: 'refork', delayMs: 0, serving: true, streak: 0, budgetExhausted: false };
    }
    const decision = this.apps.onDeath(app.startTime, app.slot);
    if (!Number.isFinite(decision.delayMs)) return { type: 'give-up' };
    return {
      type: 'refork', delayMs: decision.delayMs, serving: false, streak: decision.state.streak,
      budgetExhausted: decision.budgetExhausted,
    };
  }

  /** The agent said `agent-start`. */
  agentStarted(): void {
    this.#agentBootFailures = 0;
  }

  /** The current agent exited; `started`: it had said `agent-start`. */
  agentGone(agent: { startTime: number; started: boolean }, cluster: Pick<ClusterFacts, 'closed'> & { launched: boolean }): AgentAction {
    if (cluster.closed) return { type: 'none' };
    if (!cluster.launched) return { type: 'fail-start' };
    if (!agent.started) this.#agentBootFailures++;
    if (this.agents.config.limit <= 0) return { type: 'give-up' };
    const decision = this.agents.onDeath(agent.startTime);
    if (!Number.isFinite(decision.delayMs)) return { type: 'give-up' };
    return { type: 'restart', delayMs: decision.delayMs, streak: decision.state.streak, budgetExhausted: decision.budgetExhausted };
  }

  /**
   * The exception check's agent count: 1 when an agent has started; also 1 for an agent that is
   * alive and booting within `bootGraceMs`, as long as no agent has died at boot since the last
   * started one (D21 without an endless unknown state).
   */
  agentPresent(agent: { started: boolean; alive: boolean; startTime: number } | undefined, bootGraceMs: number): 0 | 1 {
    if (!agent) return 0;
    if (agent.started) return 1;
    const booting = agent.alive && this.now() - agent.startTime < bootGraceMs;
    return booting && this.#agentBootFailures === 0 ? 1 : 0;
  }
}
