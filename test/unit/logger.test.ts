import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { colourMayApply, logDate } from '../../src/logger.js';

const COMPARE = path.join(__dirname, '..', 'fixtures', 'logger', 'compare.ts');
const DATE = /^(\u001b\[\d+m)?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} /gm;

interface Capture { stdout: string; stderr: string }
interface Result {
  ours: Capture[]; egg: Capture[]; oursDelegated: Capture[]; eggDelegated: Capture[]; eggLoadedBySimple: boolean;
}

/** Run the comparison child with `env` (FORCE_COLOR and the like removed unless given). */
function compare(levels: (string | null)[], env: Record<string, string> = {}): Result {
  const base = { ...process.env };
  for (const key of ['FORCE_COLOR', 'NO_COLOR', 'EGG_LOG', 'NODE_CONSOLE_LOGGRE_LEVEL', 'NODE_ENV']) delete base[key];
  const child = spawnSync(process.execPath, ['--import', 'tsx', COMPARE, JSON.stringify(levels)], {
    env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8', timeout: 30_000,
  });
  assert.equal(child.status, 0, `compare child failed: ${child.stderr}`);
  return JSON.parse(child.output[3] as string) as Result;
}

/** The timestamps of the two loggers may straddle a millisecond: compare lines without them. */
function strip(c: Capture): Capture {
  return { stdout: c.stdout.replace(DATE, '$1DATE '), stderr: c.stderr.replace(DATE, '$1DATE ') };
}

function assertSame(r: Result, levels: (string | null)[]): void {
  levels.forEach((level, i) => {
    assert.deepEqual(strip(r.ours[i]!), strip(r.egg[i]!), `level ${level}: the fast path differs from egg-logger`);
    assert.deepEqual(strip(r.oursDelegated[i]!), strip(r.eggDelegated[i]!), `level ${level}: a delegated call differs`);
  });
}

describe('ConsoleLogger: egg-logger EggConsoleLogger output, byte for byte', () => {
  const levels = [null, 'INFO', 'info', 'debug', 'WARN', 'error', 'NONE', 'all', 'verbose'];

  it('writes the same bytes to stdout and stderr at every level, without loading egg-logger', () => {
    const r = compare(levels);
    assertSame(r, levels);
    assert.equal(r.eggLoadedBySimple, false, 'egg-logger was loaded for calls the fast path prints');
    // the comparison saw real output: INFO prints lines on both streams, NONE and unknown print nothing
    const info = r.ours[1]!;
    assert.match(info.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \d+ plain line\n/);
    assert.match(info.stderr, /ERROR \d+ nodejs\.AppWorkerDiedError: \[master\] app_worker#1:2 died\n/);
    assert.match(info.stderr, /\ncause:\n\nnodejs\.ENOENTError: ENOENT: no such file/);
    assert.deepEqual(r.ours[6], { stdout: '', stderr: '' });
    assert.deepEqual(r.ours[8], { stdout: '', stderr: '' });
    assert.match(r.ours[3]!.stdout, / DEBUG \d+ debug x extra\n/);
  });

  it('takes the default level and EGG_LOG from the environment as egg-logger does', () => {
    const envs: Record<string, string>[] = [{ NODE_ENV: 'production' }, { NODE_CONSOLE_LOGGRE_LEVEL: 'error' }, { EGG_LOG: 'debug' }, { EGG_LOG: 'none' }];
    for (const env of envs) {
      const r = compare([null, 'INFO'], env);
      assertSame(r, [null, 'INFO']);
      assert.equal(r.eggLoadedBySimple, false);
    }
  });

  it('leaves colours to egg-logger: same coloured bytes with FORCE_COLOR', () => {
    const r = compare([null, 'INFO'], { FORCE_COLOR: '1' });
    assertSame(r, [null, 'INFO']);
    assert.match(r.ours[1]!.stdout, /\u001b\[/, 'FORCE_COLOR=1 should colour the lines');
    assert.equal(r.eggLoadedBySimple, true);
  });
});

describe('logDate', () => {
  it('formats local time as utility.logDate(",") does', () => {
    const utility = require(require.resolve('utility', { paths: [path.dirname(require.resolve('egg-logger'))] })) as {
      logDate(d: Date, sep: string): string;
    };
    for (const d of [new Date(2026, 0, 2, 3, 4, 5, 6), new Date(2026, 10, 30, 23, 59, 59, 999), new Date(2024, 1, 29, 12, 0, 0, 45), new Date()]) {
      assert.equal(logDate(d), utility.logDate(d, ','));
    }
  });
});

describe('colourMayApply', () => {
  it('is false only without a TTY, FORCE_COLOR and colour flags', () => {
    assert.equal(colourMayApply({}, ['node', 'x'], false), false);
    assert.equal(colourMayApply({}, ['node', 'x'], true), true);
    assert.equal(colourMayApply({ FORCE_COLOR: '0' }, ['node', 'x'], false), true);
    for (const flag of ['--color', '--colors', '--no-color', '--color=256', '--color=always']) {
      assert.equal(colourMayApply({}, ['node', 'x', flag], false), true, flag);
    }
    assert.equal(colourMayApply({}, ['node', 'x', '--', '--color'], false), false);
    assert.equal(colourMayApply({}, ['node', 'x', '--colorful'], false), false);
  });

  it('sees no terminal on a pipe or on /dev/null (a character device that is no TTY)', () => {
    const probe = `process.stderr.write(String(require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'logger.ts'))}).colourMayApply({}, [])))`;
    for (const stdout of ['pipe', 'ignore'] as const) {
      const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', probe], { stdio: ['ignore', stdout, 'pipe'], encoding: 'utf8', timeout: 30_000 });
      assert.equal(child.stderr, 'false', `stdout ${stdout}: ${child.stderr}`);
    }
  });
});
