// egg 3 + egg-bin dev on egg-clutch: serves the app, reloads the worker on a file change
// (egg-development's agent sends `reload-worker` to the master), Ctrl-C stops everything.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  EGG3_APP, assertGroupGone, assertInstalled, bin, freePort, get, groupMembers, killGroup, removeTmpHomes, start,
  tmpHome, toolEnv, waitUntil, type Proc,
} from './_helpers.js';

const CONTROLLER = path.join(EGG3_APP, 'app/controller/home.js');
const ORIGINAL_LINE = "const TEXT = 'egg3 compat';";

let dev: Proc | undefined;
let original: string | undefined;

before(() => {
  assertInstalled(EGG3_APP, 'egg-cluster');
  original = fs.readFileSync(CONTROLLER, 'utf8');
  assert.ok(original.includes(ORIGINAL_LINE), `${CONTROLLER} must contain ${ORIGINAL_LINE}`);
});

after(async () => {
  // whatever happened: put the controller back and leave no process behind
  if (original !== undefined && fs.readFileSync(CONTROLLER, 'utf8') !== original) fs.writeFileSync(CONTROLLER, original);
  if (dev && groupMembers(dev.pid).length) {
    killGroup(dev.pid, 'SIGKILL');
    await assertGroupGone(dev.pid, 5000, 'egg-bin dev (after hook)');
  }
});
after(() => removeTmpHomes());

test('egg-bin dev serves the app, reloads workers on a file change, and Ctrl-C stops every process', { timeout: 90_000 }, async t => {
  const port = await freePort();
  dev = start(bin(EGG3_APP, 'egg-bin'), ['dev', `--port=${port}`, '--workers=1'], {
    cwd: EGG3_APP,
    env: toolEnv(tmpHome('dev')),
  });
  const url = `http://127.0.0.1:${port}/`;

  await t.test('starts and serves GET /', async () => {
    await dev!.waitFor(new RegExp(`\\[master\\] egg started on http://127\\.0\\.0\\.1:${port} \\(\\d+ms\\)`), 60_000);
    const res = await get(url);
    assert.equal(res.status, 200);
    assert.match(res.body, /^egg3 compat \(pid \d+\)$/);
    const agent = await get(`${url}agent`);
    assert.equal(agent.status, 200, agent.body);
  });

  await t.test('a changed controller reloads the worker: GET / returns the new text', async () => {
    const before = await get(url);
    const oldPid = before.body.match(/pid (\d+)/)![1];
    const marker = `egg3 compat reloaded ${Date.now()}`;
    const from = dev!.output().length;
    try {
      fs.writeFileSync(CONTROLLER, original!.replace(ORIGINAL_LINE, `const TEXT = '${marker}';`));
      // egg-development (in the agent) sees the change and asks the master to reload
      await dev!.waitFor(/reload worker because .*home\.js/, 30_000, from);
      const res = await waitUntil(async () => {
        const r = await get(url).catch(() => undefined);
        return r && r.status === 200 && r.body.startsWith(marker) ? r : undefined;
      }, 30_000, `GET / to answer "${marker}"`);
      assert.notEqual(res.body.match(/pid (\d+)/)![1], oldPid, 'a new app worker answers');
    } finally {
      fs.writeFileSync(CONTROLLER, original!);
    }
    // the restore is a second change: wait for that reload too, so the shutdown below does not race it
    await waitUntil(async () => {
      const r = await get(url).catch(() => undefined);
      return r && r.status === 200 && /^egg3 compat \(pid \d+\)$/.test(r.body);
    }, 30_000, 'GET / to answer the original text again');
    const agent = await get(`${url}agent`);
    assert.equal(agent.status, 200, `agent round trip after reload: ${agent.body}`);
  });

  await t.test('SIGINT to the process group (Ctrl-C) stops egg-bin, master, agent and worker', async st => {
    assert.ok(groupMembers(dev!.pid).length >= 3, 'egg-bin, master, agent and worker run in the group');
    killGroup(dev!.pid, 'SIGINT');
    const exit = await dev!.waitExit(15_000);
    await assertGroupGone(dev!.pid, 10_000, 'egg-bin dev');
    assert.match(dev!.output(), /\[master\] exit with code:0/);
    st.diagnostic(`egg-bin exit: ${JSON.stringify(exit)}`);
    assert.ok(exit.code === 0 || exit.signal === 'SIGINT', `egg-bin exit: ${JSON.stringify(exit)}`);
  });
});
