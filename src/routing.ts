import type { Envelope } from './protocol.js';

export type Target = 'master' | 'parent' | 'app' | 'agent' | 'drop';

export interface RouteContext {
  masterPid: number;
  /** The current agent's workerId, or undefined while there is none (dead, restarting). */
  agentWorkerId: number | undefined;
}

export interface Route {
  to: Target;
  /** For `app`: deliver only to the worker with this id (pid in process mode). */
  receiver?: string;
}

// The routes without a receiver, allocated once: routing runs for every relayed message.
const TO: Readonly<Record<Target, Route>> = Object.freeze({
  master: Object.freeze({ to: 'master' }),
  parent: Object.freeze({ to: 'parent' }),
  app: Object.freeze({ to: 'app' }),
  agent: Object.freeze({ to: 'agent' }),
  drop: Object.freeze({ to: 'drop' }),
});

/**
 * Where a message goes (egg's Messenger#send rules, decided without side effects):
 * 1. `receiverWorkerId ?? receiverPid` picks master, the agent, or one app worker;
 * 2. with no `to`: agent -> app, app -> agent, parent -> master;
 * 3. otherwise `to`. A message from the master with no `to` goes nowhere.
 */
export function resolveRoute(msg: Envelope, ctx: RouteContext): Route {
  const rawReceiver = msg.receiverWorkerId ?? msg.receiverPid;
  if (rawReceiver !== undefined && rawReceiver !== null && rawReceiver !== '') {
    const receiver = String(rawReceiver);
    if (receiver === String(ctx.masterPid)) return TO.master;
    // egg-cluster dereferenced the agent here without a check and threw while it restarted (D6)
    if (ctx.agentWorkerId !== undefined && receiver === String(ctx.agentWorkerId)) return TO.agent;
    return { to: 'app', receiver };
  }
  if (msg.to) return TO[msg.to];
  switch (msg.from) {
    case 'agent': return TO.app;
    case 'app': return TO.agent;
    case 'parent': return TO.master;
    case 'master':
    case undefined:
      return TO.drop;
  }
}
