'use strict';
/**
 * `npm run bench`: egg-clutch side by side with egg-cluster 2.5 (the copy egg 3 installs) and
 * the floor (bench/floor: the least a manager with the same topology and protocol can cost),
 * in one run, on this machine. Prints medians and ratios (÷ floor). Figures, not tests: nothing
 * here is asserted.
 *
 *   npm run bench                 # build, then the full run (6-10 min on 2 cores)
 *   node bench/run.js --quick     # one round of everything, smaller counts: a smoke test
 *   node bench/run.js --only=startup,recovery   # sections: startup egg3 recovery kills shutdown messenger sticky ops reload
 *   node bench/run.js --rounds=9  # rounds per measurement (default 7; egg 3 startup and the heavier sections use 3 at most)
 *   node bench/run.js --early-fork  # adds a prototype column: the floor forking app workers while the agent boots
 *
 * Loopback only. Every master runs in its own process group, SIGKILLed when its run ends, and
 * every run is bounded in time.
 */
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const {
  Cluster, freePort, rssMiB, ussMiB, cpuMicros, children, get, getJSON, now, sleep,
} = require('./harness/cluster');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const arg = name => (args.find(a => a.startsWith(`--${name}=`)) || '').split('=')[1];
const only = arg('only') ? arg('only').split(',') : undefined;
const rounds = Number(arg('rounds') || (quick ? 1 : 7));
const DEADLINE_MS = quick ? 5 * 60_000 : 20 * 60_000;
const SECTIONS = [ 'startup', 'egg3', 'recovery', 'kills', 'shutdown', 'messenger', 'sticky', 'ops', 'reload' ];
const known = [ '--quick', '--early-fork' ];
for (const a of args) {
  if (!known.includes(a) && !/^--(only|rounds)=/.test(a)) {
    console.error(`bench: unknown argument "${a}"; use --quick, --early-fork, --rounds=N, --only=${SECTIONS.join(',')}`);
    process.exit(2);
  }
}
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`bench: --rounds must be a positive integer, got "${arg('rounds')}"`);
  process.exit(2);
}
for (const section of only ?? []) {
  if (!SECTIONS.includes(section)) {
    console.error(`bench: --only: unknown section "${section}"; sections are ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
}

/** [name, package folder, options added for it] */
const MANAGERS = [
  [ 'floor', path.join(__dirname, 'floor'), {} ],
  [ 'egg-clutch', root, {} ],
  [ 'egg-cluster 2.5', path.join(root, 'node_modules', 'egg-cluster'), {} ],
];
// a prototype for the write-up of issue 9: the floor forking app workers while the agent boots
if (args.includes('--early-fork')) MANAGERS.push([ 'floor, early fork', path.join(__dirname, 'floor'), { earlyFork: true } ]);
const NAMES = MANAGERS.map(m => m[0]);
const EXTRA = Object.fromEntries(MANAGERS.map(m => [ m[0], m[2] ]));
const FAKE = { baseDir: path.join(__dirname, 'apps', 'fake'), framework: path.join(root, 'test', 'fixtures', 'framework') };
const EGG3 = { baseDir: path.join(root, 'example', 'app') };
const eggHome = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-bench-'));
const ENV = {
  ...process.env, EGG_SERVER_ENV: 'prod', NODE_ENV: 'production', EGG_HOME: eggHome,
  // egg 3 writes its logs under EGG_HOME in prod; keep the repo clean
};
delete ENV.NODE_OPTIONS;

/** results[metric][manager] = [values] */
const results = {};
function record(metric, manager, value) {
  ((results[metric] ??= {})[manager] ??= []).push(value);
}
const median = list => {
  if (!list || !list.length) return NaN;
  const s = [ ...list ].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/**
 * Each round runs every manager once, in a rotated order, so drift on the machine is shared.
 * The prototype column only takes part in the startup sections.
 */
async function eachRound(n, fn, { startup = false } = {}) {
  const managers = startup ? MANAGERS : MANAGERS.filter(m => !m[2].earlyFork);
  for (let r = 0; r < n; r++) {
    const order = managers.map((_, i) => managers[(i + r) % managers.length]);
    for (const [ name, impl ] of order) await fn(name, impl, r);
  }
}

async function withCluster(impl, { manager, ...options }, fn) {
  const c = new Cluster(impl, { ...options, ...EXTRA[manager] }, ENV);
  try {
    const ready = await c.waitReady(options.timeout ?? 60_000);
    return await fn(c, ready);
  } finally {
    c.dispose();
  }
}

// ---- startup, footprint, idle shutdown --------------------------------------------------

async function startupRun(label, app, workers, impl, name) {
  const port = await freePort();
  const c = new Cluster(impl, { ...app, workers, port, ...EXTRA[name] }, ENV);
  try {
    const ready = await c.waitReady(60_000);
    const agent = await c.waitAgentStarted({ timeout: 1000 });
    // `[master] agent_worker#1:PID start with clusterPort:…`: the three managers log it once forked
    const forked = await c.waitFor(e => e.line && /agent_worker#\d+:\d+ start with/.test(e.line), { timeout: 1000, what: 'agent fork line' });
    record(`${label} ready w=${workers}`, name, ready.t);
    record(`${label} agent forked w=${workers}`, name, forked.t);
    record(`${label} agent ready w=${workers}`, name, agent.t);
    await sleep(300); // let the egg-ready handlers run before reading memory
    const kids = children(c.child.pid);
    record(`${label} rss master w=${workers}`, name, rssMiB(c.child.pid));
    if (kids.agent[0]) record(`${label} rss agent w=${workers}`, name, rssMiB(kids.agent[0]));
    if (kids.app.length) record(`${label} rss app w=${workers}`, name, median(kids.app.map(rssMiB)));
    record(`${label} uss master w=${workers}`, name, ussMiB(c.child.pid));
    if (kids.agent[0]) record(`${label} uss agent w=${workers}`, name, ussMiB(kids.agent[0]));
    if (kids.app.length) record(`${label} uss app w=${workers}`, name, median(kids.app.map(ussMiB)));
    const closed = await c.close();
    record(`${label} close idle w=${workers}`, name, closed.ms);
  } finally {
    c.dispose();
  }
}

// ---- recovery ----------------------------------------------------------------------------

/** GET / until a worker other than `old` answers; resolves the ms from `t`. Probes overlap
 * (one every 5 ms, at most 20 outstanding): a connection handed to the dying worker hangs, and
 * must not hide the new worker. */
function firstServedBy(port, old, t, name) {
  return new Promise((resolve, reject) => {
    let outstanding = 0;
    let done = false;
    const timer = setInterval(() => {
      if (done) return;
      if (now() - t > 30_000) {
        done = true;
        clearInterval(timer);
        reject(new Error(`${name}: no app worker serves 30 s after a SIGKILL`));
        return;
      }
      if (outstanding >= 20) return;
      outstanding++;
      get(port, '/', {}, 5000).then(({ status, body }) => {
        const pid = status === 200 ? JSON.parse(body).pid : undefined;
        if (!done && pid && pid !== old) {
          done = true;
          clearInterval(timer);
          resolve(now() - t);
        }
      }, () => {}).finally(() => { outstanding--; });
    }, 5);
  });
}

async function recoveryRun(impl, name) {
  const port = await freePort();
  await withCluster(impl, { ...FAKE, workers: 1, port, manager: name }, async c => {
    await sleep(300);
    // app worker: SIGKILL -> the first request served by another pid
    const old = (await getJSON(port, '/')).pid;
    const t = now();
    process.kill(old, 'SIGKILL');
    const ms = await firstServedBy(port, old, t, name);
    record('recovery app', name, ms);
    await sleep(300);
    // agent: SIGKILL -> `agent_worker#N:PID started` of a new pid
    const agentPid = (await c.waitAgentStarted({ timeout: 1000 })).value;
    const since = now() - c.t0;
    process.kill(agentPid, 'SIGKILL');
    const restarted = await c.waitAgentStarted({ since, notPid: agentPid, timeout: 30_000 });
    record('recovery agent', name, restarted.t - since);
    await c.close();
  });
}

// ---- repeated SIGKILLs under load ----------------------------------------------------------

/**
 * 16 keep-alive clients on 2 app workers; every KILL_EVERY_MS one serving app worker gets
 * SIGKILL, KILLS times. Counts requests answered and failed: a request in flight on a killed
 * worker fails whatever the manager does; ECONNREFUSED means no worker was listening.
 */
async function killsRun(impl, name) {
  const port = await freePort();
  await withCluster(impl, { ...FAKE, workers: 2, port, manager: name }, async c => {
    await sleep(300);
    const agent = new http.Agent({ keepAlive: true, maxSockets: KILL_CLIENTS });
    let running = true;
    let ok = 0;
    let failed = 0;
    let refused = 0;
    const once = () => new Promise(resolve => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 }, res => {
        res.resume();
        res.on('end', () => { if (res.statusCode === 200) ok++; else failed++; resolve(); });
        res.on('error', () => { failed++; resolve(); });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', err => {
        failed++;
        if (err.code === 'ECONNREFUSED') refused++;
        resolve();
      });
    });
    const loops = Array.from({ length: KILL_CLIENTS }, async () => {
      while (running) await once();
    });
    for (let i = 0; i < KILLS; i++) {
      await sleep(KILL_EVERY_MS);
      const apps = children(c.child.pid).app;
      if (apps.length) process.kill(apps[i % apps.length], 'SIGKILL');
    }
    await sleep(KILL_EVERY_MS);
    running = false;
    await Promise.all(loops);
    agent.destroy();
    record('kills ok', name, ok);
    record('kills failed', name, failed);
    record('kills refused', name, refused);
    await c.close();
  });
}

