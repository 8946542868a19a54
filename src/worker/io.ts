/**
 * The worker side of the master channel: IPC for a child process (agent via child_process,
 * apps via node:cluster), `parentPort` for a worker thread. The worker entries talk to the
 * master only through this, so one entry serves both start modes.
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import sendmessage from 'sendmessage';
import { OPTIONS_ACTION } from '../protocol.js';
import type { ResolvedOptions } from '../options.js';
import { decodeOptions } from './options_codec.js';

/**
 * Master → worker thread: close gracefully (drain, then `app.close()` / `agent.close()`),
 * then end the thread. Threads get no signals, so this message stands in for SIGTERM.
 */
export const GRACEFUL_EXIT_ACTION = 'egg-clutch:graceful-exit';

export interface WorkerIO {
  /** True inside a worker thread (startMode 'worker_threads'). */
  readonly isThread: boolean;
  /**
   * The master's first message, the full options. Resolves undefined when the channel
   * closes first (the master died): the caller exits.
   */
  receiveOptions(): Promise<ResolvedOptions | undefined>;
  /** To the master; never throws (a message on a closed channel is dropped). */
  send(message: object): void;
  /** Every message from the master; returns a function that removes the listener. */
  onMessage(listener: (message: unknown) => void): () => void;
}

function isOptionsMessage(msg: unknown): msg is { action: string; data?: unknown } {
  return typeof msg === 'object' && msg !== null && (msg as { action?: unknown }).action === OPTIONS_ACTION;
}

/** What both transports have in common: `process` and a thread's `parentPort`. */
interface Channel {
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

/** The bootstrap wait shared by both transports: `source` emits 'message' and `closeEvent`. */
function waitForOptions(source: Channel, closeEvent: string): Promise<ResolvedOptions | undefined> {
  return new Promise(resolve => {
    const onMessage = (msg: unknown): void => {
      if (!isOptionsMessage(msg)) return;
      cleanup();
      resolve(decodeOptions(msg.data));
    };
    const onClose = (): void => {
      cleanup();
      resolve(undefined);
    };
    const cleanup = (): void => {
      source.removeListener('message', onMessage);
      source.removeListener(closeEvent, onClose);
    };
    source.on('message', onMessage);
    source.once(closeEvent, onClose);
  });
}

/** A child process: `process.send` / `process.on('message')` (sendmessage guards a closed channel). */
export function createProcessIO(): WorkerIO {
  return {
    isThread: false,
    receiveOptions: () => waitForOptions(process, 'disconnect'),
    send(message) {
      try {
        sendmessage(process, message);
      } catch {
        // the channel closed between sendmessage's check and the write
      }
    },
    onMessage(listener) {
      process.on('message', listener);
      return () => process.removeListener('message', listener);
    },
  };
}

/** A worker thread: `parentPort`. */
export function createThreadIO(port: NonNullable<typeof parentPort>): WorkerIO {
  return {
    isThread: true,
    receiveOptions: () => waitForOptions(port, 'close'),
    send(message) {
      try {
        port.postMessage(message);
      } catch (err) {
        // a value structured clone cannot copy (a function in user data): send what JSON
        // keeps, as the process channel would
        if ((err as Error).name !== 'DataCloneError') return;
        try {
          port.postMessage(JSON.parse(JSON.stringify(message)));
        } catch {
          // not serialisable at all: dropped, as on a closed channel
        }
      }
    },
    onMessage(listener) {
      port.on('message', listener);
      return () => port.removeListener('message', listener);
    },
  };
}

/** The IO of the current worker: thread or process. */
export function createWorkerIO(): WorkerIO {
  return !isMainThread && parentPort ? createThreadIO(parentPort) : createProcessIO();
}
