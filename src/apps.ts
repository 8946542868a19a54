/**
 * The app workers' side of the master: fork them once the agent has started, follow each one
 * from fork to listening to exit, and apply the lifecycle's answer when one disconnects or
 * dies (refork now, after a backoff, or fail the start).
 */
import { format } from 'node:util';
import { AppWorkerDiedError, ClusterStartError } from './errors.js';
import type { AppPool, WorkerHandle } from './launcher/types.js';
import type { AppFacts } from './lifecycle.js';
import type { MasterContext } from './master_context.js';
import type { ListeningAddress } from './protocol.js';
import type { AppEntry } from './registry.js';
import type { RollingReload } from './reload.js';
import { argvOptions } from './worker/options_codec.js';

export class AppSupervisor {
  /** Every app worker of the first start listened (egg-cluster's isAllWorkerStarted). */
  allStarted = false;
  #pool: AppPool | undefined;
  #startTime = 0;
  #listened = 0;
  /** Reforks waiting for their backoff. */
  readonly #reforkTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly ctx: MasterContext,
    private readonly reload: RollingReload,
    /** The first start is complete: every worker listens on `address`. */
    private readonly onAllListening: (address: ListeningAddress) => void,
  ) {}

  get pool(): AppPool | undefined {
    return this.#pool;
  }

  /** Fork the app workers (once: the agent's first `agent-start`). */
  start(): void {
    const { ctx } = this;
    if (this.#pool) return;
    this.#startTime = Date.now();
    this.#listened = 0;
    ctx.log('[master] start appWorker with args %j (%s)', [argvOptions(ctx.options)], ctx.options.startMode);
    const pool = ctx.launcher.startApps({ options: ctx.options }, ctx.options.workers);
    this.#pool = pool;
    pool.on('fork', (handle, tag) => this.#onFork(pool, handle, tag));
  }

  #onFork(pool: AppPool, handle: WorkerHandle, tag: unknown): void {
    const { ctx } = this;
    if (ctx.closed) {
      // forked while closing (a refork racing the close): stop it
      pool.setRefork(handle, false);
      void handle.terminate(0);
      return;
    }
    const entry = ctx.registry.addApp(handle);
    // a worker forked by a reload is not replaced if it cannot start: the reload stops and
    // the old worker keeps its slot (lifecycle.ts has every other rule)
    entry.reloadFork = this.reload.claimFork(handle, tag);
    pool.setRefork(handle, this.#reforkable(entry));
    handle.on('message', raw => ctx.route(handle, raw));
    handle.on('listening', address => this.#onListening(handle, address));
    handle.on('disconnect', () => {
      // the worker stopped accepting (an uncaught exception: it finishes its requests, then
      // exits up to 30 s later): its replacement starts now
      entry.state = 'disconnected';
      ctx.logger.info('[master] app_worker#%s:%s disconnect, suicide: %s, state: %s, current workers: %j',
        handle.id, handle.workerId, handle.exitedAfterDisconnect, entry.state, ctx.registry.appIds());
      this.#onGone(entry, 'disconnect', 'disconnected');
    });
    handle.on('error', err => ctx.logger.error(err));
    handle.once('exit', (code, signal) => this.#onExit(handle, code, signal));
    ctx.log('[master] app_worker#%s:%s start, state: %s, current workers: %j',
      handle.id, handle.workerId, entry.state, ctx.registry.appIds());
    if (ctx.options.isDebug) {
      ctx.messenger.send({
        action: 'debug', to: 'parent', from: 'app',
        data: { debugPort: handle.debugPort, pid: handle.workerId, workerId: handle.workerId },
      });
    }
  }

  /**
   * cfork's `disableRefork` hint, as egg-cluster set it: on while the cluster starts and for a
   * worker the master stops; off for any other worker after launch, in every env. cfork logs a
   * disconnect or exit at ERROR, and `don't fork new work`, for a worker whose death was not
   * expected; INFO and `will be kill soon` otherwise.
   */
  #reforkable(entry: AppEntry): boolean {
    return this.allStarted && !this.ctx.closed && !entry.reloadFork && !entry.stopping && !entry.devReload;
  }

  #facts(entry: AppEntry): AppFacts {
    return {
      startTime: entry.handle.startTime,
      listenedAt: entry.listenedAt,
      slot: entry.slot,
      // old workers of a running reload are replaced by the reload itself
      stopping: entry.stopping || entry.devReload,
      reloadFork: entry.reloadFork,
      replaced: entry.replaced,
    };
  }

  /** A worker disconnected or exited: apply the lifecycle's answer. False: the start failed because of it. */
  #onGone(entry: AppEntry, cause: 'disconnect' | 'exit', what: string): boolean {
    const { ctx } = this;
    const action = ctx.lifecycle.appGone(this.#facts(entry),
      { allStarted: this.allStarted, closed: ctx.closed, production: ctx.isProduction }, cause);
    const { handle } = entry;
    switch (action.type) {
      case 'fail-start':
        return false;
      case 'none':
        return true;
      case 'give-up':
        entry.replaced = true;
        ctx.logger.error('[master] app_worker#%s:%s not reforked: options.restartPolicy.limit is 0', handle.id, handle.workerId);
        return true;
      case 'refork':
        break;
    }
    entry.replaced = true;
    const pool = this.#pool;
    if (!pool) return true;
    if (action.budgetExhausted) {
      const { limit, windowMs } = ctx.lifecycle.apps.config;
      ctx.logger.error('[master] app_worker refork budget used up (%s reforks in %sms): the next refork waits %sms',
        limit, windowMs, action.delayMs);
    }
    ctx.log('[master] app_worker#%s:%s %s, refork %s', handle.id, handle.workerId, what,
      action.delayMs > 0 ? `in ${action.delayMs}ms (${action.streak} quick deaths in a row)` : 'now');
    if (action.delayMs <= 0) {
      pool.refork(handle);
      return true;
    }
    const timer = setTimeout(() => {
      this.#reforkTimers.delete(timer);
      if (!ctx.closed) pool.refork(handle);
    }, action.delayMs);
    this.#reforkTimers.add(timer);
    return true;
  }

  #onListening(handle: WorkerHandle, address: ListeningAddress): void {
    const { ctx } = this;
    const { options, registry, messenger } = ctx;
    const entry = registry.app(handle);
    if (!entry || entry.state !== 'starting' || ctx.closed) return;
    if (typeof address !== 'object' || address === null) return;
    const isUnixSocket = address.addressType === -1 || address.addressType === 'pipe';
    // other servers of the app (debugPort, a websocket port…) are not the app's listener
    const expected = options.sticky ? options.stickyWorkerPort : ctx.realPort;
    // worker_threads: each app thread listens on its own port of options.ports
    const threadPorts = options.startMode === 'worker_threads' ? options.ports : [];
    if (!isUnixSocket && (threadPorts.length
      ? !threadPorts.includes(address.port as number)
      : String(address.port) !== String(expected))) return;
    entry.state = 'listening';
    entry.listenedAt = Date.now();
    entry.reloadFork = false;
    ctx.logger.info('[master] app_worker#%s:%s listening on %j', handle.id, handle.workerId, address);
    messenger.send({ action: 'egg-pids', to: 'agent', data: registry.listeningWorkerIds() });
    const agent = registry.agent;
    if (agent && registry.agentStarted) {
      // @eggjs/cluster 3: a worker that starts after the agent still learns the agent pid
      messenger.send({ action: 'egg-pids', to: 'app', receiverWorkerId: String(handle.workerId), data: [agent.workerId] });
    }
    this.#listened++;
    const remain = this.allStarted ? 0 : options.workers - this.#listened;
    ctx.log('[master] app_worker#%s:%s started at %s, remain %s (%sms)',
      handle.id, handle.workerId, address.port ?? address.address, remain, Date.now() - this.#startTime);
    ctx.emit('app-start', { workerId: handle.workerId, address });
    if (this.allStarted) {
      // a reforked worker: egg-ready to it alone, not again to every healthy worker (D13)
      messenger.send({ action: 'egg-ready', to: 'app', receiverWorkerId: String(handle.workerId), data: ctx.readyPayload() });
      this.#pool?.setRefork(handle, this.#reforkable(entry));
      return;
    }
    if (this.#listened < options.workers) return;
    this.allStarted = true;
    for (const e of registry.apps.values()) this.#pool?.setRefork(e.handle, this.#reforkable(e));
    this.onAllListening(address);
  }

  #onExit(handle: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    const { ctx } = this;
    const entry = ctx.registry.app(handle);
    ctx.registry.removeApp(handle);
    if (ctx.closed || !entry) return;
    ctx.emit('app-exit', { workerId: handle.workerId, code, signal });
    if (!entry.devReload) {
      const message = format('[master] app_worker#%s:%s died (code: %s, signal: %s, suicide: %s, state: %s), current workers: %j',
        handle.id, handle.workerId, code, signal, handle.exitedAfterDisconnect, 'dead', ctx.registry.appIds());
      if (ctx.options.isDebug && signal === 'SIGKILL') {
        ctx.logger.error(message);
        ctx.logger.error('[master] worker kill by debugger, exiting...');
        setTimeout(() => ctx.shutdown(0), 10);
      } else {
        ctx.logger.error(new AppWorkerDiedError(message));
      }
    }
    ctx.messenger.send({ action: 'egg-pids', to: 'agent', data: ctx.registry.listeningWorkerIds() });
    if (this.#onGone(entry, 'exit', format('exit (code: %s, signal: %s)', code, signal))) {
      // a worker replaced by a reload did not die: egg-mock would fail the test on this message
      if (this.allStarted && !entry.devReload) ctx.messenger.send({ action: 'app-worker-died', to: 'parent' });
      return;
    }
    ctx.logger.error('[master] app_worker#%s:%s start fail, exiting with code:1', handle.id, handle.workerId);
    ctx.failStart(new ClusterStartError('ERR_CLUSTER_APP_START',
      format('app_worker#%s:%s died during startup (code: %s, signal: %s); its log above says why', handle.id, handle.workerId, code, signal)));
  }

  /**
   * Replace a worker the watchdog gave up on (issue 10). 'hung': its loop is blocked and cannot
   * drain, so its replacement is forked, then it is SIGKILLed (a thread, whose port the
   * replacement needs, is terminated first and reforked on its exit). 'memory': as a rolling
   * reload does (RollingReload.replaceOne): the replacement listens, then the old one drains.
   * Resolves when the replacement is over; false when it did not happen.
   */
  async replace(entry: AppEntry, reason: 'hung' | 'memory'): Promise<boolean> {
    const pool = this.#pool;
    const { ctx } = this;
    if (!pool || ctx.closed || entry.stopping || !ctx.registry.app(entry.handle)) return false;
    if (reason === 'memory') return entry.devReload ? false : this.reload.replaceOne(pool, entry);
    const { handle } = entry;
    if (entry.devReload) {
      // an old worker of a running reload: the reload forks its replacement and, finding it
      // gone, moves on
      entry.stopping = true;
      handle.forceKill();
      return true;
    }
    // its exit is expected: the lifecycle forks nothing more for it
    entry.stopping = true;
    entry.replaced = true;
    pool.setRefork(handle, false);
    if (ctx.options.startMode === 'worker_threads') {
      handle.once('exit', () => {
        if (!ctx.closed) pool.refork(handle);
      });
    } else {
      pool.forkOne();
    }
    handle.forceKill();
    return true;
  }

  /** No more reforks: the pending ones are cancelled. */
  stop(): void {
    for (const timer of this.#reforkTimers) clearTimeout(timer);
    this.#reforkTimers.clear();
  }

  /** The forced exit. */
  forceKill(): void {
    for (const handle of this.ctx.registry.appHandles()) handle.forceKill();
  }

  dispose(): void {
    this.#pool?.dispose();
  }
}