// ---- shutdown with requests in flight ----------------------------------------------------

async function inflightRun(impl, name, count, ms) {
  const port = await freePort();
  await withCluster(impl, { ...FAKE, workers: 2, port, manager: name }, async c => {
    await sleep(300);
    // each request counts as in flight once its response headers arrive (the app sends them
    // at once and the body after `ms`)
    const started = [];
    const requests = Array.from({ length: count }, () => get(port, `/slow?ms=${ms}`, {}, 15_000,
      () => started.push(now())).then(r => r.status === 200 && r.body.length > 0, () => false));
    const t = now();
    while (started.length < count && now() - t < 10_000) await sleep(5);
    const closed = await c.close();
    const ok = (await Promise.all(requests)).filter(Boolean).length;
    record('close inflight', name, closed.ms);
    record('close inflight served', name, ok);
  });
}

// ---- messenger ---------------------------------------------------------------------------

async function messengerRun(impl, name, n, runs, rttCount) {
  const port = await freePort();
  await withCluster(impl, { ...FAKE, workers: 1, port, manager: name }, async c => {
    await getJSON(port, '/relay?n=2000');
    await getJSON(port, '/rtt?n=200&size=100');
    const rates = [];
    const cpus = [];
    for (let i = 0; i < runs; i++) {
      const before = cpuMicros(c.child.pid);
      const { ms } = await getJSON(port, `/relay?n=${n}`);
      cpus.push((cpuMicros(c.child.pid) - before) / n);
      rates.push(n / (ms / 1000));
    }
    record('messenger rate', name, median(rates));
    record('messenger cpu', name, median(cpus));
    const { rtts } = await getJSON(port, `/rtt?n=${rttCount}&size=100`);
    record('rtt p50', name, rtts[Math.floor(rtts.length * 0.5)]);
    record('rtt p99', name, rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))]);
    await c.close();
  });
}

