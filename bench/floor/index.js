'use strict';
/**
 * The floor: the least a cluster manager with egg's topology and protocol can cost. It is the
 * yardstick of `npm run bench`, not a product: no option checks, no budgets, no pid file.
 *
 * - fork the agent (child_process), wait for its `agent-start`;
 * - fork N app workers through node:cluster, count their `listening`;
 * - relay `{ action, data, from, to, receiverPid }` between agent, apps, master and parent as
 *   egg-cluster does; send `egg-pids`, `agent-start` and `egg-ready` as egg-cluster does;
 * - replace a dead app worker or agent at once; SIGTERM: app workers (they drain), then the
 *   agent, then exit 0; sticky mode: a pauseOnConnect server handing sockets to the workers.
 *
 * The same agent/app semantics as egg-cluster 2.5: `new Agent(options)` / `new Application(options)`
 * from the framework, `ready()`, `app.callback()`, `app.emit('server', server)`, so egg 3 apps
 * and the test fake framework run under it unchanged. No dependencies.
 */
const cluster = require('node:cluster');
const { fork } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { format } = require('node:util');

const CLOSE_TIMEOUT = 5000;

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

/** egg's console line: `YYYY-MM-DD HH:mm:ss,SSS LEVEL pid message`. */
function log(level, ...args) {
  const d = new Date();
  const time = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
  const line = `${time} ${level} ${process.pid} ${format(...args)}\n`;
  if (level === 'ERROR') process.stderr.write(line);
  else process.stdout.write(line);
}

