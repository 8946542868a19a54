import os from 'node:os';
import { EventEmitter } from 'node:events';
import { format } from 'node:util';
import { Ready } from 'get-ready';
import { ClusterStartError, ClusterWorkerExceptionError } from './errors.js';
import { resolveFramework, type FrameworkInfo } from './framework.js';
import { HealthCheck } from './health.js';
import type { CloseSignal, Host } from './host/host.js';
import { ProcessHost } from './host/process_host.js';
import type { Launcher, WorkerHandle } from './launcher/types.js';
import { createLauncher } from './launcher/index.js';
import { createConsoleLogger, type Logger } from './logger.js';
import { Messenger } from './messenger.js';
import {
  DEFAULT_CLOSE_TIMEOUT, isProductionEnv, normalizeOptions, type ClusterOptions, type CloseTimeouts, type ResolvedOptions,
} from './options.js';
import { normalizeMessage, type Envelope, type ListeningAddress } from './protocol.js';
import { redactOptions } from './redact.js';
import { appAddress, enableCompileCache, freePort } from './address.js';
import { logStartup } from './startup_log.js';
import { warnIfPid1 } from './pid1.js';
import { stopWorkers } from './shutdown.js';
import { WorkerRegistry } from './registry.js';
import { availableCpus } from './cpus.js';
import { Lifecycle } from './lifecycle.js';
import { AgentSupervisor } from './agents.js';
import { AppSupervisor } from './apps.js';
import type { MasterContext, SupervisorEvents } from './master_context.js';
import { RollingReload } from './reload.js';
import { checkHttpsFiles, checkWorkerFiles } from './option_files.js';
import { routeStickyConnection, StickyServer } from './sticky.js';
// types only: src/ops is loaded (require) only when options.status is set
import type { ClusterStatus, OpsHooks } from './ops/index.js';
// types only: src/ops/watchdog is loaded only when options.watchdog or options.maxMemory is on
import type { WatchdogHooks } from './ops/watchdog.js';

/** The seams: tests and embedders replace any of them. */
export interface MasterDeps {
  launcher: Launcher;
  host: Host;
  logger: Logger;
  /** A free port for the agent's cluster-client leader. */
  detectPort: () => Promise<number>;
  /** The default worker count. */
  cpus: () => number;
  cwd: string;
  execArgv: readonly string[];
}

/** agent-start, app-start, agent-exit, app-exit (emitted by the supervisors), and: */
export interface MasterEvents extends SupervisorEvents {
  realport: [data: { port?: number; protocol?: string }];
  'reload-worker': [];
  /** A user message sent `to: 'master'` (egg-cluster emitted it under its action name: D5). */
  message: [message: Envelope];
}

export { AGENT_BOOT_GRACE_MS } from './agents.js';

/** Is an inspector open in this process (--inspect, or inspector.open() / SIGUSR1 at run time)? */
function inspectorOpen(): boolean {
  try {
    return (require('node:inspector') as typeof import('node:inspector')).url() !== undefined;
  } catch {
    return false;
  }
}

const SIGNALS: CloseSignal[] = ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP'];

/**
 * The cluster master: forks the agent, then the app workers once the agent has started,
 * routes their messages, keeps them alive and shuts them down. It owns no OS resource
 * itself: processes come from the Launcher, the master's own process is the Host.
 */
export class Master extends EventEmitter<MasterEvents> {
  readonly options: ResolvedOptions;
  readonly isProduction: boolean;
  readonly logger: Logger;
  readonly messenger: Messenger;
  readonly framework: FrameworkInfo;
  readonly registry = new WorkerRegistry();
  isStarted = false;
  closed = false;

