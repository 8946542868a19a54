import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type {
  AppPool, AppPoolEvents, Launcher, WorkerHandle, WorkerHandleEvents, WorkerRole, WorkerSpec,
} from '../../src/launcher/types.js';
import type { ListeningAddress } from '../../src/protocol.js';
import { cloneMessage } from './fake_host.js';

/**
 * How a fake worker answers terminate():
 * - `exit`: it exits cleanly on SIGTERM (code 0), as graceful-process does;
 * - `hang`: it ignores SIGTERM; terminate() resolves only when the test kills it (die / SIGKILL);
 * - `escalate`: it ignores SIGTERM and the launcher's timeout runs out at once: SIGKILL is used.
 */
export type TerminateMode = 'exit' | 'hang' | 'escalate';

/** A worker that is only an EventEmitter: the test makes it talk, listen and die. */
export class FakeWorker extends EventEmitter<WorkerHandleEvents> implements WorkerHandle {
  readonly startTime = Date.now();
  debugPort: number | undefined;
  isAlive = true;
  isConnected = true;
  exitedAfterDisconnect = false;
  /** What the master sent to this worker, as the channel would deliver it (cloned). */
  readonly sent: Array<Record<string, unknown>> = [];
  /** Sockets handed over in sticky mode. */
  readonly connections: Socket[] = [];
  /** Signals sent by terminate() / kill(), in order. */
  readonly signals: string[] = [];
  /** The timeout of every terminate() call. */
  readonly terminateCalls: number[] = [];
  terminateMode: TerminateMode = 'exit';
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null | undefined;
  readonly exited: Promise<void>;
  #resolveExited!: () => void;

  constructor(
    readonly role: WorkerRole,
    readonly id: number,
    readonly workerId: number,
    private readonly timeline: string[] = [],
  ) {
    super();
    this.exited = new Promise(resolve => {
      this.#resolveExited = resolve;
    });
  }

  get label(): string {
    return `${this.role}#${this.id}`;
  }

  send(message: object): void {
    if (!this.isConnected) return;
    this.sent.push(cloneMessage(message));
  }

  sendConnection(socket: Socket): boolean {
    if (!this.isConnected) return false;
    this.connections.push(socket);
    return true;
  }

  terminate(timeoutMs: number): Promise<void> {
    this.terminateCalls.push(timeoutMs);
    this.timeline.push(`terminate ${this.label} ${timeoutMs}`);
    if (!this.isAlive) return Promise.resolve();
    this.signals.push('SIGTERM');
    switch (this.terminateMode) {
      case 'exit':
        queueMicrotask(() => this.die(0, null));
        break;
      case 'escalate':
        queueMicrotask(() => {
          this.signals.push('SIGKILL');
          this.die(null, 'SIGKILL');
        });
        break;
      case 'hang':
        break;
    }
    return this.exited;
  }

  kill(signal: NodeJS.Signals): void {
    this.timeline.push(`kill ${this.label} ${signal}`);
    if (!this.isAlive) return;
    this.signals.push(signal);
    if (signal === 'SIGKILL' || (signal === 'SIGTERM' && this.terminateMode === 'exit')) {
      queueMicrotask(() => this.die(signal === 'SIGKILL' ? null : 0, signal === 'SIGKILL' ? signal : null));
    }
  }

  // ---- what the test fires ----

  /** SIGKILL for the worker and its descendants (a fake has none). */
  forceKill(): void {
    this.timeline.push(`forceKill ${this.label}`);
    this.kill('SIGKILL');
  }

  /** The worker sends a message to the master on its channel. */
  say(message: unknown): void {
    // like IPC, the master receives its own copy of what the worker sent
    this.emit('message', typeof message === 'object' && message !== null ? cloneMessage(message) : message);
  }

  /** A server in the worker is listening (node:cluster's `listening`). */
  listen(port: number | undefined, address: string | null = null, addressType: number | string = 4): void {
    const info: ListeningAddress = { address, port, addressType };
    this.emit('listening', info);
  }

  /** Listening on a unix socket / named pipe. */
  listenPath(socketPath: string): void {
    this.emit('listening', { address: socketPath, addressType: -1 });
  }

