'use strict';
/**
 * Process plumbing of the benchmark: start a master (bench/start_master.js) in its own process
 * group with an IPC channel, as egg-scripts does; timestamp its output lines and IPC messages;
 * read RSS and CPU time from /proc; and make sure nothing outlives a run (the whole group is
 * SIGKILLed when a run ends, and on any exit of the benchmark).
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');

const START_MASTER = path.join(__dirname, '..', 'start_master.js');
const live = new Set();

const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function killAll() {
  for (const c of live) killGroup(c.child.pid);
}
process.on('exit', killAll);
for (const signal of [ 'SIGINT', 'SIGTERM', 'SIGHUP' ]) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** A free loopback port, asked of the kernel. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

class Cluster {
  /** `impl`: a folder whose main exports startCluster(options) (floor, egg-cluster, egg-clutch). */
  constructor(impl, options, env) {
    this.t0 = now();
    this.child = spawn(process.execPath, [ START_MASTER, impl, JSON.stringify(options) ], {
      stdio: [ 'ignore', 'pipe', 'pipe', 'ipc' ], detached: true, env,
    });
    live.add(this);
    this.events = []; // { t, line } | { t, message }
    this.waiters = new Set();
    this.exitInfo = undefined;
    const onLine = line => this.#push({ t: now() - this.t0, line });
    readline.createInterface({ input: this.child.stdout }).on('line', onLine);
    readline.createInterface({ input: this.child.stderr }).on('line', onLine);
    this.child.on('message', message => this.#push({ t: now() - this.t0, message }));
    this.exited = new Promise(resolve => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { t: now(), code, signal };
        resolve(this.exitInfo);
        for (const w of this.waiters) w.check();
      });
    });
  }

  #push(event) {
    this.events.push(event);
    for (const w of this.waiters) w.check();
  }

  /** The first event (after `since`, ms from fork) that `test` maps to a value; rejects on exit or timeout. */
  waitFor(test, { since = 0, timeout = 60_000, what = 'event' } = {}) {
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          for (const e of this.events) {
            if (e.t < since) continue;
            const value = test(e);
            if (value !== undefined && value !== null && value !== false) return done(null, { t: e.t, value });
          }
          if (this.exitInfo) done(new Error(`master exited (${this.exitInfo.code}, ${this.exitInfo.signal}) before ${what}:\n${this.tail()}`));
        },
      };
      const timer = setTimeout(() => done(new Error(`timeout waiting for ${what}:\n${this.tail()}`)), timeout);
      const done = (err, value) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (err) reject(err);
        else resolve(value);
      };
      this.waiters.add(waiter);
      waiter.check();
    });
  }

  waitReady(timeout) {
    return this.waitFor(e => e.message && e.message.action === 'egg-ready', { timeout, what: 'egg-ready' });
  }

  /** `[master] agent_worker#N:PID started (…ms)`: the three managers log this line. */
  waitAgentStarted(opts = {}) {
    return this.waitFor(e => {
      const m = e.line && /agent_worker#\d+:(\d+) started/.exec(e.line);
      return m && (!opts.notPid || Number(m[1]) !== opts.notPid) ? Number(m[1]) : undefined;
    }, { ...opts, what: 'agent started' });
  }

  tail(n = 15) {
    return this.events.filter(e => e.line).slice(-n).map(e => `  ${e.line}`).join('\n');
  }

  /** SIGTERM; resolves with ms to the master's exit. The group is SIGKILLed afterwards. */
  async close(timeout = 15_000) {
    const t = now();
    if (!this.exitInfo) this.child.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(this.child.pid), timeout);
    const info = await this.exited;
    clearTimeout(timer);
    this.dispose();
    return { ms: info.t - t, code: info.code, signal: info.signal };
  }

  dispose() {
    killGroup(this.child.pid);
    live.delete(this);
  }
}

function readProc(pid, file) {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readProc(pid, 'status'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Private memory (USS: Private_Clean + Private_Dirty of smaps_rollup), MiB. RSS also counts the
 * pages of the node binary a process has touched, which all node processes share (one run
 * measured ~4 MiB of them, TurboFan's code, in a process that optimized one hot function): USS
 * is what one more process of this kind costs the machine.
 */
function ussMiB(pid) {
  const text = readProc(pid, 'smaps_rollup');
  let kb = 0;
  for (const m of text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+)/gm)) kb += Number(m[1]);
  return kb ? kb / 1024 : NaN;
}

/** CPU time (user + system) of a process in microseconds. */
function cpuMicros(pid) {
  const stat = readProc(pid, 'stat');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // USER_HZ = 100
}

/** The master's children by role, from /proc (the entries are named *agent_worker* / *app_worker*). */
function children(pid) {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  const pids = tasks.flatMap(t => readProc(pid, `task/${t}/children`).trim().split(/\s+/).filter(Boolean).map(Number));
  const out = { agent: [], app: [] };
  for (const p of pids) {
    const cmd = readProc(p, 'cmdline');
    if (cmd.includes('agent_worker')) out.agent.push(p);
    else if (cmd.includes('app_worker')) out.app.push(p);
  }
  return out;
}

/** GET on loopback; resolves { status, body } or rejects (after `timeout` ms without activity). */
function get(port, urlPath, headers = {}, timeout = 10_000, onResponse = undefined) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers, timeout }, res => {
      if (onResponse) onResponse(res);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', d => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
  });
}

async function getJSON(port, urlPath) {
  const { status, body } = await get(port, urlPath);
  if (status !== 200) throw new Error(`GET ${urlPath}: ${status} ${body}`);
  return JSON.parse(body);
}

module.exports = { Cluster, freePort, rssMiB, ussMiB, cpuMicros, children, get, getJSON, now, sleep, killAll };
