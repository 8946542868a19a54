/**
 * The egg cluster wire format, kept byte for byte:
 * `{ action, data, from, to, receiverPid, receiverWorkerId, senderWorkerId }`.
 *
 *             ┌────────┐
 *             │ parent │
 *            /└────────┘\
 *           /     |      \
 *          /  ┌────────┐  \
 *         /   │ master │   \
 *        /    └────────┘    \
 *       /     /         \    \
 *     ┌───────┐         ┌───────┐
 *     │ agent │ ------- │  app  │
 *     └───────┘         └───────┘
 */

export type Role = 'master' | 'agent' | 'app' | 'parent';

export interface Envelope<A extends string = string, D = unknown> {
  action: A;
  data?: D;
  from?: Role;
  to?: Role;
  /** Target one process by pid (egg 3). */
  receiverPid?: string;
  /** Target one worker by id (@eggjs/cluster 3); wins over receiverPid. */
  receiverWorkerId?: string;
  senderWorkerId?: string;
  [key: string]: unknown;
}

export interface ListeningAddress {
  address?: string | null;
  port?: number;
  addressType?: number | string;
  family?: string | number;
  protocol?: string;
}

export interface EggReadyInfo {
  port: number | undefined;
  debugPort: number | undefined;
  address: string;
  protocol: string;
}

/**
 * Bootstrap action the master sends as the very first message on a worker's channel:
 * it carries the full options, which never go on argv (D3).
 */
export const OPTIONS_ACTION = 'egg-clutch:options';

/**
 * Worker -> master, the worker's first message: "my listener is attached, send the options".
 * The worker speaks first because preloads (`--import`, a slow `--require`) delay its main
 * module by an unknown time, and a message that arrives on a child's channel before its
 * `process.on('message')` listener exists is lost. The launcher answers with OPTIONS_ACTION.
 */
export const OPTIONS_REQUEST_ACTION = 'egg-clutch:options-request';

/** Does `message` ask for the bootstrap options? */
export function isOptionsRequest(message: unknown): boolean {
  return typeof message === 'object' && message !== null
    && (message as { action?: unknown }).action === OPTIONS_REQUEST_ACTION;
}

/** Prefix of the actions only the master's launcher sends. */
export const INTERNAL_PREFIX = 'egg-clutch:';

/**
 * A worker listening with SO_REUSEPORT: node:cluster does not report it, so the worker
 * says so itself on its own channel. The launcher consumes it; it never reaches routing.
 */
export const LISTENING_ACTION = 'egg-clutch:listening';

/**
 * Closing app worker -> master -> the same worker. node:cluster's primary learns that the
 * worker closed its server from a message on the same channel; once the echo is back, every
 * connection the primary handed over before that is in the worker, not in flight (a worker
 * that exits earlier strands them: the client hangs).
 */
export const DRAIN_BARRIER_ACTION = 'egg-clutch:drain-barrier';

/**
 * App worker -> master, once a second while the status server is on (src/worker/report.ts):
 * the worker's own figures (WorkerReport). An internal action: the master's ops side reads
 * it from the worker's channel; message routing drops it, so user code never sees it.
 */
export const REPORT_ACTION = 'egg-clutch:report';

/** The message that carries a socket to an app worker in sticky mode (egg-cluster's name). */
export const STICKY_CONNECTION = 'sticky-session:connection';

const ROLES: ReadonlySet<string> = new Set(['master', 'agent', 'app', 'parent']);

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && ROLES.has(value);
}

/**
 * Turn whatever arrived on a channel into an envelope stamped with its sender, or null.
 * A bare string `'x'` becomes `{ action: 'x', data: 'x' }` (egg behaviour). An object is
 * stamped in place, as egg-cluster does: what arrives over IPC (or postMessage) is a fresh
 * copy that nobody else holds, and copying it again was the largest cost per relayed
 * message (bench/messages.js).
 */
export function normalizeMessage(raw: unknown, from: Role): Envelope | null {
  if (typeof raw === 'string') {
    return raw ? { action: raw, data: raw, from } : null;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const action = (raw as { action?: unknown }).action;
  if (typeof action !== 'string' || action === '') return null;
  // egg-clutch:* actions are the launcher's own (options, listening, thread close): a worker
  // or the parent that sends one is ignored, so it cannot close other workers
  if (from !== 'master' && action.startsWith(INTERNAL_PREFIX)) return null;
  const msg = raw as Envelope;
  if (msg.to !== undefined && !isRole(msg.to)) return null;
  msg.from = from;
  return msg;
}
