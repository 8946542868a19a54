import fs from 'node:fs';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { FrameworkInstance } from './bootstrap.js';
import type { ResolvedOptions } from '../options.js';

export interface ListenPlan {
  port: unknown;
  hostname: string | undefined;
  path: string | undefined;
  protocol: 'http' | 'https';
  https: Record<string, unknown>;
  /** SO_REUSEPORT was asked for and this Node/platform has it. */
  reusePort: boolean;
  /** SO_REUSEPORT was asked for but is not available: why (logged as a warning). */
  reusePortUnavailable?: string;
}

const REUSE_PORT_PLATFORMS = ['linux', 'freebsd', 'sunos', 'aix'];

/** `server.listen({ reusePort })` exists from Node 22.12 (and 23.1) on Linux, FreeBSD, SunOS, AIX. */
export function reusePortSupport(version: string, platform: string): string | undefined {
  if (!REUSE_PORT_PLATFORMS.includes(platform)) return `platform ${platform} has no SO_REUSEPORT load balancing`;
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  const ok = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  return ok ? undefined : `Node.js ${version} has no listen({ reusePort }); it needs >= 22.12`;
}

/** options win over the app's config.cluster.{listen, https}, as in egg-cluster. */
export function planListen(options: ResolvedOptions, app: FrameworkInstance): ListenPlan {
  const cluster = app.config?.cluster ?? {};
  const listen = cluster.listen ?? {};
  const httpsOptions = { ...(cluster.https ?? {}), ...(options.https || {}) } as Record<string, unknown>;
  const wantReusePort = Boolean(options.reusePort || (listen as { reusePort?: unknown }).reusePort);
  const unavailable = wantReusePort ? reusePortSupport(process.version, process.platform) : undefined;
  return {
    port: options.port || listen.port,
    hostname: listen.hostname || undefined,
    path: listen.path || undefined,
    protocol: httpsOptions.key && httpsOptions.cert ? 'https' : 'http',
    https: httpsOptions,
    reusePort: wantReusePort && !unavailable,
    reusePortUnavailable: unavailable,
  };
}

/** A key / cert / ca given as PEM text or Buffer is used as is; anything else is a file path. */
function readPem(name: string, value: unknown): string | Buffer | Array<string | Buffer> {
  if (Array.isArray(value)) return value.map((v, i) => readPem(`${name}[${i}]`, v) as string | Buffer);
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string' && value.includes('-----BEGIN')) return value;
  try {
    return fs.readFileSync(String(value));
  } catch (err) {
    throw new Error(`cannot read https.${name} file "${String(value)}": ${(err as Error).message}; give an existing file path or the PEM content`, { cause: err });
  }
}

export function createAppServer(app: FrameworkInstance, plan: ListenPlan): http.Server {
  const handler = app.callback!();
  if (plan.protocol === 'https') {
    const secure: Record<string, unknown> = { ...plan.https };
    secure.key = readPem('key', plan.https.key);
    secure.cert = readPem('cert', plan.https.cert);
    if (plan.https.ca) secure.ca = readPem('ca', plan.https.ca);
    // loaded only for https: node:https brings tls and crypto (~1 MiB of RSS in every worker)
    const https = require('node:https') as typeof import('node:https');
    return https.createServer(secure, handler);
  }
  return http.createServer(handler);
}

/**
 * Tracks connections and requests so that a close can drain: stop accepting, let requests in
 * flight finish, end idle keep-alive connections, answer `Connection: close` on busy ones
 * (egg-cluster never closed the server: defect D4).
 *
 * An idle keep-alive connection is ended only once it has been idle for a moment
 * (IDLE_GRACE_MS): a client under load sends its next request on it within milliseconds and
 * gets `Connection: close` with the answer; ending it at once would race that request, and
 * the client would see ECONNRESET (measured: 12 of ~1,500 requests in a 4-worker egg 3 reload).
 *
 * It stops listening with net.Server#close, not http.Server#close: since Node 19 the latter
 * also runs closeIdleConnections(), which destroys a connection handed over a moment ago
 * (round robin or sticky) whose first request is still on its way, and its client sees
 * ECONNRESET. Here a connection is "idle" only after it served a request.
 */
