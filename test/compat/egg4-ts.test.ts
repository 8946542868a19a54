// An egg 4 TypeScript app (ESM, "type": "module", @eggjs/tsconfig) on egg-clutch (swapped in for
// @eggjs/cluster), run the way its users run it. @eggjs/bin 7 puts its TypeScript hook in
// NODE_OPTIONS (for an ESM app: `--import file://…/ts-node/register` plus `--loader ts-node/esm`),
// so the master, the agent and every app worker boot behind an asynchronous preload: the case in
// which workers used to lose their options message and hang until startTimeout (issue 7 §1).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  EGG4_TS_APP, assertGroupGone, assertInstalled, assertPidsGone, bin, freePort, get, groupMembers, killGroup,
  removeTmpHomes, start, tmpHome, toolEnv, waitUntil, type Proc,
} from './_helpers.js';

const CONTROLLER = path.join(EGG4_TS_APP, 'app/controller/home.ts');
const ORIGINAL_LINE = "const TEXT = 'egg4 ts compat';";
const procs: Proc[] = [];
let original: string | undefined;

before(() => {
  assertInstalled(EGG4_TS_APP, '@eggjs/cluster');
  original = fs.readFileSync(CONTROLLER, 'utf8');
  assert.ok(original.includes(ORIGINAL_LINE), `${CONTROLLER} must contain ${ORIGINAL_LINE}`);
});

after(async () => {
  // whatever happened: put the controller back and leave no process behind
  if (original !== undefined && fs.readFileSync(CONTROLLER, 'utf8') !== original) fs.writeFileSync(CONTROLLER, original);
  for (const p of procs) {
    if (groupMembers(p.pid).length) {
      killGroup(p.pid, 'SIGKILL');
      await assertGroupGone(p.pid, 5000, `${p.child.spawnfile} (after hook)`);
    }
  }
});
after(() => removeTmpHomes());


test('egg-bin test: a TypeScript mocha test with @eggjs/mock 6 mm.cluster() (HTTP + app -> agent -> app messenger)', { timeout: 180_000 }, async t => {
  const port = await freePort();
  const run = start(bin(EGG4_TS_APP, 'egg-bin'), ['test', '--no-mochawesome'], {
    cwd: EGG4_TS_APP,
    env: toolEnv(tmpHome('egg4-ts-test'), { COMPAT_PORT: String(port) }),
  });
  procs.push(run);
  const t0 = Date.now();
  const exit = await run.waitExit(170_000);
  const out = run.output();
  t.diagnostic(`egg-bin test took ${Date.now() - t0} ms: ${out.split('\n').filter(l => /[✔✓]|passing|failing|pending/.test(l)).map(l => l.trim()).join(' | ')}`);
  assert.deepEqual(exit, { code: 0, signal: null }, `egg-bin test failed:\n${out}`);
  assert.match(out, /4 passing/);
  assert.doesNotMatch(out, /failing/);
  // mm.cluster()'s master, agent and worker were closed by app.close(): nothing left in the group
  await assertGroupGone(run.pid, 10_000, 'egg-bin test');
});