  /** The IPC channel closed (the worker is still alive until it exits). */
  disconnect(): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.emit('disconnect');
  }

  /** The worker exits. Idempotent: a dead worker does not exit twice. */
  die(code: number | null = 1, signal: NodeJS.Signals | null = null): void {
    if (!this.isAlive) return;
    this.isAlive = false;
    this.isConnected = false;
    this.exitCode = code;
    this.exitSignal = signal;
    this.timeline.push(`exit ${this.label} ${code} ${signal}`);
    this.emit('exit', code, signal);
    this.#resolveExited();
  }

  /** Messages the master sent with this action. */
  received(action: string): Array<Record<string, unknown>> {
    return this.sent.filter(m => m.action === action);
  }
}

/**
 * The app pool as the real ones behave (src/launcher/process.ts, threads.ts): it forks `count`
 * workers ('fork' on the next tick, as node:cluster does) and afterwards forks only when the
 * master asks, with refork() or forkOne(). It never reforks by itself: the master's lifecycle
 * decides, with its delays running on the (mocked) timers.
 */
export class FakePool extends EventEmitter<AppPoolEvents> implements AppPool {
  readonly workers: FakeWorker[] = [];
  /** The cfork log hint per worker as last set by the master. */
  readonly reforkEnabled = new Map<WorkerHandle, boolean>();
  readonly setReforkCalls: Array<{ worker: WorkerHandle; enabled: boolean }> = [];
  /** The workers the master asked to replace, in order. */
  readonly reforked: WorkerHandle[] = [];
  disposed = false;

  constructor(
    private readonly launcher: FakeLauncher,
    readonly spec: WorkerSpec,
    readonly count: number,
  ) {
    super();
  }

  get reforks(): number {
    return this.reforked.length;
  }

  setRefork(handle: WorkerHandle, enabled: boolean): void {
    this.setReforkCalls.push({ worker: handle, enabled });
    this.reforkEnabled.set(handle, enabled);
    this.launcher.timeline.push(`setRefork ${handle.role}#${handle.id} ${enabled}`);
  }

  refork(dead: WorkerHandle): void {
    if (this.disposed) return;
    this.reforked.push(dead);
    this.launcher.timeline.push(`refork ${dead.role}#${dead.id}`);
    this.fork();
  }

  /** AppPool.forkOne (rolling reload): one more worker with the same settings. */
  forkOne(tag?: unknown): void {
    if (this.disposed) return;
    this.launcher.timeline.push('forkOne');
    this.fork(tag);
  }

  dispose(): void {
    this.disposed = true;
  }

  /** Fork one worker now ('fork' is emitted on the next tick, with forkOne()'s tag). */
  fork(tag?: unknown): FakeWorker {
    const worker = this.launcher.newApp();
    this.workers.push(worker);
    process.nextTick(() => this.emit('fork', worker, tag));
    return worker;
  }
}

/** The only code that "creates" workers, in memory: agents 2001+, app workers 3001+ as pids. */
export class FakeLauncher implements Launcher {
  readonly agents: FakeWorker[] = [];
  readonly pools: FakePool[] = [];
  /** Every app worker in fork order, across pools. */
  readonly apps: FakeWorker[] = [];
  readonly agentSpecs: WorkerSpec[] = [];
  /** One ordered record of forks, setRefork, terminate, kill and exits. */
  readonly timeline: string[] = [];
  /** terminateMode given to every worker created from now on. */
  defaultTerminateMode: TerminateMode = 'exit';
  #appCount = 0;

  forkAgent(spec: WorkerSpec): FakeWorker {
    const n = this.agents.length + 1;
    const agent = new FakeWorker('agent', n, 2000 + n, this.timeline);
    agent.terminateMode = this.defaultTerminateMode;
    this.agents.push(agent);
    this.agentSpecs.push(spec);
    this.timeline.push(`fork ${agent.label}`);
    return agent;
  }

  startApps(spec: WorkerSpec, count: number): FakePool {
    const pool = new FakePool(this, spec, count);
    this.pools.push(pool);
    this.timeline.push(`startApps ${count}`);
    for (let i = 0; i < count; i++) pool.fork();
    return pool;
  }