// ---- sticky ------------------------------------------------------------------------------

async function stickyRun(impl, name, connections) {
  const port = await freePort();
  await withCluster(impl, { ...FAKE, workers: 2, port, sticky: true, manager: name }, async c => {
    const burst = async total => {
      let next = 0;
      const lane = async () => {
        while (next < total) {
          next++;
          const { status } = await get(port, '/', { connection: 'close' });
          if (status !== 200) throw new Error(`sticky ${name}: status ${status}`);
        }
      };
      await Promise.all([ lane(), lane(), lane(), lane() ]);
    };
    await burst(200);
    const before = cpuMicros(c.child.pid);
    await burst(connections);
    record('sticky cpu', name, (cpuMicros(c.child.pid) - before) / connections);
    await c.close();
  });
}

// ---- ops (egg-clutch only: the others have no status server) -----------------------------

const OPS_N = quick ? 200 : 1000;
const OPS_PATHS = [ '/livez', '/readyz', '/status', '/metrics' ];

/**
 * The status endpoints' latency while 8 clients load the app port, and the master's RSS with
 * `status` set and unset (issue 10: unchanged ± 1 MiB when unset).
 */
async function opsRun(impl, name) {
  if (name !== 'egg-clutch') return;
  for (const withStatus of [ false, true ]) {
    const port = await freePort();
    const statusPort = withStatus ? await freePort() : undefined;
    const options = { ...FAKE, workers: 2, port, manager: name, ...(withStatus ? { status: { port: statusPort } } : {}) };
    await withCluster(impl, options, async c => {
      await sleep(300); // the egg-ready handlers run before memory is read
      record(`ops rss master ${withStatus ? 'set' : 'unset'}`, name, rssMiB(c.child.pid));
      if (!withStatus) return c.close();
      let loading = true;
      const load = Promise.all(Array.from({ length: 8 }, async () => {
        while (loading) await get(port, '/').catch(() => undefined);
      }));
      for (const p of OPS_PATHS) {
        const times = [];
        for (let i = 0; i < OPS_N; i++) {
          const t0 = now();
          const { status } = await get(statusPort, p);
          times.push(now() - t0);
          if (status !== 200) throw new Error(`GET ${p}: ${status}`);
        }
        times.sort((a, b) => a - b);
        record(`ops ${p} p50`, name, times[Math.floor(times.length * 0.5)]);
        record(`ops ${p} p99`, name, times[Math.floor(times.length * 0.99)]);
      }
      loading = false;
      await load;
      return c.close();
    });
  }
}

