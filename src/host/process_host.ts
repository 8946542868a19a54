import fs from 'node:fs';
import path from 'node:path';
import type { Host, MasterSignal } from './host.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The one place that touches the master's own process: signals, parent IPC, exit, pid file. */
export class ProcessHost implements Host {
  readonly pid = process.pid;
  readonly env = process.env;
  #disposers: Array<() => void> = [];

  get hasParent(): boolean {
    return typeof process.send === 'function' && process.connected;
  }

  #on(event: string, listener: (...args: any[]) => void): void {
    process.on(event, listener);
    this.#disposers.push(() => process.removeListener(event, listener));
  }

  onSignal(signal: MasterSignal, listener: () => void): void {
    this.#on(signal, listener);
  }

  onExit(listener: (code: number) => void): void {
    this.#on('exit', listener);
  }

  onParentMessage(listener: (message: unknown) => void): void {
    if (typeof process.send !== 'function') return;
    this.#on('message', listener);
  }

  onFatal(listener: (err: unknown) => void): void {
    // Registering our own handler also stops cfork from installing its "log and carry on"
    // uncaughtException handler (defect D17).
    this.#on('uncaughtException', listener);
  }

  sendToParent(message: object): void {
    if (!this.hasParent) return;
    try {
      // The callback swallows the asynchronous ERR_IPC_CHANNEL_CLOSED (D18): a parent that
      // went away must not take the master down.
      process.send!(message, undefined, undefined, () => {});
    } catch {
      // channel closed between the check and the write
    }
  }

  writePidFile(file: string): number | undefined {
    let previous: number | undefined;
    try {
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) previous = pid;
    } catch {
      // no file yet
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, String(process.pid), 'utf8');
    return previous;
  }

  removePidFile(file: string): void {
    // Only our own pid: a second instance that took the file over keeps it (D20).
    let content: string;
    try {
      content = fs.readFileSync(file, 'utf8').trim();
    } catch {
      return;
    }
    if (content === String(process.pid)) fs.unlinkSync(file);
  }

  exit(code: number): void {
    process.exit(code);
  }

  dispose(): void {
    for (const dispose of this.#disposers.splice(0)) dispose();
  }
}
