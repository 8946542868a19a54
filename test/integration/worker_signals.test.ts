/**
 * Signals and a vanished master, seen from the workers (issue 8 items 5 and 9):
 * - SIGTERM to the whole process group (systemd KillMode=control-group, `kill -TERM -<pgid>`,
 *   tini -g): every worker gets it, then the master sends its own; a worker drains once and
 *   the second SIGTERM does not kill it (graceful-process's `once` left it to the default
 *   action). The same for the agent in the middle of its close.
 * - The worker's close budget stays below the master's close timeout (no 1000 ms floor, D14).
 * - A worker that talks to a master that is gone prints nothing (sendmessage's "channel
 *   closed" warning with a stack, D18).
 * Runs against the built package (lib/): `npm run build` first.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import {
  START_SCRIPT, assertGone, fakeApp, freePort, httpGet, isAlive, runCluster, useLeakGuard, type HttpResult,
} from '../helpers/run_cluster.js';

useLeakGuard();

const T = { timeout: 40_000 };
const INFO_WORKER_LOGS = { EGG_APP_WORKER_LOGGER_LEVEL: 'INFO', EGG_AGENT_WORKER_LOGGER_LEVEL: 'INFO' };

/**
 * A master that leads its own process group (detached), as under systemd or an init that
 * signals the group. runCluster cannot start one, so this records just what the test needs.
 */
