/**
 * Integration harness: runs a real egg-clutch master as a child process with an IPC channel
 * (as egg-scripts and egg-mock do), records its output, its IPC messages and every pid it
 * starts, and makes sure none of them outlives the test.
 *
 * Nothing here sleeps for a fixed time: everything waits on an IPC message, an output line or
 * a process exit, each with a timeout. The only polling is on process state (`assertGone`).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { fork, type ChildProcess } from 'node:child_process';
import { afterEach } from 'node:test';
import { detectPort } from 'detect-port';

export const ROOT = path.resolve(__dirname, '..', '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const FRAMEWORK = path.join(FIXTURES, 'framework');
export const START_SCRIPT = path.join(FIXTURES, 'start', 'start.js');
export const appDir = (name: string): string => path.join(FIXTURES, 'apps', name);

export interface IpcMessage {
  action: string;
  data?: any;
  to?: string;
  from?: string;
  [key: string]: unknown;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Extra environment for the master (inherited by the workers); `undefined` deletes a key. */
  env?: Record<string, string | undefined>;
  /** The start script; default test/fixtures/start/start.js. */
  script?: string;
  cwd?: string;
  /** Another Node.js binary for the master (and so its workers): the runtime tests. */
  execPath?: string;
  /** The master's execArgv (the workers inherit it): preloads such as `--import x`. */
  execArgv?: string[];
  /** The master leads its own process group (systemd, an init): `process.kill(-run.pid, sig)` signals all of it. */
  detached?: boolean;
}

type Stream = 'stdout' | 'stderr' | 'all';

const LOG_PID = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ (\d+) /gm;
const WORKER_START = /\b(agent|app)_worker#(\d+):(\d+) start\b/g;

/** Whether a process runs: exists and is not a zombie (PID 1 here does not reap orphans). */
export { isPidAlive as isAlive } from '../../src/launcher/terminate.js';
import { isPidAlive as isAlive } from '../../src/launcher/terminate.js';

/** Polls process state until every pid is gone; rejects with the survivors at the deadline. */
export async function assertGone(pids: Iterable<number>, timeoutMs: number): Promise<number> {
  const list = [...new Set(pids)];
  const start = Date.now();
  let alive = list.filter(isAlive);
  while (alive.length && Date.now() - start < timeoutMs) {
    await new Promise(resolve => setTimeout(resolve, 20));
    alive = alive.filter(isAlive);
  }
  if (alive.length) {
    throw new Error(`processes still alive after ${timeoutMs}ms: ${alive.map(describePid).join(', ')}`);
  }
  return Date.now() - start;
}

function describePid(pid: number): string {
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return `${pid} (${cmd.slice(1, 2).join(' ') || '?'})`;
  } catch {
    return String(pid);
  }
}

/** The argv of a running process, from /proc. */
export function readCmdline(pid: number): string[] {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(s => s !== '');
}

/** A free TCP port: a random start in 20000-31999 (below Linux's ephemeral range) checked by detect-port. */
export function freePort(): Promise<number> {
  return detectPort(20000 + Math.floor(Math.random() * 12000));
}

