/** Signals that close the cluster gracefully. SIGHUP is one (a closed terminal): see README. */
export type CloseSignal = 'SIGINT' | 'SIGQUIT' | 'SIGTERM' | 'SIGHUP';
/** Signals the master listens to: the close signals, and SIGUSR2 for a rolling reload. */
export type MasterSignal = CloseSignal | 'SIGUSR2';

/**
 * Everything the master does to its own process. The real one is ProcessHost; unit tests
 * pass a fake and assert on what it was asked to do.
 */
export interface Host {
  readonly pid: number;
  /** True while the master has an IPC channel to a parent (egg-scripts, egg-mock, egg-bin). */
  readonly hasParent: boolean;
  readonly env: NodeJS.ProcessEnv;
  onSignal(signal: MasterSignal, listener: () => void): void;
  onExit(listener: (code: number) => void): void;
  onParentMessage(listener: (message: unknown) => void): void;
  /** Errors nobody caught in the master: the master must end, not carry on in an unknown state. */
  onFatal(listener: (err: unknown) => void): void;
  /** Never throws; drops the message when there is no parent or its channel is gone. */
  sendToParent(message: object): void;
  /** Writes our pid; returns the pid the file held before if that process is still alive. */
  writePidFile(file: string): number | undefined;
  removePidFile(file: string): void;
  exit(code: number): void;
  /** Stop listening to signals and the parent (an embedded master that is done). */
  dispose(): void;
}
