import type { Logger } from '../logger.js';
import type { ResolvedOptions } from '../options.js';
import { ProcessLauncher } from './process.js';
import { ThreadLauncher } from './threads.js';
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
  options: Pick<ResolvedOptions, 'startMode' | 'restartPolicy'>,
  logger: Logger,
  log?: (message: string, ...args: unknown[]) => void,
): Launcher {
  if (options.startMode === 'worker_threads') return new ThreadLauncher({ logger, log, refork: options.restartPolicy });
  return new ProcessLauncher({ logger, log, refork: options.restartPolicy });
}
