/**
 * The master's operations side (issue 10): the HTTP status server (/livez, /readyz, /status)
 * and what it needs to know about the workers (their reports, restarts, last exits).
 * master.ts loads this folder only when `options.status` is set, so a master without it has
 * neither the code nor the server in memory.
 *
 * It observes the workers through the launcher (a decorator that sees every fork) and their
 * channels (the `egg-clutch:report` messages, which routing drops for everyone else); the
 * master calls it at a few points: ready, close begins, each exception check.
 */
import http from 'node:http';
import { observeLauncher } from './observe.js';
import type { AddressInfo } from 'node:net';
import type { Launcher, WorkerHandle } from '../launcher/types.js';
import type { Logger } from '../logger.js';
import type { StatusOptions } from '../options.js';
import type { WorkerRegistry } from '../registry.js';
import { isWorkerReport, type WorkerReport } from '../worker/report.js';
import { AppMetrics, managerMetrics, ManagerCounters } from './metrics.js';
import { exposition } from './metrics_aggregate.js';
import {
  agentState, Liveness, masterState, readiness, reportFigures, workerState,
  type ClusterStatus, type ExitInfo, type Verdict, type WorkerStatus,
} from './state.js';

export type { ClusterStatus } from './state.js';

/** What the master shows the ops side: read live. */
export interface OpsView {
  readonly pid: number;
  /** The master's start (ms). */
  readonly startTime: number;
  readonly registry: WorkerRegistry;
  readonly status: StatusOptions;
  readonly logger: Logger;
  /** The exception check runs in production only; elsewhere the ops side runs its own. */
  readonly production: boolean;
  /** egg-ready was sent. */
  started(): boolean;
  /** The exception check's agent count (the lifecycle decides: D21). */
  agentPresent(): 0 | 1;
}

/** The calls master.ts makes. */
export interface OpsHooks {
  /** Wrap the launcher so every fork is seen. */
  observe(launcher: Launcher): Launcher;
  /** Start the status server; resolves with where it listens. */
  listen(): Promise<{ host: string; port: number }>;
  /** egg-ready was sent. */
  ready(): void;
  /** A close signal arrived (or close() / a fatal error): readiness is 503 from now on. */
  closeBegins(): void;
  /** One exception check of the master (production). */
  exceptionCheck(count: { agent: number; worker: number }): void;
  status(): ClusterStatus;
  /** The master exits: close the server, stop the timers. */
  dispose(): void;
}

/** Every second: the no-listener clock of /livez. Every 10 s outside production: the agent check. */
const SAMPLE_MS = 1000;
const CHECK_MS = 10_000;

export function createOps(view: OpsView): OpsHooks {
  return new Ops(view);
}

class Ops implements OpsHooks {
  readonly #liveness = new Liveness();
  readonly #reports = new WeakMap<WorkerHandle, WorkerReport>();
  /** Per app slot: workers that exited in it, and how the last one did. */
  readonly #slots = new Map<number, { exits: number; lastExit: ExitInfo }>();
  #agentForks = 0;
  #agentLastExit: ExitInfo | null = null;
  #closing = false;
  #server: http.Server | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #appMetrics = new AppMetrics();
  readonly #counters: ManagerCounters;

