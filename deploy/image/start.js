'use strict';

// The image's entry (deploy/Dockerfile): one egg-clutch master for the example app, as
// egg-scripts would start it, configured from the environment only:
//   WORKERS      app workers; unset = the CPUs the container may use (its cgroup's cpu.max,
//                i.e. the Kubernetes CPU limit rounded up)
//   PORT         the app port (default 7001)
//   EGG_CLUSTER_STATUS_PORT / EGG_CLUSTER_STATUS_HOST / EGG_CLUSTER_SHUTDOWN_DELAY and the
//   EGG_*_CLOSE_TIMEOUT variables are read by egg-clutch itself.
const path = require('node:path');
const { startCluster } = require('egg-clutch');

startCluster({
  baseDir: path.join(__dirname, 'example'),
  ...(process.env.WORKERS ? { workers: process.env.WORKERS } : {}),
  port: Number(process.env.PORT || 7001),
});
