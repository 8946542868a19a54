import type { Application } from 'egg';

// App side of the /agent round trip: send `compat-ping` to the agent and wait for its
// `compat-pong`, which the agent addresses to this worker's pid.
const TIMEOUT = 5000;

// what the app worker and a controller's `this.app` both have
type WithMessenger = Pick<Application, 'messenger'>;

interface Pending {
  resolve(agentPid: number): void;
  timer: NodeJS.Timeout;
}

const pending = new Map<number, Pending>();
let seq = 0;

export function listenForPongs(app: WithMessenger): void {
  app.messenger.on('compat-pong', ({ id, agentPid }: { id: number; agentPid: number }) => {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(agentPid);
  });
}

export function askAgentPid(app: WithMessenger): Promise<number> {
  return new Promise((resolve, reject) => {
    const id = ++seq;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`agent did not answer within ${TIMEOUT}ms`));
    }, TIMEOUT);
    pending.set(id, { resolve, timer });
    app.messenger.sendToAgent('compat-ping', { id, pid: process.pid });
  });
}

export function dropPending(): void {
  for (const { timer } of pending.values()) clearTimeout(timer);
  pending.clear();
}
