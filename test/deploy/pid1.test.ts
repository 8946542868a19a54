/**
 * The master as PID 1 of a container: a new PID namespace (`unshare --pid --fork --mount-proc`,
 * root only; skipped with the reason otherwise), with and without tini as its init.
 *
 * - No init: SIGTERM to the namespace's PID 1 (the master) drains a request in flight and
 *   exits 0; the master logs one WARN that it is PID 1; an orphaned grandchild that exits
 *   stays a zombie (what the warning is about).
 * - tini as PID 1: the orphaned grandchild is reaped; SIGTERM (forwarded by tini) -> exit 0;
 *   no warning.
 * Every run ends with no process left in its namespace (test/deploy/_ns.ts).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { PID1_WARNING, warnIfPid1 } from '../../src/pid1.js';
import { captureLogger } from '../helpers/capture_logger.js';
import { FRAMEWORK, fakeApp, freePort, httpGet, readCmdline } from '../helpers/run_cluster.js';
import { NsRun, TINI, cleanupNsRuns, parentPid, pollProc, procState, tiniUnavailable, unshareUnavailable } from './_ns.js';

const ORPHANER = path.join(__dirname, 'fixtures', 'orphaner');
const noUnshare = unshareUnavailable();
const noTini = noUnshare ?? tiniUnavailable();
/** The master's log lines carry its pid: 1 in the namespace without an init. */
const WARN_LINE = /^\S+ \S+ WARN (\d+) \[master\] running as PID 1 \(no init process.*$/gm;

describe('warnIfPid1 (unit)', () => {
  it('warns once, at WARN, only when the pid is 1', () => {
    const logger = captureLogger();
    assert.equal(warnIfPid1(logger, 4242), false);
    assert.equal(logger.entries.length, 0);
    assert.equal(warnIfPid1(logger, 1), true);
    assert.deepEqual(logger.entries.map(e => e.level), ['warn']);
    const line = logger.lines('warn')[0]!;
    assert.equal(line, PID1_WARNING);
    assert.ok(!line.includes('\n'), 'one line');
    for (const fix of ['tini', 'docker run --init', 'shareProcessNamespace']) assert.ok(line.includes(fix), `names ${fix}`);
    assert.match(line, /zombie/);
  });
});

/** Waits for the orphan of the orphaner fixture; checks PID 1 of the namespace adopted it. */
async function findOrphan(run: NsRun, marker: string): Promise<number> {
  await run.waitForOutput(/\[orphaner\] \d+ middle exited 0/);
  const orphan = await pollProc('the orphaned grandchild', 5000,
    () => run.find(marker).find(pid => readCmdline(pid).at(-1) === marker));
  assert.equal(parentPid(orphan), run.initPid, `the orphan ${orphan} was adopted by the namespace's PID 1 ${run.initPid}`);
  return orphan;
}

function orphanerOptions(port: number): Record<string, unknown> {
  return { baseDir: ORPHANER, framework: FRAMEWORK, workers: 1, port };
}

describe('the master as PID 1 of a PID namespace', { skip: noUnshare }, () => {
  afterEach(cleanupNsRuns);

  it('no init: SIGTERM -> the request in flight completes -> exit 0', async () => {
    const port = await freePort();
    const run = new NsRun(fakeApp('slow-request', { workers: 2, port }), { init: 'none' });
    await run.waitForMessage('egg-ready');
    const init = await run.init();
    assert.match(readCmdline(init).join(' '), /start\.js/, 'PID 1 of the namespace is the master');
    assert.match(run.output, /^\S+ \S+ INFO 1 \[master\]/m, 'the master logs as pid 1');

    const request = httpGet(`http://127.0.0.1:${port}/slow?ms=1500&id=pid1`, { timeoutMs: 15_000 });
    await run.waitForOutput(/\[slow-request\] \d+ slow request start pid1/);
    const sent = Date.now();
    process.kill(init, 'SIGTERM');
    const res = await request;
    const answeredMs = Date.now() - sent;
    const exit = await run.waitForExit();
    const exitMs = Date.now() - sent;
    console.log('PID 1 master: SIGTERM -> request in flight answered %s after %s ms -> exit %j after %s ms', res.status, answeredMs, exit, exitMs);
    assert.equal(res.status, 200);
    assert.equal(res.json().slept, 1500);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(run.output, /\[master\] exit with code:0/);
  });

  it('no init: the master warns once at start that it is PID 1 and zombies cannot be reaped', async () => {
    const port = await freePort();
    const run = new NsRun(fakeApp('basic', { workers: 1, port }), { init: 'none' });
    await run.waitForMessage('egg-ready');
    const warnings = [...run.output.matchAll(WARN_LINE)];
    assert.equal(warnings.length, 1, `one PID 1 warning from the master expected, found ${warnings.length}\n${run.context()}`);
    assert.equal(warnings[0]![1], '1');
    console.log('warning: %s', warnings[0]![0]);
    process.kill(await run.init(), 'SIGTERM');
    assert.deepEqual(await run.waitForExit(), { code: 0, signal: null });
  });

  it('no init: an orphaned grandchild that exits stays a zombie', async () => {
    const marker = `egg-clutch-orphan-${process.pid}-${Date.now()}`;
    const port = await freePort();
    const run = new NsRun(orphanerOptions(port), { init: 'none', env: { ORPHAN_MARKER: marker } });
    await run.waitForMessage('egg-ready');
    await run.init();
    const orphan = await findOrphan(run, marker);
    process.kill(orphan, 'SIGKILL');
    await pollProc(`orphan ${orphan} to be a zombie`, 5000, () => (procState(orphan) === 'Z' ? true : undefined));
    // the cluster keeps working around it, and nothing reaps it meanwhile
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
    assert.equal(procState(orphan), 'Z', `orphan ${orphan} still a zombie after a request`);
    console.log('no init: orphan %s is a zombie under the PID 1 master', orphan);
    process.kill(run.initPid!, 'SIGTERM');
    assert.deepEqual(await run.waitForExit(), { code: 0, signal: null });
    // cleanupNsRuns: the zombie went with its namespace
  });

  it('tini as PID 1: an orphaned grandchild is reaped; SIGTERM -> exit 0; no PID 1 warning', { skip: noTini }, async () => {
    const marker = `egg-clutch-orphan-${process.pid}-${Date.now()}`;
    const port = await freePort();
    const run = new NsRun(orphanerOptions(port), { init: 'tini', env: { ORPHAN_MARKER: marker } });
    await run.waitForMessage('egg-ready');
    const init = await run.init();
    assert.equal(readCmdline(init)[0], TINI, 'PID 1 of the namespace is tini');
    assert.equal([...run.output.matchAll(WARN_LINE)].length, 0, 'the master is not PID 1 under tini: no warning');
    assert.doesNotMatch(run.output, /^\S+ \S+ INFO 1 \[master\]/m);

    const orphan = await findOrphan(run, marker);
    const killed = Date.now();
    process.kill(orphan, 'SIGKILL');
    await pollProc(`orphan ${orphan} to be reaped`, 5000, () => (procState(orphan) === undefined ? true : undefined));
    console.log('tini: orphan %s reaped %s ms after it died', orphan, Date.now() - killed);
    assert.equal(run.members().filter(pid => procState(pid) === 'Z').length, 0, 'no zombie in the namespace');

    const sent = Date.now();
    process.kill(init, 'SIGTERM');
    const exit = await run.waitForExit();
    console.log('tini: SIGTERM -> exit %j after %s ms', exit, Date.now() - sent);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(run.output, /\[master\] exit with code:0/);
  });
});