class GroupMaster {
  readonly child: ChildProcess;
  readonly pgid: number;
  output = '';
  readonly messages: Array<{ action?: string }> = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(options: Record<string, unknown>, env: Record<string, string>) {
    const base: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (key.startsWith('EGG_') || key === 'NODE_ENV' || key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS') continue;
      base[key] = value;
    }
    this.child = fork(START_SCRIPT, [JSON.stringify(options)], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...base, ...env },
      execArgv: [],
    });
    this.pgid = this.child.pid!;
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => { this.output += chunk; this.#changed(); });
    }
    this.child.on('message', (msg: { action?: string }) => { this.messages.push(msg); this.#changed(); });
    this.child.on('exit', (code, signal) => { this.exit = { code, signal }; this.#changed(); });
    this.child.on('error', () => {});
  }

  #changed(): void {
    for (const fn of [...this.#waiters]) fn();
  }

  waitFor<V>(what: string, check: () => V | undefined, timeoutMs = 15_000): Promise<V> {
    return new Promise((resolve, reject) => {
      const test = (): void => {
        const value = check();
        if (value === undefined) return;
        this.#waiters.delete(test);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(test);
        reject(new Error(`timed out waiting for ${what}\n${this.output.split('\n').slice(-40).join('\n')}`));
      }, timeoutMs);
      this.#waiters.add(test);
      test();
    });
  }

  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray> {
    return this.waitFor(String(re), () => re.exec(this.output) ?? undefined, timeoutMs);
  }

  /** The master and every worker it logged (`agent_worker#1:<pid> start`, `app_worker#N:<pid>`). */
  get pids(): number[] {
    const pids = new Set<number>([this.pgid]);
    for (const m of this.output.matchAll(/\b(?:agent|app)_worker#\d+:(\d+)\b/g)) pids.add(Number(m[1]));
    return [...pids];
  }

  /** End of test: whatever is left of the group is SIGKILLed, then must be gone. Returns what was left. */
  async cleanup(): Promise<number[]> {
    const left = this.pids.filter(isAlive);
    if (left.length) {
      try {
        process.kill(-this.pgid, 'SIGKILL');
      } catch {
        // the group is gone
      }
    }
    await assertGone(this.pids, 5000);
    return left;
  }
}

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, 'g'))?.length ?? 0;
}

describe('SIGTERM to the whole process group', () => {
  test('two 2 s requests in flight complete with 200, the agent finishes its close, the master exits 0', T, async t => {
    const port = await freePort();
    const master = new GroupMaster(fakeApp('w-group-term', { workers: 2, port }), { ...INFO_WORKER_LOGS, W_AGENT_CLOSE_MS: '3000' });
    let left: number[] = [];
    try {
      await master.waitFor('egg-ready', () => master.messages.find(m => m.action === 'egg-ready'));
      const requests: Array<Promise<HttpResult>> = ['a', 'b'].map(id => httpGet(`http://127.0.0.1:${port}/slow?ms=2000&id=${id}`));
      await master.waitForOutput(/\[w-group-term\] \d+ request start a/);
      await master.waitForOutput(/\[w-group-term\] \d+ request start b/);
      const sentAt = Date.now();
      process.kill(-master.pgid, 'SIGTERM');
      const results = await Promise.all(requests);
      for (const [i, res] of results.entries()) {
        assert.equal(res.status, 200, `request ${i}: ${res.body}`);
        assert.equal(res.json().id, ['a', 'b'][i]);
      }
      const exit = await master.waitFor('master exit', () => master.exit, 15_000);
      t.diagnostic(`master exited ${Date.now() - sentAt} ms after the group SIGTERM; requests: ${results.map(r => r.status).join(', ')}`);
      assert.deepEqual(exit, { code: 0, signal: null }, master.output);
      // every app worker got both signals and drained once
      const workers = count(master.output, /\[app_worker\] receive signal SIGTERM, exiting with code:0/);
      assert.equal(workers, 2, master.output);
      assert.equal(count(master.output, /\[app_worker\] receive signal SIGTERM again, waiting for exit/), 2, master.output);
      assert.equal(count(master.output, /\[app_worker\] exit with code:0/), 2, master.output);
      // the agent was in the middle of its 3 s close when the master's SIGTERM came
      assert.match(master.output, /\[agent_worker\] receive signal SIGTERM again, waiting for exit/, master.output);
      assert.match(master.output, /\[w-group-term\] agent \d+ beforeClose done/, master.output);
      assert.match(master.output, /\[agent_worker\] exit with code:0/, master.output);
      await assertGone(master.pids, 2000);
    } finally {
      // a failure above is reported as is; the group is killed either way
      left = await master.cleanup();
    }
    assert.deepEqual(left, [], 'processes left running by the test');
  });
});

describe('close budget and a vanished master', () => {
  test('the worker\'s own close budget ends before the master\'s SIGKILL, even at an 800 ms close timeout', T, async () => {
    const port = await freePort();
    const run = runCluster(fakeApp('slow-close', { workers: 1, port }), {
      env: { ...INFO_WORKER_LOGS, SLOW_CLOSE_MS: '10000', EGG_APP_CLOSE_TIMEOUT: '800', EGG_AGENT_CLOSE_TIMEOUT: '800' },
    });
    await run.ready();
    run.kill('SIGTERM');
    const exit = await run.waitForExit(15_000);
    await run.waitForClose(5000);
    // each worker gave up on its hung close by itself (600 ms) and exited 0: not SIGKILLed
    for (const label of ['app_worker', 'agent_worker']) {
      assert.match(run.stderr, new RegExp(`\\[${label}\\] beforeExit fail, error: Timeout 600ms`), run.context());
      assert.match(run.output, new RegExp(`\\[${label}\\] exit with code:0`), run.context());
    }
    assert.deepEqual(exit, { code: 0, signal: null }, run.context());
    await assertGone(run.pids, 1000);
  });

  test('the agent finishes booting after its master was SIGKILLed: nothing on stderr about a closed channel', T, async () => {
    const run = runCluster(fakeApp('w-late-agent', { workers: 1, port: await freePort() }));
    await run.waitForOutput(/\[w-late-agent\] agent \d+ booting/);
    run.kill('SIGKILL');
    // its ready callback runs while it closes: right after it, the worker tells the master
    // `agent-start` — to a channel that is gone
    await run.waitForOutput(/\[w-late-agent\] agent \d+ ready/, 10_000);
    await run.waitForClose(10_000);
    assert.match(run.output, /\[w-late-agent\] agent \d+ beforeClose/, run.context());
    assert.doesNotMatch(run.stderr, /channel closed|ERR_IPC_CHANNEL_CLOSED|sendmessage/i, run.context());
    await assertGone(run.pids, 1000);
  });
});
