import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import type * as CforkModule from 'cfork';
import type { Socket } from 'node:net';
import {
  DRAIN_BARRIER_ACTION, LISTENING_ACTION, OPTIONS_ACTION, STICKY_CONNECTION, isOptionsRequest, type ListeningAddress,
} from '../protocol.js';
import { argvOptions, encodeOptions } from '../worker/options_codec.js';
import { STICKY_ACK_ACTION, StickyHandoff, type Reroute } from '../sticky.js';
import { killPendingDescendants, killPids, listDescendants, terminate } from './terminate.js';
import type { Logger } from '../logger.js';
import type { AppPool, AppPoolEvents, Launcher, WorkerHandle, WorkerHandleEvents, WorkerRole, WorkerSpec } from './types.js';

/**
 * The worker entries, at the paths the stop commands grep in `ps`: egg-scripts 3 looks for
 * `egg-cluster/lib/(app|agent)_worker.js`, @eggjs/scripts 4 for
 * `@eggjs/cluster/dist/(commonjs|esm)/(app|agent)_worker.js`. Installed under the
 * @eggjs/cluster name, we fork the dist/commonjs shims (they load lib/); otherwise lib/.
 */
export function workerEntryDir(packageRoot: string): string {
  const asEggjsCluster = path.basename(packageRoot) === 'cluster' && path.basename(path.dirname(packageRoot)) === '@eggjs';
  return asEggjsCluster ? path.join(packageRoot, 'dist', 'commonjs') : path.join(packageRoot, 'lib');
}

const ENTRY_DIR = workerEntryDir(path.join(__dirname, '..', '..'));
export const AGENT_WORKER_FILE = path.join(ENTRY_DIR, 'agent_worker.js');
export const APP_WORKER_FILE = path.join(ENTRY_DIR, 'app_worker.js');

/**
 * The master's execArgv minus `-e/--eval/-p/--print <code>`: a master started with
 * `node -e` would otherwise make every worker evaluate that code instead of its entry.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const result: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (arg === '-e' || arg === '--eval' || arg === '-p' || arg === '--print' || arg === '-pe') {
      i++;
      continue;
    }
    if (/^--(eval|print)=/.test(arg)) continue;
    result.push(arg);
  }
  return result;
}

let cforkModule: typeof CforkModule | undefined;
/**
 * cfork (and the utility package it pulls in) is only needed once the agent has started:
 * loaded lazily, and warmed while the agent boots, it is off the master's startup path.
 */
function loadCfork(): typeof CforkModule {
  cforkModule ??= require('cfork') as typeof CforkModule;
  return cforkModule;
}

/** A worker backed by a child process: the agent's ChildProcess, or a cluster Worker's. */
class ProcessWorkerHandle extends EventEmitter<WorkerHandleEvents> implements WorkerHandle {
  readonly startTime = Date.now();
  readonly exited: Promise<void>;
  readonly #child: ChildProcess;
  readonly #worker: Worker | undefined;
  #terminating: Promise<void> | undefined;
  /** Sticky mode: the sockets handed to this worker and not acknowledged yet. */
  #handoff: StickyHandoff | undefined;

