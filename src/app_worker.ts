/**
 * An app worker: `node lib/app_worker.js '<public options JSON>'`, forked by cfork
 * (node:cluster), or a worker thread of the master running this file (startMode
 * 'worker_threads'). It asks the master for the full options once it listens. Builds the
 * framework's Application, listens, and on SIGTERM (thread: the master's graceful-exit
 * message) drains HTTP before app.close() and exit 0; a start error runs the same close, then
 * exits 1.
 */
import type http from 'node:http';
import type { ListenOptions, Socket } from 'node:net';
import { DRAIN_BARRIER_ACTION, LISTENING_ACTION, REPORT_ACTION, STICKY_CONNECTION } from './protocol.js';
import { createConsoleLogger } from './logger.js';
import {
  installWorkerClose, loadFramework, loadRequires, whenStarted, workerCloseTimeout,
  type FrameworkInstance,
} from './worker/bootstrap.js';
import { createAppServer, Drainer, planListen } from './worker/app_server.js';
import { createWorkerIO } from './worker/io.js';
import { StickyAcks } from './sticky.js';
import { WorkerReporter } from './worker/report.js';
import { MetricsResponder } from './worker/metrics.js';

const LABEL = 'app_worker';
const logger = createConsoleLogger(process.env.EGG_APP_WORKER_LOGGER_LEVEL);
const io = createWorkerIO();
const gracefulTimeout = workerCloseTimeout('app', process.env);
let app: FrameworkInstance | undefined;
let drainer: Drainer | undefined;
let metrics: MetricsResponder | undefined;
const close = installWorkerClose(io, {
  logger,
  label: LABEL,
  timeoutMs: gracefulTimeout,
  beforeExit: async () => {
    // stop taking requests and let those in flight finish, then close the app
    await drainer?.drain(Math.floor(gracefulTimeout / 2));
    await metrics?.final(); // GET /metrics: what it counted since the last scrape is carried forward
    await app?.close();
  },
  exit: code => process.exit(code),
});

/** One round trip with the master (process mode): see DRAIN_BARRIER_ACTION. Threads need none. */
function drainBarrier(timeoutMs = 1000): Promise<void> {
  if (io.isThread) return Promise.resolve();
  return new Promise(resolve => {
    const token = `${process.pid}:${Date.now()}:${Math.random()}`;
    const timer = setTimeout(done, timeoutMs);
    const stop = io.onMessage(message => {
      const m = message as { action?: unknown; data?: unknown } | null;
      if (m && m.action === DRAIN_BARRIER_ACTION && m.data === token) done();
    });
    function done(): void {
      clearTimeout(timer);
      stop();
      resolve();
    }
    io.send({ action: DRAIN_BARRIER_ACTION, data: token });
  });
}

/**
 * A start error, a start timeout, a server error: the same close as SIGTERM (drain, then
 * app.close() with egg's beforeClose hooks), then exit 1 for real — egg-cluster's
 * self-SIGTERM made graceful-process exit 0 (defect D2).
 */
function startError(err?: unknown): void {
  if (err !== undefined) {
    logger.error(err);
    logger.error('[%s] start error, exiting with code:1', LABEL);
  }
  close.closeAndExit(1);
}

