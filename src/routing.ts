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
    if (receiver === String(ctx.masterPid)) return { to: 'master' };
    // egg-cluster dereferenced the agent here without a check and threw while it restarted (D6)
    if (ctx.agentWorkerId !== undefined && receiver === String(ctx.agentWorkerId)) return { to: 'agent' };
    return { to: 'app', receiver };
  }
  if (msg.to) return { to: msg.to };
  switch (msg.from) {
    case 'agent': return { to: 'app' };
    case 'app': return { to: 'agent' };
    case 'parent': return { to: 'master' };
    case 'master':
    case undefined:
      return { to: 'drop' };
  }
}
