// Helpers of the compat proof (test/compat/*.test.ts): real egg apps, real tools, real processes.
// Nothing here sleeps for a fixed time: every wait is on output, IPC, exit or a polled condition,
// each with a timeout that names what it was waiting for.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { detectPort } from 'detect-port';

export const COMPAT_DIR = __dirname;
export const EGG3_APP = path.join(COMPAT_DIR, 'egg3-app');
export const EGG4_APP = path.join(COMPAT_DIR, 'egg4-app');
export const EGG4_TS_APP = path.join(COMPAT_DIR, 'egg4-ts-app');

/** Fails with a useful message unless scripts/compat-setup.sh installed egg-clutch as `dep` in `app`. */
export function assertInstalled(app: string, dep: string): void {
  const pkgFile = path.join(app, 'node_modules', dep, 'package.json');
  assert.ok(fs.existsSync(pkgFile), `${pkgFile} is missing: run \`bash scripts/compat-setup.sh\` first`);
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { name: string };
  assert.equal(pkg.name, 'egg-clutch', `${pkgFile} is ${pkg.name}, not egg-clutch: run \`bash scripts/compat-setup.sh\``);
  assert.ok(!fs.lstatSync(path.dirname(pkgFile)).isSymbolicLink(), `${path.dirname(pkgFile)} must be a copy, not a symlink`);
}

/** A local bin of an app, run the way `npx <name>` would find it. */
export function bin(app: string, name: string): string {
  const file = path.join(app, 'node_modules', '.bin', name);
  assert.ok(fs.existsSync(file), `${file} is missing: run \`bash scripts/compat-setup.sh\` first`);
  return file;
}

export async function freePort(): Promise<number> {
  return detectPort(0);
}

/**
 * An environment for the tools: no node:test markers, and a private HOME so that
 * egg-scripts' ~/logs/master-*.log and egg's production logs stay out of the real home.
 */
export function toolEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, MOCK_HOME_DIR: home, ...extra };
  for (const key of Object.keys(env)) {
    if (key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS' || key === 'NODE_ENV' || key === 'EGG_SERVER_ENV') delete env[key];
  }
  for (const [key, value] of Object.entries(extra)) env[key] = value;
  return env;
}

const homes: string[] = [];

/** A fresh HOME for one tool run; removed by removeTmpHomes() (kept when COMPAT_KEEP_TMP is set). */
export function tmpHome(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `egg-clutch-compat-${label}-`));
  homes.push(dir);
  return dir;
}

export function removeTmpHomes(): void {
  if (process.env.COMPAT_KEEP_TMP) return;
  for (const dir of homes.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout + stderr as received, in order. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout+stderr after `from` (an index into output()). */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  /** Resolves when the process exits. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns a command in its own process group (detached), so that the whole tree it starts can
 * be signalled and checked through the group id (= the pid).
 */
export function start(file: string, args: string[], opts: SpawnOptions & { ipc?: boolean } = {}): Proc {
  const { ipc, ...spawnOpts } = opts;
  const child = spawn(file, args, {
    ...spawnOpts,
    detached: true,
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  assert.ok(child.pid, `could not spawn ${file}`);
  let out = '';
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const onData = (which: 'stdout' | 'stderr') => (buf: Buffer) => {
    const text = buf.toString();
    out += text;
    if (which === 'stdout') stdout += text;
    else stderr += text;
    if (process.env.COMPAT_DEBUG) process.stderr.write(text);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData('stdout'));
  child.stderr!.on('data', onData('stderr'));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => {
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  const proc: Proc = {
    child,
    pid: child.pid,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    exit,
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = out.slice(from).match(pattern);
          if (m) {
            done();
            resolve(m);
            return true;
          }
          if (exited) {
            done();
            reject(new Error(`${path.basename(file)} exited before printing ${pattern}; output:\n${out}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs}ms waiting for ${pattern} from ${path.basename(file)}; output:\n${out}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(listener);
        };
        const listener = (): void => {
          check();
        };
        if (!check()) waiters.add(listener);
      });
    },
    waitExit(timeoutMs) {
      return withTimeout(exit, timeoutMs, `${path.basename(file)} (pid ${child.pid}) to exit; output:\n${out}`);
    },
  };
  return proc;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `fn` every `intervalMs` until it returns a truthy value; fails after `timeoutMs`. */
export async function waitUntil<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 100): Promise<Exclude<T, undefined | null | false | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as Exclude<T, undefined | null | false | 0 | ''>;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs));
  }
}

export interface PsEntry {
  pid: number;
  pgid: number;
  args: string;
}

/** Every process, as `ps -eo pid,pgid,args` shows it (the way egg-scripts stop looks for them). */
export function ps(): PsEntry[] {
  const out = execFileSync('ps', ['-wweo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  const list: PsEntry[] = [];
  for (const line of out.split('\n')) {
    const m = line.match(/^\s*(\d+)\s+(\d+)\s+(.*)$/);
    if (m) list.push({ pid: Number(m[1]), pgid: Number(m[2]), args: m[3]! });
  }
  return list.filter(p => p.pid !== process.pid);
}

export function groupMembers(pgid: number): PsEntry[] {
  return ps().filter(p => p.pgid === pgid && !p.args.startsWith('ps '));
}

export function processesWith(text: string): PsEntry[] {
  return ps().filter(p => p.args.includes(text) && !p.args.startsWith('ps '));
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Waits until no process of the group is left; SIGKILLs the group and fails if one is. */
export async function assertGroupGone(pgid: number, timeoutMs: number, what: string): Promise<void> {
  try {
    await waitUntil(() => groupMembers(pgid).length === 0, timeoutMs, `every process of ${what} (pgid ${pgid}) to exit`);
  } catch (err) {
    const left = groupMembers(pgid);
    killGroup(pgid, 'SIGKILL');
    throw new Error(`${(err as Error).message}; still running:\n${left.map(p => `  ${p.pid} ${p.args}`).join('\n')}`);
  }
}

/** Waits until no process whose args contain `text` is left; SIGKILLs them and fails if one is. */
export async function assertNoProcessWith(text: string, timeoutMs: number): Promise<void> {
  try {
    await waitUntil(() => processesWith(text).length === 0, timeoutMs, `no process with ${text} in its args`);
  } catch (err) {
    const left = processesWith(text);
    for (const p of left) killPid(p.pid, 'SIGKILL');
    throw new Error(`${(err as Error).message}; still running:\n${left.map(p => `  ${p.pid} ${p.args}`).join('\n')}`);
  }
}

export interface HttpResult {
  status: number;
  body: string;
}

/** GET without keep-alive (no pooled socket outlives the request). */
export function get(url: string, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', chunk => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
  });
}

/** True while a process with this pid exists (a zombie counts until its parent reaps it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits until none of `pids` is alive; SIGKILLs and fails if one is. */
export async function assertPidsGone(pids: Iterable<number>, timeoutMs: number, what: string): Promise<void> {
  const list = [...new Set(pids)];
  try {
    await waitUntil(() => list.every(pid => !isAlive(pid)), timeoutMs, `every pid of ${what} (${list.join(', ')}) to exit`);
  } catch (err) {
    const left = list.filter(isAlive);
    for (const pid of left) killPid(pid, 'SIGKILL');
    throw new Error(`${(err as Error).message}; still alive: ${left.join(', ')}`);
  }
}
