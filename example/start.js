'use strict';

// Starts the bundled egg 3 example app with egg-clutch:
//
//   npm run example            # builds lib/ first, then runs this file
//   WORKERS=4 PORT=8080 node example/start.js
//
// then open http://127.0.0.1:7001/ and http://127.0.0.1:7001/agent
// The master logs when the cluster is up; Ctrl-C shuts it down gracefully.
const path = require('node:path');
const { startCluster } = require('..');

startCluster({
  baseDir: path.join(__dirname, 'app'),
  workers: Number(process.env.WORKERS || 2),
  port: Number(process.env.PORT || 7001),
});
