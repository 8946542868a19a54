/**
 * The pure part of the master's status server: what /livez, /readyz and /status say, from
 * facts the master already has. No timers, no I/O; the clock is injected.
 */
import type { WorkerReport } from '../worker/report.js';

/** A worker's state as /status shows it. */
export type WorkerState = 'starting' | 'listening' | 'closing' | 'disconnected';
/** The agent's: `started` once it said agent-start; `disconnected` when none runs. */
export type AgentState = 'starting' | 'started' | 'closing' | 'disconnected';
export type MasterState = 'starting' | 'ready' | 'closing';

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** When it exited (ISO 8601). */
  at: string;
}

export interface WorkerStatus {
  /** The worker's ordinal, as in `app_worker#3`. */
  id: number;
  pid: number;
  state: WorkerState;
  uptimeMs: number;
  /** Workers of this slot that exited before (reforks and reloads). */
  restarts: number;
  /** How the last of them ended; null if none did. */
  lastExit: ExitInfo | null;
  /** From the worker's last report (bytes, 0..1, ms, counters); null before its first report. */
  rss: number | null;
  heapUsed: number | null;
  elu: number | null;
  eventLoopDelayP99Ms: number | null;
  requests: number | null;
  inFlight: number | null;
}

export interface AgentStatus {
  pid: number | null;
  state: AgentState;
  uptimeMs: number | null;
  /** Agents started after the first one. */
  restarts: number;
  lastExit: ExitInfo | null;
}

export interface ClusterStatus {
  master: { pid: number; uptimeMs: number; state: MasterState };
  agent: AgentStatus;
  workers: WorkerStatus[];
}

export interface Verdict {
  ok: boolean;
  /** One line for the response body. */
  reason: string;
}

/** The app worker facts a state needs (the registry's AppEntry has them). */
export interface AppFacts {
  state: 'starting' | 'listening' | 'disconnected' | 'dead';
  stopping: boolean;
}

export function workerState(app: AppFacts, closing: boolean): WorkerState {
  if (app.state === 'disconnected' || app.state === 'dead') return 'disconnected';
  if (closing || app.stopping) return 'closing';
  return app.state;
}

export function agentState(agent: { alive: boolean; started: boolean } | undefined, closing: boolean): AgentState {
  if (!agent || !agent.alive) return 'disconnected';
  if (closing) return 'closing';
  return agent.started ? 'started' : 'starting';
}

export function masterState(facts: { started: boolean; closing: boolean }): MasterState {
  if (facts.closing) return 'closing';
  return facts.started ? 'ready' : 'starting';
}

/** /readyz: ready after egg-ready, while an app worker listens, until a close begins. */
export function readiness(facts: { started: boolean; closing: boolean; listening: number }): Verdict {
  if (facts.closing) return { ok: false, reason: 'closing' };
  if (!facts.started) return { ok: false, reason: 'starting' };
  if (facts.listening < 1) return { ok: false, reason: 'no app worker listening' };
  return { ok: true, reason: 'ready' };
}

export interface LivenessConfig {
  /** Exception checks in a row without an agent (egg-cluster's rule: 3). */
  maxAgentMisses: number;
  /** No app worker listening for this long, after the start (30 s). */
  noListenerMs: number;
}

export const DEFAULT_LIVENESS: LivenessConfig = { maxAgentMisses: 3, noListenerMs: 30_000 };

/**
 * /livez: alive while the master can still recover the cluster by itself. It cannot when no
 * agent was present for `maxAgentMisses` exception checks in a row (the lifecycle's count: a
 * booting replacement counts until one has died at boot), or when no app worker has listened
 * for `noListenerMs` since the start completed. Before the start completes, the start timeout
 * decides; once a close began, the master is ending by itself: alive.
 */
export class Liveness {
  #agentMisses = 0;
  #started = false;
  #lastListeningAt = 0;

  constructor(readonly config: LivenessConfig = DEFAULT_LIVENESS, private readonly now: () => number = Date.now) {}

  get agentMisses(): number {
    return this.#agentMisses;
  }

  /** The start completed (egg-ready): the no-listener clock starts. */
  started(): void {
    if (this.#started) return;
    this.#started = true;
    this.#lastListeningAt = this.now();
  }

  /** One exception check: the agent count as the master's check sees it. */
  exceptionCheck(count: { agent: number }): void {
    this.#agentMisses = count.agent ? 0 : this.#agentMisses + 1;
  }

  /** How many app workers listen now (sampled every second and on every probe). */
  observe(listening: number): void {
    if (listening > 0) this.#lastListeningAt = this.now();
  }

  verdict(closing: boolean): Verdict {
    if (closing) return { ok: true, reason: 'closing' };
    if (this.#agentMisses >= this.config.maxAgentMisses) {
      return { ok: false, reason: `no agent for ${this.#agentMisses} exception checks in a row` };
    }
    if (this.#started) {
      const quietMs = this.now() - this.#lastListeningAt;
      if (quietMs >= this.config.noListenerMs) return { ok: false, reason: `no app worker listening for ${quietMs} ms` };
    }
    return { ok: true, reason: 'ok' };
  }
}

/** A worker's figures from its last report; all null before the first. */
export function reportFigures(report: WorkerReport | undefined): Pick<WorkerStatus,
  'rss' | 'heapUsed' | 'elu' | 'eventLoopDelayP99Ms' | 'requests' | 'inFlight'> {
  return {
    rss: report?.rss ?? null,
    heapUsed: report?.heapUsed ?? null,
    elu: report?.elu ?? null,
    eventLoopDelayP99Ms: report?.eventLoopDelayP99Ms ?? null,
    requests: report?.requests ?? null,
    inFlight: report?.inFlight ?? null,
  };
}