/** A free loopback port, asked of the kernel. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function resolveFramework(options) {
  if (options.framework && path.isAbsolute(options.framework)) return options.framework;
  const pkg = JSON.parse(fs.readFileSync(path.join(options.baseDir, 'package.json'), 'utf8'));
  const name = options.framework || (pkg.egg && pkg.egg.framework) || 'egg';
  return path.dirname(require.resolve(`${name}/package.json`, { paths: [ options.baseDir, process.cwd() ] }));
}

function startCluster(input, callback) {
  const options = {
    baseDir: process.cwd(), workers: 1, port: 7001, plugins: null, https: false, sticky: false,
    ...input,
  };
  options.framework = resolveFramework(options);
  const started = Date.now();
  let agent;
  let agentStarted = false;
  let agentId = 0;
  let allStarted = false;
  let closing = false;
  let listening = 0;
  let appsForked = false;
  const ready = new Set(); // app workers that listen

  const toParent = msg => {
    if (process.send && process.connected) process.send(msg);
  };
  const appWorkers = () => Object.values(cluster.workers).filter(w => w && !w.isDead());
  const sendToApps = msg => {
    for (const w of appWorkers()) {
      if (msg.receiverPid && msg.receiverPid !== String(w.process.pid)) continue;
      if (w.isConnected()) w.send(msg);
    }
  };
  const sendToAgent = msg => {
    if (agent && agent.connected) agent.send(msg);
  };

  /** egg-cluster's routing: receiverPid picks the side; a missing `to` goes to the other side. */
  function route(msg, from) {
    if (!msg || typeof msg !== 'object') return;
    if (!msg.from) msg.from = from;
    if (msg.receiverPid) {
      if (msg.receiverPid === String(process.pid)) msg.to = 'master';
      else if (agent && msg.receiverPid === String(agent.pid)) msg.to = 'agent';
      else msg.to = 'app';
    }
    if (!msg.to) msg.to = msg.from === 'agent' ? 'app' : msg.from === 'app' ? 'agent' : 'master';
    switch (msg.to) {
      case 'master': return onMasterMessage(msg);
      case 'parent': return toParent(msg);
      case 'app': return sendToApps(msg);
      case 'agent': return sendToAgent(msg);
      default:
    }
  }

  function onMasterMessage(msg) {
    if (msg.action === 'agent-start' && msg.from === 'agent') onAgentStart();
  }

  function forkAgent() {
    agentId++;
    const child = fork(path.join(__dirname, 'agent_worker.js'), [ JSON.stringify(options) ]);
    child.startTime = Date.now();
    agent = child;
    agentStarted = false;
    log('INFO', '[master] agent_worker#%s:%s start with clusterPort:%s', agentId, child.pid, options.clusterPort);
    child.on('message', msg => route(msg, 'agent'));
    child.once('exit', (code, signal) => {
      if (agent !== child) return;
      agent = undefined;
      if (closing) return;
      log('ERROR', '[master] agent_worker#%s:%s died (code: %s, signal: %s)', agentId, child.pid, code, signal);
      sendToApps({ action: 'egg-pids', data: [], from: 'master', to: 'app' });
      log('INFO', '[master] try to start a new agent_worker after 0s ...');
      forkAgent();
    });
  }

  function onAgentStart() {
    agentStarted = true;
    log('INFO', '[master] agent_worker#%s:%s started (%sms)', agentId, agent.pid, Date.now() - agent.startTime);
    sendToApps({ action: 'egg-pids', data: [ agent.pid ], from: 'master', to: 'app' });
    sendToApps({ action: 'agent-start', from: 'master', to: 'app' });
    if (allStarted) {
      sendToAgent({ action: 'egg-pids', data: [ ...ready ], from: 'master', to: 'agent' });
      sendToAgent({ action: 'egg-ready', data: options, from: 'master', to: 'agent' });
      return;
    }
    if (!options.earlyFork) forkApps();
  }

  function forkApps() {
    if (appsForked) return;
    appsForked = true;
    cluster.setupPrimary({ exec: path.join(__dirname, 'app_worker.js'), args: [ JSON.stringify(options) ], silent: false });
    cluster.on('fork', w => {
      w.on('message', msg => route(msg, 'app'));
      log('INFO', '[master] app_worker#%s:%s start', w.id, w.process.pid);
    });
    cluster.on('listening', (w, address) => {
      const expected = options.sticky ? options.stickyWorkerPort : options.port;
      if (address.port !== expected) return;
      ready.add(w.process.pid);
      listening++;
      log('INFO', '[master] app_worker#%s:%s started at %s (%sms)', w.id, w.process.pid, address.port, Date.now() - started);
      sendToAgent({ action: 'egg-pids', data: [ ...ready ], from: 'master', to: 'agent' });
      if (agentStarted && agent) w.send({ action: 'egg-pids', data: [ agent.pid ], from: 'master', to: 'app' });
      if (allStarted) {
        w.send({ action: 'egg-ready', data: options, from: 'master', to: 'app' });
      } else if (listening === options.workers) {
        allStarted = true;
        if (options.sticky) startSticky(onReady);
        else onReady();
      }
    });
    cluster.on('exit', (w, code, signal) => {
      ready.delete(w.process.pid);
      if (closing) return;
      log('ERROR', '[master] app_worker#%s:%s died (code: %s, signal: %s)', w.id, w.process.pid, code, signal);
      sendToAgent({ action: 'egg-pids', data: [ ...ready ], from: 'master', to: 'agent' });
      if (!allStarted) return shutdown(1);
      cluster.fork();
    });
    for (let i = 0; i < options.workers; i++) cluster.fork();
  }

  function startSticky(done) {
    // all connections of one client address go to the same worker
    const server = net.createServer({ pauseOnConnect: true }, socket => {
      const workers = appWorkers().filter(w => ready.has(w.process.pid));
      if (!workers.length) return socket.destroy();
      let hash = 0;
      for (const ch of socket.remoteAddress || '') hash = (hash * 31 + ch.charCodeAt(0)) | 0;
      workers[Math.abs(hash) % workers.length].send('sticky-session:connection', socket);
    });
    stickyServer = server;
    server.listen(options.port, done);
  }
  let stickyServer;

  function onReady() {
    const address = `http://127.0.0.1:${options.port}`;
    log('INFO', '[master] egg started on %s (%sms)', address, Date.now() - started);
    toParent({ action: 'egg-ready', to: 'parent', from: 'master', data: { port: options.port, address } });
    sendToApps({ action: 'egg-ready', data: options, from: 'master', to: 'app' });
    sendToAgent({ action: 'egg-ready', data: options, from: 'master', to: 'agent' });
    if (callback) callback();
  }

  /** Stop a process: SIGTERM, SIGKILL after CLOSE_TIMEOUT; resolves on exit. */
  function stop(proc, isDead) {
    return new Promise(resolve => {
      if (isDead()) return resolve();
      const timer = setTimeout(() => proc.kill('SIGKILL'), CLOSE_TIMEOUT);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }

  async function shutdown(code) {
    if (closing) return;
    closing = true;
    log('INFO', '[master] closing with code:%s', code);
    if (stickyServer) stickyServer.close();
    await Promise.all(appWorkers().map(w => stop(w.process, () => w.isDead())));
    if (agent) await stop(agent, () => agent.exitCode !== null || agent.signalCode !== null);
    log(code ? 'ERROR' : 'INFO', '[master] exit with code:%s', code);
    process.exit(code);
  }

  for (const signal of [ 'SIGINT', 'SIGQUIT', 'SIGTERM' ]) process.once(signal, () => shutdown(0));
  process.on('message', msg => route(msg, 'parent'));

  Promise.all([ freePort(), options.sticky ? freePort() : undefined ]).then(([ clusterPort, stickyWorkerPort ]) => {
    options.clusterPort = clusterPort;
    if (stickyWorkerPort) options.stickyWorkerPort = stickyWorkerPort;
    forkAgent();
    // prototype: app workers load the framework while the agent boots (see app_worker.js)
    if (options.earlyFork) forkApps();
  });
}

module.exports = { startCluster };
