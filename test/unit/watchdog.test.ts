import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { InvalidOptionError } from '../../src/errors.js';
import { normalizeOptions, parseMemory } from '../../src/options.js';
import { REPORT_ACTION } from '../../src/protocol.js';
import { WatchdogPolicy, cgroupMemoryLimit, heapAdvice, maxOldSpaceMiB } from '../../src/watchdog.js';
import { flush, PORT, startFakeCluster, type FakeCluster, type FakeWorker } from '../helpers/fake_launcher.js';

const MiB = 1024 * 1024;

describe('WatchdogPolicy: hung workers', () => {
  it('a watched worker silent for more than timeout + one interval is hung, once', () => {
    const p = new WatchdogPolicy<string>({ timeoutMs: 2000, maxMemory: 0, intervalMs: 1000 });
    p.watch('a', 0);
    p.watch('b', 0);
    p.report('a', 1000, 0);
    p.report('b', 1000, 0);
    // b keeps reporting, a stops after t=1000
    for (let t = 2000; t <= 4000; t += 1000) p.report('b', t, 0);
    assert.deepEqual(p.check(4000), [], 'exactly timeout + interval: not yet');
    assert.deepEqual(p.check(4001), [{ type: 'hung', key: 'a', silentMs: 3001 }]);
    assert.deepEqual(p.check(10_000).map(a => a.key), ['b'], 'a is not reported twice; b now silent too');
    assert.equal(p.isWatched('a'), false);
  });

  it('reports late by less than the timeout (a CPU-heavy loop) are never a hang', () => {
    const p = new WatchdogPolicy<string>({ timeoutMs: 2000, maxMemory: 0, intervalMs: 1000 });
    p.watch('a', 0);
    let t = 0;
    for (let i = 0; i < 100; i++) {
      t += 1000 + 1999; // each report due after 1 s, late by 1999 ms
      for (let c = t - 2999; c < t; c += 250) assert.deepEqual(p.check(c), [], `check at ${c}`);
      p.report('a', t, 0);
    }
  });

  it('timeout 0: no hang detection; a forgotten worker is not checked', () => {
    const off = new WatchdogPolicy<string>({ timeoutMs: 0, maxMemory: 100, intervalMs: 1000 });
    off.watch('a', 0);
    assert.deepEqual(off.check(1e9), []);
    const p = new WatchdogPolicy<string>({ timeoutMs: 1000, maxMemory: 0, intervalMs: 1000 });
    p.watch('a', 0);
    p.forget('a');
    assert.deepEqual(p.check(1e9), []);
    assert.equal(p.report('a', 5, 0), undefined, 'a report of an unwatched worker is ignored');
  });
});

describe('WatchdogPolicy: memory', () => {
  it('3 samples above maxMemory in a row: replace; a sample below resets the count', () => {
    const p = new WatchdogPolicy<string>({ timeoutMs: 0, maxMemory: 100, intervalMs: 1000 });
    p.watch('a', 0);
    assert.equal(p.report('a', 1, 101), undefined);
    assert.equal(p.report('a', 2, 150), undefined);
    assert.equal(p.report('a', 3, 100), undefined, 'equal to the limit is not above it');
    assert.equal(p.report('a', 4, 101), undefined);
    assert.equal(p.report('a', 5, 102), undefined);
    assert.deepEqual(p.report('a', 6, 103), { type: 'memory', key: 'a', bytes: 103, samples: [101, 102, 103] });
    assert.equal(p.memoryReplacing, 'a');
  });

  it('one memory replacement at a time, none while a reload runs', () => {
    const p = new WatchdogPolicy<string>({ timeoutMs: 0, maxMemory: 100, intervalMs: 1000 });
    p.watch('a', 0);
    p.watch('b', 0);
    for (let i = 0; i < 3; i++) assert.equal(p.report('a', i, 200, true), undefined, 'busy: a reload runs');
    assert.equal(p.report('a', 3, 200)?.type, 'memory');
    for (let i = 0; i < 5; i++) assert.equal(p.report('b', i, 200), undefined, 'a is being replaced');
    p.memoryDone('a');
    assert.deepEqual(p.report('b', 6, 200)?.key, 'b', 'b next, once a is done');
  });

  it('a hung worker ends its own memory replacement', () => {
    const p = new WatchdogPolicy<string>({ timeoutMs: 1000, maxMemory: 100, intervalMs: 1000 });
    p.watch('a', 0);
    for (let i = 1; i <= 3; i++) p.report('a', i, 200);
    assert.equal(p.memoryReplacing, 'a');
    assert.equal(p.check(5000)[0]?.type, 'hung');
    assert.equal(p.memoryReplacing, undefined);
  });
});

