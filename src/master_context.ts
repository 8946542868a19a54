import type { Launcher, WorkerHandle } from './launcher/types.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { Messenger } from './messenger.js';
import type { ResolvedOptions } from './options.js';
import type { ListeningAddress } from './protocol.js';
import type { WorkerRegistry } from './registry.js';

/** The master events the supervisors emit (MasterEvents in master.ts). */
export interface SupervisorEvents {
  'agent-start': [];
  'app-start': [data: { workerId: number; address: ListeningAddress }];
  'agent-exit': [data: { code: number | null; signal: NodeJS.Signals | null }];
  'app-exit': [data: { workerId: number; code: number | null; signal: NodeJS.Signals | null }];
}

/**
 * What the agent and app supervisors (agents.ts, apps.ts) share with the master: its state,
 * read live, and the few things only the master does (fail the start, close, emit its events).
 */
export interface MasterContext {
  readonly options: ResolvedOptions;
  readonly registry: WorkerRegistry;
  readonly messenger: Messenger;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
  readonly launcher: Launcher;
  readonly isProduction: boolean;
  /** A close (or a failed start) began. */
  readonly closed: boolean;
  /** `egg-ready` was sent. */
  readonly isStarted: boolean;
  /** The port and protocol app workers listen on (options, or a worker's `realport`). */
  readonly realPort: number | undefined;
  readonly protocol: string;
  /** egg-cluster's `log()`: INFO, or DEBUG in the local env. */
  log(message: string, ...args: unknown[]): void;
  /** A message from a worker's channel, to the messenger. */
  route(source: WorkerHandle, raw: unknown): void;
  /** The options for `egg-ready`, without secrets. */
  readyPayload(): Record<string, unknown>;
  /** Startup cannot complete: stop everything, exit 1. */
  failStart(err: Error): void;
  /** A graceful close with this exit code. */
  shutdown(code: number): void;
  emit<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): boolean;
}
