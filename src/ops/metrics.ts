/**
 * `GET /metrics` (issue 10): the manager's own metrics (`egg_cluster_*`) and the app's
 * prom-client metrics aggregated over the app workers, with counters carried forward from
 * workers that are gone.
 *
 * Workers are keyed by their handle (one per forked process or thread), not by slot or pid:
 * a replacement takes its predecessor's slot while the predecessor may still be draining and
 * answering, and both must count. A worker's last collected metrics are folded into the
 * departed accumulator on its exit, once it can send nothing more. A worker that does not
 * answer within the time-out (hung, or busy for long) is reported missing; its last collected
 * counters stand in for it, so the total does not drop while it is stuck.
 */
import type { WorkerHandle } from '../launcher/types.js';
import type { WorkerRegistry } from '../registry.js';
import { isMetricsAnswer, METRICS_REQUEST_ACTION, type MetricsAnswer } from '../worker/metrics.js';
import { aggregate, Departed, sanitize, type MetricJSON } from './metrics_aggregate.js';
import type { ClusterStatus } from './state.js';

/** Per worker: how long a scrape waits for its answer (the scrape answers within 2 s). */
export const COLLECT_TIMEOUT_MS = 1500;

interface Tracked {
  /** The last metrics it sent (sanitized); null before its first answer. */
  last: MetricJSON[] | null;
  /** The highest request number it answered: an older answer arriving late is ignored. */
  answered: number;
  waiting: Map<number, (answer?: MetricsAnswer) => void>;
}

export interface Collection {
  /** The app metrics, merged. */
  metrics: MetricJSON[];
  /** Worker ids asked, and those that did not answer in time. */
  asked: number;
  missing: number[];
  /** The answers that carried an error (getMetricsAsJSON threw). */
  errors: number;
}

/** Collects the app workers' prom-client metrics over IPC. */
export class AppMetrics {
  readonly #workers = new Map<WorkerHandle, Tracked>();
  readonly #departed = new Departed();
  #seq = 0;

  constructor(private readonly timeoutMs = COLLECT_TIMEOUT_MS) {}

  /** Follow a new app worker: its answers, and its exit (fold its last metrics in). */
  track(handle: WorkerHandle): void {
    const tracked: Tracked = { last: null, answered: 0, waiting: new Map() };
    this.#workers.set(handle, tracked);
    handle.on('message', (message: unknown) => {
      if (!isMetricsAnswer(message)) return;
      const { seq, metrics } = message.data;
      if (seq > tracked.answered && metrics !== null && !message.data.error) {
        tracked.answered = seq;
        tracked.last = sanitize(metrics);
      }
      tracked.waiting.get(seq)?.(message.data);
    });
    handle.once('exit', () => {
      this.#workers.delete(handle);
      if (tracked.last) this.#departed.add(tracked.last);
      for (const done of tracked.waiting.values()) done();
    });
  }

  /**
   * Ask every connected worker (that `ask` accepts: the master skips those still booting, which
   * served nothing yet and would hold the scrape up), wait for each up to the time-out, merge.
   */
  async collect(ask: (handle: WorkerHandle) => boolean = () => true): Promise<Collection> {
    const asked: Array<Promise<boolean>> = [];
    const handles: WorkerHandle[] = [];
    let errors = 0;
    for (const [handle, tracked] of this.#workers) {
      if (!handle.isConnected || !ask(handle)) continue;
      const seq = ++this.#seq;
      handles.push(handle);
      asked.push(new Promise<boolean>(resolve => {
        const timer = setTimeout(() => {
          tracked.waiting.delete(seq);
          resolve(false);
        }, this.timeoutMs);
        // an answer, or the worker's exit (it is not hung: what it sent last is carried)
        tracked.waiting.set(seq, answer => {
          clearTimeout(timer);
          tracked.waiting.delete(seq);
          if (answer?.error) errors++;
          resolve(true);
        });
        handle.send({ action: METRICS_REQUEST_ACTION, data: { seq } });
      }));
    }
    const answered = await Promise.all(asked);
    const missing = handles.filter((_, i) => !answered[i]).map(h => h.id).sort((a, b) => a - b);
    // merged from the state as it is now: a worker that exited meanwhile is in the departed
    // part only, never twice
    const fresh: MetricJSON[][] = [];
    const stale: MetricJSON[][] = [this.#departed.metrics];
    const missingSet = new Set(missing);
    for (const [handle, tracked] of this.#workers) {
      if (!tracked.last) continue;
      if (handle.isConnected && !missingSet.has(handle.id) && ask(handle)) fresh.push(tracked.last);
      else stale.push(tracked.last);
    }
    return { metrics: aggregate(fresh, stale), asked: handles.length, missing, errors };
  }

  /** Departed workers whose counters are carried. */
  get departedWorkers(): number {
    return this.#departed.workers;
  }
}

/** Why a worker exited, for egg_cluster_worker_restarts_total. */
export type ExitReason = 'stopped' | 'signal' | 'error' | 'exit';

/** stopped by the master (reload, memory, hung) / killed by a signal / exit code != 0 / exit 0 unasked. */
export function exitReason(stopping: boolean, code: number | null, signal: string | null): ExitReason {
  if (stopping) return 'stopped';
  if (signal) return 'signal';
  if (code) return 'error';
  return 'exit';
}

/** The manager's counters that only events show (the rest comes from /status). */
export class ManagerCounters {
  readonly restarts = new Map<string, number>();
  reloadForks = 0;
  startDurationMs: number | undefined;

