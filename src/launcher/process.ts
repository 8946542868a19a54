import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { cfork, setDisableRefork } from 'cfork';
import type { Socket } from 'node:net';
import { LISTENING_ACTION, OPTIONS_ACTION, STICKY_CONNECTION, type ListeningAddress } from '../protocol.js';
import { argvOptions, encodeOptions } from '../worker/options_codec.js';
import { terminate } from './terminate.js';
import type { AppPool, AppPoolEvents, Launcher, WorkerHandle, WorkerHandleEvents, WorkerRole, WorkerSpec } from './types.js';

/** lib/agent_worker.js and lib/app_worker.js: egg-scripts `stop` finds workers by these paths. */
export const AGENT_WORKER_FILE = path.join(__dirname, '..', 'agent_worker.js');
export const APP_WORKER_FILE = path.join(__dirname, '..', 'app_worker.js');

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

/** A worker backed by a child process: the agent's ChildProcess, or a cluster Worker's. */
class ProcessWorkerHandle extends EventEmitter<WorkerHandleEvents> implements WorkerHandle {
  readonly startTime = Date.now();
  readonly exited: Promise<void>;
  readonly #child: ChildProcess;
  readonly #worker: Worker | undefined;

  constructor(
    readonly role: WorkerRole,
    readonly id: number,
    child: ChildProcess,
    readonly debugPort: number | undefined,
    worker?: Worker,
  ) {
    super();
    this.#child = child;
    this.#worker = worker;
    const source: EventEmitter = worker ?? child;
    this.exited = new Promise(resolve => child.once('exit', () => resolve()));
    source.on('message', (message: unknown) => {
      if (worker && isListeningReport(message)) {
        this.emit('listening', message.data);
        return;
      }
      this.emit('message', message);
    });
    source.once('exit', (code: number | null, signal: NodeJS.Signals | null) => this.emit('exit', code, signal));
    source.on('disconnect', () => this.emit('disconnect'));
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
      // the callback keeps an asynchronous channel failure from becoming an 'error' event
      this.#child.send(message, undefined, {}, () => {});
    } catch {
      // channel closed between the check and the write
    }
  }

  sendConnection(socket: Socket): boolean {
    if (!this.#child.connected) return false;
    try {
      this.#child.send(STICKY_CONNECTION, socket, {}, err => {
        if (err) socket.destroy();
      });
      return true;
    } catch {
      return false;
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.isAlive) return;
    try {
      this.#child.kill(signal);
    } catch {
      // gone already
    }
  }

  terminate(timeoutMs: number): Promise<void> {
    return terminate({
      pid: this.#child.pid,
      isAlive: () => this.isAlive,
      kill: signal => this.kill(signal),
      exited: this.exited,
    }, timeoutMs);
  }
}

function isListeningReport(message: unknown): message is { action: string; data: ListeningAddress } {
  return typeof message === 'object' && message !== null
    && (message as { action?: unknown }).action === LISTENING_ACTION
    && typeof (message as { data?: unknown }).data === 'object';
}

class ProcessAppPool extends EventEmitter<AppPoolEvents> implements AppPool {
  setRefork(handle: WorkerHandle, enabled: boolean): void {
    const worker = (handle as ProcessWorkerHandle).clusterWorker;
    if (worker) setDisableRefork(worker, !enabled);
  }

  forkOne(): void {
    // cfork has set up cluster (exec, args) already; a plain fork reuses those settings
    cluster.fork();
  }
}

/** Agent with child_process.fork, app workers with cfork (node:cluster), as egg-cluster does. */
export class ProcessLauncher implements Launcher {
  #agentCount = 0;

  constructor(
    private readonly files = { agent: AGENT_WORKER_FILE, app: APP_WORKER_FILE },
  ) {}

  forkAgent(spec: WorkerSpec): WorkerHandle {
    const execArgv = workerExecArgv();
    let debugPort: number | undefined;
    if (spec.options.isDebug) {
      debugPort = Number(process.env.EGG_AGENT_DEBUG_PORT || 5800);
      execArgv.push(`--inspect-port=${debugPort}`);
    }
    const child = fork(this.files.agent, [argvOptions(spec.options)], { execArgv });
    const handle = new ProcessWorkerHandle('agent', ++this.#agentCount, child, debugPort);
    // first message on the channel: the full options (never argv)
    handle.send({ action: OPTIONS_ACTION, data: encodeOptions(spec.options) });
    return handle;
  }

  startApps(spec: WorkerSpec, count: number, refork: boolean): AppPool {
    const pool = new ProcessAppPool();
    const bootstrap = { action: OPTIONS_ACTION, data: encodeOptions(spec.options) };
    let debugOffset = 0;
    cluster.on('fork', (worker: Worker) => {
      const debugPort = spec.options.isDebug ? process.debugPort + ++debugOffset : undefined;
      const handle = new ProcessWorkerHandle('app', worker.id, worker.process, debugPort, worker);
      handle.send(bootstrap);
      pool.emit('fork', handle);
    });
    cfork({
      exec: this.files.app,
      args: [argvOptions(spec.options)],
      execArgv: workerExecArgv(),
      silent: false,
      count,
      refork,
    });
    return pool;
  }
}
