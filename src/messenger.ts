import type { Envelope } from './protocol.js';
import type { WorkerHandle } from './launcher/types.js';
import type { WorkerRegistry } from './registry.js';
import { resolveRoute } from './routing.js';

export interface MessengerDeps {
  masterPid: number;
  registry: WorkerRegistry;
  sendToParent(message: Envelope): void;
  /** A message addressed to the master; `source` is the worker whose channel carried it. */
  onMasterMessage(message: Envelope, source: WorkerHandle | undefined): void;
}

/**
 * What tools read from the parent channel as the master's own word: egg-scripts waits for
 * `egg-ready`, egg-mock fails a test on `*-worker-died`. Only the master may send them.
 */
const MASTER_ONLY_TO_PARENT = new Set(['egg-ready', 'app-worker-died', 'agent-worker-died']);

/** Delivers envelopes where routing.ts says; the master's own sends go through it too. */
export class Messenger {
  constructor(private readonly deps: MessengerDeps) {}

  send(msg: Envelope, source?: WorkerHandle): void {
    if (!msg.from) msg.from = 'master';
    const { registry } = this.deps;
    const route = resolveRoute(msg, { masterPid: this.deps.masterPid, agentWorkerId: registry.agent?.workerId });
    switch (route.to) {
      case 'master':
        this.deps.onMasterMessage(msg, source);
        return;
      case 'parent':
        if (msg.from !== 'master' && MASTER_ONLY_TO_PARENT.has(msg.action)) return;
        this.deps.sendToParent(msg);
        return;
      case 'agent':
        registry.agent?.send(msg);
        return;
      case 'app':
        for (const entry of registry.apps.values()) {
          if (entry.state === 'disconnected' || !entry.handle.isConnected) continue;
          if (route.receiver !== undefined && route.receiver !== String(entry.handle.workerId)) continue;
          entry.handle.send(msg);
        }
        return;
      case 'drop':
        return;
    }
  }
}
