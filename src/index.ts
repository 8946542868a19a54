import { Master } from './master.js';
import type { ClusterOptions } from './options.js';

/**
 * Start a cluster: one agent, then `workers` app workers. Resolves when every worker listens.
 * With a callback (egg-cluster 2.x style) the callback gets `(err?)` as well.
 * A native async function: @eggjs/mock 6 checks for one.
 */
export async function startCluster(options?: ClusterOptions, callback?: (err?: Error) => void): Promise<void> {
  const master = new Master(options);
  if (callback) {
    master.ready(callback);
    return;
  }
  await master.ready();
}

export { Master, type MasterDeps, type MasterEvents } from './master.js';
export { appAddress } from './address.js';
export {
  ClusterError, InvalidOptionError, FrameworkError, AgentWorkerDiedError, AppWorkerDiedError,
  ClusterAgentWorkerError, ClusterWorkerExceptionError, ClusterStartError, type ClusterErrorCode,
} from './errors.js';
export type {
  ClusterOptions, ClusterHTTPSSecureOptions, ClusterStartMode, ResolvedOptions,
} from './options.js';
/** @eggjs/cluster 3 name for the options of `new Master()`. */
export type { ClusterOptions as MasterOptions } from './options.js';
export type { Envelope, Role, ListeningAddress, EggReadyInfo } from './protocol.js';
export type { Host, CloseSignal, MasterSignal } from './host/host.js';
export type { Launcher, WorkerHandle, AppPool, WorkerSpec } from './launcher/types.js';
export type { Logger } from './logger.js';
