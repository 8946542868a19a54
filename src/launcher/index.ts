import type { Logger } from '../logger.js';
import type { ResolvedOptions } from '../options.js';
import { AGENT_WORKER_FILE, APP_WORKER_FILE, ProcessLauncher } from './process.js';
import { THREAD_FILES, ThreadLauncher } from './threads.js';
import type { Launcher } from './types.js';

export { ProcessLauncher } from './process.js';
export { ThreadLauncher } from './threads.js';
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
  const threads = options.startMode === 'worker_threads';
  const defaults = threads ? THREAD_FILES : { agent: AGENT_WORKER_FILE, app: APP_WORKER_FILE };
  // custom entries (bundles, startup snapshots): they must run egg-clutch's entry, e.g. by
  // requiring egg-clutch/lib/app_worker.js after their own setup
  const files = { agent: options.agentWorkerFile ?? defaults.agent, app: options.appWorkerFile ?? defaults.app };
  if (threads) return new ThreadLauncher({ logger, log, files });
  return new ProcessLauncher({ logger, log, files });
}
