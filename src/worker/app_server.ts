import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { ServerResponse } from 'node:http';
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
    return https.createServer(secure, handler);
  }
  return http.createServer(handler);
}

/**
 * Tracks requests in flight so that a close can drain: stop accepting, let in-flight
 * requests finish, close idle keep-alive sockets, and answer `Connection: close` on busy
 * ones (egg-cluster never closed the server: defect D4).
 */
export class Drainer {
  readonly #inflight = new Set<ServerResponse>();
  #closing = false;
  #idle: (() => void) | undefined;

  /**
   * `barrier` resolves once the master has seen this worker stop accepting (see
   * DRAIN_BARRIER_ACTION): connections already handed over are then all here to drain.
   */
  constructor(private readonly servers: http.Server[], private readonly barrier: () => Promise<void> = () => Promise.resolve()) {
    for (const server of servers) {
      server.on('request', (_req, res: ServerResponse) => {
        if (this.#closing) res.shouldKeepAlive = false;
        this.#inflight.add(res);
        res.once('close', () => {
          this.#inflight.delete(res);
          if (!this.#inflight.size) this.#idle?.();
          // a keep-alive socket that just went idle during a close is closed at once
          if (this.#closing) server.closeIdleConnections?.();
        });
      });
    }
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Resolves when every request has ended, or at `timeoutMs` (then the rest are cut). */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    for (const res of this.#inflight) if (!res.headersSent) res.shouldKeepAlive = false;
    const deadline = Date.now() + timeoutMs;
    const closed = this.servers.filter(s => s.listening).map(server => new Promise<void>(resolve => {
      server.close(() => resolve());
      server.closeIdleConnections?.();
    }));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs); });
    // connections handed over before the barrier are served (with Connection: close), not cut
    await Promise.race([this.barrier(), timedOut]);
    if (Date.now() < deadline) await Promise.race([Promise.all(closed), timedOut]);
    // sticky connections reach the server through emit('connection'), which server.close()
    // does not count: wait for the requests themselves too
    if (this.#inflight.size && Date.now() < deadline) {
      await Promise.race([new Promise<void>(resolve => { this.#idle = resolve; }), timedOut]);
    }
    clearTimeout(timer);
    for (const server of this.servers) server.closeAllConnections?.();
  }
}
