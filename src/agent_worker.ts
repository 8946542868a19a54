/**
 * The agent: `node lib/agent_worker.js '<public options JSON>'`, forked by the master, or a
 * worker thread of the master running this file (startMode 'worker_threads').
 * It asks the master for the full options once it listens. Process: exits 0 on SIGTERM
 * (after agent.close()), 110 when the master disappears, 1 on a start error (after
 * agent.close() too). Thread: the master's graceful-exit message stands in for SIGTERM.
 */
import { createConsoleLogger } from './logger.js';
import {
  installWorkerClose, loadFramework, loadRequires, whenStarted, workerCloseTimeout,
  type FrameworkInstance,
} from './worker/bootstrap.js';
import { createWorkerIO } from './worker/io.js';

const LABEL = 'agent_worker';
const logger = createConsoleLogger(process.env.EGG_AGENT_WORKER_LOGGER_LEVEL);
const io = createWorkerIO();
let agent: FrameworkInstance | undefined;
const close = installWorkerClose(io, {
  logger,
  label: LABEL,
  timeoutMs: workerCloseTimeout('agent', process.env),
  beforeExit: async () => {
    await agent?.close();
  },
  exit: code => process.exit(code),
});

if (!io.isThread) {
  // The master is gone (SIGKILL, crash): graceful-process runs agent.close() and exits 110;
  // don't let a slow close keep an orphan around for more than 1.5 s.
  process.once('disconnect', () => setTimeout(() => process.exit(110), 1500).unref());
}

function startError(err: unknown): void {
  logger.error(err);
  logger.error('[%s] start error, exiting with code:1', LABEL);
  // the same close as SIGTERM (egg's beforeClose hooks run), but exit 1 for real:
  // egg-cluster's self-SIGTERM made graceful-process exit 0 (defect D2)
  close.closeAndExit(1);
}

async function main(): Promise<void> {
  const options = await io.receiveOptions();
  if (!options) process.exit(110);
  try {
    await loadRequires(options);
    const Agent = await loadFramework(options, 'Agent', ['Application']);
    agent = new Agent(options);
  } catch (err) {
    startError(err);
    return;
  }
  whenStarted(agent, () => io.send({ action: 'agent-start', to: 'master' }), startError);
}

main().catch(startError);
