import type { Logger } from './logger.js';

/**
 * The one WARN line the master logs when it is PID 1 of its PID namespace (a container started
 * without an init). PID 1 inherits every orphaned process of the namespace; the kernel leaves
 * an exited orphan as a zombie until PID 1 waits for it, and Node only waits for the children
 * it spawned itself, so a grandchild orphaned by a worker (a shell's background job, a daemon
 * a library double-forks) stays a zombie for the life of the container and its pid slot is
 * never freed.
 */
export const PID1_WARNING =
  '[master] running as PID 1 (no init process in this container): orphaned processes that exit stay zombies, ' +
  'because Node.js reaps only its own children. Start the master under an init: ' +
  'tini (ENTRYPOINT ["tini", "--"]), `docker run --init`, or Kubernetes `shareProcessNamespace: true`';

/**
 * Logs PID1_WARNING through the master's logger when `pid` is 1; the master calls it once
 * at start. Returns whether it warned.
 */
export function warnIfPid1(logger: Pick<Logger, 'warn'>, pid: number = process.pid): boolean {
  if (pid !== 1) return false;
  logger.warn(PID1_WARNING);
  return true;
}
