import type { AppPool } from './launcher/types.js';
import type { Logger } from './logger.js';
import type { CloseTimeouts } from './options.js';
import type { WorkerRegistry } from './registry.js';

export interface StopWorkersDeps {
  registry: WorkerRegistry;
  pool: AppPool | undefined;
  logger: Logger;
  log: (message: string, ...args: unknown[]) => void;
  timeouts: CloseTimeouts;
}

/**
 * The close order of egg-cluster: every app worker (refork off, SIGTERM, SIGKILL at the app
 * timeout), then the agent (the same with the agent timeout), with egg-cluster's log lines.
 */
export async function stopWorkers({ registry, pool, logger, log, timeouts }: StopWorkersDeps): Promise<void> {
  for (const entry of registry.apps.values()) entry.stopping = true;
  logger.info('[master] send kill SIGTERM to app workers, will exit with code:0 after %sms', timeouts.app);
  logger.info('[master] wait %sms', timeouts.app);
  try {
    await Promise.all(registry.appHandles().map(handle => {
      pool?.setRefork(handle, false);
      return handle.terminate(timeouts.app);
    }));
  } catch (err) {
    logger.error('[master] app workers exit error: ', err);
  }
  logger.info('[master] send kill SIGTERM to agent worker, will exit with code:0 after %sms', timeouts.agent);
  logger.info('[master] wait %sms', timeouts.agent);
  const agent = registry.agent;
  if (!agent) return;
  log('[master] kill agent worker with signal SIGTERM');
  try {
    await agent.terminate(timeouts.agent);
  } catch (err) {
    logger.error('[master] agent worker exit error: ', err);
  }
}
