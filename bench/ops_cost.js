'use strict';
/**
 * What the status server costs (issue 10), as figures, never asserted:
 * - the master's VmRSS once ready, with options.status unset and set (unset must stay within
 *   ±1 MiB of a build without src/ops: run this script on both builds to compare);
 * - an idle app worker's CPU (utime + stime from /proc) over `seconds`, with its report loop
 *   off (status unset) and on: the difference is the report's cost, in % of one core.
 *
 *   npm run build && node bench/ops_cost.js [runs=3] [seconds=20]
 */
const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { detectPort } = require('detect-port');

const root = path.join(__dirname, '..');
const runs = Number(process.argv[2] || 3);
const seconds = Number(process.argv[3] || 20);
const CLK_TCK = 100;
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const rssKiB = pid => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const cpuMs = pid => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK;
};
const median = list => [...list].sort((a, b) => a - b)[list.length >> 1];

async function run(status, measure) {
  const port = await detectPort();
  const options = {
    baseDir: path.join(root, 'test/fixtures/apps/basic'), framework: path.join(root, 'test/fixtures/framework'), workers: 1, port,
    ...(status ? { status: { port: await detectPort() } } : {}),
  };
  const child = fork(path.join(root, 'test/fixtures/start/start.js'), [JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise(resolve => child.on('message', m => m.action === 'egg-ready' && resolve()));
  const workerPid = await new Promise((resolve, reject) => http.get(`http://127.0.0.1:${port}/`, res => {
    let body = '';
    res.on('data', chunk => { body += chunk; });
    res.on('end', () => resolve(JSON.parse(body).pid));
  }).on('error', reject));
  await sleep(2000); // settle after the start
  const value = await measure(child.pid, workerPid);
  child.kill('SIGTERM');
  await new Promise(resolve => child.on('exit', resolve));
  return value;
}

(async () => {
  const rss = { off: [], on: [] };
  const cpu = { off: [], on: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of ['off', 'on']) {
      rss[mode].push(await run(mode === 'on', async masterPid => rssKiB(masterPid)));
      cpu[mode].push(await run(mode === 'on', async (_, workerPid) => {
        const before = cpuMs(workerPid);
        const t = Date.now();
        await sleep(seconds * 1000);
        return (cpuMs(workerPid) - before) / (Date.now() - t) * 100;
      }));
    }
  }
  console.log(`master VmRSS once ready (KiB, median of ${runs}): status unset ${median(rss.off)}, set ${median(rss.on)}`);
  console.log(`idle app worker CPU over ${seconds} s (% of one core, median of ${runs}): report off ${median(cpu.off).toFixed(3)}, `
    + `on ${median(cpu.on).toFixed(3)}; the report costs ${(median(cpu.on) - median(cpu.off)).toFixed(3)} points`);
})();
