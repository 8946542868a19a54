import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  agentState, Liveness, masterState, readiness, reportFigures, workerState,
} from '../../src/ops/state.js';
import { formatBytes, formatDuration, formatStatusTable, statusRows } from '../../src/ops/table.js';
import { main, parseStatusArgs, UsageError } from '../../src/bin/egg-clutch.js';
import type { ClusterStatus } from '../../src/ops/state.js';

describe('ops: /readyz', () => {
  it('is 200 only after egg-ready, while a worker listens, before any close', () => {
    assert.deepEqual(readiness({ started: false, closing: false, listening: 2 }), { ok: false, reason: 'starting' });
    assert.deepEqual(readiness({ started: true, closing: false, listening: 1 }), { ok: true, reason: 'ready' });
    assert.deepEqual(readiness({ started: true, closing: false, listening: 0 }), { ok: false, reason: 'no app worker listening' });
    assert.deepEqual(readiness({ started: true, closing: true, listening: 4 }), { ok: false, reason: 'closing' });
    assert.deepEqual(readiness({ started: false, closing: true, listening: 0 }), { ok: false, reason: 'closing' });
  });
});

describe('ops: /livez', () => {
  const clock = () => {
    let now = 1_000_000;
    return { now: () => now, advance: (ms: number) => { now += ms; } };
  };

  it('stays 200 during the start, whatever listens (the start timeout decides then)', () => {
    const c = clock();
    const live = new Liveness(undefined, c.now);
    live.observe(0);
    c.advance(120_000);
    assert.equal(live.verdict(false).ok, true);
  });

  it('turns 503 once no app worker has listened for 30 s after the start, and back to 200 when one listens', () => {
    const c = clock();
    const live = new Liveness(undefined, c.now);
    live.started();
    live.observe(2);
    c.advance(29_999);
    live.observe(0);
    assert.equal(live.verdict(false).ok, true, '29.999 s without a listener is still alive');
    c.advance(1);
    live.observe(0);
    const verdict = live.verdict(false);
    assert.equal(verdict.ok, false);
    assert.match(verdict.reason, /no app worker listening for 30000 ms/);
    live.observe(1);
    assert.equal(live.verdict(false).ok, true);
  });

  it('turns 503 after three exception checks in a row without an agent; one present agent resets the count', () => {
    const live = new Liveness();
    live.started();
    live.observe(1);
    live.exceptionCheck({ agent: 0 });
    live.exceptionCheck({ agent: 0 });
    assert.equal(live.verdict(false).ok, true, 'two misses');
    live.exceptionCheck({ agent: 1 });
    live.exceptionCheck({ agent: 0 });
    live.exceptionCheck({ agent: 0 });
    assert.equal(live.verdict(false).ok, true, 'the count restarted');
    live.exceptionCheck({ agent: 0 });
    assert.equal(live.agentMisses, 3);
    assert.deepEqual(live.verdict(false), { ok: false, reason: 'no agent for 3 exception checks in a row' });
  });

  it('a closing master is alive: it ends by itself', () => {
    const c = clock();
    const live = new Liveness(undefined, c.now);
    live.started();
    for (let i = 0; i < 3; i++) live.exceptionCheck({ agent: 0 });
    c.advance(60_000);
    assert.equal(live.verdict(false).ok, false);
    assert.deepEqual(live.verdict(true), { ok: true, reason: 'closing' });
  });
});

describe('ops: states', () => {
  it('worker, agent and master states', () => {
    assert.equal(workerState({ state: 'starting', stopping: false }, false), 'starting');
    assert.equal(workerState({ state: 'listening', stopping: false }, false), 'listening');
    assert.equal(workerState({ state: 'listening', stopping: true }, false), 'closing');
    assert.equal(workerState({ state: 'listening', stopping: false }, true), 'closing');
    assert.equal(workerState({ state: 'disconnected', stopping: true }, true), 'disconnected');
    assert.equal(agentState(undefined, false), 'disconnected');
    assert.equal(agentState({ alive: false, started: true }, false), 'disconnected');
    assert.equal(agentState({ alive: true, started: false }, false), 'starting');
    assert.equal(agentState({ alive: true, started: true }, false), 'started');
    assert.equal(agentState({ alive: true, started: true }, true), 'closing');
    assert.equal(masterState({ started: false, closing: false }), 'starting');
    assert.equal(masterState({ started: true, closing: false }), 'ready');
    assert.equal(masterState({ started: true, closing: true }), 'closing');
  });

  it('worker figures are null before the first report', () => {
    assert.deepEqual(reportFigures(undefined), {
      rss: null, heapUsed: null, elu: null, eventLoopDelayP99Ms: null, requests: null, inFlight: null,
    });
  });
});