function withTimeout<T>(what: string, timeoutMs: number, executor: (resolve: (v: T) => void, reject: (e: Error) => void, onCleanup: (fn: () => void) => void) => void, context: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanups: Array<() => void> = [];
    const done = (): void => {
      clearTimeout(timer);
      for (const fn of cleanups.splice(0)) fn();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what}\n${context()}`));
    }, timeoutMs);
    executor(
      v => { done(); resolve(v); },
      e => { done(); reject(e); },
      fn => cleanups.push(fn),
    );
  });
}

const runs = new Set<ClusterRun>();

/** A master process started by the test, with everything it printed and sent. */
export class ClusterRun {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt = Date.now();
  stdout = '';
  stderr = '';
  /** stdout and stderr interleaved in arrival order. */
  output = '';
  readonly messages: IpcMessage[] = [];
  /** Agent pids in start order, and app worker pids in start order (from the master's log). */
  readonly agentPids: number[] = [];
  readonly appPids: number[] = [];
  /** Every pid seen: the master, its workers, any pid the test tracked. */
  readonly pids = new Set<number>();
  exitInfo: ExitInfo | undefined;
  exitedAt: number | undefined;
  /** stdio closed: the master and every process that inherited its pipes are gone. */
  closed = false;
  #consumed = new Set<IpcMessage>();
  /** Pids the test handed to track(): always ours to kill. */
  #tracked = new Set<number>();
  readonly #threads: boolean;
  #events = new EventEmitter();
  #partial = { stdout: '', stderr: '' };

  constructor(readonly options: Record<string, unknown>, runOptions: RunOptions = {}) {
    this.#threads = options.startMode === 'worker_threads';
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      // the master decides its env from these: start from a clean slate
      if (key.startsWith('EGG_') || key === 'NODE_ENV' || key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS') continue;
      env[key] = value;
    }
    for (const [key, value] of Object.entries(runOptions.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    this.child = fork(runOptions.script ?? START_SCRIPT, [JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env,
      cwd: runOptions.cwd ?? ROOT,
      // not the test runner's `--import tsx`: the master runs the built lib/
      execArgv: runOptions.execArgv ?? [],
      detached: runOptions.detached ?? false,
      ...(runOptions.execPath ? { execPath: runOptions.execPath } : {}),
    });
    if (!this.child.pid) throw new Error('fork failed');
    this.pid = this.child.pid;
    this.pids.add(this.pid);
    runs.add(this);
    for (const name of ['stdout', 'stderr'] as const) {
      this.child[name]!.setEncoding('utf8');
      this.child[name]!.on('data', (chunk: string) => this.#onData(name, chunk));
    }
    this.child.on('message', (msg: IpcMessage) => {
      this.messages.push(msg);
      this.#events.emit('change');
    });
    this.child.on('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      this.exitedAt = Date.now();
      this.#events.emit('change');
    });
    this.child.on('close', () => {
      this.closed = true;
      this.#events.emit('change');
    });
    // a master that died can't be written to; don't let an EPIPE on IPC crash the test
    this.child.on('error', () => {});
  }

  #onData(name: 'stdout' | 'stderr', chunk: string): void {
    this[name] += chunk;
    this.output += chunk;
    // EGG_CLUTCH_IT_LOG=<file>: append every master's output there (the test runner hides stderr)
    if (process.env.EGG_CLUTCH_IT_LOG) fs.appendFileSync(process.env.EGG_CLUTCH_IT_LOG, chunk);
    // track pids from complete lines only
    const text = this.#partial[name] + chunk;
    const cut = text.lastIndexOf('\n') + 1;
    this.#partial[name] = text.slice(cut);
    this.#scanPids(text.slice(0, cut));
    this.#events.emit('change');
  }

  #scanPids(lines: string): void {
    for (const m of lines.matchAll(LOG_PID)) this.pids.add(Number(m[1]));
    // worker_threads: `agent_worker#1:<n>` carries a thread id, not a pid; the only process
    // of a thread cluster is the master
    if (this.#threads) return;
    for (const m of lines.matchAll(WORKER_START)) {
      const pid = Number(m[3]);
      this.pids.add(pid);
      const list = m[1] === 'agent' ? this.agentPids : this.appPids;
      if (!list.includes(pid)) list.push(pid);
    }
  }

  /** Record a pid learned elsewhere (an HTTP response), so the leak check covers it. */
  track(pid: number): number {
    if (Number.isInteger(pid) && pid > 1) {
      this.pids.add(pid);
      this.#tracked.add(pid);
    }
    return pid;
  }

  /**
   * Whether the leak check may SIGKILL this pid: tracked by the test, or a process running
   * this package's code (a worker entry, a start script). Never PID 1 or the test itself: a
   * pid parsed from a log line could be anything.
   */
  ownsPid(pid: number): boolean {
    if (pid <= 1 || pid === process.pid || pid === process.ppid) return false;
    if (this.#tracked.has(pid) || pid === this.pid) return true;
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(ROOT);
    } catch {
      return false;
    }
  }

  /** Every recorded pid except the master's (and never PID 1 or the test process). */
  get workerPids(): number[] {
    return [...this.pids].filter(pid => pid !== this.pid && pid > 1 && pid !== process.pid);
  }

  get exited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** The tail of the output, for assertion messages. */
  context(lines = 40): string {
    const tail = this.output.split('\n').slice(-lines).join('\n');
    return `--- master ${this.pid} output (last ${lines} lines) ---\n${tail}\n--- messages: ${JSON.stringify(this.messages.map(m => m.action))}`;
  }

  #wait<T>(what: string, timeoutMs: number, check: () => T | undefined, failIf?: () => string | undefined): Promise<T> {
    return withTimeout<T>(what, timeoutMs, (resolve, reject, onCleanup) => {
      const test = (): void => {
        const value = check();
        if (value !== undefined) return resolve(value);
        const failure = failIf?.();
        if (failure) reject(new Error(`${failure} while waiting for ${what}\n${this.context()}`));
      };
      this.#events.on('change', test);
      onCleanup(() => this.#events.removeListener('change', test));
      test();
    }, () => this.context());
  }

  /** The first not yet consumed IPC message with this action. */
  waitForMessage(action: string, timeoutMs = 10_000): Promise<IpcMessage> {
    return this.#wait(`IPC message "${action}"`, timeoutMs, () => {
      const msg = this.messages.find(m => m.action === action && !this.#consumed.has(m));
      if (msg) this.#consumed.add(msg);
      return msg;
    }, () => (this.closed ? `master ${this.pid} exited (${JSON.stringify(this.exitInfo)}) and its channel closed` : undefined));
  }

  /** Current length of a stream: pass it as `since` to only match what is printed later. */
  mark(stream: Stream = 'all'): number {
    return (stream === 'all' ? this.output : this[stream]).length;
  }

  waitForOutput(re: RegExp, timeoutMs = 10_000, opts: { stream?: Stream; since?: number } = {}): Promise<RegExpExecArray> {
    const stream = opts.stream ?? 'all';
    const since = opts.since ?? 0;
    const pattern = new RegExp(re.source, re.flags.replace('g', ''));
    return this.#wait(`${re} on ${stream}`, timeoutMs, () => {
      const text = (stream === 'all' ? this.output : this[stream]).slice(since);
      return pattern.exec(text) ?? undefined;
    }, () => (this.closed ? `master ${this.pid} exited (${JSON.stringify(this.exitInfo)}) and its output closed` : undefined));
  }

  waitForExit(timeoutMs = 15_000): Promise<ExitInfo> {
    return this.#wait(`master ${this.pid} to exit`, timeoutMs, () => this.exitInfo);
  }

  /** Resolves when the master's stdio closed: it and every process holding its pipes are gone. */
  waitForClose(timeoutMs = 15_000): Promise<true> {
    return this.#wait(`master ${this.pid} output to close`, timeoutMs, () => (this.closed ? true : undefined));
  }

  /** `egg-ready` at the parent, failing fast if the master exits first. */
  async ready(timeoutMs = 15_000): Promise<IpcMessage> {
    return this.waitForMessage('egg-ready', timeoutMs);
  }

  send(msg: object): void {
    this.child.send(msg);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.exited) this.child.kill(signal);
  }

  /**
   * End of test: a master still running is closed (SIGTERM, then SIGKILL); then every pid it
   * started must be gone within `graceMs`. Survivors are SIGKILLed and reported as a leak.
   */
  async cleanup(graceMs = 5000): Promise<void> {
    runs.delete(this);
    if (!this.exited) {
      this.kill('SIGTERM');
      try {
        await this.waitForExit(12_000);
      } catch {
        this.kill('SIGKILL');
        await this.waitForExit(5000).catch(() => undefined);
      }
    }
    try {
      await assertGone(this.workerPids, graceMs);
    } catch (err) {
      for (const pid of this.workerPids) {
        if (!isAlive(pid) || !this.ownsPid(pid)) continue;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      throw new Error(`LEAK: ${(err as Error).message} after master ${this.pid} exited ${JSON.stringify(this.exitInfo)}\n${this.context()}`);
    }
  }
}

