// egg 4 on egg-clutch (swapped in for @eggjs/cluster): the app starts, serves and stops;
// `await startCluster()`, `Master` and the error classes behave as @eggjs/cluster 3.0.1's;
// @eggjs/scripts 4 (`eggctl`) starts and stops it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import util from 'node:util';
import {
  EGG4_APP, assertGroupGone, assertInstalled, freePort, get, groupMembers, killGroup, removeTmpHomes, start,
  toolEnv, tmpHome, withTimeout, type Proc,
} from './_helpers.js';
import { cleanupTitle, startServeStop, stopFindsWorkersOfHungMaster, type ScriptsCase } from './_scripts.js';

const appRequire = createRequire(path.join(EGG4_APP, 'package.json'));
const procs: Proc[] = [];
const titles: string[] = [];

before(() => assertInstalled(EGG4_APP, '@eggjs/cluster'));
after(async () => {
  for (const p of procs) {
    if (groupMembers(p.pid).length) {
      killGroup(p.pid, 'SIGKILL');
      await assertGroupGone(p.pid, 5000, 'start.js (after hook)');
    }
  }
  for (const title of titles) await cleanupTitle(title);
});
after(() => removeTmpHomes());

describe('the @eggjs/cluster API as egg 4 sees it', () => {
  // loads only egg-clutch (node_modules/@eggjs/cluster) into this process, not egg
  // typed with egg-clutch's own declarations: the installed copy is built from them
  const cluster = appRequire('@eggjs/cluster') as typeof import('../../src/index.js');

  test('node_modules/@eggjs/cluster is egg-clutch and exports what 3.0.1 exports', () => {
    assert.equal(appRequire('@eggjs/cluster/package.json').name, 'egg-clutch');
    assert.ok(util.types.isAsyncFunction(cluster.startCluster), 'startCluster is a native async function (@eggjs/mock 6 checks it)');
    assert.equal(typeof cluster.Master, 'function');
    assert.equal(typeof cluster.ClusterAgentWorkerError, 'function');
    assert.equal(typeof cluster.ClusterWorkerExceptionError, 'function');
  });

  test('egg re-exports them, from CJS and from ESM (egg 4: `export * from \'@eggjs/cluster\'`)', () => {
    const script = `
      import * as egg from 'egg';
      import * as cluster from '@eggjs/cluster';
      import { createRequire } from 'node:module';
      import util from 'node:util';
      const require = createRequire(process.cwd() + '/package.json');
      const cjsEgg = require('egg');
      const names = ['startCluster', 'Master', 'ClusterAgentWorkerError', 'ClusterWorkerExceptionError'];
      console.log(JSON.stringify({
        esm: names.filter(n => egg[n] !== undefined && egg[n] === cluster[n]),
        cjs: names.filter(n => cjsEgg[n] !== undefined && cjsEgg[n] === require('@eggjs/cluster')[n]),
        esmAsync: util.types.isAsyncFunction(egg.startCluster),
      }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: EGG4_APP, env: toolEnv(tmpHome('egg4-esm')), encoding: 'utf8' });
    const names = ['startCluster', 'Master', 'ClusterAgentWorkerError', 'ClusterWorkerExceptionError'];
    assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { esm: names, cjs: names, esmAsync: true });
  });

  test('await startCluster(invalid options) rejects (3.x: parseOptions is async)', async () => {
    const p = cluster.startCluster({ baseDir: path.join(EGG4_APP, 'does-not-exist') });
    assert.ok(p instanceof Promise);
    await assert.rejects(p, /package\.json should exist/);
  });

  test('new Master(invalid options) does not throw; master.ready() rejects (3.x)', async () => {
    let master: { ready(): Promise<void> } | undefined;
    assert.doesNotThrow(() => {
      master = new cluster.Master({ baseDir: path.join(EGG4_APP, 'does-not-exist') });
    });
    await assert.rejects(master!.ready(), /package\.json should exist/);
  });

  test('ClusterAgentWorkerError(id, workerId, status, error): fields and cause as 3.x', () => {
    const cause = new Error('boom');
    const err = new cluster.ClusterAgentWorkerError(1, 123, 'started', cause);
    assert.ok(err instanceof Error);
    assert.ok(err instanceof cluster.ClusterAgentWorkerError);
    assert.equal(err.name, 'ClusterAgentWorkerError');
    assert.equal(err.id, 1);
    assert.equal(err.workerId, 123);
    assert.equal(err.status, 'started');
    assert.equal(err.cause, cause);
    assert.match(err.message, /boom/);
  });

  test('ClusterAgentWorkerError message is 3.x\'s "Got agent worker error: <cause>"', () => {
    const err = new cluster.ClusterAgentWorkerError(1, 123, 'started', new Error('boom'));
    assert.equal(err.message, 'Got agent worker error: boom');
  });

  test('ClusterWorkerExceptionError(agent, worker): name, message and count as 3.x', () => {
    const err = new cluster.ClusterWorkerExceptionError(0, 2);
    assert.ok(err instanceof Error);
    assert.ok(err instanceof cluster.ClusterWorkerExceptionError);
    assert.equal(err.name, 'ClusterWorkerExceptionError');
    assert.equal(err.message, '[master] 0 agent and 2 worker(s) alive, exit to avoid unknown state');
    assert.deepEqual(err.count, { agent: 0, worker: 2 });
  });
});

test('egg 4 app: `await startCluster()` from egg starts, serves, and SIGTERM stops every process', { timeout: 90_000 }, async t => {
  const port = await freePort();
  const proc = start(process.execPath, ['start.js'], {
    cwd: EGG4_APP,
    env: toolEnv(tmpHome('egg4-start'), { PORT: String(port), WORKERS: '2' }),
    ipc: true,
  });
  procs.push(proc);
  const ready = await withTimeout(new Promise<{ action: string; data: Record<string, unknown> }>(resolve => {
    proc.child.on('message', (msg: { action?: string; data?: Record<string, unknown> }) => {
      if (msg && msg.action === 'egg-ready') resolve(msg as { action: string; data: Record<string, unknown> });
    });
  }), 60_000, `egg-ready from the egg 4 master; output:\n${proc.output()}`);
  t.diagnostic(`egg-ready: ${JSON.stringify(ready.data)}`);
  assert.equal(ready.data.port, port);
  assert.equal(ready.data.protocol, 'http');
  assert.equal(ready.data.address, `http://127.0.0.1:${port}`);
  await proc.waitFor(/\[start\.js\] startCluster resolved/, 10_000);
  assert.match(proc.output(), /\[master\] egg started on http:\/\/127\.0\.0\.1:\d+ \(\d+ms\)/);
  assert.match(proc.output(), /\[master\] egg version 4\.\d+\.\d+/);

  const res = await get(`http://127.0.0.1:${port}/`);
  assert.equal(res.status, 200);
  assert.match(res.body, /^egg4 compat \(pid \d+\)$/);
  const agent = await get(`http://127.0.0.1:${port}/agent`);
  assert.equal(agent.status, 200, agent.body);
  const body = JSON.parse(agent.body) as { worker: number; agent: number };
  assert.notEqual(body.agent, body.worker);

  assert.equal(groupMembers(proc.pid).length, 4, 'master, agent and 2 app workers');
  proc.child.kill('SIGTERM');
  const exit = await proc.waitExit(20_000);
  assert.deepEqual(exit, { code: 0, signal: null }, proc.output());
  assert.match(proc.output(), /\[master\] exit with code:0/);
  assert.equal(proc.stderr(), '', 'nothing on stderr');
  await assertGroupGone(proc.pid, 10_000, 'the egg 4 cluster');
});

const egg4: ScriptsCase = {
  app: EGG4_APP,
  binName: 'eggctl',
  // @eggjs/scripts 4.0.0 dist/commonjs/commands/stop.js:
  //   appWorkerPath: /@eggjs[\/\\]cluster[\/\\]dist[\/\\](commonjs|esm)[\/\\]app_worker\.js/i
  workerPath: /@eggjs[/\\]cluster[/\\]dist[/\\](commonjs|esm)[/\\](app|agent)_worker\.js/i,
  textPattern: /^egg4 compat \(pid \d+\)$/,
};

test('@eggjs/scripts: eggctl start --daemon --workers=2 serves; eggctl stop --title leaves no process behind', { timeout: 120_000 }, async t => {
  await startServeStop(egg4, t, titles);
});

test('@eggjs/scripts: eggctl stop kills the workers of a hung master (found by @eggjs/cluster/dist/(commonjs|esm)/*_worker.js + title)', {
  timeout: 120_000,
}, async t => {
  await stopFindsWorkersOfHungMaster(egg4, t, titles);
});