const SAMPLE: ClusterStatus = {
  master: { pid: 100, uptimeMs: 3_723_000, state: 'ready' },
  agent: { pid: 101, state: 'started', uptimeMs: 65_000, restarts: 1, lastExit: { code: 1, signal: null, at: '2026-01-01T00:00:00.000Z' } },
  workers: [
    { id: 1, pid: 102, state: 'listening', uptimeMs: 5000, restarts: 0, lastExit: null, rss: 52_428_800, heapUsed: 7_340_032, elu: 0.125, eventLoopDelayP99Ms: 1.234, requests: 42, inFlight: 3 },
    { id: 3, pid: 104, state: 'starting', uptimeMs: 200, restarts: 2, lastExit: { code: null, signal: 'SIGKILL', at: '2026-01-01T00:00:00.000Z' }, rss: null, heapUsed: null, elu: null, eventLoopDelayP99Ms: null, requests: null, inFlight: null },
  ],
};

describe('egg-clutch status', () => {
  it('prints the master, the agent and each worker as rows', () => {
    const rows = statusRows(SAMPLE);
    assert.deepEqual(rows.map(r => r[0]), ['master', 'agent', 'app#1', 'app#3']);
    assert.deepEqual(rows[0]!.slice(0, 4), ['master', '100', 'ready', '1h']);
    assert.deepEqual(rows[1]!.slice(1, 6), ['101', 'started', '1m', '1', 'code 1']);
    assert.deepEqual(rows[2], ['app#1', '102', 'listening', '5s', '0', '-', '50.0mb', '7.0mb', '13%', '1.2ms', '42', '3']);
    assert.deepEqual(rows[3]!.slice(4), ['2', 'SIGKILL', '-', '-', '-', '-', '-', '-']);
    const table = formatStatusTable(SAMPLE);
    const lines = table.split('\n');
    assert.equal(lines.length, 2 + 1 + 4 + 1, 'borders, header, four rows');
    assert.equal(new Set(lines.map(l => l.length)).size, 1, 'every line as wide as the others');
    assert.match(lines[1]!, /│ name +│ pid +│ state +│ uptime │/);
  });

  it('formats durations and sizes', () => {
    assert.equal(formatDuration(59_999), '59s');
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(2 * 3600_000), '2h');
    assert.equal(formatDuration(3 * 86_400_000), '3d');
    assert.equal(formatDuration(null), '-');
    assert.equal(formatBytes(2048), '2.0kb');
    assert.equal(formatBytes(1024 ** 3 * 1.5), '1.50gb');
  });

  it('takes the port and host from flags, else the environment; 0.0.0.0 is reached on loopback', () => {
    assert.deepEqual(parseStatusArgs(['--port', '7002'], {}), { port: 7002, host: '127.0.0.1', json: false, timeoutMs: 3000 });
    assert.deepEqual(parseStatusArgs(['--host=10.0.0.2', '--json'], { EGG_CLUSTER_STATUS_PORT: '7010' }),
      { port: 7010, host: '10.0.0.2', json: true, timeoutMs: 3000 });
    assert.equal(parseStatusArgs([], { EGG_CLUSTER_STATUS_PORT: '7010', EGG_CLUSTER_STATUS_HOST: '0.0.0.0' }).host, '127.0.0.1');
    assert.throws(() => parseStatusArgs([], {}), (e: Error) => e instanceof UsageError && /--port N .*EGG_CLUSTER_STATUS_PORT/.test(e.message));
    assert.throws(() => parseStatusArgs(['--port', 'abc'], {}), /--port must be a port number from 1 to 65535, got "abc"/);
    assert.throws(() => parseStatusArgs(['--port'], {}), /--port needs a value/);
    assert.throws(() => parseStatusArgs(['--port', '1', '--verbose'], {}), /unknown argument "--verbose"/);
  });

  it('exit codes: 2 for usage errors, 1 when no master answers', async () => {
    const out: string[] = [];
    const err: string[] = [];
    assert.equal(await main(['stats'], {}, t => out.push(t), t => err.push(t)), 2);
    assert.match(err.join(''), /unknown command "stats"/);
    assert.equal(await main(['status'], {}, t => out.push(t), t => err.push(t)), 2);
    // port 1 on loopback: nothing listens there for an unprivileged test
    assert.equal(await main(['status', '--port', '1', '--timeout', '2000'], {}, t => out.push(t), t => err.push(t)), 1);
    assert.match(err.join(''), /cannot read the status of http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
  });
});
