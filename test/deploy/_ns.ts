/**
 * Runs an egg-clutch master inside a new PID namespace, as a container would:
 *   unshare --pid --fork --mount-proc [/usr/bin/tini --] node test/fixtures/start/start.js '<options>'
 * (root only). The namespace's PID 1 is the master itself (`init: 'none'`) or tini. Its IPC
 * channel to this process passes through unshare (and tini) untouched, so `egg-ready` arrives
 * as with test/helpers/run_cluster.ts. Pids in the master's log are the namespace's own
 * (the master is 1 without an init); host pids are read from /proc.
 *
 * Cleanup: SIGKILL to the namespace's PID 1 kills every process of the namespace (the kernel
 * does it); then no process on the host may still be in that PID namespace.
 */
import fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { ROOT, START_SCRIPT, type ExitInfo, type IpcMessage } from '../helpers/run_cluster.js';

export const TINI = '/usr/bin/tini';

/** Why namespaced runs cannot work here, or undefined when they can. */
export function unshareUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `PID namespaces are Linux only (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return `unshare --pid needs root (uid ${process.getuid()}); CI runs as root`;
  }
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8' });
  if (probe.error) return `unshare not runnable: ${probe.error.message} (Debian: util-linux)`;
  if (probe.status !== 0) return `unshare --pid --fork --mount-proc is not permitted here: ${probe.stderr.trim()}`;
  return undefined;
}

export function tiniUnavailable(): string | undefined {
  return fs.existsSync(TINI) ? undefined : `${TINI} missing: apt-get install -y tini`;
}

/** State letter of a process from /proc/<pid>/stat (R, S, Z, ...), undefined when it is gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

export function parentPid(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function pidNs(pid: number | string): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Polls process state (the only polling allowed) until `check` returns a value. */
export async function pollProc<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

const runs = new Set<NsRun>();

export class NsRun {
  readonly child: ChildProcess;
  /** The unshare process (host pid). */
  readonly pid: number;
  output = '';
  readonly messages: IpcMessage[] = [];
  exitInfo: ExitInfo | undefined;
  /** Host pid of the namespace's PID 1, and its PID namespace (`pid:[inode]`), once seen. */
  initPid: number | undefined;
  ns: string | undefined;
  #events = new EventEmitter();

  constructor(options: Record<string, unknown>, opts: { init: 'none' | 'tini'; env?: Record<string, string> }) {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (key.startsWith('EGG_') || key === 'NODE_ENV' || key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS') continue;
      env[key] = value;
    }
    Object.assign(env, opts.env);
    const init = opts.init === 'tini' ? [TINI, '--'] : [];
    this.child = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...init, process.execPath, START_SCRIPT, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env, cwd: ROOT,
    });
    if (!this.child.pid) throw new Error('spawn unshare failed');
    this.pid = this.child.pid;
    runs.add(this);
    for (const name of ['stdout', 'stderr'] as const) {
      this.child[name]!.setEncoding('utf8');
      this.child[name]!.on('data', (chunk: string) => {
        this.output += chunk;
        if (process.env.EGG_CLUTCH_IT_LOG) fs.appendFileSync(process.env.EGG_CLUTCH_IT_LOG, chunk);
        this.#events.emit('change');
      });
    }
    this.child.on('message', (msg: IpcMessage) => {
      this.messages.push(msg);
      this.#events.emit('change');
    });
    this.child.on('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      this.#events.emit('change');
    });
    this.child.on('error', () => {});
  }

  context(): string {
    return `--- output of the namespaced master (unshare ${this.pid}) ---\n${this.output.split('\n').slice(-40).join('\n')}`;
  }

  #wait<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#events.removeListener('change', test);
      };
      const test = (): void => {
        const value = check();
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.exitInfo && what !== 'exit') {
          done();
          reject(new Error(`unshare exited ${JSON.stringify(this.exitInfo)} while waiting for ${what}\n${this.context()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what}\n${this.context()}`));
      }, timeoutMs);
      this.#events.on('change', test);
      test();
    });
  }

  waitForMessage(action: string, timeoutMs = 15_000): Promise<IpcMessage> {
    return this.#wait(`IPC ${action}`, timeoutMs, () => this.messages.find(m => m.action === action));
  }

  waitForOutput(re: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    return this.#wait(String(re), timeoutMs, () => re.exec(this.output) ?? undefined);
  }

  waitForExit(timeoutMs = 20_000): Promise<ExitInfo> {
    return this.#wait('exit', timeoutMs, () => this.exitInfo);
  }

  /** The host pid of the namespace's PID 1: unshare's only child. */
  async init(): Promise<number> {
    if (this.initPid) return this.initPid;
    const pid = await pollProc('the namespace PID 1', 5000, () => {
      try {
        const children = fs.readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        return children.length === 1 && pidNs(children[0]!) !== pidNs(this.pid) ? children[0] : undefined;
      } catch {
        return undefined;
      }
    });
    this.initPid = pid;
    this.ns = pidNs(pid);
    return pid;
  }

  /** Host pids of every process in the namespace now. */
  members(): number[] {
    if (!this.ns) return [];
    return fs.readdirSync('/proc').filter(d => /^\d+$/.test(d)).map(Number).filter(pid => pidNs(pid) === this.ns);
  }

  /** Host pids of the namespace's processes whose command line contains `text`. */
  find(text: string): number[] {
    return this.members().filter(pid => cmdline(pid).includes(text));
  }

  /** Kill the namespace (SIGKILL to its PID 1) if still running; then nothing may be left in it. */
  async cleanup(): Promise<void> {
    runs.delete(this);
    if (!this.exitInfo) {
      await this.init().catch(() => undefined);
      if (this.initPid) {
        try {
          process.kill(this.initPid, 'SIGKILL');
        } catch {
          // gone
        }
      } else {
        this.child.kill('SIGKILL');
      }
      await this.waitForExit(10_000);
    }
    if (!this.ns) return;
    await pollProc(`no process left in ${this.ns}`, 5000, () => (this.members().length === 0 ? true : undefined)).catch(() => {
      const left = this.members();
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      throw new Error(`LEAK: processes left in the namespace ${this.ns}: ${left.map(p => `${p} ${cmdline(p)}`).join(', ')}`);
    });
  }
}

/** Every NsRun a test started is cleaned up after it (call from afterEach). */
export async function cleanupNsRuns(): Promise<void> {
  const errors: Error[] = [];
  for (const run of [...runs]) await run.cleanup().catch((err: Error) => errors.push(err));
  if (errors.length) throw new AggregateError(errors, errors.map(e => e.message).join('\n'));
}