  constructor(private readonly view: OpsView) {
    this.#counters = new ManagerCounters(view.registry, () => this.#closing);
    const sampler = setInterval(() => this.#sample(), SAMPLE_MS);
    sampler.unref();
    this.#timers.push(sampler);
  }

  observe(launcher: Launcher): Launcher {
    return observeLauncher(launcher, {
      onAgent: agent => {
        this.#agentForks++;
        this.#counters.trackAgent(agent);
        agent.once('exit', (code, signal) => {
          this.#agentLastExit = exitInfo(code, signal);
        });
      },
      onApp: handle => this.#onAppFork(handle),
    });
  }

  #onAppFork(handle: WorkerHandle): void {
    this.#appMetrics.track(handle);
    this.#counters.trackApp(handle);
    handle.on('message', (message: unknown) => {
      if (isWorkerReport(message)) this.#reports.set(handle, message.data);
    });
    // attached before the master's own exit listener: its registry entry (the slot) is still there
    handle.once('exit', (code, signal) => {
      const entry = this.view.registry.app(handle);
      if (!entry) return;
      const previous = this.#slots.get(entry.slot);
      this.#slots.set(entry.slot, { exits: (previous?.exits ?? 0) + 1, lastExit: exitInfo(code, signal) });
    });
  }

  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.view.status;
    const server = http.createServer((req, res) => this.#handle(req, res));
    // probes are short: a slow or idle client does not hold a socket for long
    server.headersTimeout = 5000;
    server.requestTimeout = 5000;
    server.keepAliveTimeout = 5000;
    server.unref();
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        server.on('error', err => this.view.logger.error('[master] status server error: %s', err.message));
        const address = server.address() as AddressInfo;
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  ready(): void {
    this.#counters.startDurationMs ??= Date.now() - this.view.startTime;
    this.#liveness.started();
    if (!this.view.production) {
      // the master's exception check runs in production only: the same count, for /livez
      const check = setInterval(() => {
        this.exceptionCheck({ agent: this.view.agentPresent(), worker: this.view.registry.apps.size });
      }, CHECK_MS);
      check.unref();
      this.#timers.push(check);
    }
  }

  closeBegins(): void {
    this.#closing = true;
  }

  exceptionCheck(count: { agent: number; worker: number }): void {
    this.#liveness.exceptionCheck(count);
  }

  #sample(): void {
    this.#liveness.observe(this.view.registry.listeningWorkerIds().length);
  }

  livez(): Verdict {
    this.#sample();
    return this.#liveness.verdict(this.#closing);
  }

  readyz(): Verdict {
    return readiness({
      started: this.view.started(), closing: this.#closing, listening: this.view.registry.listeningWorkerIds().length,
    });
  }

  status(): ClusterStatus {
    const now = Date.now();
    const { registry } = this.view;
    const closing = this.#closing;
    const agent = registry.agent;
    const workers: WorkerStatus[] = [];
    for (const entry of registry.apps.values()) {
      const { handle } = entry;
      const slot = this.#slots.get(entry.slot);
      workers.push({
        id: handle.id,
        pid: handle.workerId,
        state: workerState(entry, closing),
        uptimeMs: now - handle.startTime,
        restarts: slot?.exits ?? 0,
        lastExit: slot?.lastExit ?? null,
        ...reportFigures(this.#reports.get(handle)),
      });
    }
    workers.sort((a, b) => a.id - b.id);
    return {
      master: { pid: this.view.pid, uptimeMs: now - this.view.startTime, state: masterState({ started: this.view.started(), closing }) },
      agent: {
        pid: agent?.workerId ?? null,
        state: agentState(agent && { alive: agent.isAlive, started: registry.agentStarted }, closing),
        uptimeMs: agent ? now - agent.startTime : null,
        restarts: Math.max(0, this.#agentForks - 1),
        lastExit: this.#agentLastExit,
      },
      workers,
    };
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'only GET and HEAD\n', { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/livez':
      case '/readyz': {
        const verdict = path === '/livez' ? this.livez() : this.readyz();
        send(res, verdict.ok ? 200 : 503, 'text/plain', `${verdict.reason}\n`);
        return;
      }
      case '/status':
        send(res, 200, 'application/json', `${JSON.stringify(this.status())}\n`);
        return;
      case '/metrics':
        this.#appMetrics.collect(handle => this.#asked(handle)).then(collection => {
          const own = managerMetrics(this.status(), this.#counters, collection, this.#appMetrics.departedWorkers);
          send(res, 200, 'text/plain', exposition([...own, ...collection.metrics]), {}, 'version=0.0.4');
        }, (err: Error) => send(res, 500, 'text/plain', `metrics collection failed: ${err.message}\n`));
        return;
      default:
        send(res, 404, 'text/plain', 'not found: GET /livez, /readyz, /status or /metrics\n');
    }
  }

  /** /metrics asks the app workers that have listened (a booting one served nothing yet). */
  #asked(handle: WorkerHandle): boolean {
    const entry = this.view.registry.app(handle);
    return entry !== undefined && entry.state !== 'starting';
  }

  dispose(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.length = 0;
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.close();
    server.closeAllConnections?.();
  }
}

function exitInfo(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
  return { code, signal, at: new Date().toISOString() };
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}, version?: string): void {
  res.writeHead(status, {
    'content-type': `${type}; ${version ? `${version}; ` : ''}charset=utf-8`,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}