test('egg-bin dev: serves, reloads on a change under app/, and Ctrl-C leaves no process', { timeout: 180_000 }, async t => {
  const port = await freePort();
  const dev = start(bin(EGG4_TS_APP, 'egg-bin'), ['dev', `--port=${port}`], {
    cwd: EGG4_TS_APP,
    env: toolEnv(tmpHome('egg4-ts-dev')),
  });
  procs.push(dev);
  const url = `http://127.0.0.1:${port}/`;
  // every process seen during the run (egg-bin dev logs worker starts at DEBUG, so they come
  // from the process group and from the pids the app reports), checked one by one at the end
  const seen = new Set<number>();
  const sample = (): void => {
    for (const p of groupMembers(dev.pid)) seen.add(p.pid);
  };
  const servedBy = (body: string): number => Number(body.match(/pid (\d+)/)![1]);

  await t.test('starts behind the TypeScript hook and serves GET / and the agent round trip', async st => {
    const t0 = Date.now();
    await dev.waitFor(new RegExp(`\\[master\\] egg started on http://127\\.0\\.0\\.1:${port} \\(\\d+ms\\)`), 120_000);
    st.diagnostic(`egg-bin dev: egg started ${Date.now() - t0} ms after spawn`);
    const res = await get(url);
    assert.equal(res.status, 200);
    assert.match(res.body, /^egg4 ts compat \(pid \d+\)$/);
    const agent = await get(`${url}agent`);
    assert.equal(agent.status, 200, agent.body);
    const body = JSON.parse(agent.body) as { worker: number; agent: number };
    assert.notEqual(body.agent, body.worker);
    seen.add(body.agent).add(body.worker).add(servedBy(res.body));
    sample();
    // the hook is where @eggjs/bin puts it: in NODE_OPTIONS of the master and, inherited, of its workers
    const master = groupMembers(dev.pid).find(p => p.args.includes('start-cluster'));
    assert.ok(master, `a start-cluster master in the group:\n${groupMembers(dev.pid).map(p => p.args).join('\n')}`);
    const env = fs.readFileSync(`/proc/${master.pid}/environ`, 'utf8').split('\0').find(e => e.startsWith('NODE_OPTIONS='));
    st.diagnostic(`master ${env}`);
    assert.match(env ?? '', /--import "?file:\/\/\S*ts-node\S*register/, 'egg-bin dev put the ts-node hook in NODE_OPTIONS as --import');
  });

  await t.test('a changed TypeScript controller reloads the worker: GET / returns the new text from a new pid', async () => {
    const before = await get(url);
    const oldPid = servedBy(before.body);
    const marker = `egg4 ts compat reloaded ${Date.now()}`;
    const from = dev.output().length;
    try {
      fs.writeFileSync(CONTROLLER, original!.replace(ORIGINAL_LINE, `const TEXT = '${marker}';`));
      // @eggjs/development (in the agent) sees the change and asks the master to reload
      await dev.waitFor(/reload worker because .*home\.ts/, 30_000, from);
      const res = await waitUntil(async () => {
        const r = await get(url).catch(() => undefined);
        return r && r.status === 200 && r.body.startsWith(marker) ? r : undefined;
      }, 90_000, `GET / to answer "${marker}"`);
      assert.notEqual(servedBy(res.body), oldPid, 'a new app worker answers');
      seen.add(servedBy(res.body));
      sample();
    } finally {
      fs.writeFileSync(CONTROLLER, original!);
    }
    // the restore is a second change: wait for that reload too, so the shutdown below does not race it
    const restored = await waitUntil(async () => {
      const r = await get(url).catch(() => undefined);
      return r && r.status === 200 && /^egg4 ts compat \(pid \d+\)$/.test(r.body) ? r : undefined;
    }, 90_000, 'GET / to answer the original text again');
    seen.add(servedBy(restored.body));
    const agent = await get(`${url}agent`);
    assert.equal(agent.status, 200, `agent round trip after reload: ${agent.body}`);
    sample();
  });

  await t.test('SIGINT to the process group (Ctrl-C) stops egg-bin, master, agent and every app worker', async st => {
    sample();
    const pids = [...seen];
    st.diagnostic(`pids to be gone (egg-bin, master, agent, 3 generations of app workers): ${pids.join(', ')}`);
    // egg-bin + master + agent + the first worker + the workers of the two reloads
    assert.ok(pids.length >= 6, `at least 6 processes were seen: ${pids.join(', ')}`);
    killGroup(dev.pid, 'SIGINT');
    const exit = await dev.waitExit(30_000);
    await assertGroupGone(dev.pid, 15_000, 'egg-bin dev');
    await assertPidsGone(pids, 5000, 'egg-bin dev (every process it started, agent and app workers included)');
    assert.match(dev.output(), /\[master\] exit with code:0/);
    st.diagnostic(`egg-bin exit: ${JSON.stringify(exit)}`);
    assert.ok(exit.code === 0 || exit.signal === 'SIGINT', `egg-bin exit: ${JSON.stringify(exit)}`);
  });
});
