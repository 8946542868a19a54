/**
 * The agent's side of the master: fork it, learn that it started, restart it when it dies
 * (as lifecycle.ts decides), and tell the exception check whether it counts.
 */
import { format } from 'node:util';
import { AgentWorkerDiedError, ClusterAgentWorkerError, ClusterStartError } from './errors.js';
import type { WorkerHandle } from './launcher/types.js';
import type { MasterContext } from './master_context.js';

/** How long a (re)started agent may boot before the exception check counts it as missing. */
export const AGENT_BOOT_GRACE_MS = 60_000;

export class AgentSupervisor {
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: MasterContext,
    /** The agent said `agent-start` for the first time: the app workers can start. */
    private readonly onFirstStart: () => void,
    /** Every app worker of the first start listens (egg-cluster's isAllWorkerStarted). */
    private readonly appsStarted: () => boolean,
  ) {}

  fork(): void {
    const { ctx } = this;
    const agent = ctx.launcher.forkAgent({ options: ctx.options });
    ctx.registry.setAgent(agent);
    if (ctx.options.startMode === 'worker_threads') {
      ctx.log('[master] agent_worker#%s:%s start with worker_threads', agent.id, agent.workerId);
    } else {
      ctx.log('[master] agent_worker#%s:%s start with clusterPort:%s', agent.id, agent.workerId, ctx.options.clusterPort);
    }
    if (ctx.options.isDebug) {
      ctx.messenger.send({
        action: 'debug', to: 'parent', from: 'agent',
        data: { debugPort: agent.debugPort, pid: agent.workerId, workerId: agent.workerId },
      });
    }
    agent.on('message', raw => ctx.route(agent, raw));
    agent.on('error', err => {
      ctx.logger.error(new ClusterAgentWorkerError(agent.id, agent.workerId, ctx.registry.agentStarted ? 'started' : 'starting', err));
    });
    agent.once('exit', (code, signal) => this.#onExit(agent, code, signal));
  }

  /** `agent-start` from the current agent. */
  onStart(agent: WorkerHandle): void {
    const { ctx } = this;
    if (ctx.registry.agentStarted || ctx.closed) return;
    ctx.registry.agentStarted = true;
    ctx.lifecycle.agentStarted();
    if (this.appsStarted()) {
      ctx.messenger.send({ action: 'egg-ready', to: 'agent', data: ctx.readyPayload() });
    }
    ctx.messenger.send({ action: 'egg-pids', to: 'app', data: [agent.workerId] });
    if (ctx.isStarted) {
      ctx.messenger.send({ action: 'egg-pids', to: 'agent', data: ctx.registry.listeningWorkerIds() });
    }
    ctx.messenger.send({ action: 'agent-start', to: 'app' });
    ctx.logger.info('[master] agent_worker#%s:%s started (%sms)', agent.id, agent.workerId, Date.now() - agent.startTime);
    ctx.emit('agent-start');
    this.onFirstStart();
  }

  #onExit(agent: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    const { ctx } = this;
    if (ctx.registry.agent !== agent) return;
    const started = ctx.registry.agentStarted;
    ctx.registry.setAgent(undefined);
    if (ctx.closed) return;
    ctx.emit('agent-exit', { code, signal });
    ctx.messenger.send({ action: 'egg-pids', to: 'app', data: [] });
    ctx.logger.error(new AgentWorkerDiedError(format('[master] agent_worker#%s:%s died (code: %s, signal: %s)',
      agent.id, agent.workerId, code, signal)));
    const action = ctx.lifecycle.agentGone({ startTime: agent.startTime, started }, { closed: ctx.closed, launched: ctx.isStarted });
    switch (action.type) {
      case 'none':
        return;
      case 'fail-start':
        ctx.logger.error('[master] agent_worker#%s:%s start fail, exiting with code:1', agent.id, agent.workerId);
        ctx.failStart(new ClusterStartError('ERR_CLUSTER_AGENT_START',
          format('agent_worker#%s:%s died during startup (code: %s, signal: %s); its log above says why', agent.id, agent.workerId, code, signal)));
        return;
      case 'give-up':
        ctx.logger.error('[master] agent_worker not restarted: options.restartPolicy.limit is 0; %s',
          ctx.isProduction ? 'the exception check ends the cluster' : 'the app workers run without an agent');
        break;
      case 'restart': {
        // egg-cluster waited a fixed 1 s, forever; here the first death restarts at once, an
        // agent that keeps dying backs off, within a budget (options.restartPolicy)
        if (action.budgetExhausted) {
          ctx.logger.error('[master] agent_worker restart budget used up (%s restarts in %sms)',
            ctx.lifecycle.agents.config.limit, ctx.lifecycle.agents.config.windowMs);
        }
        ctx.log('[master] try to start a new agent_worker after %ss ...', action.delayMs / 1000);
        this.#restartTimer = setTimeout(() => {
          this.#restartTimer = undefined;
          if (ctx.closed) return; // D8: no new agent once shutdown began
          ctx.logger.info('[master] new agent_worker starting...');
          this.fork();
        }, action.delayMs);
        break;
      }
    }
    ctx.messenger.send({ action: 'agent-worker-died', to: 'parent' });
  }

  /** The exception check's agent count: the lifecycle decides (D21). */
  present(): 0 | 1 {
    const { registry, lifecycle } = this.ctx;
    const agent = registry.agent;
    return lifecycle.agentPresent(agent && {
      started: registry.agentStarted, alive: agent.isAlive, startTime: agent.startTime,
    }, AGENT_BOOT_GRACE_MS);
  }

  /** No restart once a close began. */
  stop(): void {
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  /** The forced exit. */
  forceKill(): void {
    this.ctx.registry.agent?.forceKill();
  }
}
