export type ClusterErrorCode =
  | 'ERR_CLUSTER_INVALID_OPTION'
  | 'ERR_CLUSTER_FRAMEWORK'
  | 'ERR_CLUSTER_PORT'
  | 'ERR_CLUSTER_AGENT_START'
  | 'ERR_CLUSTER_APP_START'
  | 'ERR_CLUSTER_START_TIMEOUT'
  | 'ERR_CLUSTER_PID_FILE'
  | 'ERR_CLUSTER_AGENT_DIED'
  | 'ERR_CLUSTER_APP_DIED'
  | 'ERR_CLUSTER_AGENT_WORKER'
  | 'ERR_CLUSTER_WORKER_EXCEPTION'
  | 'ERR_CLUSTER_CLOSE';

const kClusterError = Symbol.for('egg-clutch.ClusterError');

/** Base of every error egg-clutch raises: a stable `code`, the class name as `name`, and `cause`. */
export class ClusterError extends Error {
  readonly code: ClusterErrorCode;

  constructor(code: ClusterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  get [kClusterError](): true {
    return true;
  }

  // instanceof works across copies of the package (two installs, ESM and CJS).
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if ((value as Record<symbol, unknown>)[kClusterError] !== true) return false;
    if (this === ClusterError) return true;
    return (value as Error).name === this.name || Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** An option has a wrong type or value; the message says which and how to fix it. */
export class InvalidOptionError extends ClusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLUSTER_INVALID_OPTION', message, options);
  }
}

/** The framework cannot be found or does not export Application and Agent. */
export class FrameworkError extends ClusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLUSTER_FRAMEWORK', message, options);
  }
}

/** The agent died, or reported an error, before it ever started (egg-cluster 2.x name). */
export class AgentWorkerDiedError extends ClusterError {
  constructor(message: string) {
    super('ERR_CLUSTER_AGENT_DIED', message);
  }
}

/** An app worker died (egg-cluster 2.x name). */
export class AppWorkerDiedError extends ClusterError {
  constructor(message: string) {
    super('ERR_CLUSTER_APP_DIED', message);
  }
}

/** The agent child reported an `error` event (spawn failure, IPC failure); @eggjs/cluster 3 name. */
export class ClusterAgentWorkerError extends ClusterError {
  readonly id: number;
  readonly workerId: number;
  readonly status: string;

  constructor(id: number, workerId: number, status: string, cause: Error) {
    // @eggjs/cluster 3's message; id, workerId and status say which agent
    super('ERR_CLUSTER_AGENT_WORKER', `Got agent worker error: ${cause.message}`, { cause });
    this.id = id;
    this.workerId = workerId;
    this.status = status;
  }
}

/** The health check saw no agent or no app worker three times in a row. */
export class ClusterWorkerExceptionError extends ClusterError {
  readonly count: { agent: number; worker: number };

  constructor(agent: number, worker: number) {
    super(
      'ERR_CLUSTER_WORKER_EXCEPTION',
      `[master] ${agent} agent and ${worker} worker(s) alive, exit to avoid unknown state`,
    );
    this.count = { agent, worker };
  }
}

/** A worker died during startup, or a port could not be found: the cluster cannot start. */
export class ClusterStartError extends ClusterError {
  constructor(code: 'ERR_CLUSTER_AGENT_START' | 'ERR_CLUSTER_APP_START' | 'ERR_CLUSTER_PORT' | 'ERR_CLUSTER_START_TIMEOUT' | 'ERR_CLUSTER_PID_FILE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
