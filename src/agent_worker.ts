/**
 * The agent: `node lib/agent_worker.js '<public options JSON>'`, forked by the master, or a
 * worker thread of the master running this file (startMode 'worker_threads').
 * The full options arrive as the first message on the channel. Process: exits 0 on SIGTERM
 * (after agent.close()), 110 when the master disappears, 1 on a start error. Thread: the
 * master's graceful-exit message stands in for SIGTERM.
 */
import { graceful } from 'graceful-process';
import { createConsoleLogger } from './logger.js';
import {
  loadFramework, loadRequires, onThreadGracefulExit, whenStarted, workerCloseTimeout, type FrameworkInstance,
} from './worker/bootstrap.js';
import { createWorkerIO } from './worker/io.js';

const logger = createConsoleLogger(process.env.EGG_AGENT_WORKER_LOGGER_LEVEL);
const io = createWorkerIO();
// Ctrl-C and a closed terminal reach the whole process group: the master decides when and
// in which order workers stop (app workers drain first, then the agent). A thread gets no signals.
if (!io.isThread) {
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  // The master is gone (SIGKILL, crash): graceful-process runs agent.close() and exits 110;
  // don't let a slow close keep an orphan around for more than 1.5 s.
  process.once('disconnect', () => setTimeout(() => process.exit(110), 1500).unref());
}
const closeTimeout = workerCloseTimeout('agent', process.env);

function startError(err: unknown, agent?: FrameworkInstance): void {
  logger.error(err);
  logger.error('[agent_worker] start error, exiting with code:1');
  // exit 1 for real: graceful-process would turn a self-SIGTERM into exit 0 (defect D2)
  const closing = agent ? Promise.race([agent.close(), new Promise(r => setTimeout(r, 3000))]) : Promise.resolve();
  closing.catch(() => {}).finally(() => process.exit(1));
}

async function main(): Promise<void> {
  const options = await io.receiveOptions();
  if (!options) process.exit(110);
  let agent: FrameworkInstance;
  try {
    await loadRequires(options);
    const Agent = await loadFramework(options, 'Agent', ['Application']);
    agent = new Agent(options);
  } catch (err) {
    startError(err);
    return;
  }
  whenStarted(agent, () => io.send({ action: 'agent-start', to: 'master' }), err => startError(err, agent));
  if (io.isThread) {
    onThreadGracefulExit(io, {
      logger,
      label: 'agent_worker',
      timeoutMs: closeTimeout,
      beforeExit: () => agent.close(),
      exit: code => process.exit(code),
    });
  } else {
    graceful({ logger, label: 'agent_worker', timeout: closeTimeout, beforeExit: () => agent.close() });
  }
}

main().catch(err => startError(err));
