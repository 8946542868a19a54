/**
 * Chaos, sticky mode: under load from many client IPs, SIGKILL app workers again and again
 * for about 10 s. The master owns every socket until a worker acknowledges it, so no
 * connection may hang: requests fail only when the worker that had taken them dies.
 * Figures go to the test output (t.diagnostic).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { test } from 'node:test';
import { assertGone, fakeApp, freePort, isAlive, runCluster, useLeakGuard } from '../helpers/run_cluster.js';

useLeakGuard();

const WORKERS = 2;
const CONCURRENCY = 16;
const RUN_MS = 10_000;
/** Far above the normal latency: a request without an answer by then hangs. */
const HUNG_MS = 8000;

type Kind = 'ok' | 'failed' | 'hung';

function request(port: number, ip: string): Promise<{ kind: Kind; code?: string }> {
  return new Promise(resolve => {
    let settled = false;
    const finish = (kind: Kind, code?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ kind, code });
    };
    // 1 ms of work per request keeps the workers reading their channels a little late
    const req = http.get({
      host: '127.0.0.1', port, path: '/?busy=1', agent: false, localAddress: ip, headers: { connection: 'close' },
    }, res => {
      res.resume();
      res.on('end', () => finish(res.statusCode === 200 ? 'ok' : 'failed', res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`));
      res.on('error', (err: NodeJS.ErrnoException) => finish('failed', err.code ?? err.message));
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish('failed', err.code ?? err.message));
    const timer = setTimeout(() => {
      finish('hung');
      req.destroy();
    }, HUNG_MS);
  });
}

test('sticky: kill -9 app workers again and again under load: no connection hangs', { timeout: 120_000 }, async t => {
  const port = await freePort();
  const run = runCluster(fakeApp('s-busy', {
    workers: WORKERS, port, sticky: true, env: 'prod', restartPolicy: { baseDelayMs: 100, maxDelayMs: 400 },
  }));
  await run.ready(30_000);

  let stop = false;
  const stats = { ok: 0, failed: 0, hung: 0, errors: new Map<string, number>() };
  const progress = new EventEmitter();
  const loops = Array.from({ length: CONCURRENCY }, async (_, loop) => {
    for (let i = 0; !stop; i++) {
      // 64 client IPs: both workers get clients, and each keeps its own
      const { kind, code } = await request(port, `127.0.0.${1 + ((loop * 7 + i) % 64)}`);
      stats[kind]++;
      if (code) stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
      progress.emit('response');
    }
  });
  /** Resolves once `count` more requests succeeded (the cluster serves again), or at the timeout. */
  const served = (count: number, timeoutMs: number): Promise<void> => new Promise(resolve => {
    const target = stats.ok + count;
    const done = (): void => {
      clearTimeout(timer);
      progress.removeListener('response', check);
      resolve();
    };
    const check = (): void => {
      if (stats.ok >= target) done();
    };
    const timer = setTimeout(done, timeoutMs);
    progress.on('response', check);
  });

  const killed: number[] = [];
  const started = Date.now();
  try {
    await served(50, 10_000);
    while (Date.now() - started < RUN_MS) {
      const alive = run.appPids.filter(pid => !killed.includes(pid) && isAlive(pid));
      const victim = alive[Math.floor(Math.random() * alive.length)]!;
      const mark = run.mark('stdout');
      process.kill(victim, 'SIGKILL');
      killed.push(victim);
      // its replacement listens, and the cluster serves a few more before the next kill
      await run.waitForOutput(/app_worker#\d+:\d+ started at/, 20_000, { stream: 'stdout', since: mark });
      await served(30, 10_000);
    }
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  t.diagnostic(`${killed.length} SIGKILLs in ${seconds} s, ${CONCURRENCY} clients: requests ${stats.ok} ok, ${stats.failed} failed `
    + `(${JSON.stringify(Object.fromEntries(stats.errors))}), ${stats.hung} hung`);
  assert.equal(stats.hung, 0, `${stats.hung} connections got no answer in ${HUNG_MS} ms`);
  assert.ok(killed.length >= 3, `only ${killed.length} kills`);
  assert.ok(stats.ok > 0);
  // the master always listens and always has a live worker: a failure is a connection the
  // killed worker had taken (reset), never a refusal
  for (const code of stats.errors.keys()) assert.match(code, /^(ECONNRESET|EPIPE|socket hang up)$/, `failure: ${code}`);
  await assertGone(killed, 2000);
  assert.ok(isAlive(run.pid), 'the master is alive');
});
