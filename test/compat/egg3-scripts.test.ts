// egg 3 + egg-scripts 3 on egg-clutch: `start --daemon`, serve, `stop --title`.
import { after, before, test } from 'node:test';
import { EGG3_APP, assertInstalled, removeTmpHomes } from './_helpers.js';
import { EGG3_SCRIPTS as egg3, cleanupTitle, startServeStop, stopFindsWorkersOfHungMaster } from './_scripts.js';
const titles: string[] = [];

before(() => assertInstalled(EGG3_APP, 'egg-cluster'));
after(async () => {
  for (const title of titles) await cleanupTitle(title);
});
after(() => removeTmpHomes());

test('egg-scripts start --daemon --workers=2 serves; egg-scripts stop --title leaves no process behind', { timeout: 120_000 }, async t => {
  await startServeStop(egg3, t, titles);
});

test('egg-scripts stop kills the workers of a hung master (found by egg-cluster/lib/*_worker.js + title)', { timeout: 120_000 }, async t => {
  await stopFindsWorkersOfHungMaster(egg3, t, titles);
});
