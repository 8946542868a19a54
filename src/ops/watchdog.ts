/**
 * The master side of the watchdog and the memory limit (issue 10). master.ts loads it only
 * when `watchdog` or `maxMemory` is on. It reads the app workers' reports (one IPC message a
 * second from each worker's event loop, src/worker/report.ts), asks WatchdogPolicy
 * (src/watchdog.ts) what to do, and has the app supervisor replace the worker.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import { observeLauncher } from './observe.js';
import type { Launcher, WorkerHandle } from '../launcher/types.js';
import type { Logger } from '../logger.js';
import type { AppEntry, WorkerRegistry } from '../registry.js';
import { REPORT_INTERVAL_MS, isWorkerReport } from '../worker/report.js';
import { WatchdogPolicy, cgroupMemoryLimit, heapAdvice, maxOldSpaceMiB, type WatchdogAction } from '../watchdog.js';

export interface WatchdogDeps {
  registry: WorkerRegistry;
  logger: Logger;
  /** ms; 0 = no hang detection. */
  timeoutMs: number;
  /** bytes; 0 = off. */
  maxMemory: number;
  /** worker_threads: rss is the whole process, so the limit applies to each thread's heap. */
  threads: boolean;
  closed(): boolean;
  /** A reload runs: no memory replacement now. */
  reloading(): boolean;
  replace(entry: AppEntry, reason: 'hung' | 'memory'): Promise<boolean>;
}

export interface WatchdogHooks {
  observe(launcher: Launcher): Launcher;
  dispose(): void;
}

const MiB = 1024 * 1024;
const mib = (bytes: number): string => `${Math.round(bytes / MiB)}MiB`;

export function createWatchdog(deps: WatchdogDeps): WatchdogHooks {
  return new Watchdog(deps);
}

class Watchdog implements WatchdogHooks {
  readonly #policy: WatchdogPolicy<WorkerHandle>;
  readonly #seen = new WeakSet<WorkerHandle>();
  /** Workers that sent a report: they run a reporter (a worker without one is never taken for hung). */
  readonly #reporting = new WeakSet<WorkerHandle>();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly deps: WatchdogDeps) {
    this.#policy = new WatchdogPolicy({ timeoutMs: deps.timeoutMs, maxMemory: deps.maxMemory, intervalMs: REPORT_INTERVAL_MS });
    // a quarter of a report interval: hangs are seen at most 250 ms after the limit
    this.#timer = setInterval(() => this.#tick(), REPORT_INTERVAL_MS / 4);
    this.#timer.unref();
  }

  observe(launcher: Launcher): Launcher {
    return observeLauncher(launcher, { onApp: handle => this.#onFork(handle) });
  }

  #onFork(handle: WorkerHandle): void {
    handle.on('message', (message: unknown) => {
      if (!isWorkerReport(message)) return;
      this.#reporting.add(handle);
      this.#watchListening();
      const { rss, heapUsed } = message.data;
      const action = this.#policy.report(handle, Date.now(), this.deps.threads ? heapUsed : rss, this.deps.reloading());
      if (action) this.#apply(action);
    });
    handle.once('exit', () => this.#policy.forget(handle));
  }

  /**
   * Workers are watched from the moment they listen (once they have reported at all). Not the
   * ones the master stops, nor a disconnected one: its channel is closed, it finishes its
   * requests and exits on its own (the lifecycle already replaced it).
   */
  #watchListening(): void {
    const now = Date.now();
    for (const entry of this.deps.registry.apps.values()) {
      const { handle } = entry;
      if (entry.stopping || entry.replaced || entry.state === 'disconnected') {
        this.#policy.forget(handle);
        continue;
      }
      if (entry.state !== 'listening' || this.#seen.has(handle) || !this.#reporting.has(handle)) continue;
      this.#seen.add(handle);
      this.#policy.watch(handle, entry.listenedAt ?? now);
    }
  }

  #tick(): void {
    if (this.deps.closed()) return;
    this.#watchListening();
    for (const action of this.#policy.check(Date.now())) this.#apply(action);
  }

  #apply(action: WatchdogAction<WorkerHandle>): void {
    const { registry, logger } = this.deps;
    const entry = registry.app(action.key);
    if (!entry || this.deps.closed()) {
      this.#policy.memoryDone(action.key);
      return;
    }
    const { handle } = entry;
    if (action.type === 'hung') {
      logger.error('[master] app_worker#%s:%s did not answer for %sms, replacing it (watchdog.timeout %sms; a blocked event loop cannot drain: SIGKILL)',
        handle.id, handle.workerId, action.silentMs, this.deps.timeoutMs);
      void this.deps.replace(entry, 'hung');
      return;
    }
    logger.warn('[master] app_worker#%s:%s uses %s %s, above maxMemory %s for %s samples in a row (%s), replacing it like a reload',
      handle.id, handle.workerId, mib(action.bytes), this.deps.threads ? 'of heap' : 'RSS', mib(this.deps.maxMemory),
      action.samples.length, action.samples.map(mib).join(', '));
    void this.deps.replace(entry, 'memory').then(done => {
      if (!done) logger.error('[master] app_worker#%s:%s was not replaced (its replacement did not start); it keeps serving', handle.id, handle.workerId);
    }, (err: unknown) => logger.error(err)).finally(() => this.#policy.memoryDone(handle));
  }

  dispose(): void {
    clearInterval(this.#timer);
  }
}

/**
 * At start: when the cgroup memory limit is known and `workers` app workers plus the agent,
 * each at its V8 heap limit, plus the master cannot fit, one WARN with a --max-old-space-size
 * that would.
 */
export function warnHeapFit(logger: Logger, workers: number, execArgv: readonly string[], env: NodeJS.ProcessEnv,
  read: (file: string) => string | undefined = readText): void {
  const limit = cgroupMemoryLimit(read);
  if (limit === undefined) return;
  const flag = maxOldSpaceMiB(execArgv, env.NODE_OPTIONS);
  const heapLimit = flag !== undefined ? flag * MiB : v8.getHeapStatistics().heap_size_limit;
  const master = process.memoryUsage().rss;
  const advice = heapAdvice({ limit, workers, heapLimit, master });
  if (advice === undefined) return;
  logger.warn('[master] %s app workers and the agent, each up to a V8 heap of %s, plus the master (%s) do not fit in the container\'s memory limit of %s: '
    + 'run with --max-old-space-size=%s (NODE_OPTIONS) or fewer workers', workers, mib(heapLimit), mib(master), mib(limit), advice);
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
