'use strict';
/**
 * Startup / shutdown / memory benchmark: egg-clutch against egg-cluster 2.5 (the copy egg 3
 * installs as its own dependency), same topology, same app, same machine.
 *
 *   npm run build && node bench/startup.js [runs=5] [workers=2]
 *
 * For each run it forks a master with an IPC channel (as egg-scripts does) and measures:
 * - ready:    fork -> `egg-ready` at the parent
 * - rss:      the master's VmRSS once ready (/proc)
 * - close:    SIGTERM -> master exit
 * Prints the median of each. Nothing here is asserted: figures, not tests.
 */
const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { detectPort } = require('detect-port');

const root = path.join(__dirname, '..');
const runs = Number(process.argv[2] || 5);
const workers = Number(process.argv[3] || 2);
const impls = {
  'egg-clutch': root,
  'egg-cluster 2.5': path.join(root, 'node_modules', 'egg-cluster'),
};
const apps = {
  'fake framework': { baseDir: path.join(root, 'test/fixtures/apps/basic'), framework: path.join(root, 'test/fixtures/framework') },
  'egg 3 example': { baseDir: path.join(root, 'example/app') },
};

function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

function once(impl, options) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = fork(path.join(__dirname, 'start_master.js'), [impl, JSON.stringify(options)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: [],
      env: { ...process.env, EGG_SERVER_ENV: 'prod', NODE_ENV: 'production' },
    });
    let stderr = '';
    child.stderr.on('data', d => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timeout; stderr:\n${stderr}`)); }, 60_000);
    let ready;
    let rss;
    let closeStart;
    child.on('message', msg => {
      if (msg && msg.action === 'egg-ready' && ready === undefined) {
        ready = Number(process.hrtime.bigint() - t0) / 1e6;
        rss = rssMiB(child.pid);
        closeStart = process.hrtime.bigint();
        child.kill('SIGTERM');
      }
    });
    child.on('exit', code => {
      clearTimeout(timer);
      if (ready === undefined) return reject(new Error(`exited ${code} before ready; stderr:\n${stderr}`));
      resolve({ ready, rss, close: Number(process.hrtime.bigint() - closeStart) / 1e6, code });
    });
  });
}

const median = list => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

(async () => {
  console.log(`node ${process.version}, ${require('node:os').cpus().length} CPUs, ${workers} app workers, median of ${runs} runs`);
  console.log('app              | manager          | ready ms | master RSS MiB | close ms');
  for (const [appName, appOptions] of Object.entries(apps)) {
    for (const [implName, impl] of Object.entries(impls)) {
      const results = [];
      for (let i = 0; i < runs; i++) {
        const port = await detectPort();
        results.push(await once(impl, { ...appOptions, workers, port }));
      }
      const row = [appName.padEnd(16), implName.padEnd(16),
        median(results.map(r => r.ready)).toFixed(0).padStart(8),
        median(results.map(r => r.rss)).toFixed(1).padStart(14),
        median(results.map(r => r.close)).toFixed(0).padStart(8)];
      console.log(row.join(' | '));
    }
  }
})().catch(err => {
  console.error(err);
  process.exit(1);
});
