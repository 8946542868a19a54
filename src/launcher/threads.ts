/**
 * startMode 'worker_threads': the agent and the app workers are worker threads of the master
 * process, running the same lib/agent_worker.js and lib/app_worker.js as in process mode.
 * They get the same messages (options bootstrap first), report listening themselves, close
 * gracefully on GRACEFUL_EXIT_ACTION (really awaiting app.close() / agent.close()) and are
 * reforked when the master's lifecycle says so (lifecycle.ts), as processes are.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { LISTENING_ACTION, OPTIONS_ACTION, isOptionsRequest, type ListeningAddress } from '../protocol.js';
import { DEFAULT_CLOSE_TIMEOUT, type ResolvedOptions } from '../options.js';
import type { Logger } from '../logger.js';
import { argvOptions, encodeOptions } from '../worker/options_codec.js';
import { GRACEFUL_EXIT_ACTION } from '../worker/io.js';
import { AGENT_WORKER_FILE, APP_WORKER_FILE } from './process.js';
import type { AppPool, AppPoolEvents, Launcher, WorkerHandle, WorkerHandleEvents, WorkerRole, WorkerSpec } from './types.js';

type Log = (message: string, ...args: unknown[]) => void;

function isListeningReport(message: unknown): message is { action: string; data: ListeningAddress } {
  return typeof message === 'object' && message !== null
    && (message as { action?: unknown }).action === LISTENING_ACTION
    && typeof (message as { data?: unknown }).data === 'object' && (message as { data?: unknown }).data !== null;
}

/** A worker thread behind the WorkerHandle interface. */
export class ThreadWorkerHandle extends EventEmitter<WorkerHandleEvents> implements WorkerHandle {
  readonly startTime = Date.now();
  /** Threads share the master's inspector: no port of their own. */
  readonly debugPort = undefined;
  /** As egg-cluster's thread mode: a thread never "disconnects" unexpectedly. */
  readonly exitedAfterDisconnect = true;
  /** threadId, read once: it is -1 by the time 'exit' fires (defect D11a). */
  readonly workerId: number;
  /** Resolves with the exit code once the thread has ended. */
  readonly exited: Promise<number>;
  #online = false;
  #exitCode: number | undefined;
  #terminating: Promise<void> | undefined;

  constructor(
    readonly role: WorkerRole,
    readonly id: number,
    private readonly worker: Worker,
    private readonly log: Log,
    /** The full options, sent when the thread asks for them. */
    bootstrap: object,
    /** The port this app thread listens on (undefined: options.port or the app's config). */
    readonly port?: number,
  ) {
    super();
    this.workerId = worker.threadId;
    this.exited = new Promise(resolve => {
      worker.once('exit', (code: number) => {
        this.#exitCode = code;
        resolve(code);
        this.emit('exit', code, null);
      });
    });
    worker.once('online', () => {
      this.#online = true;
    });
    worker.on('message', (message: unknown) => {
      if (isOptionsRequest(message)) {
        this.send(bootstrap);
        return;
      }
      if (role === 'app' && isListeningReport(message)) {
        this.emit('listening', message.data);
        return;
      }
      this.emit('message', message);
    });
    worker.on('error', (err: Error) => {
      // an uncaught exception in the thread; 'exit' (code 1) follows. Nobody listening (a
      // thread the master is already dropping) must not turn it into a master crash.
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    worker.on('messageerror', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /** The thread has started running its entry. */
  get online(): boolean {
    return this.#online;
  }

  /** From creation (a thread still booting can be stopped) until 'exit'. */
  get isAlive(): boolean {
    return this.#exitCode === undefined;
  }

  get isConnected(): boolean {
    return this.#exitCode === undefined;
  }

  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  send(message: object): void {
    if (!this.isAlive) return;
    try {
      this.worker.postMessage(message);
    } catch (err) {
      // structured clone refuses functions and the like: send what JSON keeps, as the
      // process channel does
      if ((err as Error).name !== 'DataCloneError') return;
      try {
        this.worker.postMessage(JSON.parse(JSON.stringify(message)));
      } catch {
        // not serialisable at all: dropped
      }
    }
  }

  /** Sticky mode needs socket passing between processes: not available for threads. */
  sendConnection(): boolean {
    return false;
  }

  /** Threads have no signals: any kill is `worker.terminate()`. */
  kill(_signal: NodeJS.Signals): void {
    if (!this.isAlive) return;
    this.worker.terminate().catch(() => {});
  }

  forceKill(): void {
    this.kill('SIGKILL');
  }

  /**
   * Ask the thread to close (drain, then app.close() / agent.close()), wait for its exit up
   * to `timeoutMs`, then `worker.terminate()` and wait for that too (D11b, D11c).
   */
  terminate(timeoutMs: number): Promise<void> {
    if (!this.isAlive) return Promise.resolve();
    this.#terminating ??= this.#terminate(timeoutMs);
    return this.#terminating;
  }

  async #terminate(timeoutMs: number): Promise<void> {
    const name = `${this.role} worker#${this.id}`;
    this.log('[master] gracefully close %s (worker_threads)', name);
    this.send({ action: GRACEFUL_EXIT_ACTION });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>(resolve => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, timeoutMs));
    });
    const result = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout' && this.isAlive) {
      this.log('[master] terminate %s after %sms timeout', name, timeoutMs);
      await this.worker.terminate().catch(() => undefined);
    }
    await this.exited;
  }
}

