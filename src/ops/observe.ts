import type { AppPool, Launcher, WorkerHandle, WorkerSpec } from '../launcher/types.js';

/**
 * The launcher, with every agent and app worker it forks shown to `hooks` first (before the
 * master's own listeners): how the status server and the watchdog follow the workers without
 * a hook in apps.ts or agents.ts.
 */
export function observeLauncher(
  launcher: Launcher,
  hooks: { onAgent?: (agent: WorkerHandle) => void; onApp: (app: WorkerHandle) => void },
): Launcher {
  const observed: Launcher = {
    forkAgent: (spec: WorkerSpec) => {
      const agent = launcher.forkAgent(spec);
      hooks.onAgent?.(agent);
      return agent;
    },
    startApps: (spec: WorkerSpec, count: number): AppPool => {
      const pool = launcher.startApps(spec, count);
      pool.on('fork', hooks.onApp);
      return pool;
    },
  };
  if (launcher.killStragglers) observed.killStragglers = () => launcher.killStragglers!();
  return observed;
}
