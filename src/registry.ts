import type { WorkerHandle } from './launcher/types.js';

export type AppState = 'starting' | 'listening' | 'disconnected' | 'dead';

export interface AppEntry {
  readonly handle: WorkerHandle;
  state: AppState;
  /** Replaced by a dev reload: its death is expected and not logged as an error. */
  devReload: boolean;
  /** Stable position 0..workers-1, reused by the worker that replaces this one (sticky hashing). */
  readonly slot: number;
  /** Being terminated (close, reload): it takes no new sticky connections. */
  stopping: boolean;
  /** When it began listening (ms); undefined while starting. */
  listenedAt: number | undefined;
  /** Forked by a rolling reload and not listening yet. */
  reloadFork: boolean;
  /** Its replacement was forked already (on disconnect): its exit forks no other. */
  replaced: boolean;
}

/** The agent and the app workers the master knows, by workerId. */
export class WorkerRegistry {
  agent: WorkerHandle | undefined;
  /** The current agent said `agent-start`. */
  agentStarted = false;
  readonly apps = new Map<number, AppEntry>();

  setAgent(agent: WorkerHandle | undefined): void {
    this.agent = agent;
    this.agentStarted = false;
  }

  addApp(handle: WorkerHandle): AppEntry {
    // a worker that is already disconnecting gives its slot to its replacement (cfork reforks
    // on 'disconnect', before the old one's 'exit')
    const used = new Set([...this.apps.values()].filter(e => e.state !== 'disconnected').map(e => e.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const entry: AppEntry = {
      handle, state: 'starting', devReload: false, slot, stopping: false, listenedAt: undefined, reloadFork: false, replaced: false,
    };
    this.apps.set(handle.workerId, entry);
    return entry;
  }

  app(handle: WorkerHandle): AppEntry | undefined {
    const entry = this.apps.get(handle.workerId);
    return entry?.handle === handle ? entry : undefined;
  }

  removeApp(handle: WorkerHandle): void {
    if (this.app(handle)) this.apps.delete(handle.workerId);
  }

  appHandles(): WorkerHandle[] {
    return [...this.apps.values()].map(e => e.handle);
  }

  /** egg-cluster prints `Object.keys(cluster.workers)`: the ordinals as strings. */
  appIds(): string[] {
    return [...this.apps.values()].map(e => String(e.handle.id));
  }

  listeningWorkerIds(): number[] {
    const ids: number[] = [];
    for (const [id, entry] of this.apps) if (entry.state === 'listening') ids.push(id);
    return ids;
  }

  /** Workers that can take traffic now (sticky mode): listening, connected, not being replaced. */
  servingEntries(): AppEntry[] {
    return [...this.apps.values()].filter(e => e.state === 'listening' && e.handle.isConnected && !e.stopping);
  }

  count(): { agent: number; worker: number } {
    return { agent: this.agent && this.agentStarted ? 1 : 0, worker: this.apps.size };
  }
}
