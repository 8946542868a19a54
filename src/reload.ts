import type { AppPool, WorkerHandle } from './launcher/types.js';
import type { Logger } from './logger.js';
import type { AppEntry, WorkerRegistry } from './registry.js';

type OnAppStart = (data: { workerId: number }) => void;

export interface AppStarts {
  on(event: 'app-start', listener: OnAppStart): unknown;
  removeListener(event: 'app-start', listener: OnAppStart): unknown;
}

export interface ReloadDeps {
  registry: WorkerRegistry;
  logger: Logger;
  log: (message: string, ...args: unknown[]) => void;
  /** Emits 'app-start' with `{ workerId }` when an app worker listens (the master). */
  starts: AppStarts;
  isClosed: () => boolean;
  /** How long an old worker may take to drain and close. */
  closeTimeoutMs: () => number;
  /** How many replacements boot at once (options.reload.surge, resolved for the env). */
  surge: number;
}

/** A reload lane waiting for the worker its forkOne() forks; also the tag of that fork. */
type ForkWaiter = (handle: WorkerHandle) => void;

/**
 * Rolling reload of the app workers (`reload-worker`, SIGUSR2): `surge` lanes at once, each
 * forks a new worker, waits until it listens, then drains and stops one old worker, and takes
 * the next old worker. The cluster never serves with fewer than `workers` and has at most
 * `surge` extra during the switches (surge = workers: all replaced in about one boot time,
 * as egg-cluster did; surge = 1: one at a time, for memory-tight containers). Requests that
 * come while a reload runs are coalesced into one more reload after it.
 * egg-cluster SIGTERMed all old workers at once and, in production, let cfork refork them
 * too, doubling the workers (defect D12).
 */
export class RollingReload {
  #running = false;
  #again = false;
  readonly #pending = new Set<(result: undefined) => void>();
  /** Lanes waiting for the worker their forkOne() creates (each is its fork's tag). */
  readonly #forkWaiters = new Set<ForkWaiter>();

  constructor(private readonly deps: ReloadDeps) {}

  get running(): boolean {
    return this.#running;
  }

  request(pool: AppPool, workers: number): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#run(pool, workers).finally(() => {
      this.#running = false;
      if (this.#again && !this.deps.isClosed()) {
        this.#again = false;
        this.request(pool, workers);
      }
    });
  }

  /** The pool just forked a worker: was it one this reload asked for? (`tag`: forkOne()'s) */
  claimFork(handle: WorkerHandle, tag: unknown): boolean {
    if (typeof tag !== 'function' || !this.#forkWaiters.delete(tag as ForkWaiter)) return false;
    (tag as ForkWaiter)(handle);
    return true;
  }

  /** Shutdown: a reload waiting for a new worker stops waiting. */
  cancel(): void {
    for (const done of this.#pending) done(undefined);
  }

  /**
   * Replace one worker the way a reload does (the memory limit, issue 10): its replacement
   * listening first, then drain and stop it. False when the replacement did not start (the
   * old worker keeps serving) or the master closes.
   */
  async replaceOne(pool: AppPool, entry: AppEntry): Promise<boolean> {
    const { registry } = this.deps;
    entry.devReload = true;
    pool.setRefork(entry.handle, false);
    const fresh = await this.#forkOneAndWait(pool);
    if (!fresh) {
      if (registry.app(entry.handle)) entry.devReload = false;
      return false;
    }
    if (!registry.app(entry.handle)) return true;
    entry.stopping = true;
    await entry.handle.terminate(this.deps.closeTimeoutMs());
    return true;
  }

  async #run(pool: AppPool, workers: number): Promise<void> {
    const { registry, logger, log } = this.deps;
    log('[master] reload %s workers...', workers);
    // a disconnected worker is leaving already (its replacement was forked): not reloaded again
    const old = [...registry.apps.values()].filter(e => e.state !== 'disconnected' && !e.replaced);
    for (const entry of old) {
      entry.devReload = true;
      pool.setRefork(entry.handle, false);
    }
    const queue = [...old];
    let failed = false;
    const lane = async (): Promise<void> => {
      for (let entry = queue.shift(); entry; entry = queue.shift()) {
        if (this.deps.isClosed() || failed) return;
        const fresh = await this.#forkOneAndWait(pool);
        if (!fresh) {
          if (failed) return;
          failed = true;
          // cancelled by a close: nothing failed
          if (this.deps.isClosed()) return;
          logger.error('[master] reload stopped: a new app worker did not start; the old workers keep serving');
          return;
        }
        if (!registry.app(entry.handle)) continue;
        entry.stopping = true;
        await entry.handle.terminate(this.deps.closeTimeoutMs());
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.deps.surge, old.length)) }, lane));
    if (failed) {
      // the old workers that were not replaced are real workers again (died lines, refork)
      for (const e of old) if (registry.app(e.handle) && !e.stopping) e.devReload = false;
      return;
    }
    log('[master] reload done, %s workers', registry.apps.size);
  }

  /** Resolves with the new worker once it listens, or undefined if it exits first or we close. */
  #forkOneAndWait(pool: AppPool): Promise<WorkerHandle | undefined> {
    const { starts } = this.deps;
    return new Promise(resolve => {
      let handle: WorkerHandle | undefined;
      const done = (result: WorkerHandle | undefined): void => {
        starts.removeListener('app-start', onStart);
        handle?.removeListener('exit', onExit);
        this.#pending.delete(done);
        resolve(result);
      };
      const onStart = (data: { workerId: number }): void => {
        if (handle && data.workerId === handle.workerId) done(handle);
      };
      const onExit = (): void => done(undefined);
      starts.on('app-start', onStart);
      this.#pending.add(done);
      // claimFork() hands this lane the fork it caused, known by the tag: a refork asked for
      // in the same tick arrives first and is not this lane's
      const waiter: ForkWaiter = h => {
        handle = h;
        h.once('exit', onExit);
      };
      this.#forkWaiters.add(waiter);
      pool.forkOne(waiter);
    });
  }
}
