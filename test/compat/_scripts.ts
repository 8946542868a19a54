// The egg-scripts proof, shared by egg 3 (`egg-scripts` 3) and egg 4 (`@eggjs/scripts` 4, bin
// `eggctl`): `start --daemon` returns after egg-ready, the app serves, `stop --title` leaves no
// process of that title behind, and stop's fallback finds the workers of a hung master.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import {
  EGG3_APP, bin, freePort, get, killGroup, killPid, processesWith, assertNoProcessWith, start, tmpHome, toolEnv, waitUntil,
} from './_helpers.js';

export interface ScriptsCase {
  app: string;
  /** `egg-scripts` (egg 3) or `eggctl` (egg 4) */
  binName: string;
  /** Where this app's worker entries are: what the tool's stop greps for in `ps`. */
  workerPath: RegExp;
  textPattern: RegExp;
}

/** The egg 3 app under egg-scripts 3 (its stop greps `egg-cluster/lib/app_worker.js`, lib/cmd/stop.js). */
export const EGG3_SCRIPTS: ScriptsCase = {
  app: EGG3_APP,
  binName: 'egg-scripts',
  workerPath: /node_modules\/egg-cluster\/lib\/(app|agent)_worker\.js/,
  textPattern: /^egg3 compat \(pid \d+\)$/,
};

/** GET / answers with the app's text and GET /agent round-trips through the agent. */
export async function assertServes(c: ScriptsCase, port: number): Promise<void> {
  const res = await get(`http://127.0.0.1:${port}/`);
  assert.equal(res.status, 200);
  assert.match(res.body, c.textPattern);
  const agent = await get(`http://127.0.0.1:${port}/agent`);
  assert.equal(agent.status, 200, agent.body);
}

const titleSeq = { n: 0 };
export function uniqueTitle(label: string): string {
  return `egg-clutch-compat-${label}-${process.pid}-${Date.now()}-${++titleSeq.n}`;
}

export interface Started {
  title: string;
  port: number;
  home: string;
  masterPid: number;
}

export interface StartExtra {
  /** more arguments for `start` */
  args?: string[];
  /** more environment (NODE_OPTIONS included: toolEnv drops only the test runner's own) */
  env?: NodeJS.ProcessEnv;
}

/** `<bin> start --daemon --title=T --workers=2 --port=P`; resolves once the tool exited 0. */
export async function daemonStart(c: ScriptsCase, label: string, extra: StartExtra = {}): Promise<Started> {
  const title = uniqueTitle(label);
  const port = await freePort();
  const home = tmpHome(label);
  const proc = start(bin(c.app, c.binName), ['start', '--daemon', `--title=${title}`, '--workers=2', `--port=${port}`, ...extra.args ?? []], {
    cwd: c.app,
    env: toolEnv(home, extra.env),
  });
  let exit;
  try {
    exit = await proc.waitExit(120_000);
  } catch (err) {
    // the tool waits up to its own --timeout (5 min) for egg-ready: do not leave it behind
    killGroup(proc.pid, 'SIGKILL');
    for (const p of processesWith(`"title":"${title}"`)) killPid(p.pid, 'SIGKILL');
    const log = path.join(home, 'logs', 'master-stdout.log');
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-8).join('\n') : '(no master-stdout.log)';
    throw new Error(`${(err as Error).message}\nlast lines of ${log}:\n${tail}`, { cause: err });
  }
  assert.deepEqual(exit, { code: 0, signal: null }, `${c.binName} start --daemon failed:\n${proc.output()}`);
  assert.match(proc.output(), new RegExp(`egg started on http://127\\.0\\.0\\.1:${port}`), 'the tool prints the address of egg-ready');
  const masters = processesWith(`"title":"${title}"`).filter(p => p.args.includes('start-cluster'));
  assert.equal(masters.length, 1, `one master with the title: ${JSON.stringify(processesWith(title))}`);
  return { title, port, home, masterPid: masters[0]!.pid };
}

export async function daemonStop(c: ScriptsCase, title: string, home: string): Promise<string> {
  const proc = start(bin(c.app, c.binName), ['stop', `--title=${title}`], { cwd: c.app, env: toolEnv(home) });
  const exit = await proc.waitExit(60_000);
  assert.deepEqual(exit, { code: 0, signal: null }, `${c.binName} stop failed:\n${proc.output()}`);
  return proc.output();
}

/** Last-resort cleanup for `after` hooks: nothing with the title may survive the test file. */
export async function cleanupTitle(title: string): Promise<void> {
  const left = processesWith(`"title":"${title}"`);
  for (const p of left) {
    killPid(p.pid, 'SIGCONT');
    killPid(p.pid, 'SIGKILL');
  }
  await assertNoProcessWith(`"title":"${title}"`, 5000);
  assert.equal(left.length, 0, `processes were left behind: ${left.map(p => `${p.pid} ${p.args}`).join('\n')}`);
}

export async function startServeStop(c: ScriptsCase, t: TestContext, titles: string[]): Promise<void> {
  const s = await daemonStart(c, `${path.basename(c.app)}-start`);
  titles.push(s.title);

  await assertServes(c, s.port);

  const procs = processesWith(`"title":"${s.title}"`);
  const workers = procs.filter(p => c.workerPath.test(p.args));
  t.diagnostic(`processes with the title: ${procs.length} (master + ${workers.length} matching ${c.workerPath})`);
  assert.equal(procs.length, 4, `master, agent and 2 app workers carry "title":"${s.title}":\n${procs.map(p => p.args).join('\n')}`);

  const stderrLog = path.join(s.home, 'logs', 'master-stderr.log');
  assert.equal(fs.existsSync(stderrLog) ? fs.readFileSync(stderrLog, 'utf8') : '', '', 'nothing on the master stderr');

  const out = await daemonStop(c, s.title, s.home);
  assert.match(out, /got master pid/);
  await assertNoProcessWith(`"title":"${s.title}"`, 10_000);
  await assertNoProcessWith(s.title, 1000);
}

/**
 * A hung master (SIGSTOP) ignores stop's SIGTERM; after its 5 s wait the tool kills the
 * workers it finds by entry path + title. This is what the worker entry paths are for.
 */
export async function stopFindsWorkersOfHungMaster(c: ScriptsCase, t: TestContext, titles: string[]): Promise<void> {
  const s = await daemonStart(c, `${path.basename(c.app)}-hung`);
  titles.push(s.title);
  const workers = processesWith(`"title":"${s.title}"`).filter(p => !p.args.includes('start-cluster'));
  assert.equal(workers.length, 3, 'agent + 2 app workers');
  t.diagnostic(`worker entries: ${workers.map(w => w.args.split(' ').find(a => a.endsWith('_worker.js'))).join(', ')}`);
  killPid(s.masterPid, 'SIGSTOP');
  try {
    const out = await daemonStop(c, s.title, s.home);
    assert.match(out, /got worker\/agent pids/, `${c.binName} stop found no worker by ${c.workerPath}:\n${out}`);
    await waitUntil(() => workers.every(w => !processesWith(`"title":"${s.title}"`).some(p => p.pid === w.pid)), 10_000,
      'the workers of the hung master to be killed by stop');
  } finally {
    // let the master run its pending SIGTERM: it closes whatever is left
    killPid(s.masterPid, 'SIGCONT');
    await assertNoProcessWith(`"title":"${s.title}"`, 15_000);
  }
}