/** How long a keep-alive connection must have been idle before a drain ends it. */
const IDLE_GRACE_MS = 500;

interface SocketState {
  active: number;
  served: number;
  idleSince: number;
}

export class Drainer {
  readonly #inflight = new Set<ServerResponse>();
  /** Per connection: requests in progress, requests served, and since when it is idle. */
  readonly #sockets = new Map<Socket, SocketState>();
  #closing = false;
  #grace = IDLE_GRACE_MS;
  #idle: (() => void) | undefined;

  /**
   * `barrier` resolves once the master has seen this worker stop accepting (see
   * DRAIN_BARRIER_ACTION): connections already handed over are then all here to drain.
   */
  constructor(private readonly servers: http.Server[], private readonly barrier: () => Promise<void> = () => Promise.resolve()) {
    for (const server of servers) {
      // https: a request's socket is the TLS socket, not the TCP one under it
      const connectionEvent = server instanceof http.Server ? 'connection' : 'secureConnection';
      server.on(connectionEvent, (socket: Socket) => {
        this.#sockets.set(socket, { active: 0, served: 0, idleSince: 0 });
        socket.once('close', () => {
          this.#sockets.delete(socket);
          if (this.#closing && !this.#sockets.size) this.#idle?.();
        });
      });
      // first among the 'request' listeners: the app's handler (registered by createServer)
      // may answer synchronously, and its response must already carry `Connection: close`
      server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
        if (this.#closing) res.shouldKeepAlive = false;
        this.#inflight.add(res);
        const state = this.#sockets.get(req.socket);
        if (state) state.active++;
        res.once('close', () => {
          this.#inflight.delete(res);
          if (state) {
            state.active--;
            state.served++;
            state.idleSince = Date.now();
            // a response that went out with keep-alive before the close began: the client may
            // be sending its next request on this connection right now, and ending it here
            // would reset that request (ECONNRESET). Treat it as idle: its next request gets
            // `Connection: close`, or it is ended once idle for the grace.
            if (this.#closing) this.#endIfIdle(req.socket, state);
          }
        });
      });
    }
  }

  /** End a connection that served a request and has been idle for the grace (see above). */
  #endIfIdle(socket: Socket, state: SocketState): void {
    if (state.active !== 0 || socket.destroyed) return;
    const idleFor = Date.now() - state.idleSince;
    if (idleFor >= this.#grace) socket.end();
    else setTimeout(() => this.#endIfIdle(socket, state), this.#grace - idleFor).unref();
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Resolves when every connection has ended, or at `timeoutMs` (then the rest are cut). */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.#grace = Math.min(IDLE_GRACE_MS, Math.floor(timeoutMs / 4));
    for (const res of this.#inflight) if (!res.headersSent) res.shouldKeepAlive = false;
    for (const [socket, state] of this.#sockets) {
      if (state.served > 0) this.#endIfIdle(socket, state);
    }
    const deadline = Date.now() + timeoutMs;
    for (const server of this.servers) {
      if (server.listening) net.Server.prototype.close.call(server);
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs); });
    // connections handed over before the barrier are served (with Connection: close), not cut
    await Promise.race([this.barrier(), timedOut]);
    // every connection ends by itself: served ones with Connection: close, idle keep-alives
    // were ended above; one that never sends a request is cut at the deadline
    if (this.#sockets.size && Date.now() < deadline) {
      await Promise.race([new Promise<void>(resolve => { this.#idle = resolve; }), timedOut]);
    }
    clearTimeout(timer);
    for (const server of this.servers) server.closeAllConnections?.();
  }
}