describe('memory sizes and the heap fit', () => {
  it('parseMemory: bytes, K/M/G (1024-based, B optional), 0 = off; anything else a clear error', () => {
    assert.equal(parseMemory(0, 'x'), 0);
    assert.equal(parseMemory(536870912, 'x'), 512 * MiB);
    assert.equal(parseMemory('512MB', 'x'), 512 * MiB);
    assert.equal(parseMemory('512M', 'x'), 512 * MiB);
    assert.equal(parseMemory('512m', 'x'), 512 * MiB);
    assert.equal(parseMemory('1G', 'x'), 1024 * MiB);
    assert.equal(parseMemory('1.5G', 'x'), 1536 * MiB);
    assert.equal(parseMemory('64K', 'x'), 65536);
    assert.equal(parseMemory('1000', 'x'), 1000);
    for (const bad of [-1, 1.5, '512 megs', '1T', '', 'G', true, {}]) {
      assert.throws(() => parseMemory(bad, 'options.maxMemory'), (err: Error) => err instanceof InvalidOptionError
        && /options\.maxMemory must be a memory size/.test(err.message) && /'512M'/.test(err.message), JSON.stringify(bad));
    }
  });

  it('heapAdvice: undefined when workers + agent at the heap limit + master fit; else a size that fits', () => {
    assert.equal(heapAdvice({ limit: 4096 * MiB, workers: 2, heapLimit: 1024 * MiB, master: 100 * MiB }), undefined);
    const advice = heapAdvice({ limit: 2048 * MiB, workers: 4, heapLimit: 2048 * MiB, master: 48 * MiB })!;
    assert.equal(advice, Math.floor(((2000 * MiB) / 5 * 7) / 8 / MiB));
    assert.ok(5 * advice * MiB + 48 * MiB <= 2048 * MiB);
  });

  it('maxOldSpaceMiB reads execArgv and NODE_OPTIONS (the command line wins)', () => {
    assert.equal(maxOldSpaceMiB([], ''), undefined);
    assert.equal(maxOldSpaceMiB(['--max-old-space-size=300'], '--max-old-space-size=100'), 300);
    assert.equal(maxOldSpaceMiB([], '--enable-source-maps --max_old_space_size=200'), 200);
  });

  it('cgroupMemoryLimit: v2 then v1; max / unlimited is undefined', () => {
    const files = (map: Record<string, string>) => (f: string) => map[f];
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '536870912\n' })), 512 * MiB);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), undefined);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824' })), 1024 * MiB);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' })), undefined);
    assert.equal(cgroupMemoryLimit(files({})), undefined);
  });
});

