import fs from 'node:fs';
import { spawnSync } from 'node:child_process';

/** What terminate() needs from a child: process-backed workers adapt to it. */
export interface Killable {
  readonly pid: number | undefined;
  isAlive(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the child has exited. */
  readonly exited: Promise<void>;
}

function parentPidsFromProc(): Map<number, number> | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  const parents = new Map<number, number>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // the process ended while we were reading
    }
  }
  return parents;
}

function parentPidsFromPs(): Map<number, number> {
  const parents = new Map<number, number>();
  const out = spawnSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  if (out.status !== 0 || !out.stdout) return parents;
  for (const line of out.stdout.split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (pid && ppid !== undefined && !Number.isNaN(ppid)) parents.set(pid, ppid);
  }
  return parents;
}

/**
 * Every descendant of `pid`. Reads /proc where there is one (no `ps` needed, no spawn:
 * defect D16); falls back to `ps` elsewhere (macOS).
 */
export function listDescendants(pid: number): number[] {
  const parents = parentPidsFromProc() ?? parentPidsFromPs();
  const children = new Map<number, number[]>();
  for (const [child, parent] of parents) {
    const list = children.get(parent);
    if (list) list.push(child);
    else children.set(parent, [child]);
  }
  const result: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      result.push(child);
      queue.push(child);
    }
  }
  return result;
}

/** Running, not merely present: a zombie (exited, not reaped: no init in a container) is dead. */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    // no /proc (macOS): kill(pid, 0) said it exists
    return true;
  }
}

/** Signal each pid; one that is gone already is skipped. */
export function killPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

const delay = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Descendants that a terminate() still waits for. When their worker has exited first they
 * are nobody's children any more (re-parented to init): a forced exit of the master must
 * still find them, or they outlive it.
 */
const pendingDescendants = new Set<number>();

/** SIGKILL every descendant a terminate() is still waiting for (the master's forced exit). */
export function killPendingDescendants(): void {
  killPids([...pendingDescendants], 'SIGKILL');
  pendingDescendants.clear();
}

/**
 * SIGTERM the child and its descendants; whatever is still alive after `timeoutMs` gets
 * SIGKILL. Liveness is checked for real: a child that ignores SIGTERM is killed (egg-cluster
 * trusted `ChildProcess.killed`, which only says a signal was delivered: defect D1).
 */
export async function terminate(child: Killable, timeoutMs: number): Promise<void> {
  if (!child.isAlive() || child.pid === undefined) return;
  const deadline = Date.now() + Math.max(0, timeoutMs);
  const descendants = listDescendants(child.pid);
  for (const pid of descendants) pendingDescendants.add(pid);
  child.kill('SIGTERM');
  killPids(descendants, 'SIGTERM');

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>(resolve => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([child.exited, timedOut]);
  clearTimeout(timer);
  if (child.isAlive()) {
    child.kill('SIGKILL');
    await child.exited;
  }

  // Descendants get the same budget, then SIGKILL.
  let alive = descendants.filter(isPidAlive);
  while (alive.length && Date.now() < deadline) {
    await delay(Math.min(50, Math.max(1, deadline - Date.now())));
    alive = alive.filter(isPidAlive);
  }
  killPids(alive, 'SIGKILL');
  for (const pid of descendants) pendingDescendants.delete(pid);
}
