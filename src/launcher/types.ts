import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { ListeningAddress } from '../protocol.js';
import type { ResolvedOptions } from '../options.js';

export type WorkerRole = 'agent' | 'app';

export interface WorkerHandleEvents {
  /** Whatever the worker sent on its channel, not yet checked. */
  message: [message: unknown];
  exit: [code: number | null, signal: NodeJS.Signals | null];
  error: [error: Error];
  /** Apps only: a server in the worker is listening. */
  listening: [address: ListeningAddress];
  disconnect: [];
}

/** One running agent or app worker. Process-backed today; a thread adapter fits the same shape. */
export interface WorkerHandle extends EventEmitter<WorkerHandleEvents> {
  readonly role: WorkerRole;
  /** 1-based ordinal, as in `app_worker#3`. */
  readonly id: number;
  /** pid (process mode). */
  readonly workerId: number;
  readonly startTime: number;
  /** The inspector port of this worker when the master runs under --inspect. */
  readonly debugPort: number | undefined;
  readonly isAlive: boolean;
  readonly isConnected: boolean;
  /** node:cluster's `exitedAfterDisconnect` (egg-cluster logs it as `suicide`). */
  readonly exitedAfterDisconnect: boolean;
  /** Never throws; a message to a worker whose channel is gone is dropped. */
  send(message: object): void;
  /**
   * Sticky mode: hand an accepted socket to this worker. False when it cannot take it.
   * `reroute` gets the socket back when the worker goes away before acknowledging it.
   */
  sendConnection(socket: Socket, reroute?: (socket: Socket) => void): boolean;
  /** SIGTERM, wait up to `timeoutMs` for the exit, then SIGKILL; the same for its descendants. */
  terminate(timeoutMs: number): Promise<void>;
  /** Send a signal now (SIGKILL for a forced stop). */
  kill(signal: NodeJS.Signals): void;
  /** SIGKILL now, the worker and every descendant (a forced exit leaves no grandchild). */
  forceKill(): void;
}

export interface AppPoolEvents {
  /** `tag`: what the forkOne() call that caused this fork was given (undefined for the others). */
  fork: [handle: WorkerHandle, tag: unknown];
}

/**
 * The app workers: forked together, then one at a time when the master asks. The pool never
 * decides to refork by itself: the master's lifecycle does (lifecycle.ts), so the same rules
 * hold for processes, threads and the unit tests' fake pool.
 */
export interface AppPool extends EventEmitter<AppPoolEvents> {
  /**
   * Whether the master will replace this worker when it dies. Only a hint for the log lines
   * (cfork prints a disconnect or exit at ERROR for a worker it would refork, INFO otherwise).
   */
  setRefork(handle: WorkerHandle, enabled: boolean): void;
  /** Fork the replacement of a worker that died or disconnected (its slot, its port); it arrives as 'fork'. */
  refork(dead: WorkerHandle): void;
  /**
   * Fork one more app worker with the same settings (rolling reload); it arrives as 'fork'
   * with `tag`, so the caller knows its own fork from a refork asked for in the same tick.
   */
  forkOne(tag?: unknown): void;
  /** The master is done with the pool: no more forks; listeners it set on shared objects are removed. */
  dispose(): void;
}

export interface WorkerSpec {
  /** Everything the worker needs; travels over IPC, never on argv. */
  options: ResolvedOptions;
}

export interface Launcher {
  forkAgent(spec: WorkerSpec): WorkerHandle;
  /** The master's forced exit: SIGKILL what a close still waits for (descendants of workers that exited). */
  killStragglers?(): void;
  /** Fork `count` app workers. */
  startApps(spec: WorkerSpec, count: number): AppPool;
}
