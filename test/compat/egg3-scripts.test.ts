// egg 3 + egg-scripts 3 on egg-clutch: `start --daemon`, serve, `stop --title`.
import { after, before, test } from 'node:test';
import { EGG3_APP, assertInstalled, removeTmpHomes } from './_helpers.js';
import { cleanupTitle, startServeStop, stopFindsWorkersOfHungMaster, type ScriptsCase } from './_scripts.js';

const egg3: ScriptsCase = {
  app: EGG3_APP,
  binName: 'egg-scripts',
  // egg-scripts 3.1.0 lib/cmd/stop.js: appWorkerPath: 'egg-cluster/lib/app_worker.js'
  workerPath: /node_modules\/egg-cluster\/lib\/(app|agent)_worker\.js/,
  textPattern: /^egg3 compat \(pid \d+\)$/,
};
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
