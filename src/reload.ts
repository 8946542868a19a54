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
}

/**
 * Rolling reload of the app workers (`reload-worker`, SIGUSR2): fork a new worker, wait
 * until it listens, then drain and stop one old worker; repeat. The cluster never serves
 * with fewer than `workers` and has one extra only during each switch. Requests that come
 * while a reload runs are coalesced into one more reload after it.
 * egg-cluster SIGTERMed all old workers at once and, in production, let cfork refork them
 * too, doubling the workers (defect D12).
 */
export class RollingReload {
  #running = false;
  #again = false;
  readonly #pending = new Set<(result: undefined) => void>();
  #forksAsked = 0;

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

  /** The pool just forked a worker: was it one this reload asked for? (counted in fork order) */
  claimFork(): boolean {
    if (this.#forksAsked === 0) return false;
    this.#forksAsked--;
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
    for (const entry of old) {
      if (this.deps.isClosed()) return;
      const fresh = await this.#forkOneAndWait(pool);
      if (!fresh) {
        // cancelled by a close: nothing failed
        if (this.deps.isClosed()) return;
        logger.error('[master] reload stopped: a new app worker did not start; the old workers keep serving');
        for (const e of old) if (registry.app(e.handle)) e.devReload = false;
        return;
      }
      if (!registry.app(entry.handle)) continue;
      entry.stopping = true;
      await entry.handle.terminate(this.deps.closeTimeoutMs());
    }
    log('[master] reload done, %s workers', registry.apps.size);
  }

  /** Resolves with the new worker once it listens, or undefined if it exits first or we close. */
  #forkOneAndWait(pool: AppPool): Promise<WorkerHandle | undefined> {
    const { starts } = this.deps;
    return new Promise(resolve => {
      let handle: WorkerHandle | undefined;
      const done = (result: WorkerHandle | undefined): void => {
        pool.removeListener('fork', onFork);
        starts.removeListener('app-start', onStart);
        handle?.removeListener('exit', onExit);
        this.#pending.delete(done);
        resolve(result);
      };
      const onFork = (h: WorkerHandle): void => {
        pool.removeListener('fork', onFork);
        handle = h;
        h.once('exit', onExit);
      };
      const onStart = (data: { workerId: number }): void => {
        if (handle && data.workerId === handle.workerId) done(handle);
      };
      const onExit = (): void => done(undefined);
      pool.on('fork', onFork);
      starts.on('app-start', onStart);
      this.#pending.add(done);
      this.#forksAsked++;
      pool.forkOne();
    });
  }
}
