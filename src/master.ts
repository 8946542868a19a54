import os from 'node:os';
import v8 from 'node:v8';
import { EventEmitter } from 'node:events';
import { format } from 'node:util';
import { Ready } from 'get-ready';
import { detectPort } from 'detect-port';
import {
  AgentWorkerDiedError, AppWorkerDiedError, ClusterAgentWorkerError, ClusterStartError, ClusterWorkerExceptionError,
} from './errors.js';
import { resolveFramework, type FrameworkInfo } from './framework.js';
import { HealthCheck } from './health.js';
import type { CloseSignal, Host } from './host/host.js';
import { ProcessHost } from './host/process_host.js';
import type { AppPool, Launcher, WorkerHandle } from './launcher/types.js';
import { createLauncher } from './launcher/index.js';
import { createConsoleLogger, type Logger } from './logger.js';
import { Messenger } from './messenger.js';
import {
  DEFAULT_CLOSE_TIMEOUT, isProductionEnv, normalizeOptions, type ClusterOptions, type CloseTimeouts, type ResolvedOptions,
} from './options.js';
import { normalizeMessage, type Envelope, type ListeningAddress } from './protocol.js';
import { redactOptions } from './redact.js';
import { appAddress, enableCompileCache } from './address.js';
import { logStartup } from './startup_log.js';
import { stopWorkers } from './shutdown.js';
import { WorkerRegistry } from './registry.js';
import { availableCpus } from './cpus.js';
import { Lifecycle, type AppFacts } from './lifecycle.js';
import type { AppEntry } from './registry.js';
import { RollingReload } from './reload.js';
import { checkHttpsFiles, checkWorkerFiles } from './option_files.js';
import { routeStickyConnection, StickyServer } from './sticky.js';
import { argvOptions } from './worker/options_codec.js';

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

export interface MasterEvents {
  'agent-start': [];
  'app-start': [data: { workerId: number; address: ListeningAddress }];
  'agent-exit': [data: { code: number | null; signal: NodeJS.Signals | null }];
  'app-exit': [data: { workerId: number; code: number | null; signal: NodeJS.Signals | null }];
  realport: [data: { port?: number; protocol?: string }];
  'reload-worker': [];
  /** A user message sent `to: 'master'` (egg-cluster emitted it under its action name: D5). */
  message: [message: Envelope];
}

