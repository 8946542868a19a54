/**
 * The app worker's side of `GET /metrics` (issue 10): on the master's request it answers with
 * `register.getMetricsAsJSON()` of the prom-client the app resolves from its `baseDir` (the
 * same module instance the app required, so the same default registry). The app needs no
 * AggregatorRegistry of its own. An app without prom-client answers `metrics: null`.
 *
 * The request and the answer are internal actions (`egg-clutch:*`): the master's routing
 * drops them, so they never reach the agent or another worker's user code.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

/** Master -> app worker: "send your app's metrics", `data: { seq }`. */
export const METRICS_REQUEST_ACTION = 'egg-clutch:metrics-request';
/** App worker -> master: the answer, `data: MetricsAnswer`. */
export const METRICS_ANSWER_ACTION = 'egg-clutch:metrics';

/** What the worker sends: `seq` echoes the request; `metrics` null when the app has no prom-client. */
export interface MetricsAnswer {
  seq: number;
  metrics: unknown[] | null;
  error?: string;
}

/** Is `message` the master's request for this worker's metrics? */
/** Is `message` a worker's answer? */
export function isMetricsAnswer(message: unknown): message is { action: string; data: MetricsAnswer } {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { action?: unknown; data?: { seq?: unknown } };
  return m.action === METRICS_ANSWER_ACTION && typeof m.data === 'object' && m.data !== null && typeof m.data.seq === 'number';
}

export function isMetricsRequest(message: unknown): message is { action: string; data: { seq: number } } {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { action?: unknown; data?: { seq?: unknown } };
  return m.action === METRICS_REQUEST_ACTION && typeof m.data === 'object' && m.data !== null && typeof m.data.seq === 'number';
}

interface PromRegistry {
  getMetricsAsJSON(): Promise<unknown[]> | unknown[];
}

/**
 * The default registry of the prom-client installed for the app at `baseDir`, or undefined.
 * Resolved on the first request only: a worker whose metrics are never scraped loads nothing.
 */
export function resolvePromRegistry(baseDir: string): PromRegistry | undefined {
  let resolved: string;
  try {
    resolved = createRequire(path.join(baseDir, 'package.json')).resolve('prom-client');
  } catch {
    return undefined;
  }
  const mod = require(resolved) as { register?: PromRegistry };
  return mod.register && typeof mod.register.getMetricsAsJSON === 'function' ? mod.register : undefined;
}

export class MetricsResponder {
  #registry: PromRegistry | null | undefined;
  /** The highest request number received. */
  #seq = 0;

  constructor(
    private readonly baseDir: string,
    private readonly send: (message: object) => void,
    private readonly resolve: (baseDir: string) => PromRegistry | undefined = resolvePromRegistry,
  ) {}

  /** Handle a message from the master; true when it was a metrics request. */
  onMessage(message: unknown): boolean {
    if (!isMetricsRequest(message)) return false;
    this.#seq = Math.max(this.#seq, message.data.seq);
    void this.answer(message.data.seq);
    return true;
  }

  /**
   * The worker is closing (its requests drained): send its metrics once more, unasked, so the
   * master carries forward what it counted since the last scrape. Numbered between the last
   * request received and the next: newer than any answer sent, older than any to come. Only
   * after a scrape asked once (the app's prom-client is known then).
   */
  async final(): Promise<void> {
    if (!this.#registry) return;
    await this.answer(this.#seq + 0.5);
  }

  async answer(seq: number): Promise<void> {
    const data: MetricsAnswer = { seq, metrics: null };
    try {
      if (this.#registry === undefined) this.#registry = this.resolve(this.baseDir) ?? null;
      if (this.#registry) data.metrics = await this.#registry.getMetricsAsJSON();
    } catch (err) {
      data.error = err instanceof Error ? err.message : String(err);
    }
    this.send({ action: METRICS_ANSWER_ACTION, data });
  }
}
