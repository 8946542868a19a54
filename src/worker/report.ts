/**
 * The app worker's report: once per interval (1 s), one small IPC message with what only the
 * worker can measure (memory, event-loop utilization and delay, requests). The master's
 * status server shows the latest one per worker (src/ops/).
 *
 * Built to be reused: each report is sent from a timer of the worker's own event loop, so its
 * arrival proves that loop turns (a watchdog can take "no report for `timeout`" as hung, with
 * `seq` to see gaps); `rss` every second is what a memory limit samples; `requests` and the
 * CPU times are cumulative counters for the life of the worker (a metrics endpoint can carry
 * them forward when the worker is replaced), the rest are gauges over the last interval.
 */
import type http from 'node:http';
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { REPORT_ACTION } from '../protocol.js';

/** The report's wire format version: a reader ignores a version it does not know. */
export const REPORT_VERSION = 1;
export const REPORT_INTERVAL_MS = 1000;
const DELAY_RESOLUTION_MS = 50;

export interface WorkerReport {
  v: typeof REPORT_VERSION;
  /** 1, 2, 3… per worker: a gap is a lost or late report. */
  seq: number;
  /** Worker clock (ms since epoch) when it was taken. */
  ts: number;
  /** Bytes. In worker_threads mode rss is the whole process (threads share it). */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** Event-loop utilization over the last interval, 0..1. */
  elu: number;
  /** Event-loop delay over the last interval, ms (99th percentile and max). */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Cumulative µs of CPU (process.cpuUsage; the whole process in threads mode). */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** HTTP requests received since the worker started (counter). */
  requests: number;
  /** Requests whose response has not closed yet (gauge). */
  inFlight: number;
}

/** Is `message` a report the master can read? */
export function isWorkerReport(message: unknown): message is { action: typeof REPORT_ACTION; data: WorkerReport } {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { action?: unknown; data?: { v?: unknown } };
  return m.action === REPORT_ACTION && typeof m.data === 'object' && m.data !== null && m.data.v === REPORT_VERSION;
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export class WorkerReporter {
  #seq = 0;
  #requests = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #elu: EventLoopUtilization | undefined;
  #delay: IntervalHistogram | undefined;

  constructor(
    private readonly send: (message: object) => void,
    private readonly intervalMs = REPORT_INTERVAL_MS,
  ) {}

  /** Count the requests of this server (requests, inFlight). */
  track(server: http.Server): void {
    server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      this.#requests++;
      this.#inFlight++;
      res.once('close', () => {
        this.#inFlight--;
      });
    });
  }

  /** Report now and every interval; the timer never keeps the worker alive. */
  start(): void {
    if (this.#timer) return;
    // a 50 ms tick: blocks of 50 ms and more show. Measured on an idle worker (bench/report_cost.js):
    // the report loop costs ~0.35% of a core with it, ~0.6% with a 20 ms tick
    this.#delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
    this.#delay.enable();
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => this.send({ action: REPORT_ACTION, data: this.collect() }), this.intervalMs);
    this.#timer.unref();
  }

  /** Event-loop delay samples taken since the last collect(). */
  get delaySamples(): number {
    return this.#delay?.count ?? 0;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#delay?.disable();
  }

  /** The figures since the last collect() (gauges) and since start (counters). */
  collect(): WorkerReport {
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    let elu = 0;
    if (this.#elu) {
      const now = performance.eventLoopUtilization();
      elu = performance.eventLoopUtilization(now, this.#elu).utilization;
      this.#elu = now;
    }
    let p99 = 0;
    let max = 0;
    const delay = this.#delay;
    if (delay && delay.count > 0) {
      // the histogram holds the time between two ticks of its timer: the delay is what exceeds the tick
      p99 = Math.max(0, delay.percentile(99) / 1e6 - DELAY_RESOLUTION_MS);
      max = Math.max(0, delay.max / 1e6 - DELAY_RESOLUTION_MS);
      delay.reset();
    }
    return {
      v: REPORT_VERSION,
      seq: ++this.#seq,
      ts: Date.now(),
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      elu: round(elu, 4),
      eventLoopDelayP99Ms: round(p99, 2),
      eventLoopDelayMaxMs: round(max, 2),
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      requests: this.#requests,
      inFlight: this.#inFlight,
    };
  }
}
