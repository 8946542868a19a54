'use strict';
/**
 * Message relay benchmark: an app worker sends N messages (~250 bytes each) to the agent
 * through the master (app -> master -> agent, egg's messenger.sendToAgent), and the agent
 * reports when it has them all. egg-clutch against egg-cluster 2.5, same fake framework.
 *
 *   npm run build && node bench/messages.js [n=20000] [runs=5]
 *
 * Prints messages per second and the master's CPU time per relayed message (user + system
 * from /proc, less noisy than wall time on a small machine), medians of the runs.
 * Figures, not tests.
 */
const { fork } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { detectPort } = require('detect-port');

const root = path.join(__dirname, '..');
const n = Number(process.argv[2] || 20000);
const runs = Number(process.argv[3] || 5);
const impls = { 'egg-clutch': root, 'egg-cluster 2.5': path.join(root, 'node_modules', 'egg-cluster') };

const fs = require('node:fs');
/** CPU time (user + system) of a process in microseconds, from /proc/<pid>/stat. */
function cpuMicros(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / 100) * 1e6; // USER_HZ is 100 on Linux
}

const get = (port, p) => new Promise((resolve, reject) => {
  http.get({ port, path: p, agent: false }, res => {
    let body = '';
    res.on('data', d => { body += d; });
    res.on('end', () => resolve(JSON.parse(body)));
  }).on('error', reject);
});

async function measure(impl) {
  const port = await detectPort();
  const options = { baseDir: path.join(__dirname, 'apps', 'relay'), framework: path.join(root, 'test/fixtures/framework'), workers: 1, port };
  const child = fork(path.join(__dirname, 'start_master.js'), [impl, JSON.stringify(options)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [], env: { ...process.env, EGG_SERVER_ENV: 'prod' },
  });
  await new Promise(resolve => child.on('message', m => m && m.action === 'egg-ready' && resolve()));
  await get(port, '/relay?n=1000'); // warm up
  const rates = [];
  const cpu = [];
  for (let i = 0; i < runs; i++) {
    const before = cpuMicros(child.pid);
    const { ms } = await get(port, `/relay?n=${n}`);
    cpu.push((cpuMicros(child.pid) - before) / n);
    rates.push(n / (ms / 1000));
  }
  child.kill('SIGTERM');
  await new Promise(resolve => child.on('exit', resolve));
  const median = list => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
  return { rate: median(rates), cpu: median(cpu) };
}

(async () => {
  console.log(`node ${process.version}: ${n} messages app -> master -> agent, median of ${runs}`);
  for (const [name, impl] of Object.entries(impls)) {
    const { rate, cpu } = await measure(impl);
    console.log(`${name.padEnd(16)} ${Math.round(rate).toLocaleString('en-US').padStart(8)} messages/s  master CPU ${cpu.toFixed(1)} µs/message`);
  }
})().catch(err => {
  console.error(err);
  process.exit(1);
});