/** How long a (re)started agent may boot before the exception check counts it as missing. */
export const AGENT_BOOT_GRACE_MS = 60_000;

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
  isAllWorkerStarted = false;

  readonly #ready = new Ready();
  readonly #deps: MasterDeps;
  readonly #host: Host;
  readonly #health: HealthCheck;
  readonly #startTime = Date.now();
  #realPort: number | undefined;
  #protocol: string;
  #appAddress = '';
  #pool: AppPool | undefined;
  #appStartTime = 0;
  #startSuccessCount = 0;
  #agentRestartTimer: NodeJS.Timeout | undefined;
  /** App reforks waiting for their backoff. */
  readonly #reforkTimers = new Set<NodeJS.Timeout>();
  #closing: Promise<void> | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  readonly #lifecycle: Lifecycle;
  #exited = false;
  #sticky: StickyServer | undefined;
  readonly #reload: RollingReload;
  #closeStartedAt = 0;
  #logMethod: 'info' | 'debug';

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
    this.#deps = {
      launcher: deps.launcher ?? createLauncher(resolved, this.logger, (message, ...args) => this.log(message, ...args)),
      host,
      logger: this.logger,
      detectPort: deps.detectPort ?? (() => detectPort()),
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
    this.#lifecycle = new Lifecycle(resolved.restartPolicy);
    this.#reload = new RollingReload({
      registry: this.registry,
      logger: this.logger,
      log: (message, ...args) => this.log(message, ...args),
      starts: this,
      isClosed: () => this.closed,
      closeTimeoutMs: () => this.#closeTimeouts().app,
    });
    this.#health = new HealthCheck(() => this.#healthCount(), count => this.#onException(count));
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

  #start(): void {
    const { options, framework, logger } = this;
    const host = this.#host;
    logStartup({ logger, log: (m, ...a) => this.log(m, ...a) }, framework, options, this.isProduction, host.env.NODE_ENV);

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
    const detect = this.#deps.detectPort;
    Promise.all([detect(), options.sticky ? detect() : undefined]).then(([clusterPort, stickyWorkerPort]) => {
      options.clusterPort = clusterPort;
      this.log('[master] detected cluster port: %s', clusterPort);
      if (stickyWorkerPort !== undefined) options.stickyWorkerPort = stickyWorkerPort;
      if (!this.closed) this.#forkAgent();
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

  #forkAgent(): void {
    const agent = this.#deps.launcher.forkAgent({ options: this.options });
    this.registry.setAgent(agent);
    if (this.options.startMode === 'worker_threads') {
      this.log('[master] agent_worker#%s:%s start with worker_threads', agent.id, agent.workerId);
    } else {
      this.log('[master] agent_worker#%s:%s start with clusterPort:%s', agent.id, agent.workerId, this.options.clusterPort);
    }
    if (this.options.isDebug) {
      this.messenger.send({
        action: 'debug', to: 'parent', from: 'agent',
        data: { debugPort: agent.debugPort, pid: agent.workerId, workerId: agent.workerId },
      });
    }
    agent.on('message', raw => this.#onWorkerMessage(agent, raw));
    agent.on('error', err => {
      this.logger.error(new ClusterAgentWorkerError(agent.id, agent.workerId, this.registry.agentStarted ? 'started' : 'starting', err));
    });
    agent.once('exit', (code, signal) => this.#onAgentExit(agent, code, signal));
  }

  #forkAppWorkers(): void {
    this.#appStartTime = Date.now();
    this.#startSuccessCount = 0;
    this.log('[master] start appWorker with args %j (%s)', [argvOptions(this.options)], this.options.startMode);
    const pool = this.#deps.launcher.startApps({ options: this.options }, this.options.workers);
    this.#pool = pool;
    pool.on('fork', handle => this.#onAppFork(pool, handle));
  }

  #onWorkerMessage(source: WorkerHandle, raw: unknown): void {
    const msg = normalizeMessage(raw, source.role);
    if (msg) this.messenger.send(msg, source);
  }

  /** Only the actions the master consumes, and only from the senders allowed to send them (D5). */
  #onMasterMessage(msg: Envelope, source: WorkerHandle | undefined): void {
    switch (msg.action) {
      case 'agent-start':
        if (source && source === this.registry.agent) this.#onAgentStart(source);
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

  #onAgentStart(agent: WorkerHandle): void {
    if (this.registry.agentStarted || this.closed) return;
    this.registry.agentStarted = true;
    this.#lifecycle.agentStarted();
    if (this.isAllWorkerStarted) {
      this.messenger.send({ action: 'egg-ready', to: 'agent', data: this.#readyPayload() });
    }
    this.messenger.send({ action: 'egg-pids', to: 'app', data: [agent.workerId] });
    if (this.isStarted) {
      this.messenger.send({ action: 'egg-pids', to: 'agent', data: this.registry.listeningWorkerIds() });
    }
    this.messenger.send({ action: 'agent-start', to: 'app' });
    this.logger.info('[master] agent_worker#%s:%s started (%sms)', agent.id, agent.workerId, Date.now() - agent.startTime);
    this.emit('agent-start');
    if (!this.#pool) this.#forkAppWorkers();
  }

  #onAgentExit(agent: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.registry.agent !== agent) return;
    const started = this.registry.agentStarted;
    this.registry.setAgent(undefined);
    if (this.closed) return;
    this.emit('agent-exit', { code, signal });
    this.messenger.send({ action: 'egg-pids', to: 'app', data: [] });
    this.logger.error(new AgentWorkerDiedError(format('[master] agent_worker#%s:%s died (code: %s, signal: %s)',
      agent.id, agent.workerId, code, signal)));
    const action = this.#lifecycle.agentGone({ startTime: agent.startTime, started }, { closed: this.closed, launched: this.isStarted });
    switch (action.type) {
      case 'none':
        return;
      case 'fail-start':
        this.logger.error('[master] agent_worker#%s:%s start fail, exiting with code:1', agent.id, agent.workerId);
        this.#failStart(new ClusterStartError('ERR_CLUSTER_AGENT_START',
          format('agent_worker#%s:%s died during startup (code: %s, signal: %s); its log above says why', agent.id, agent.workerId, code, signal)));
        return;
      case 'give-up':
        this.logger.error('[master] agent_worker not restarted: options.restartPolicy.limit is 0; %s',
          this.isProduction ? 'the exception check ends the cluster' : 'the app workers run without an agent');
        break;
      case 'restart': {
        // egg-cluster waited a fixed 1 s, forever; here the first death restarts at once, an
        // agent that keeps dying backs off, within a budget (options.restartPolicy)
        if (action.budgetExhausted) {
          this.logger.error('[master] agent_worker restart budget used up (%s restarts in %sms)',
            this.#lifecycle.agents.config.limit, this.#lifecycle.agents.config.windowMs);
        }
        this.log('[master] try to start a new agent_worker after %ss ...', action.delayMs / 1000);
        this.#agentRestartTimer = setTimeout(() => {
          this.#agentRestartTimer = undefined;
          if (this.closed) return; // D8: no new agent once shutdown began
          this.logger.info('[master] new agent_worker starting...');
          this.#forkAgent();
        }, action.delayMs);
        break;
      }
    }
    this.messenger.send({ action: 'agent-worker-died', to: 'parent' });
  }

  #onAppFork(pool: AppPool, handle: WorkerHandle): void {
    if (this.closed) {
      // forked while closing (a refork racing the close): stop it
      pool.setRefork(handle, false);
      void handle.terminate(0);
      return;
    }
    const entry = this.registry.addApp(handle);
    // a worker forked by a reload is not replaced if it cannot start: the reload stops and
    // the old worker keeps its slot (lifecycle.ts has every other rule)
    entry.reloadFork = this.#reload.claimFork();
    pool.setRefork(handle, this.#reforkable(entry));
    handle.on('message', raw => this.#onWorkerMessage(handle, raw));
    handle.on('listening', address => this.#onAppListening(handle, address));
    handle.on('disconnect', () => {
      // the worker stopped accepting (an uncaught exception: it finishes its requests, then
      // exits up to 30 s later): its replacement starts now
      entry.state = 'disconnected';
      this.logger.info('[master] app_worker#%s:%s disconnect, suicide: %s, state: %s, current workers: %j',
        handle.id, handle.workerId, handle.exitedAfterDisconnect, entry.state, this.registry.appIds());
      this.#onAppGone(entry, 'disconnect', 'disconnected');
    });
    handle.on('error', err => this.logger.error(err));
    handle.once('exit', (code, signal) => this.#onAppExit(handle, code, signal));
    this.log('[master] app_worker#%s:%s start, state: %s, current workers: %j',
      handle.id, handle.workerId, entry.state, this.registry.appIds());
    if (this.options.isDebug) {
      this.messenger.send({
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
    return this.isAllWorkerStarted && !this.closed && !entry.reloadFork && !entry.stopping && !entry.devReload;
  }

  #appFacts(entry: AppEntry): AppFacts {
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

  /**
   * An app worker disconnected or exited: apply the lifecycle's answer. Returns false when the
   * start failed because of it.
   */
  #onAppGone(entry: AppEntry, cause: 'disconnect' | 'exit', what: string): boolean {
    const action = this.#lifecycle.appGone(this.#appFacts(entry),
      { allStarted: this.isAllWorkerStarted, closed: this.closed, production: this.isProduction }, cause);
    const { handle } = entry;
    switch (action.type) {
      case 'fail-start':
        return false;
      case 'none':
        return true;
      case 'give-up':
        entry.replaced = true;
        this.logger.error('[master] app_worker#%s:%s not reforked: options.restartPolicy.limit is 0', handle.id, handle.workerId);
        return true;
      case 'refork':
        break;
    }
    entry.replaced = true;
    const pool = this.#pool;
    if (!pool) return true;
    if (action.budgetExhausted) {
      const { limit, windowMs } = this.#lifecycle.apps.config;
      this.logger.error('[master] app_worker refork budget used up (%s reforks in %sms): the next refork waits %sms',
        limit, windowMs, action.delayMs);
    }
    this.log('[master] app_worker#%s:%s %s, refork %s', handle.id, handle.workerId, what,
      action.delayMs > 0 ? `in ${action.delayMs}ms (${action.streak} quick deaths in a row)` : 'now');
    if (action.delayMs <= 0) {
      pool.refork(handle);
      return true;
    }
    const timer = setTimeout(() => {
      this.#reforkTimers.delete(timer);
      if (!this.closed) pool.refork(handle);
    }, action.delayMs);
    this.#reforkTimers.add(timer);
    return true;
  }

  #onAppListening(handle: WorkerHandle, address: ListeningAddress): void {
    const entry = this.registry.app(handle);
    if (!entry || entry.state !== 'starting' || this.closed) return;
    if (typeof address !== 'object' || address === null) return;
    const isUnixSocket = address.addressType === -1 || address.addressType === 'pipe';
    // other servers of the app (debugPort, a websocket port…) are not the app's listener
    const expected = this.options.sticky ? this.options.stickyWorkerPort : this.#realPort;
    // worker_threads: each app thread listens on its own port of options.ports
    const threadPorts = this.options.startMode === 'worker_threads' ? this.options.ports : [];
    if (!isUnixSocket && (threadPorts.length
      ? !threadPorts.includes(address.port as number)
      : String(address.port) !== String(expected))) return;
    entry.state = 'listening';
    entry.listenedAt = Date.now();
    entry.reloadFork = false;
    this.logger.info('[master] app_worker#%s:%s listening on %j', handle.id, handle.workerId, address);
    this.messenger.send({ action: 'egg-pids', to: 'agent', data: this.registry.listeningWorkerIds() });
    const agent = this.registry.agent;
    if (agent && this.registry.agentStarted) {
      // @eggjs/cluster 3: a worker that starts after the agent still learns the agent pid
      this.messenger.send({ action: 'egg-pids', to: 'app', receiverWorkerId: String(handle.workerId), data: [agent.workerId] });
    }
    this.#startSuccessCount++;
    const remain = this.isAllWorkerStarted ? 0 : this.options.workers - this.#startSuccessCount;
    this.log('[master] app_worker#%s:%s started at %s, remain %s (%sms)',
      handle.id, handle.workerId, address.port ?? address.address, remain, Date.now() - this.#appStartTime);
    this.emit('app-start', { workerId: handle.workerId, address });
    if (this.isAllWorkerStarted) {
      // a reforked worker: egg-ready to it alone, not again to every healthy worker (D13)
      this.messenger.send({ action: 'egg-ready', to: 'app', receiverWorkerId: String(handle.workerId), data: this.#readyPayload() });
      this.#pool?.setRefork(handle, this.#reforkable(entry));
      return;
    }
    if (this.#startSuccessCount < this.options.workers) return;
    this.isAllWorkerStarted = true;
    for (const e of this.registry.apps.values()) this.#pool?.setRefork(e.handle, this.#reforkable(e));
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
    this.#ready.ready(true);
  }

  #onAppExit(handle: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    const entry = this.registry.app(handle);
    this.registry.removeApp(handle);
    if (this.closed || !entry) return;
    this.emit('app-exit', { workerId: handle.workerId, code, signal });
    if (!entry.devReload) {
      const message = format('[master] app_worker#%s:%s died (code: %s, signal: %s, suicide: %s, state: %s), current workers: %j',
        handle.id, handle.workerId, code, signal, handle.exitedAfterDisconnect, 'dead', this.registry.appIds());
      if (this.options.isDebug && signal === 'SIGKILL') {
        this.logger.error(message);
        this.logger.error('[master] worker kill by debugger, exiting...');
        setTimeout(() => void this.#shutdown(0), 10);
      } else {
        this.logger.error(new AppWorkerDiedError(message));
      }
    }
    this.messenger.send({ action: 'egg-pids', to: 'agent', data: this.registry.listeningWorkerIds() });
    if (this.#onAppGone(entry, 'exit', format('exit (code: %s, signal: %s)', code, signal))) {
      // a worker replaced by a reload did not die: egg-mock would fail the test on this message
      if (this.isAllWorkerStarted && !entry.devReload) this.messenger.send({ action: 'app-worker-died', to: 'parent' });
      return;
    }
    this.logger.error('[master] app_worker#%s:%s start fail, exiting with code:1', handle.id, handle.workerId);
    this.#failStart(new ClusterStartError('ERR_CLUSTER_APP_START',
      format('app_worker#%s:%s died during startup (code: %s, signal: %s); its log above says why', handle.id, handle.workerId, code, signal)));
  }

  #onReload(): void {
    this.emit('reload-worker');
    if (!this.#reload.running && (!this.isStarted || this.closed || !this.#pool)) return;
    if (this.#pool) this.#reload.request(this.#pool, this.options.workers);
  }

  /** The exception check's view: the lifecycle decides whether the agent counts (D21). */
  #healthCount(): { agent: number; worker: number } {
    const count = this.registry.count();
    const agent = this.registry.agent;
    count.agent = this.#lifecycle.agentPresent(agent && {
      started: this.registry.agentStarted, alive: agent.isAlive, startTime: agent.startTime,
    }, AGENT_BOOT_GRACE_MS);
    return count;
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
    const { used_heap_size, heap_size_limit } = v8.getHeapStatistics();
    this.logger.info('[master] system memory: total %s, free %s', os.totalmem(), os.freemem());
    this.logger.info('[master] process info: heap_limit %s, heap_used %s', heap_size_limit, used_heap_size);
    void this.#shutdown(0);
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
    this.#pool?.dispose();
    this.#host.exit(code);
    // an embedded master whose host does not end the process: stop listening to its signals
    // and parent, so a next Master in the same process is the only one that reacts
    this.#host.dispose();
  }

  /** The forced exit: every worker and every descendant of theirs, SIGKILL. */
  #killAllNow(): void {
    for (const handle of this.registry.appHandles()) handle.forceKill();
    this.registry.agent?.forceKill();
    this.#deps.launcher.killStragglers?.();
  }

  /** No more forks of any kind: pending reforks and agent restarts are cancelled. */
  #stopForking(): void {
    clearTimeout(this.#agentRestartTimer);
    this.#agentRestartTimer = undefined;
    for (const timer of this.#reforkTimers) clearTimeout(timer);
    this.#reforkTimers.clear();
  }

  /** Graceful close: app workers, then the agent, each within its timeout; then exit 0. */
  close(): Promise<void> {
    return this.#shutdown(0);
  }

  #shutdown(exitCode: number): Promise<void> {
    if (this.#closing) return this.#closing;
    this.closed = true;
    clearTimeout(this.#startTimer);
    this.#reload.cancel();
    this.#closeStartedAt = Date.now();
    this.#health.stop();
    this.#stopForking();
    this.#closing = (async () => {
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
      pool: this.#pool,
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