describe('options.watchdog and options.maxMemory', () => {
  const base = { env: {}, cwd: '/tmp', execArgv: [] as string[], cpus: 2 };
  const norm = (input: Record<string, unknown>, ctx: Partial<typeof base & { inspectorActive: boolean }> = {}) =>
    normalizeOptions(input, { ...base, ...ctx }).options;

  it('on with 30 s by default; off in the local env and under an inspector unless set', () => {
    assert.deepEqual(norm({ env: 'prod' }).watchdog, { timeout: 30_000 });
    assert.deepEqual(norm({}, { env: { NODE_ENV: 'production' } }).watchdog, { timeout: 30_000 });
    assert.equal(norm({ env: 'local' }).watchdog, false);
    assert.equal(norm({}).watchdog, false, 'no env and no NODE_ENV is egg\'s local');
    assert.equal(norm({ env: 'prod' }, { execArgv: ['--inspect=0'] }).watchdog, false);
    assert.equal(norm({ env: 'prod' }, { env: { NODE_OPTIONS: '--inspect-brk' } }).watchdog, false);
    assert.equal(norm({ env: 'prod' }, { inspectorActive: true }).watchdog, false);
    assert.deepEqual(norm({ env: 'local', watchdog: { timeout: 5000 } }).watchdog, { timeout: 5000 });
    assert.equal(norm({ env: 'prod', watchdog: false }).watchdog, false);
    assert.equal(norm({ env: 'prod' }).maxMemory, 0);
  });

  it('environment variables, options win', () => {
    assert.deepEqual(norm({ env: 'prod' }, { env: { EGG_CLUSTER_WATCHDOG_TIMEOUT: '5000' } }).watchdog, { timeout: 5000 });
    assert.equal(norm({ env: 'prod' }, { env: { EGG_CLUSTER_WATCHDOG_TIMEOUT: '0' } }).watchdog, false);
    assert.equal(norm({ env: 'prod' }, { env: { EGG_CLUSTER_WATCHDOG_TIMEOUT: 'false' } }).watchdog, false);
    assert.deepEqual(norm({ env: 'local' }, { env: { EGG_CLUSTER_WATCHDOG_TIMEOUT: '3000' } }).watchdog, { timeout: 3000 });
    assert.deepEqual(norm({ env: 'prod', watchdog: { timeout: 2000 } }, { env: { EGG_CLUSTER_WATCHDOG_TIMEOUT: '0' } }).watchdog, { timeout: 2000 });
    assert.equal(norm({ env: 'prod' }, { env: { EGG_CLUSTER_MAX_MEMORY: '1G' } }).maxMemory, 1024 * MiB);
    assert.equal(norm({ env: 'prod', maxMemory: '256M' }, { env: { EGG_CLUSTER_MAX_MEMORY: '1G' } }).maxMemory, 256 * MiB);
  });

  it('bad values are InvalidOptionErrors that say what to write', () => {
    const cases: Array<[Record<string, unknown>, NodeJS.ProcessEnv, RegExp]> = [
      [{ watchdog: { timeout: 10 } }, {}, /options\.watchdog\.timeout must be .*from 1000/],
      [{ watchdog: { timeout: 'soon' } }, {}, /options\.watchdog\.timeout must be/],
      [{ watchdog: { timout: 1000 } }, {}, /options\.watchdog\.timout is not a watchdog setting/],
      [{ watchdog: 30000 }, {}, /options\.watchdog must be false, or \{ timeout: ms \}/],
      [{ watchdog: true }, {}, /options\.watchdog must be/],
      [{ maxMemory: '1TB' }, {}, /options\.maxMemory must be a memory size, got "1TB"/],
      [{}, { EGG_CLUSTER_WATCHDOG_TIMEOUT: '30s' }, /EGG_CLUSTER_WATCHDOG_TIMEOUT must be a whole number of milliseconds from 1000/],
      [{}, { EGG_CLUSTER_WATCHDOG_TIMEOUT: '500' }, /EGG_CLUSTER_WATCHDOG_TIMEOUT must be/],
      [{}, { EGG_CLUSTER_MAX_MEMORY: 'lots' }, /environment variable EGG_CLUSTER_MAX_MEMORY must be a memory size, got "lots"/],
    ];
    for (const [input, env, pattern] of cases) {
      assert.throws(() => norm({ env: 'prod', ...input }, { env }), (err: Error) => err instanceof InvalidOptionError && pattern.test(err.message),
        JSON.stringify([input, env]));
    }
  });
});