// ---- reload (egg-clutch and egg-cluster 2.5: the floor has none) ---------------------------

/**
 * `reload-worker` of 4 egg 3 workers in the unittest env: ms until the 4th new worker has
 * started (`app_worker#N:PID started at …` with N > 4; both managers log it), i.e. how long
 * `egg-bin dev` users wait after a save. egg-cluster forks all at once; egg-clutch's default
 * surge outside production is every worker.
 */
async function reloadRun(impl, name) {
  if (name === 'floor') return;
  const port = await freePort();
  await withCluster(impl, { ...EGG3, workers: 4, port, env: 'unittest', manager: name }, async c => {
    const since = now() - c.t0;
    c.child.send({ action: 'reload-worker', to: 'master' });
    const started = new Set();
    const last = await c.waitFor(e => {
      const m = e.line && /app_worker#(\d+):\d+ started at/.exec(e.line);
      if (m && Number(m[1]) > 4) started.add(m[1]);
      return started.size >= 4;
    }, { since, timeout: 90_000, what: '4 new app workers started' });
    record('reload egg3 w=4', name, last.t - since);
    return c.close();
  });
}

// ---- the table ---------------------------------------------------------------------------

const fmt = (v, unit) => {
  if (!Number.isFinite(v)) return 'n/a';
  if (unit === 'ms') return v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`;
  if (unit === 'MiB') return `${v.toFixed(1)} MiB`;
  if (unit === 'µs') return `${v.toFixed(0)} µs`;
  if (unit === '/s') return `${Math.round(v).toLocaleString('en-US')}/s`;
  if (unit === 'count') return Math.round(v).toLocaleString('en-US');
  return `${v.toFixed(1)}${unit ? ` ${unit}` : ''}`;
};

function cell(metric, name, unit, base) {
  const v = median(results[metric]?.[name]);
  const f = median(results[metric]?.floor);
  if (name === 'floor' || base === 'raw' || !Number.isFinite(v) || !Number.isFinite(f)) return fmt(v, unit);
  if (base === 'plus') return `${fmt(v, unit)} (${v - f >= 0 ? '+' : ''}${(v - f).toFixed(1)})`;
  return `${fmt(v, unit)} (${(v / f).toFixed(2)}×)`;
}

function row(label, metrics, unit, goal, base) {
  const list = Array.isArray(metrics) ? metrics : [ metrics ];
  if (!list.some(m => results[m])) return;
  const cells = NAMES.map(name => list.map(m => cell(m, name, unit, base)).join(' / '));
  console.log(`| ${label} | ${cells.join(' | ')} | ${goal} |`);
}

function printTable() {
  // the fewest samples any manager has for a metric (managers without the metric aside)
  const sample = metric => {
    const counts = NAMES.map(n => results[metric]?.[n]?.length).filter(Boolean);
    return counts.length ? Math.min(...counts) : 0;
  };
  console.log('');
  console.log(`| metric | ${NAMES.join(' | ')} | goal |`);
  console.log(`|---|${NAMES.map(() => '---').join('|')}|---|`);
  const ws = [ 1, 2, 4 ];
  row('fork → `egg-ready`, fake framework, workers 1 / 2 / 4', ws.map(w => `fake ready w=${w}`), 'ms', '≤ 1.15×');
  row('of which: agent forked (master boot; w=2)', 'fake agent forked w=2', 'ms', '');
  row('of which: agent ready (w=2)', 'fake agent ready w=2', 'ms', '≤ floor + 30 ms');
  row('fork → `egg-ready`, egg 3 app, workers 1 / 2 / 4', ws.map(w => `egg3 ready w=${w}`), 'ms', '≤ 0.95×');
  row('of which: agent forked, egg 3 (w=2)', 'egg3 agent forked w=2', 'ms', '');
  row('of which: agent ready, egg 3 (w=2)', 'egg3 agent ready w=2', 'ms', '');
  row('master RSS after ready (fake, w=2)', 'fake rss master w=2', 'MiB', '≤ 1.1×');
  row('master RSS after ready (egg 3, w=2)', 'egg3 rss master w=2', 'MiB', '≤ 1.1×');
  row('agent / app worker RSS, fake framework (w=2; MiB over floor)', [ 'fake rss agent w=2', 'fake rss app w=2' ], 'MiB', '≤ floor + 3 MiB', 'plus');
  row('master private memory (USS; fake, w=2)', 'fake uss master w=2', 'MiB', '');
  row('agent / app worker private memory (USS; fake, w=2; MiB over floor)', [ 'fake uss agent w=2', 'fake uss app w=2' ], 'MiB', '', 'plus');
  row('agent / app worker RSS, egg 3 (w=2; MiB over floor)', [ 'egg3 rss agent w=2', 'egg3 rss app w=2' ], 'MiB', '', 'plus');
  row('recovery after one SIGKILL, app worker (kill → a new worker serves)', 'recovery app', 'ms', '≤ 1.5×');
  row('recovery, agent (kill → new agent started)', 'recovery agent', 'ms', '≤ 2×');
  row(`${KILLS} SIGKILLs of serving app workers, 1 every ${KILL_EVERY_MS / 1000} s, ${KILL_CLIENTS} keep-alive clients, workers 2: requests answered`, 'kills ok', 'count', '', 'raw');
  row('… failed (in flight on a killed worker, or refused)', 'kills failed', 'count', '', 'raw');
  row('… of which ECONNREFUSED (no worker listening)', 'kills refused', 'count', '', 'raw');
  row('SIGTERM → exit, idle (fake, w=2)', 'fake close idle w=2', 'ms', '≤ 1.3×');
  row('SIGTERM → exit, idle (egg 3, w=2)', 'egg3 close idle w=2', 'ms', '');
  if (results['close inflight']) {
    const served = NAMES.filter(n => results['close inflight served'][n]).map(n => `${n} ${median(results['close inflight served'][n])}/${INFLIGHT}`);
    row(`SIGTERM → exit, ${INFLIGHT} requests in flight (${INFLIGHT_MS} ms each; served: ${served.join(', ')})`,
      'close inflight', 'ms', '');
  }
  row('messenger throughput app → master → agent (~250 B)', 'messenger rate', '/s', '');
  row('messenger: master CPU per relayed message', 'messenger cpu', 'µs', '');
  row('messenger app → agent → app RTT p50 / p99, 100 B', [ 'rtt p50', 'rtt p99' ], 'ms', 'p99 ≤ 1.2×');
  row('sticky, Connection: close: master CPU per connection', 'sticky cpu', 'µs', '≤ floor');
  for (const p of OPS_PATHS) row(`status server ${p} p50 / p99 under app load (egg-clutch only)`, [ `ops ${p} p50`, `ops ${p} p99` ], 'ms', '');
  row('reload-worker, egg 3, 4 workers, unittest env: until the 4th new worker started', 'reload egg3 w=4', 'ms', '≤ 5 s');
  row('master RSS, status unset / set (egg-clutch only)', [ 'ops rss master unset', 'ops rss master set' ], 'MiB', 'unset: unchanged ± 1 MiB');
  console.log('');
  console.log(`Medians; (×) is the manager ÷ floor, (+) MiB over the floor. Samples per cell: startup ${sample('fake ready w=2')}, `
    + `egg 3 ${sample('egg3 ready w=2')}, recovery ${sample('recovery app')}, kills ${sample('kills ok')}, in-flight ${sample('close inflight')}, `
    + `messenger ${sample('messenger rate')} clusters × ${RELAY_RUNS} runs of ${RELAY_N} messages and ${RTT_N} round trips, `
    + `sticky ${sample('sticky cpu')} × ${STICKY_N} connections.`);
}

const INFLIGHT = 16;
const INFLIGHT_MS = 300;
const RELAY_N = quick ? 5000 : 20_000;
const RELAY_RUNS = quick ? 2 : 5;
const RTT_N = quick ? 500 : 2000;
const STICKY_N = quick ? 500 : 2000;
const KILLS = quick ? 3 : 8;
const KILL_EVERY_MS = 1500;
const KILL_CLIENTS = 16;

function header() {
  let commit = '';
  try {
    commit = execFileSync('git', [ 'rev-parse', '--short', 'HEAD' ], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = os.cpus();
  console.log(`egg-clutch bench ${new Date().toISOString()} · node ${process.version} · ${os.platform()} ${os.release()} · `
    + `${cpu.length} × ${cpu[0]?.model ?? 'cpu'} · ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB · commit ${commit || '?'}`
    + `${quick ? ' · --quick' : ''} · load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}`);
}

const want = section => !only || only.includes(section);
const step = name => process.stderr.write(`  ${name}…\n`);

async function main() {
  header();
  const deadline = setTimeout(() => {
    console.error(`bench: over ${DEADLINE_MS / 60_000} min, stopping; partial results:`);
    printTable();
    process.exit(2);
  }, DEADLINE_MS);
  deadline.unref();
  for (const w of [ 1, 2, 4 ]) {
    if (want('startup')) {
      step(`startup, fake framework, workers ${w}`);
      await eachRound(rounds, (name, impl) => startupRun('fake', FAKE, w, impl, name), { startup: true });
    }
    if (want('egg3')) {
      step(`startup, egg 3 app, workers ${w}`);
      await eachRound(Math.min(rounds, 3), (name, impl) => startupRun('egg3', EGG3, w, impl, name), { startup: true });
    }
  }
  if (want('recovery')) {
    step('recovery');
    await eachRound(rounds, (name, impl) => recoveryRun(impl, name));
  }
  if (want('kills')) {
    step(`${KILLS} SIGKILLs of serving app workers under keep-alive load`);
    await eachRound(Math.min(rounds, 3), (name, impl) => killsRun(impl, name));
  }
  if (want('shutdown')) {
    step('shutdown with requests in flight');
    await eachRound(Math.min(rounds, 5), (name, impl) => inflightRun(impl, name, INFLIGHT, INFLIGHT_MS));
  }
  if (want('messenger')) {
    step('messenger');
    await eachRound(Math.min(rounds, 3), (name, impl) => messengerRun(impl, name, RELAY_N, RELAY_RUNS, RTT_N));
  }
  if (want('sticky')) {
    step('sticky');
    await eachRound(Math.min(rounds, 3), (name, impl) => stickyRun(impl, name, STICKY_N));
  }
  if (want('reload')) {
    step('reload, egg 3, 4 workers');
    await eachRound(Math.min(rounds, 3), (name, impl) => reloadRun(impl, name));
  }
  if (want('ops')) {
    step('ops');
    await eachRound(Math.min(rounds, 3), (name, impl) => opsRun(impl, name));
  }
  printTable();
  console.log(`load average at the end: ${os.loadavg().map(l => l.toFixed(2)).join(' ')}`);
}

main().then(() => {
  fs.rmSync(eggHome, { recursive: true, force: true });
}, err => {
  console.error(err);
  printTable();
  fs.rmSync(eggHome, { recursive: true, force: true });
  process.exit(1);
});
