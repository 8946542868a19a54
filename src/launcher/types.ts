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
}

export interface AppPoolEvents {
  fork: [handle: WorkerHandle];
}

/** The app workers: forked together, reforked (when allowed) by the pool itself. */
export interface AppPool extends EventEmitter<AppPoolEvents> {
  /** Allow or forbid the pool to refork this worker when it dies. */
  setRefork(handle: WorkerHandle, enabled: boolean): void;
  /** Fork one more app worker with the same settings (rolling reload); it arrives as 'fork'. */
  forkOne(): void;
  /** Shutdown: no more reforks, pending ones cancelled. */
  stopReforking?(): void;
}

export interface WorkerSpec {
  /** Everything the worker needs; travels over IPC, never on argv. */
  options: ResolvedOptions;
}

export interface Launcher {
  forkAgent(spec: WorkerSpec): WorkerHandle;
  /** Fork `count` app workers; the pool reforks dead ones only when `refork` is true. */
  startApps(spec: WorkerSpec, count: number, refork: boolean): AppPool;
}