  readonly #ready = new Ready();
  readonly #deps: MasterDeps;
  readonly #host: Host;
  readonly #health: HealthCheck;
  readonly #startTime = Date.now();
  #realPort: number | undefined;
  #protocol: string;
  #appAddress = '';
  #closing: Promise<void> | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  readonly #agents: AgentSupervisor;
  readonly #apps: AppSupervisor;
  #exited = false;
  #sticky: StickyServer | undefined;
  readonly #reload: RollingReload;
  #closeStartedAt = 0;
  #logMethod: 'info' | 'debug';
  /** Ends the shutdownDelay early (close() or a fatal error during it). */
  #endDelay: (() => void) | undefined;
  /** The exit code of the running close (a fatal error during a shutdownDelay raises it to 1). */
  #closeExitCode = 0;
  /** shutdownDelay's timer: a forced exit cancels it. */
  #delayTimer: NodeJS.Timeout | undefined;
  /** ops (issue 10): the status server and worker reports; undefined unless options.status. */
  readonly #ops: OpsHooks | undefined;
  /** The watchdog and memory limit (issue 10); undefined when both are off. */
  readonly #watchdog: WatchdogHooks | undefined;

  constructor(options?: ClusterOptions, deps: Partial<MasterDeps> = {}) {
    super();
    const host = deps.host ?? new ProcessHost();
    const env = host.env;
    this.logger = deps.logger ?? createConsoleLogger(env.EGG_MASTER_LOGGER_LEVEL || 'INFO');
    const cwd = deps.cwd ?? process.cwd();
    // Like @eggjs/cluster 3, the constructor does not throw: bad options reject ready()
    // (and so startCluster), and nothing is started.
    let resolved: ResolvedOptions;
    let warnings: string[] = [];
    let invalid: Error | undefined;
    try {
      ({ options: resolved, warnings } = normalizeOptions(options, {
        env, cwd, execArgv: deps.execArgv ?? process.execArgv, cpus: (deps.cpus ?? availableCpus)(),
        inspectorActive: deps.execArgv === undefined && inspectorOpen(),
      }));
      checkHttpsFiles(resolved.https);
      checkWorkerFiles(resolved);
      this.framework = resolveFramework(resolved.framework, resolved.baseDir, cwd);
      resolved.framework = this.framework.path;
    } catch (err) {
      invalid = err as Error;
      resolved = { ...(options ?? {}) } as ResolvedOptions;
      this.framework = { path: '', name: 'egg', version: 'unknown' };
    }
    this.options = resolved;
    let launcher = deps.launcher ?? createLauncher(resolved, this.logger, (message, ...args) => this.log(message, ...args));
    // ---- ops hook (issue 10): only when options.status is set is src/ops loaded at all ----
    if (!invalid && resolved.status) {
      const { createOps } = require('./ops/index.js') as typeof import('./ops/index.js');
      this.#ops = createOps({
        pid: host.pid,
        startTime: this.#startTime,
        registry: this.registry,
        status: resolved.status,
        logger: this.logger,
        production: isProductionEnv(resolved.env, env.NODE_ENV),
        started: () => this.isStarted,
        agentPresent: () => this.#agents.present(),
      });
      launcher = this.#ops.observe(launcher);
    }
    if (!invalid && (resolved.watchdog || resolved.maxMemory > 0)) {
      const { createWatchdog, warnHeapFit } = require('./ops/watchdog.js') as typeof import('./ops/watchdog.js');
      this.#watchdog = createWatchdog({
        registry: this.registry,
        logger: this.logger,
        timeoutMs: resolved.watchdog ? resolved.watchdog.timeout : 0,
        maxMemory: resolved.maxMemory,
        threads: resolved.startMode === 'worker_threads',
        closed: () => this.closed,
        reloading: () => this.#reload.running,
        replace: (entry, reason) => this.#apps.replace(entry, reason),
      });
      launcher = this.#watchdog.observe(launcher);
      if (!deps.launcher) warnHeapFit(this.logger, resolved.workers, deps.execArgv ?? process.execArgv, env);
    }
    this.#deps = {
      launcher,
      host,
      logger: this.logger,
      detectPort: deps.detectPort ?? freePort,
      cpus: deps.cpus ?? availableCpus,
      cwd,
      execArgv: deps.execArgv ?? process.execArgv,
    };
    this.#host = host;
    this.isProduction = isProductionEnv(resolved.env, env.NODE_ENV);
    this.#logMethod = resolved.env === 'local' || env.NODE_ENV === 'development' ? 'debug' : 'info';
    this.#realPort = resolved.port;
    this.#protocol = resolved.https ? 'https' : 'http';
    for (const warning of warnings) this.logger.warn(warning);

    this.messenger = new Messenger({
      masterPid: host.pid,
      registry: this.registry,
      sendToParent: msg => host.sendToParent(msg),
      onMasterMessage: (msg, source) => this.#onMasterMessage(msg, source),
    });
    this.#reload = new RollingReload({
      registry: this.registry,
      logger: this.logger,
      log: (message, ...args) => this.log(message, ...args),
      starts: this,
      isClosed: () => this.closed,
      closeTimeoutMs: () => this.#closeTimeouts().app,
      surge: resolved.reload?.surge ?? 1,
    });
    const ctx = this.#context(new Lifecycle(resolved.restartPolicy));
    this.#apps = new AppSupervisor(ctx, this.#reload, address => this.#onAppsListening(address));
    this.#agents = new AgentSupervisor(ctx, () => this.#apps.start(), () => this.#apps.allStarted);
    this.#health = new HealthCheck(() => {
      const count = { ...this.registry.count(), agent: this.#agents.present() };
      this.#ops?.exceptionCheck(count); // ops hook: /livez follows the exception check
      return count;
    }, count => this.#onException(count));
    if (invalid) {
      this.closed = true;
      this.#ready.ready(invalid);
      return;
    }
    this.#start();
  }

  /** get-ready API: `await master.ready()`, or `master.ready(err => …)`. */
  ready(): Promise<void>;
  ready(flagOrCallback: boolean | Error | ((err?: Error) => void)): void;
  ready(flagOrCallback?: boolean | Error | ((err?: Error) => void)): Promise<void> | void {
    if (flagOrCallback === undefined) return this.#ready.ready();
    return this.#ready.ready(flagOrCallback);
  }

  /** egg-cluster's `log()`: INFO, or DEBUG in the local env / NODE_ENV=development. */
  log(message: string, ...args: unknown[]): void {
    this.logger[this.#logMethod](message, ...args);
  }

  get realPort(): number | undefined {
    return this.#realPort;
  }

  get protocol(): string {
    return this.#protocol;
  }

  /** Every app worker of the first start listened (egg-cluster's name). */
  get isAllWorkerStarted(): boolean {
    return this.#apps.allStarted;
  }

  /**
   * What the status server's /status answers (issue 10): the master, the agent and each app
   * worker with its last report. Undefined when options.status is not set.
   */
  status(): ClusterStatus | undefined {
    return this.#ops?.status();
  }

  /** What the agent and app supervisors see of the master. */
  #context(lifecycle: Lifecycle): MasterContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const master = this;
    return {
      options: this.options,
      registry: this.registry,
      messenger: this.messenger,
      logger: this.logger,
      lifecycle,
      launcher: this.#deps.launcher,
      isProduction: this.isProduction,
      get closed() { return master.closed; },
      get isStarted() { return master.isStarted; },
      get realPort() { return master.#realPort; },
      get protocol() { return master.#protocol; },
      log: (message, ...args) => this.log(message, ...args),
      route: (source, raw) => this.#onWorkerMessage(source, raw),
      readyPayload: () => this.#readyPayload(),
      failStart: err => this.#failStart(err),
      shutdown: code => void this.#shutdown(code),
      emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
    };
  }

  #start(): void {
    const { options, framework, logger } = this;
    const host = this.#host;
    logStartup({ logger, log: (m, ...a) => this.log(m, ...a) }, framework, options, this.isProduction, host.env.NODE_ENV);
    warnIfPid1(logger, host.pid);

    for (const signal of SIGNALS) host.onSignal(signal, () => this.#onSignal(signal));
    host.onSignal('SIGUSR2', () => {
      this.logger.info('[master] receive signal SIGUSR2, reloading app workers one by one');
      this.#onReload();
    });
    host.onExit(code => this.#onExit(code));
    host.onParentMessage(raw => {
      const msg = normalizeMessage(raw, 'parent');
      if (msg) this.messenger.send(msg);
    });
    host.onFatal(err => {
      logger.error('[master] uncaught error in the master, closing with code:1');
      logger.error(err);
      void this.#shutdown(1);
    });
    // don't print deprecation notices to stderr in production (egg-scripts reads stderr)
    if (host.env.NODE_ENV === 'production') host.env.NO_DEPRECATION = '*';
    enableCompileCache(host.env, options.baseDir);

    if (options.pidFile) {
      try {
        const previous = host.writePidFile(options.pidFile);
        if (previous !== undefined) {
          this.logger.warn('[master] pidFile %s belonged to pid %s, which is still running; it now holds %s',
            options.pidFile, previous, host.pid);
        }
      } catch (err) {
        this.#failStart(new ClusterStartError('ERR_CLUSTER_PID_FILE',
          `[master] cannot write pidFile ${options.pidFile}: ${(err as Error).message}; make its folder writable or choose another options.pidFile`,
          { cause: err }));
        return;
      }
    }
    this.#startTimer = setTimeout(() => this.#onStartTimeout(), options.startTimeout);
    this.#startTimer.unref?.();
    // ops hook: the status server answers from the start (startup probes), until the exit
    this.#ops?.listen().then(({ host: address, port }) => {
      this.logger.info('[master] status server listening on http://%s:%s (GET /livez, /readyz, /status)',
        address.includes(':') ? `[${address}]` : address, port);
    }, (err: NodeJS.ErrnoException) => {
      const { host: address, port } = options.status!;
      const hint = err.code === 'EADDRINUSE' ? `: port ${port} is in use by another process; stop it or choose another options.status.port (EGG_CLUSTER_STATUS_PORT)` : '';
      this.#failStart(new ClusterStartError('ERR_CLUSTER_PORT',
        `[master] status server cannot listen on ${address}:${port}${hint} (${err.message})`, { cause: err }));
    });
    const detect = this.#deps.detectPort;
    Promise.all([detect(), options.sticky ? detect() : undefined]).then(([clusterPort, stickyWorkerPort]) => {
      options.clusterPort = clusterPort;
      this.log('[master] detected cluster port: %s', clusterPort);
      if (stickyWorkerPort !== undefined) options.stickyWorkerPort = stickyWorkerPort;
      if (!this.closed) this.#agents.fork();
    }, (err: unknown) => {
      this.#failStart(new ClusterStartError('ERR_CLUSTER_PORT',
        `[master] cannot find a free port for the cluster client: ${(err as Error)?.message}`, { cause: err }));
    });
  }

  #onStartTimeout(): void {
    if (this.isStarted || this.closed) return;
    const listening = this.registry.listeningWorkerIds().length;
    this.#failStart(new ClusterStartError('ERR_CLUSTER_START_TIMEOUT', format(
      '[master] the cluster did not start within %sms (agent started: %s, app workers listening: %s/%s); '
      + 'the worker logs above say what they wait for; raise options.startTimeout if startup is only slow',
      this.options.startTimeout, this.registry.agentStarted ? 'yes' : 'no', listening, this.options.workers)));
  }

  #onWorkerMessage(source: WorkerHandle, raw: unknown): void {
    const msg = normalizeMessage(raw, source.role);
    if (msg) this.messenger.send(msg, source);
  }

  /** Only the actions the master consumes, and only from the senders allowed to send them (D5). */
  #onMasterMessage(msg: Envelope, source: WorkerHandle | undefined): void {
    switch (msg.action) {
      case 'agent-start':
        if (source && source === this.registry.agent) this.#agents.onStart(source);
        return;
      case 'realport': {
        // only a worker that is still starting says where it will listen
        if (source?.role !== 'app' || this.registry.app(source)?.state !== 'starting') return;
        const data = (msg.data ?? {}) as { port?: unknown; protocol?: unknown };
        if (typeof data.port === 'number' && Number.isInteger(data.port)) this.#realPort = data.port;
        if (data.protocol === 'http' || data.protocol === 'https') this.#protocol = data.protocol;
        this.emit('realport', { port: this.#realPort, protocol: this.#protocol });
        return;
      }
      case 'reload-worker':
        this.#onReload();
        return;
      default:
        this.emit('message', msg);
    }
  }

  /** The first start is complete: every app worker listens. */
  #onAppsListening(address: ListeningAddress): void {
    const port = this.options.sticky ? this.#realPort : address.port;
    this.#appAddress = appAddress({ ...address, port, protocol: this.#protocol }, this.#host.env.HOST);
    if (this.options.sticky) {
      this.#startStickyServer();
      return;
    }
    this.#onReady();
  }

  #startStickyServer(): void {
    const port = this.#realPort;
    if (port === undefined) {
      this.#failStart(new ClusterStartError('ERR_CLUSTER_PORT', '[master] sticky mode needs a port: set options.port or config.cluster.listen.port'));
      return;
    }
    const server = new StickyServer(socket => routeStickyConnection(socket, () => this.registry.servingEntries()));
    this.#sticky = server;
    server.listen(port).then(() => {
      if (!this.closed) this.#onReady();
    }, (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? `: port ${port} is in use by another process; stop it or choose another options.port` : '';
      this.#failStart(new ClusterStartError('ERR_CLUSTER_PORT', `[master] sticky server cannot listen on ${port}${hint} (${err.message})`, { cause: err }));
    });
  }

  /** Workers have the full options already; `egg-ready` carries them without secrets (D3). */
  #readyPayload(): Record<string, unknown> {
    return redactOptions(this.options);
  }

  #onReady(): void {
    this.isStarted = true;
    clearTimeout(this.#startTimer);
    const { logger, options } = this;
    logger.info('[master] %s started on %s (%sms)%s',
      this.framework.name, this.#appAddress, Date.now() - this.#startTime, options.sticky ? ' with STICKY MODE!' : '');
    if (options.debugPort) {
      logger.info('[master] %s started debug port on %s', this.framework.name, `http://127.0.0.1:${options.debugPort}`);
    }
    this.messenger.send({
      action: 'egg-ready', to: 'parent',
      data: { port: this.#realPort, debugPort: options.debugPort, address: this.#appAddress, protocol: this.#protocol },
    });
    const payload = this.#readyPayload();
    this.messenger.send({ action: 'egg-ready', to: 'app', data: payload });
    this.messenger.send({ action: 'egg-ready', to: 'agent', data: payload });
    if (this.isProduction) this.#health.start();
    this.#ops?.ready(); // ops hook: /readyz can answer 200 from now on
    this.#ready.ready(true);
  }

  #onReload(): void {
    this.emit('reload-worker');
    const pool = this.#apps.pool;
    if (!this.#reload.running && (!this.isStarted || this.closed || !pool)) return;
    if (pool) this.#reload.request(pool, this.options.workers);
  }

  #onException(count: { agent: number; worker: number }): void {
    this.logger.error(new ClusterWorkerExceptionError(count.agent, count.worker));
    void this.#shutdown(1);
  }

  #onSignal(signal: CloseSignal): void {
    if (this.#closing) {
      // A second signal while closing stops waiting (documented in the README). Repeats within
      // the first second are the same signal forwarded twice (timeout(1), npm, a shell's
      // process group) and are ignored.
      if (Date.now() - this.#closeStartedAt < 1000) return;
      this.logger.warn('[master] receive signal %s again while closing, killing workers now', signal);
      this.#killAllNow();
      this.#exit(1);
      return;
    }
    this.logger.info('[master] master is killed by signal %s, closing', signal);
    // node:v8 only now: loading it costs ~5 ms of every start
    const { used_heap_size, heap_size_limit } = (require('node:v8') as typeof import('node:v8')).getHeapStatistics();
    this.logger.info('[master] system memory: total %s, free %s', os.totalmem(), os.freemem());
    this.logger.info('[master] process info: heap_limit %s, heap_used %s', heap_size_limit, used_heap_size);
    // shutdownDelay (issue 10): readiness turns 503 now, the drain starts after the delay;
    // a cluster that never became ready has no traffic to wait for
    void this.#shutdown(0, this.isStarted ? this.options.shutdownDelay ?? 0 : 0);
  }

  #onExit(code: number): void {
    if (this.options.pidFile) {
      try {
        this.#host.removePidFile(this.options.pidFile);
      } catch (err) {
        this.logger.error('[master] delete pidFile %s fail with %s', this.options.pidFile, (err as Error).message);
      }
    }
    this.logger[code === 0 ? 'info' : 'error']('[master] exit with code:%s', code);
  }

  /** The one way out: at most once, whatever path asks (a forced signal, close, a start failure). */
  #exit(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#apps.dispose();
    clearTimeout(this.#delayTimer);
    this.#ops?.dispose(); // ops hook: the status server closes with the master
    this.#watchdog?.dispose();
    this.#host.exit(code);
    // an embedded master whose host does not end the process: stop listening to its signals
    // and parent, so a next Master in the same process is the only one that reacts
    this.#host.dispose();
  }

  /** The forced exit: every worker and every descendant of theirs, SIGKILL. */
  #killAllNow(): void {
    this.#apps.forceKill();
    this.#agents.forceKill();
    this.#deps.launcher.killStragglers?.();
  }

  /** No more forks of any kind: pending reforks and agent restarts are cancelled. */
  #stopForking(): void {
    this.#agents.stop();
    this.#apps.stop();
  }

  /** Graceful close: app workers, then the agent, each within its timeout; then exit 0. */
  close(): Promise<void> {
    return this.#shutdown(0);
  }

  #shutdown(exitCode: number, delayMs = 0): Promise<void> {
    if (this.#closing) {
      // close() or a fatal error during the shutdownDelay: no more waiting; a fatal error's
      // exit code wins over the signal's 0
      this.#closeExitCode = Math.max(this.#closeExitCode, exitCode);
      if (delayMs === 0) this.#endDelay?.();
      return this.#closing;
    }
    this.#closeExitCode = exitCode;
    this.closed = true;
    clearTimeout(this.#startTimer);
    this.#reload.cancel();
    this.#closeStartedAt = Date.now();
    this.#health.stop();
    this.#stopForking();
    this.#ops?.closeBegins(); // ops hook: /readyz is 503 from here
    this.#closing = (async () => {
      if (delayMs > 0) {
        // the workers keep serving (and accepting) while the load balancer takes this
        // endpoint out; a second signal meanwhile is the forced exit, as in any close
        this.logger.info('[master] shutdownDelay: app workers keep serving for %sms, then the drain starts', delayMs);
        await new Promise<void>(resolve => {
          this.#endDelay = resolve;
          this.#delayTimer = setTimeout(resolve, delayMs);
        });
        clearTimeout(this.#delayTimer);
        this.#endDelay = undefined;
        if (this.#exited) return;
      }
      let exitCode = this.#closeExitCode;
      try {
        await this.#stopWorkers();
        if (this.#exited) return;
        this.log('[master] close done, exiting with code:%s', exitCode);
      } catch (err) {
        this.logger.error('[master] close with error: ', err);
        exitCode = 1;
      }
      if (!this.isStarted) {
        // closed before it was ready: whoever awaits ready() learns it, just before the exit
        this.#ready.ready(new ClusterStartError('ERR_CLUSTER_START_TIMEOUT', '[master] closed before the cluster was ready'));
      }
      this.#exit(exitCode);
    })();
    return this.#closing;
  }

  async #stopWorkers(): Promise<void> {
    // no new connections for workers that are about to stop
    this.#sticky?.close();
    await stopWorkers({
      registry: this.registry,
      pool: this.#apps.pool,
      logger: this.logger,
      log: (message, ...args) => this.log(message, ...args),
      timeouts: this.#closeTimeouts(),
    });
  }

  /** The close timeouts checked at start (EGG_*_CLOSE_TIMEOUT); the defaults when the options were invalid. */
  #closeTimeouts(): CloseTimeouts {
    return this.options.closeTimeouts ?? { app: DEFAULT_CLOSE_TIMEOUT, agent: DEFAULT_CLOSE_TIMEOUT };
  }

  /** Startup cannot complete: stop what runs, then exit 1 (egg-cluster's contract). */
  #failStart(err: Error): void {
    if (this.#closing) return;
    clearTimeout(this.#startTimer);
    this.logger.error(err);
    this.closed = true;
    // a signal during this cleanup is the first one, not a second (forced) one
    this.#closeStartedAt = Date.now();
    this.#reload.cancel();
    this.#health.stop();
    this.#stopForking();
    this.#ops?.closeBegins();
    this.#sticky?.close();
    this.#closing = (async () => {
      const timeouts = this.#closeTimeouts();
      await Promise.allSettled([
        ...this.registry.appHandles().map(h => h.terminate(timeouts.app)),
        this.registry.agent?.terminate(timeouts.agent),
      ]);
      // settle ready() first so embedders and fake hosts see the error; the real host exits now
      this.#ready.ready(err);
      this.#exit(1);
    })();
  }
}
