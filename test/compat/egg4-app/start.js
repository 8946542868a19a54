'use strict';

// Starts the egg 4 app the way egg 4 documents it: egg re-exports @eggjs/cluster's
// startCluster (here: egg-clutch, swapped in by package.json `overrides`).
//
//   PORT=7001 WORKERS=2 node start.js
//
// The master sends `egg-ready` to this process's parent once every worker listens, and the
// promise of startCluster resolves at the same moment (@eggjs/cluster 3: `await master.ready()`).
const { startCluster } = require('egg');

async function main() {
  await startCluster({
    baseDir: __dirname,
    workers: Number(process.env.WORKERS || 1),
    port: Number(process.env.PORT || 7001),
  });
  console.log('[start.js] startCluster resolved');
}

main().catch(err => {
  console.error('[start.js] startCluster rejected: %s', err && err.stack || err);
  process.exit(1);
});