/** A report as src/worker/report.ts sends it. */
function report(worker: FakeWorker, rss: number, seq: number): void {
  worker.say({
    action: REPORT_ACTION,
    data: {
      v: 1, seq, ts: Date.now(), rss, heapUsed: 1, heapTotal: 1, external: 0, elu: 0, eventLoopDelayP99Ms: 0,
      eventLoopDelayMaxMs: 0, cpuUserUs: 0, cpuSystemUs: 0, requests: 0, inFlight: 0,
    },
  });
}

describe('the master with the fake launcher', () => {
  async function cluster(t: TestContext, options: Record<string, unknown>): Promise<FakeCluster> {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    return startFakeCluster({ options: { workers: 2, env: 'prod', ...options } });
  }

  it('a worker that stops reporting is replaced (fork first, then SIGKILL); the others are left alone', async t => {
    const c = await cluster(t, { watchdog: { timeout: 2000 } });
    const mock = t.mock.timers as unknown as { tick(ms: number): void };
    const [a, b] = c.launcher.apps as [FakeWorker, FakeWorker];
    let seq = 0;
    // both report for 5 s, then a goes silent
    for (let s = 0; s < 5; s++) {
      mock.tick(1000);
      report(a, 50 * MiB, ++seq);
      report(b, 50 * MiB, seq);
    }
    const silentFrom = Date.now();
    let replacedAfter = 0;
    for (let step = 0; step < 40 && a.isAlive; step++) {
      mock.tick(250);
      if (step % 4 === 3) report(b, 50 * MiB, ++seq);
      await flush();
      replacedAfter = Date.now() - silentFrom;
    }
    assert.equal(a.isAlive, false, c.logger.lines().join('\n'));
    assert.ok(replacedAfter > 3000 && replacedAfter <= 3250, `replaced ${replacedAfter} ms after the last report (timeout 2000 + interval 1000)`);
    const tl = c.launcher.timeline;
    assert.ok(tl.indexOf('forkOne') < tl.indexOf('forceKill app#1'), tl.join('\n'));
    assert.ok(b.isAlive);
    assert.ok(c.logger.lines().some(l => /\[master\] app_worker#1:3001 did not answer for 3\d{3}ms, replacing it/.test(l)), c.logger.lines().join('\n'));
    assert.equal(c.launcher.apps.length, 3, 'one replacement, not a second one from the lifecycle');
    c.launcher.apps[2]!.listen(PORT);
    await flush();
    assert.equal(c.master.registry.listeningWorkerIds().length, 2);
  });

  it('maxMemory: 3 samples above, replaced like a reload (new one listens, then the old one drains); one at a time', async t => {
    const c = await cluster(t, { watchdog: false, maxMemory: '100M' });
    const mock = t.mock.timers as unknown as { tick(ms: number): void };
    const [a, b] = c.launcher.apps as [FakeWorker, FakeWorker];
    for (let seq = 1; seq <= 3; seq++) {
      mock.tick(1000);
      report(a, 200 * MiB, seq);
      report(b, 200 * MiB, seq);
      await flush();
    }
    assert.equal(c.launcher.apps.length, 3, 'one replacement at a time');
    assert.ok(a.isAlive && b.isAlive, 'no old worker stopped before its replacement listens');
    assert.ok(c.logger.lines().some(l => /app_worker#1:3001 uses 200MiB RSS, above maxMemory 100MiB for 3 samples in a row/.test(l)));
    c.launcher.apps[2]!.listen(PORT);
    await flush();
    assert.equal(a.isAlive, false);
    assert.deepEqual(a.terminateCalls.length, 1, 'drained (terminate), not killed');
    assert.equal(c.logger.errors('AppWorkerDiedError').length, 0);
    // b has been above for a while: replaced next
    mock.tick(1000);
    report(b, 200 * MiB, 4);
    await flush();
    assert.equal(c.launcher.apps.length, 4);
    c.launcher.apps[3]!.listen(PORT);
    await flush();
    assert.equal(b.isAlive, false);
    assert.equal(c.master.registry.listeningWorkerIds().length, 2);
  });
});