  /** @internal used by FakePool */
  newApp(): FakeWorker {
    const n = ++this.#appCount;
    const worker = new FakeWorker('app', n, 3000 + n, this.timeline);
    worker.terminateMode = this.defaultTerminateMode;
    this.apps.push(worker);
    this.timeline.push(`fork ${worker.label}`);
    return worker;
  }

  /** The latest agent. */
  get agent(): FakeWorker | undefined {
    return this.agents[this.agents.length - 1];
  }

  get pool(): FakePool | undefined {
    return this.pools[0];
  }

  liveApps(): FakeWorker[] {
    return this.apps.filter(w => w.isAlive);
  }
}

// ---- a Master wired to the fakes ----

import path from 'node:path';
import { Master } from '../../src/master.js';
import type { ClusterOptions } from '../../src/options.js';
import { FakeHost } from './fake_host.js';
import { captureLogger, type CaptureLogger } from './capture_logger.js';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const BASIC_APP = path.join(FIXTURES, 'apps', 'basic');
export const FAKE_FRAMEWORK = path.join(FIXTURES, 'framework');
/** The fixture framework's package name: what "[master] <name> started on" prints. */
export const FRAMEWORK_NAME = 'fake-framework';
export const CLUSTER_PORT = 17001;
export const PORT = 7001;

export interface FakeClusterInit {
  /** Merged over `{ baseDir: BASIC_APP, framework: FAKE_FRAMEWORK, port: 7001 }`. */
  options?: ClusterOptions;
  env?: NodeJS.ProcessEnv;
  hasParent?: boolean;
  detectPort?: () => Promise<number>;
  cpus?: number;
  execArgv?: string[];
  terminateMode?: TerminateMode;
  /** A host prepared by the test (then `env` and `hasParent` are ignored). */
  host?: FakeHost;
}

export interface FakeCluster {
  master: Master;
  host: FakeHost;
  launcher: FakeLauncher;
  logger: CaptureLogger;
}

/** Let pending promises, nextTicks and immediates run (detectPort, 'fork' events, terminate chains). */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>(resolve => setImmediate(resolve));
}

/** `new Master(options, fakes)`: the master starts itself (detectPort is awaited: flush() to go on). */
export function createFakeCluster(init: FakeClusterInit = {}): FakeCluster {
  const host = init.host ?? new FakeHost({ env: init.env ?? {}, hasParent: init.hasParent ?? true });
  const launcher = new FakeLauncher();
  if (init.terminateMode) launcher.defaultTerminateMode = init.terminateMode;
  const logger = captureLogger();
  const master = new Master({ baseDir: BASIC_APP, framework: FAKE_FRAMEWORK, port: PORT, ...init.options }, {
    launcher,
    host,
    logger,
    detectPort: init.detectPort ?? (() => Promise.resolve(CLUSTER_PORT)),
    cpus: () => init.cpus ?? 4,
    cwd: BASIC_APP,
    execArgv: init.execArgv ?? [],
  });
  return { master, host, launcher, logger };
}

/** The current agent reports `agent-start` (as agent_worker.js does once the Agent is ready). */
export async function agentStart(cluster: FakeCluster, agent = cluster.launcher.agent): Promise<void> {
  if (!agent) throw new Error('no agent forked yet');
  agent.say({ action: 'agent-start', to: 'master' });
  await flush();
}

/** Every live, not yet started app worker listens on `port`. */
export async function listenAll(cluster: FakeCluster, port = PORT): Promise<void> {
  for (const worker of cluster.launcher.liveApps()) {
    const entry = cluster.master.registry.app(worker);
    if (entry?.state === 'starting') worker.listen(port);
  }
  await flush();
}

/** A full normal startup: agent forked, agent-start, every app worker listening; ready() resolved. */
export async function startFakeCluster(init: FakeClusterInit = {}): Promise<FakeCluster> {
  const cluster = createFakeCluster(init);
  await flush();
  await agentStart(cluster);
  await listenAll(cluster, typeof init.options?.port === 'number' ? init.options.port : PORT);
  if (!cluster.master.isStarted) {
    throw new Error(`fake cluster did not start:\n${cluster.logger.lines().join('\n')}`);
  }
  await cluster.master.ready();
  return cluster;
}