  constructor(private readonly registry: WorkerRegistry, private readonly closing: () => boolean) {}

  /** Call before the master's own listeners: its registry entry is still there at exit. */
  trackApp(handle: WorkerHandle): void {
    queueMicrotask(() => {
      if (this.registry.app(handle)?.reloadFork) this.reloadForks++;
    });
    handle.once('exit', (code, signal) => {
      if (this.closing()) return;
      const entry = this.registry.app(handle);
      if (!entry) return;
      this.#count('app', exitReason(entry.stopping || entry.devReload, code, signal));
    });
  }

  trackAgent(agent: WorkerHandle): void {
    agent.once('exit', (code, signal) => {
      if (!this.closing()) this.#count('agent', exitReason(false, code, signal));
    });
  }

  #count(role: string, reason: ExitReason): void {
    const key = `${role}\u0000${reason}`;
    this.restarts.set(key, (this.restarts.get(key) ?? 0) + 1);
  }
}

const WORKER_STATES = ['starting', 'listening', 'closing', 'disconnected'] as const;

const gauge = (name: string, help: string, values: MetricJSON['values']): MetricJSON => ({ name, help, type: 'gauge', values });

/** The egg_cluster_* metrics from the cluster's status, the event counters and the last collection. */
export function managerMetrics(status: ClusterStatus, counters: ManagerCounters, collection: Collection | undefined, departed: number): MetricJSON[] {
  const byState = new Map<string, number>(WORKER_STATES.map(s => [s, 0]));
  for (const w of status.workers) byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
  const perWorker = (pick: (w: ClusterStatus['workers'][number]) => number | null, scale = 1): MetricJSON['values'] =>
    status.workers.flatMap(w => {
      const v = pick(w);
      return v === null ? [] : [{ value: v * scale, labels: { worker: String(w.id), pid: String(w.pid) } }];
    });
  const restarts: MetricJSON['values'] = [];
  for (const [key, value] of counters.restarts) {
    const [role, reason] = key.split('\u0000');
    restarts.push({ value, labels: { role: role!, reason: reason! } });
  }
  const metrics: MetricJSON[] = [
    gauge('egg_cluster_workers', 'App workers by state.', [...byState].map(([state, value]) => ({ value, labels: { state } }))),
    {
      name: 'egg_cluster_worker_restarts_total', type: 'counter', values: restarts,
      help: 'Worker exits outside a close, by role and reason (stopped: by the master, as in a reload; signal; error: exit code != 0; exit: code 0).',
    },
    gauge('egg_cluster_worker_resident_memory_bytes', 'App worker resident set size (last report).', perWorker(w => w.rss)),
    gauge('egg_cluster_worker_heap_used_bytes', 'App worker V8 heap used (last report).', perWorker(w => w.heapUsed)),
    gauge('egg_cluster_worker_event_loop_delay_p99_seconds', 'App worker event-loop delay, 99th percentile over the last report interval.',
      perWorker(w => w.eventLoopDelayP99Ms, 1 / 1000)),
    gauge('egg_cluster_worker_event_loop_utilization', 'App worker event-loop utilization over the last report interval (0..1).', perWorker(w => w.elu)),
    { name: 'egg_cluster_reload_forks_total', help: 'App workers forked by rolling reloads.', type: 'counter', values: [{ value: counters.reloadForks }] },
    gauge('egg_cluster_agent_up', '1 while the agent runs and has started.', [{ value: status.agent.state === 'started' ? 1 : 0 }]),
  ];
  if (counters.startDurationMs !== undefined) {
    metrics.push(gauge('egg_cluster_start_duration_seconds', 'From the master\'s start to egg-ready.', [{ value: counters.startDurationMs / 1000 }]));
  }
  if (collection) {
    metrics.push(
      gauge('egg_cluster_app_metrics_workers_missing', 'App workers that did not send their metrics in time for this scrape (their counters: last values collected).',
        [{ value: collection.missing.length }]),
      gauge('egg_cluster_app_metrics_departed_workers', 'App workers gone whose last collected counters are carried forward.', [{ value: departed }]),
    );
  }
  return metrics;
}
