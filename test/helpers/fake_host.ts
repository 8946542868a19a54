import type { Host, MasterSignal } from '../../src/host/host.js';

/**
 * A Host that touches nothing: it records what the master asked of its process and lets the
 * test fire what the OS or the parent would (signals, parent messages, uncaught errors, exit).
 */
export class FakeHost implements Host {
  readonly pid: number;
  hasParent: boolean;
  readonly env: NodeJS.ProcessEnv;

  /** Every `exit(code)` the master called, in order (a real host would end at the first). */
  readonly exits: number[] = [];
  /** What the master sent to the parent (a structured clone, as IPC would carry it). */
  readonly parentMessages: Array<Record<string, unknown>> = [];
  readonly pidFilesWritten: string[] = [];
  readonly pidFilesRemoved: string[] = [];
  disposed = false;
  /** Make writePidFile throw (a folder that is not writable). */
  pidFileError: Error | undefined;
  /** What writePidFile reports: the pid of a live process that held the file before. */
  pidFilePreviousOwner: number | undefined;

  readonly #signalListeners = new Map<MasterSignal, Array<() => void>>();
  readonly #exitListeners: Array<(code: number) => void> = [];
  readonly #parentListeners: Array<(message: unknown) => void> = [];
  readonly #fatalListeners: Array<(err: unknown) => void> = [];

  constructor(init: { pid?: number; hasParent?: boolean; env?: NodeJS.ProcessEnv } = {}) {
    this.pid = init.pid ?? 1000;
    this.hasParent = init.hasParent ?? true;
    this.env = init.env ?? {};
  }

  onSignal(signal: MasterSignal, listener: () => void): void {
    const list = this.#signalListeners.get(signal) ?? [];
    list.push(listener);
    this.#signalListeners.set(signal, list);
  }

  onExit(listener: (code: number) => void): void {
    this.#exitListeners.push(listener);
  }

  onParentMessage(listener: (message: unknown) => void): void {
    this.#parentListeners.push(listener);
  }

  onFatal(listener: (err: unknown) => void): void {
    this.#fatalListeners.push(listener);
  }

  sendToParent(message: object): void {
    if (!this.hasParent) return;
    this.parentMessages.push(cloneMessage(message));
  }

  writePidFile(file: string): number | undefined {
    if (this.pidFileError) throw this.pidFileError;
    this.pidFilesWritten.push(file);
    return this.pidFilePreviousOwner;
  }

  removePidFile(file: string): void {
    this.pidFilesRemoved.push(file);
  }

  /** Records the code and runs the exit listeners, as process.exit would (but returns). */
  exit(code: number): void {
    this.exits.push(code);
    this.fireExit(code);
  }

  dispose(): void {
    this.disposed = true;
    this.#signalListeners.clear();
    this.#parentListeners.length = 0;
    this.#fatalListeners.length = 0;
  }

  // ---- what the test fires ----

  /** The OS sends a signal to the master. */
  signal(signal: MasterSignal): void {
    for (const listener of this.#signalListeners.get(signal) ?? []) listener();
  }

  /** The parent (egg-scripts, egg-mock) sends a message on the master's IPC channel. */
  parentSend(message: unknown): void {
    for (const listener of [...this.#parentListeners]) listener(message);
  }

  /** An error nobody caught in the master. */
  fatal(err: unknown): void {
    for (const listener of [...this.#fatalListeners]) listener(err);
  }

  /** The process' `exit` event, without recording an exit call. */
  fireExit(code: number): void {
    for (const listener of [...this.#exitListeners]) listener(code);
  }

  listenerCount(kind: 'signal' | 'exit' | 'parent' | 'fatal', signal: MasterSignal = 'SIGTERM'): number {
    switch (kind) {
      case 'signal': return this.#signalListeners.get(signal)?.length ?? 0;
      case 'exit': return this.#exitListeners.length;
      case 'parent': return this.#parentListeners.length;
      case 'fatal': return this.#fatalListeners.length;
    }
  }

  /** Parent messages with this action (and, when given, this sender). */
  parentMessagesOf(action: string, from?: string): Array<Record<string, unknown>> {
    return this.parentMessages.filter(m => m.action === action && (from === undefined || m.from === from));
  }
}

/** What an IPC channel would deliver: a copy, so later mutation by the sender does not show. */
export function cloneMessage(message: object): Record<string, unknown> {
  try {
    return structuredClone(message) as Record<string, unknown>;
  } catch {
    return { ...message };
  }
}
