// egg 3 + egg-mock 5 `mm.cluster()` on egg-clutch, run the way an app runs its tests:
// `egg-bin test test/cluster.test.js` (mocha) inside test/compat/egg3-app.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EGG3_APP, assertGroupGone, assertInstalled, bin, freePort, groupMembers, killGroup, removeTmpHomes, start,
  tmpHome, toolEnv, type Proc,
} from './_helpers.js';

let run: Proc | undefined;

before(() => assertInstalled(EGG3_APP, 'egg-cluster'));
after(async () => {
  if (run && groupMembers(run.pid).length) {
    killGroup(run.pid, 'SIGKILL');
    await assertGroupGone(run.pid, 5000, 'egg-bin test (after hook)');
  }
});
after(() => removeTmpHomes());

test('egg-mock mm.cluster(): ready, HTTP, stdout lines, agent <-> app messenger (egg-bin test)', { timeout: 120_000 }, async t => {
  const port = await freePort();
  run = start(bin(EGG3_APP, 'egg-bin'), ['test', 'test/cluster.test.js', '--no-mochawesome'], {
    cwd: EGG3_APP,
    env: toolEnv(tmpHome('mock'), { COMPAT_PORT: String(port) }),
  });
  const exit = await run.waitExit(100_000);
  const out = run.output();
  t.diagnostic(out.split('\n').filter(l => /[✔✓]|passing|failing|pending/.test(l)).map(l => l.trim()).join(' | '));
  assert.deepEqual(exit, { code: 0, signal: null }, `egg-bin test failed:\n${out}`);
  assert.match(out, /5 passing/);
  assert.doesNotMatch(out, /failing/);
  // mm.cluster()'s master and workers were closed by app.close(): nothing left in the group
  await assertGroupGone(run.pid, 10_000, 'egg-bin test');
});