interface Slot {
  readonly port: number | undefined;
  /** Being stopped by forkOne() to make room for its replacement. */
  replacing: boolean;
}

/**
 * The app threads. Without a shared port (no usable reusePort) each thread owns one port of
 * `options.ports`; the replacement of a dead thread listens on its port. The pool forks only
 * when the master asks (lifecycle.ts decides reforks, as for processes).
 */
class ThreadAppPool extends EventEmitter<AppPoolEvents> implements AppPool {
  readonly #slots = new Map<ThreadWorkerHandle, Slot>();
  /** Ports whose thread died and that no thread holds: refork() and forkOne() fill them. */
  readonly #vacant: Array<number | undefined> = [];
  #disposed = false;

  constructor(
    private readonly fork: (port: number | undefined) => ThreadWorkerHandle,
    private readonly ports: ReadonlyArray<number | undefined>,
    /** All threads listen on one port with SO_REUSEPORT: a new thread can start beside an old one. */
    private readonly sharedPort: boolean,
    private readonly replaceTimeoutMs: () => number,
  ) {
    super();
  }

  start(): void {
    for (const port of this.ports) this.#start(port);
  }

  /** Threads have no cfork log lines to tune. */
  setRefork(): void {}

  /** The dead thread's port, when no other thread took it meanwhile. */
  refork(dead: WorkerHandle): void {
    if (this.#disposed) return;
    if (this.sharedPort) {
      this.#start(this.ports[0]);
      return;
    }
    const index = this.#vacant.indexOf((dead as ThreadWorkerHandle).port);
    if (index === -1) return;
    this.#start(this.#vacant.splice(index, 1)[0]);
  }

  /**
   * One more app thread for a rolling reload. With a shared port (reusePort) it starts
   * beside the old ones. With one port per thread two threads cannot listen on the same
   * port, so: a vacant port (its thread died and was not reforked) gets the new thread;
   * otherwise the oldest thread is closed gracefully first and the new one takes its port.
   * That port is unserved for the switch; the other ports keep serving.
   */
  forkOne(tag?: unknown): void {
    if (this.#disposed) return;
    if (this.sharedPort) {
      this.#start(this.ports[0], tag);
      return;
    }
    if (this.#vacant.length) {
      this.#start(this.#vacant.shift(), tag);
      return;
    }
    const oldest = [...this.#slots].find(([handle, slot]) => !slot.replacing && handle.isAlive);
    if (!oldest) {
      this.#start(this.ports[0], tag);
      return;
    }
    const [handle, slot] = oldest;
    slot.replacing = true;
    void handle.terminate(this.replaceTimeoutMs()).then(() => {
      if (!this.#disposed) this.#start(slot.port, tag);
    });
  }

  dispose(): void {
    this.#disposed = true;
  }

  #start(port: number | undefined, tag?: unknown): void {
    const handle = this.fork(port);
    this.#slots.set(handle, { port, replacing: false });
    // before the master's 'exit' listener (the master gets the handle on the next tick): the
    // port is vacant by the time the master decides on a refork
    handle.once('exit', () => this.#onExit(handle));
    // like node:cluster: 'fork' after the caller got the pool and could listen to it; before
    // any message of the thread can arrive (those come from the event loop)
    process.nextTick(() => this.emit('fork', handle, tag));
  }

  #onExit(handle: ThreadWorkerHandle): void {
    const slot = this.#slots.get(handle);
    if (!slot) return;
    this.#slots.delete(handle);
    // forkOne() starts the replacement of a thread it stopped itself
    if (!slot.replacing && !this.sharedPort) this.#vacant.push(slot.port);
  }
}

/** The same entries as process mode. */
export const THREAD_FILES: Readonly<{ agent: string; app: string }> = Object.freeze({
  agent: AGENT_WORKER_FILE,
  app: APP_WORKER_FILE,
});

export interface ThreadLauncherOptions {
  logger: Logger;
  /** egg-cluster's `log()` (INFO, or DEBUG in the local env); default `logger.info`. */
  log?: Log;
  files?: { agent: string; app: string };
}

/** How the app threads listen: one per port of `options.ports`, or all on `options.port`. */
export function planAppThreads(options: ResolvedOptions, count: number): { ports: Array<number | undefined>; sharedPort: boolean } {
  if (options.ports.length) return { ports: [...options.ports], sharedPort: false };
  // normalizeOptions leaves `ports` empty only for a usable reusePort (port required) or
  // when no port is known to the master (one thread on the app's config.cluster.listen.port)
  const sharedPort = options.reusePort && options.port !== undefined;
  return { ports: Array.from({ length: sharedPort ? Math.max(1, count) : 1 }, () => options.port), sharedPort };
}

/** Agent and app workers as worker threads of the master (startMode 'worker_threads'). */
export class ThreadLauncher implements Launcher {
  #agentCount = 0;
  #appCount = 0;
  readonly #log: Log;
  readonly #files: { agent: string; app: string };

  constructor(opts: ThreadLauncherOptions) {
    this.#log = opts.log ?? ((message, ...args) => opts.logger.info(message, ...args));
    this.#files = opts.files ?? THREAD_FILES;
  }

  forkAgent(spec: WorkerSpec): WorkerHandle {
    // the master logs `agent_worker#N:tid start with worker_threads`
    return this.#spawn('agent', ++this.#agentCount, this.#files.agent, spec.options);
  }

  startApps(spec: WorkerSpec, count: number): AppPool {
    const { ports, sharedPort } = planAppThreads(spec.options, count);
    const fork = (port: number | undefined): ThreadWorkerHandle => {
      const options = port === spec.options.port ? spec.options : { ...spec.options, port };
      const handle = this.#spawn('app', ++this.#appCount, this.#files.app, options, port);
      this.#log('[master] app_worker#%s (tid:%s) start', handle.id, handle.workerId);
      return handle;
    };
    const closeTimeout = spec.options.closeTimeouts?.app ?? DEFAULT_CLOSE_TIMEOUT;
    const pool = new ThreadAppPool(fork, ports, sharedPort, () => closeTimeout);
    pool.start();
    return pool;
  }

  #spawn(role: WorkerRole, id: number, file: string, options: ResolvedOptions, port?: number): ThreadWorkerHandle {
    // execArgv and env are inherited (an explicit execArgv would reject V8 flags such as
    // --max-old-space-size); argv carries the same public JSON as a worker process
    const worker = new Worker(file, { argv: [argvOptions(options)] });
    // the full options, sent when the thread asks for them, exactly as in process mode
    return new ThreadWorkerHandle(role, id, worker, this.#log, { action: OPTIONS_ACTION, data: encodeOptions(options) }, port);
  }
}
