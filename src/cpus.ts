import fs from 'node:fs';
import os from 'node:os';

function readFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The CPU quota of this process's cgroup in CPUs (rounded up), or undefined when unlimited.
 * cgroup v2: `cpu.max` = "<quota> <period>" or "max <period>"; v1: cfs_quota_us / cfs_period_us.
 */
export function cgroupCpuLimit(read: (file: string) => string | undefined = readFile): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2) {
    const [quota, period] = v2.split(/\s+/);
    if (quota && quota !== 'max' && period) {
      const cpus = Number(quota) / Number(period);
      if (Number.isFinite(cpus) && cpus > 0) return Math.max(1, Math.ceil(cpus));
    }
    return undefined;
  }
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  if (quota > 0 && period > 0) return Math.max(1, Math.ceil(quota / period));
  return undefined;
}

/**
 * The default worker count: the CPUs this process may really use. egg-cluster used
 * os.cpus().length, which in a container limited to 2 CPUs on a 48-core host forks 48
 * workers (eggjs/egg#4649).
 */
export function availableCpus(): number {
  const host = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const limit = cgroupCpuLimit();
  return Math.max(1, limit === undefined ? host : Math.min(host, limit));
}