  constructor(
    readonly role: WorkerRole,
    readonly id: number,
    child: ChildProcess,
    readonly debugPort: number | undefined,
    bootstrap: object,
    worker?: Worker,
  ) {
    super();
    this.#child = child;
    this.#worker = worker;
    const source: EventEmitter = worker ?? child;
    this.exited = new Promise(resolve => child.once('exit', () => resolve()));
    source.on('message', (message: unknown) => {
      if (isOptionsRequest(message)) {
        // the worker listens now (after any preload): answer with the full options
        this.send(bootstrap);
        return;
      }
      if (worker && isListeningReport(message)) {
        this.emit('listening', message.data);
        return;
      }
      if (isStickyAck(message)) {
        this.#handoff ??= new StickyHandoff({ get closed() { return !child.channel; } });
        this.#handoff.ack(message.data);
        return;
      }
      if (isDrainBarrier(message)) {
        // echo on the same channel: it is answered after every message sent before it
        this.send({ action: DRAIN_BARRIER_ACTION, data: message.data });
        return;
      }
      this.emit('message', message);
    });
    source.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.#handoff?.workerExited();
      this.emit('exit', code, signal);
    });
    source.on('disconnect', () => {
      this.#handoff?.channelClosed();
      this.emit('disconnect');
    });
    source.on('error', (err: Error) => {
      // an IPC write that failed after the channel closed is expected when a worker dies
      if ((err as NodeJS.ErrnoException).code === 'ERR_IPC_CHANNEL_CLOSED') return;
      this.emit('error', err);
    });
    if (worker) worker.on('listening', (address: ListeningAddress) => this.emit('listening', address));
  }

  get workerId(): number {
    return this.#child.pid ?? -1;
  }

  get isAlive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get isConnected(): boolean {
    return this.#child.connected;
  }

  get exitedAfterDisconnect(): boolean {
    return this.#worker?.exitedAfterDisconnect ?? false;
  }

  get clusterWorker(): Worker | undefined {
    return this.#worker;
  }

  send(message: object): void {
    if (!this.#child.connected) return;
    try {
      // no callback (one per message is measurable on the relay path): an asynchronous channel
      // failure arrives as an 'error' event, which the constructor's listener drops
      this.#child.send(message);
    } catch {
      // channel closed between the check and the write
    }
  }

  sendConnection(socket: Socket, reroute?: Reroute): boolean {
    if (!this.#child.connected) return false;
    const handoff = this.#handoff;
    if (!handoff?.acks || !reroute) {
      // a worker that does not acknowledge (a custom app worker file): Node closes the
      // master's copy once the socket reached the worker
      try {
        this.#child.send(STICKY_CONNECTION, socket, {}, err => {
          if (err) socket.destroy();
        });
        return true;
      } catch {
        return false;
      }
    }
    if (handoff.released) return false;
    try {
      // the master keeps its copy until the worker acknowledges the socket (see StickyHandoff);
      // a failed write is not an error to report: the socket is routed again when the channel closes
      this.#child.send(STICKY_CONNECTION, socket, KEEP_OPEN, ignore);
    } catch {
      return false;
    }
    handoff.track(socket, reroute);
    return true;
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.isAlive) return;
    try {
      this.#child.kill(signal);
    } catch {
      // gone already
    }
  }

  forceKill(): void {
    const pid = this.#child.pid;
    const descendants = pid === undefined ? [] : listDescendants(pid);
    this.kill('SIGKILL');
    killPids(descendants, 'SIGKILL');
  }

  /** Idempotent: a second call (a close during a reload's switch) waits for the same close. */
  terminate(timeoutMs: number): Promise<void> {
    this.#terminating ??= terminate({
      pid: this.#child.pid,
      isAlive: () => this.isAlive,
      kill: signal => this.kill(signal),
      exited: this.exited,
    }, timeoutMs);
    return this.#terminating;
  }
}

const KEEP_OPEN = { keepOpen: true } as const;
function ignore(): void {}

function isStickyAck(message: unknown): message is { action: string; data: unknown } {
  return typeof message === 'object' && message !== null && (message as { action?: unknown }).action === STICKY_ACK_ACTION;
}

function isDrainBarrier(message: unknown): message is { action: string; data: unknown } {
  return typeof message === 'object' && message !== null && (message as { action?: unknown }).action === DRAIN_BARRIER_ACTION;
}

function isListeningReport(message: unknown): message is { action: string; data: ListeningAddress } {
  return typeof message === 'object' && message !== null
    && (message as { action?: unknown }).action === LISTENING_ACTION
    && isAddress((message as { data?: unknown }).data);
}

function isAddress(data: unknown): data is ListeningAddress {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  const { port, address } = data as ListeningAddress;
  return (typeof port === 'number' && Number.isInteger(port)) || typeof address === 'string';
}

/**
 * cfork's line for a refork, `[date] [cfork:master:pid] new worker:pid fork (…)` on stderr:
 * egg-cluster's own tests and ops alerts grep `new worker:<pid> fork`. cfork's own refork is
 * off (the master decides, lifecycle.ts), so the pool prints it when it forks a replacement.
 */
function logNewWorker(worker: Worker, reforkCount: number): void {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  console.error('[%s] [cfork:master:%s] new worker:%s fork (state: %s, reforkCount: %d)',
    date, process.pid, worker.process.pid, (worker as Worker & { state?: string }).state, reforkCount);
}

