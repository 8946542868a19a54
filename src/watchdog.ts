/**
 * The watchdog's and the memory limit's decisions (issue 10), pure as lifecycle.ts: events in
 * (a worker listens, reports, leaves; the clock ticks), actions out (replace this worker
 * because it is hung / too big). The master-side module (src/ops/watchdog.ts) feeds it the
 * workers' reports and applies the actions; unit tests drive it with a fake clock.
 *
 * The rules, and why:
 * - Each report is sent from a timer of the worker's event loop every `intervalMs`: its
 *   arrival proves the loop turns. A worker is watched from the moment it listens (before,
 *   startTimeout covers it).
 * - Hung: no report for `timeoutMs + intervalMs` since the last one (the next report was due
 *   `intervalMs` after the last and is `timeoutMs` late). So detection comes within the timeout
 *   plus one heartbeat, and a loop delayed by less than the timeout is never taken for hung.
 * - Memory: a worker whose sample is above `maxMemory` for `strikes` (3) reports in a row is
 *   replaced; one memory replacement at a time, none while a reload runs (a reload replaces it
 *   anyway); its strikes start again after.
 */

export interface WatchdogConfig {
  /** ms; 0 = no hang detection. */
  readonly timeoutMs: number;
  /** bytes; 0 = no memory limit. */
  readonly maxMemory: number;
  /** The workers' report interval (ms). */
  readonly intervalMs: number;
  /** Samples above maxMemory in a row before a replacement. Default 3. */
  readonly strikes?: number;
}

export type WatchdogAction<K> =
  | { type: 'hung'; key: K; silentMs: number }
  | { type: 'memory'; key: K; bytes: number; samples: number[] };

interface Watched {
  lastSeen: number;
  over: number[];
}

export class WatchdogPolicy<K> {
  readonly #watched = new Map<K, Watched>();
  /** The worker whose memory replacement runs (one at a time). */
  #memoryReplacing: K | undefined;
  readonly #strikes: number;

  constructor(readonly config: WatchdogConfig) {
    this.#strikes = config.strikes ?? 3;
  }

  /** The silence after which a worker is hung (ms); Infinity when hang detection is off. */
  get hungAfterMs(): number {
    return this.config.timeoutMs > 0 ? this.config.timeoutMs + this.config.intervalMs : Infinity;
  }

  /** It listens: watched from now. */
  watch(key: K, now: number): void {
    if (!this.#watched.has(key)) this.#watched.set(key, { lastSeen: now, over: [] });
  }

  /** It exits, or the master stops it: no longer watched. A memory replacement of it is over. */
  forget(key: K): void {
    this.#watched.delete(key);
  }

  isWatched(key: K): boolean {
    return this.#watched.has(key);
  }

  /** A memory replacement is running (its old worker still serves). */
  get memoryReplacing(): K | undefined {
    return this.#memoryReplacing;
  }

  /** The memory replacement of `key` ended (the old one stopped, or its replacement failed to start). */
  memoryDone(key: K): void {
    if (this.#memoryReplacing === key) this.#memoryReplacing = undefined;
  }

  /**
   * One report: the loop turns. `bytes` is what maxMemory limits. `busy`: a reload runs (no
   * memory replacement now). Returns the memory replacement to start, if any.
   */
  report(key: K, now: number, bytes: number, busy = false): WatchdogAction<K> | undefined {
    const w = this.#watched.get(key);
    if (!w) return undefined;
    w.lastSeen = now;
    const { maxMemory } = this.config;
    if (maxMemory <= 0) return undefined;
    if (bytes > maxMemory) w.over.push(bytes);
    else w.over.length = 0;
    if (w.over.length > this.#strikes) w.over.shift();
    if (w.over.length < this.#strikes || busy || this.#memoryReplacing !== undefined) return undefined;
    const samples = [...w.over];
    w.over.length = 0;
    this.#memoryReplacing = key;
    return { type: 'memory', key, bytes, samples };
  }

  /** The clock: every watched worker silent for too long is hung (returned once, then forgotten). */
  check(now: number): WatchdogAction<K>[] {
    const limit = this.hungAfterMs;
    const actions: WatchdogAction<K>[] = [];
    if (limit === Infinity) return actions;
    for (const [key, w] of this.#watched) {
      const silentMs = now - w.lastSeen;
      if (silentMs > limit) {
        this.#watched.delete(key);
        if (this.#memoryReplacing === key) this.#memoryReplacing = undefined;
        actions.push({ type: 'hung', key, silentMs });
      }
    }
    return actions;
  }
}

const MiB = 1024 * 1024;

export interface HeapFit {
  /** The container's memory limit (bytes). */
  limit: number;
  workers: number;
  /** Each worker's (and the agent's) V8 heap limit (bytes). */
  heapLimit: number;
  /** The master's own memory (bytes). */
  master: number;
}

/**
 * When `workers` app workers and the agent, each up to its V8 heap limit, plus the master
 * cannot fit in the cgroup limit: the largest --max-old-space-size (MiB) that would, leaving
 * each process 1/8 of its share for what is not old space (code, stacks, buffers, young gen).
 * Undefined when they fit.
 */
export function heapAdvice(fit: HeapFit): number | undefined {
  const processes = fit.workers + 1;
  if (processes * fit.heapLimit + fit.master <= fit.limit) return undefined;
  const share = (fit.limit - fit.master) / processes;
  return Math.max(0, Math.floor((share * 7) / 8 / MiB));
}

/** --max-old-space-size (MiB) from execArgv then NODE_OPTIONS (the last one wins, as node does). */
export function maxOldSpaceMiB(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  let found: number | undefined;
  for (const arg of [...nodeOptions.split(/\s+/), ...execArgv]) {
    const m = /^--max[-_]old[-_]space[-_]size=(\d+)$/.exec(arg);
    if (m) found = Number(m[1]);
  }
  return found;
}

/** cgroup v2 memory.max, else v1 memory.limit_in_bytes; undefined when unlimited or unknown. */
export function cgroupMemoryLimit(read: (file: string) => string | undefined): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    const text = read(file)?.trim();
    if (!text) continue;
    if (text === 'max') return undefined;
    const n = Number(text);
    // v1 reports "unlimited" as a huge page-aligned number
    if (Number.isSafeInteger(n) && n > 0 && n < 2 ** 60) return n;
    return undefined;
  }
  return undefined;
}
