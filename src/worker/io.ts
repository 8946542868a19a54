/**
 * The worker side of the master channel: IPC for a child process (agent via child_process,
 * apps via node:cluster), `parentPort` for a worker thread. The worker entries talk to the
 * master only through this, so one entry serves both start modes.
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import { OPTIONS_ACTION, OPTIONS_REQUEST_ACTION } from '../protocol.js';
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
   * Ask the master for the full options, once this worker listens for the answer, and wait
   * for it. Resolves undefined when the channel closes first (the master died): the caller exits.
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

/**
 * The bootstrap shared by both transports: listen on `source` ('message' and `closeEvent`),
 * then ask. The request goes out only after the listener is attached, so however late a
 * preload lets this module run, the answer cannot be missed.
 */
function requestOptions(source: Channel, closeEvent: string, send: (message: object) => void): Promise<ResolvedOptions | undefined> {
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
    send({ action: OPTIONS_REQUEST_ACTION });
  });
}

function ignore(): void {
  // a message the master cannot receive any more is dropped
}

/**
 * A child process: `process.send` / `process.on('message')`. Not sendmessage: on a closed
 * channel it prints a "channel closed" warning with a stack to stderr (which egg-scripts
 * takes for a failed start), and it sends without a callback, so a write that fails later
 * becomes an `error` event on `process` (defect D18). The master being gone is normal here
 * (the worker is about to exit): nothing is printed.
 */
export function createProcessIO(): WorkerIO {
  const io: WorkerIO = {
    isThread: false,
    receiveOptions: () => requestOptions(process, 'disconnect', message => io.send(message)),
    send(message) {
      if (!process.connected || !process.send) return;
      try {
        process.send(message, undefined, {}, ignore);
      } catch {
        // a value the channel cannot serialise: dropped, as on a closed channel
      }
    },
    onMessage(listener) {
      process.on('message', listener);
      return () => process.removeListener('message', listener);
    },
  };
  return io;
}

/** A worker thread: `parentPort`. */
export function createThreadIO(port: NonNullable<typeof parentPort>): WorkerIO {
  const io: WorkerIO = {
    isThread: true,
    receiveOptions: () => requestOptions(port, 'close', message => io.send(message)),
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
  return io;
}

/** The IO of the current worker: thread or process. */
export function createWorkerIO(): WorkerIO {
  return !isMainThread && parentPort ? createThreadIO(parentPort) : createProcessIO();
}
