import type { Logger } from '../logger.js';
import type { ResolvedOptions } from '../options.js';
import { AGENT_WORKER_FILE, APP_WORKER_FILE, ProcessLauncher } from './process.js';
import type { Launcher } from './types.js';

export { ProcessLauncher } from './process.js';
export type { AppPool, Launcher, WorkerHandle, WorkerSpec } from './types.js';

/**
 * The launcher for `options.startMode`: processes (child_process agent + node:cluster apps,
 * as egg-cluster) or worker threads of the master. `log` is the master's `log()` (INFO, or
 * DEBUG in the local env) for the lines egg-cluster prints with it.
 */
export function createLauncher(
  options: Pick<ResolvedOptions, 'startMode' | 'restartPolicy' | 'agentWorkerFile' | 'appWorkerFile'>,
  logger: Logger,
  log?: (message: string, ...args: unknown[]) => void,
): Launcher {
  // custom entries (bundles, startup snapshots): they must run egg-clutch's entry, e.g. by
  // requiring egg-clutch/lib/app_worker.js after their own setup; threads run the same entries
  const files = { agent: options.agentWorkerFile ?? AGENT_WORKER_FILE, app: options.appWorkerFile ?? APP_WORKER_FILE };
  if (options.startMode === 'worker_threads') {
    // loaded only for threads: node:worker_threads and the worker side's IO (~8 ms of a
    // process-mode master's start)
    const { ThreadLauncher } = require('./threads.js') as typeof import('./threads.js');
    return new ThreadLauncher({ logger, log, files });
  }
  return new ProcessLauncher({ logger, log, files });
}