export function runCluster(options: Record<string, unknown>, runOptions?: RunOptions): ClusterRun {
  return new ClusterRun(options, runOptions);
}

/** Options for a cluster of the fake framework serving one of test/fixtures/apps. */
export function fakeApp(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { baseDir: appDir(name), framework: FRAMEWORK, ...extra };
}

/** Registers the leak check: after each test, every cluster it started is gone, or the test fails. */
export function useLeakGuard(): void {
  afterEach(async () => {
    const errors: Error[] = [];
    for (const run of [...runs]) {
      await run.cleanup().catch((err: Error) => errors.push(err));
    }
    const [first] = errors;
    if (errors.length === 1 && first) throw first;
    if (errors.length) throw new AggregateError(errors, errors.map(e => e.message).join('\n'));
  });
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = any>(): T;
}

/**
 * A GET on a fresh connection (agent: false, Connection: close) so no keep-alive socket
 * outlives the request. `target` is an http(s) URL, or `{ socketPath, path }` for a unix
 * socket; `ca` trusts a test certificate for https; `localAddress` picks the client IP
 * (any 127.x.y.z works on Linux loopback).
 */
export function httpGet(
  target: string | { socketPath: string; path: string },
  opts: { timeoutMs?: number; ca?: string | Buffer; localAddress?: string } = {},
): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    let client: typeof http | typeof https = http;
    let base: https.RequestOptions;
    if (typeof target === 'string') {
      const url = new URL(target);
      if (url.protocol === 'https:') client = https;
      base = { hostname: url.hostname, port: url.port, path: url.pathname + url.search };
    } else {
      base = { socketPath: target.socketPath, path: target.path };
    }
    if (opts.ca) base.ca = opts.ca;
    if (opts.localAddress) base.localAddress = opts.localAddress;
    const req = client.get({ ...base, agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        json: <T>() => JSON.parse(body) as T,
      }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${JSON.stringify(target)} timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
  });
}

/** Lines of `text` that match each pattern, asserted to appear in this order; returns their offsets. */
export function indexesInOrder(text: string, patterns: Array<string | RegExp>): number[] {
  const offsets: number[] = [];
  let from = 0;
  for (const p of patterns) {
    const rest = text.slice(from);
    const i = typeof p === 'string' ? rest.indexOf(p) : rest.search(p);
    if (i < 0) {
      const anywhere = typeof p === 'string' ? text.indexOf(p) : text.search(p);
      throw new Error(`${String(p)} ${anywhere < 0 ? 'not found' : `found at ${anywhere} but not after offset ${from}`} in:\n${text}`);
    }
    offsets.push(from + i);
    from += i + 1;
  }
  return offsets;
}