/**
 * The app workers: cfork forks the first `count` (and sets up node:cluster: exec, args,
 * execArgv); later forks are a plain cluster.fork() with those settings, when the master asks.
 * cfork's own refork is off: it reforked at once, up to 60 a minute, so a worker that dies at
 * boot spun the CPU, and it reforked on 'disconnect' even a worker the master was stopping
 * (D12). Its log lines then say `don't fork new work (refork: false…)`, followed by ours.
 */
class ProcessAppPool extends EventEmitter<AppPoolEvents> implements AppPool {
  #reforks = 0;
  #disposed = false;
  /** The workers this pool forked: a second master in the same process has a pool of its own. */
  readonly #mine = new WeakSet<Worker>();
  /** forkOne()'s tag per worker, until its 'fork' event. */
  readonly #tags = new WeakMap<Worker, unknown>();
  readonly #onFork: (worker: Worker) => void;

  constructor(onFork: (pool: ProcessAppPool, worker: Worker, tag: unknown) => void) {
    super();
    this.#onFork = worker => {
      if (!this.#mine.has(worker)) return;
      const tag = this.#tags.get(worker);
      this.#tags.delete(worker);
      onFork(this, worker, tag);
    };
    cluster.on('fork', this.#onFork);
  }

  /**
   * Run `fork` and claim the workers it created. node:cluster registers a new worker in
   * `cluster.workers` at once and emits 'fork' on the next tick, so they are claimed in time.
   */
  forking<T>(fork: () => T): T {
    const before = new Set(Object.values(cluster.workers ?? {}));
    const result = fork();
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker && !before.has(worker)) this.#mine.add(worker);
    }
    return result;
  }

  setRefork(handle: WorkerHandle, enabled: boolean): void {
    const worker = (handle as ProcessWorkerHandle).clusterWorker;
    if (worker) loadCfork().setDisableRefork(worker, !enabled);
  }

  refork(): void {
    if (this.#disposed) return;
    const worker = this.forking(() => cluster.fork());
    logNewWorker(worker, ++this.#reforks);
  }

  forkOne(tag?: unknown): void {
    if (this.#disposed) return;
    const worker = this.forking(() => cluster.fork());
    if (tag !== undefined) this.#tags.set(worker, tag);
  }

  dispose(): void {
    this.#disposed = true;
    cluster.removeListener('fork', this.#onFork);
  }
}

type Log = (message: string, ...args: unknown[]) => void;

export interface ProcessLauncherOptions {
  logger: Logger;
  log?: Log;
  files?: { agent: string; app: string };
}

/** Agent with child_process.fork, app workers with cfork (node:cluster), as egg-cluster does. */
export class ProcessLauncher implements Launcher {
  #agentCount = 0;
  private readonly files: { agent: string; app: string };

  constructor(private readonly opts: ProcessLauncherOptions) {
    this.files = opts.files ?? { agent: AGENT_WORKER_FILE, app: APP_WORKER_FILE };
  }

  killStragglers(): void {
    killPendingDescendants();
  }

  forkAgent(spec: WorkerSpec): WorkerHandle {
    const execArgv = workerExecArgv();
    let debugPort: number | undefined;
    if (spec.options.isDebug) {
      debugPort = spec.options.agentDebugPort ?? 5800;
      execArgv.push(`--inspect-port=${debugPort}`);
    }
    const child = fork(this.files.agent, [argvOptions(spec.options)], { execArgv });
    // the full options (never argv), sent when the agent asks for them
    const bootstrap = { action: OPTIONS_ACTION, data: encodeOptions(spec.options) };
    const handle = new ProcessWorkerHandle('agent', ++this.#agentCount, child, debugPort, bootstrap);
    // the master is idle while the agent boots: load what forking the app workers needs
    setImmediate(loadCfork);
    return handle;
  }

  startApps(spec: WorkerSpec, count: number): AppPool {
    const bootstrap = { action: OPTIONS_ACTION, data: encodeOptions(spec.options) };
    let debugOffset = 0;
    const pool = new ProcessAppPool((self, worker, tag) => {
      const debugPort = spec.options.isDebug ? process.debugPort + ++debugOffset : undefined;
      self.emit('fork', new ProcessWorkerHandle('app', worker.id, worker.process, debugPort, bootstrap, worker), tag);
    });
    pool.forking(() => loadCfork().cfork({
      exec: this.files.app,
      args: [argvOptions(spec.options)],
      execArgv: workerExecArgv(),
      silent: false,
      count,
      refork: false,
    }));
    return pool;
  }
}