async function main(): Promise<void> {
  const options = await io.receiveOptions();
  if (!options) process.exit(0);
  // the master's status server shows what each worker reports, and the watchdog and the
  // memory limit read them (issue 10): only when one of them is on
  const reporter = options.status || options.watchdog || options.maxMemory > 0
    ? new WorkerReporter(message => io.send(message)) : undefined;
  reporter?.start();
  // one report now: the master sees that this worker reports before it listens (the watchdog
  // watches only workers that do)
  if (reporter) io.send({ action: REPORT_ACTION, data: reporter.collect() });
  // GET /metrics (issue 10): the master asks, the worker answers with its app's prom-client metrics
  if (options.status) {
    const responder = metrics = new MetricsResponder(options.baseDir, message => io.send(message));
    io.onMessage(message => responder.onMessage(message));
  }
  let instance: FrameworkInstance;
  try {
    await loadRequires(options);
    const Application = await loadFramework(options, 'Application');
    instance = app = new Application(options);
  } catch (err) {
    startError(err);
    return;
  }
  const onStartTimeout = (): void => {
    logger.error('[%s] start timeout, exiting with code:1', LABEL);
    startError();
  };
  instance.once('startTimeout', onStartTimeout);
  whenStarted(instance, () => {
    instance.removeListener('startTimeout', onStartTimeout);
    try {
      drainer = startServer(instance, options);
    } catch (e) {
      startError(e);
    }
  }, startError, 'unhandled');

  function startServer(instance: FrameworkInstance, opts: typeof options): Drainer | undefined {
    const plan = planListen(opts!, instance);
    if (!opts!.port && plan.port !== undefined) {
      // as egg-cluster: the port from config.cluster.listen.port is written back into the
      // options the Application holds, so app.options.port (and egg's deprecated
      // app._options, the same object) says where this worker listens
      (opts as { port?: unknown }).port = plan.port;
      const held = instance.options as { port?: unknown } | undefined;
      if (held && typeof held === 'object' && held !== opts) held.port = plan.port;
    }
    io.send({ to: 'master', action: 'realport', data: { port: plan.port, protocol: plan.protocol } });
    if (!plan.path && typeof plan.port !== 'number') {
      logger.error('[app_worker] port should be number, but got %s(%s)', plan.port, typeof plan.port);
      startError();
      return undefined;
    }
    const server = createAppServer(instance, plan);
    const servers: http.Server[] = [server];
    server.once('error', (err: NodeJS.ErrnoException) => {
      logger.error('[app_worker] server got error: %s, code: %s', err.message, err.code);
      startError();
    });
    instance.emit('server', server);
    // a thread has no node:cluster to report its listeners: it tells the master itself
    if (io.isThread) reportListening(server);
    if (opts!.sticky) {
      // connections come from the master's sticky server: each is acknowledged before the
      // worker reads from it, so the master can give the ones a dying worker never took to
      // another worker
      const acks = new StickyAcks((message, callback) => process.send!(message, undefined, undefined, callback), socket => {
        server.emit('connection', socket);
        socket.resume();
      });
      process.on('message', (message: unknown, socket?: Socket) => {
        if (message !== STICKY_CONNECTION || !socket) return;
        acks.receive(socket);
      });
      // before listening: the master knows this worker acknowledges before it sends it anything
      acks.hello();
      // this local port only makes the worker visible to node:cluster (and keeps
      // server.address() meaningful)
      server.listen(opts!.stickyWorkerPort, '127.0.0.1');
    } else if (plan.path) {
      server.listen(plan.path);
    } else if (plan.reusePort) {
      // node:cluster does not report a reusePort listener: tell the master ourselves
      server.listen({ port: plan.port as number, host: plan.hostname, reusePort: true } as ListenOptions, () => {
        if (!io.isThread) io.send({ action: LISTENING_ACTION, data: server.address() });
      });
    } else {
      if (plan.reusePortUnavailable) {
        logger.warn('[app_worker] reusePort is not available (%s); listening without it', plan.reusePortUnavailable);
      }
      if (plan.hostname) server.listen(plan.port as number, plan.hostname);
      else server.listen(plan.port as number);
    }
    if (opts!.debugPort) {
      // a second, plain-HTTP listener serving the same app
      const debugServer = createAppServer(instance, { ...plan, protocol: 'http' });
      debugServer.once('error', (err: NodeJS.ErrnoException) => {
        logger.error('[app_worker] debug server got error: %s, code: %s', err.message, err.code);
        startError();
      });
      if (io.isThread) reportListening(debugServer);
      debugServer.listen(opts!.debugPort);
      servers.push(debugServer);
    }
    if (reporter) for (const s of servers) reporter.track(s);
    return new Drainer(servers, () => drainBarrier());
  }
}

/** `{ action: LISTENING_ACTION, data }` once `server` listens; a unix socket as node:cluster reports it. */
function reportListening(server: http.Server): void {
  server.once('listening', () => {
    const address = server.address();
    const data = typeof address === 'string' ? { address, addressType: -1 } : address;
    if (data) io.send({ action: LISTENING_ACTION, data });
  });
}

main().catch(err => startError(err));
