/**
 * The production exception check: every 10 s, an agent that has started and at least one
 * app worker must exist; three misses in a row end the cluster (egg-cluster's rule).
 */
export class HealthCheck {
  #timer: NodeJS.Timeout | undefined;
  #misses = 0;

  constructor(
    private readonly count: () => { agent: number; worker: number },
    private readonly onException: (count: { agent: number; worker: number }) => void,
    private readonly intervalMs = 10_000,
    private readonly maxMisses = 3,
  ) {}

  start(): void {
    this.stop();
    this.#misses = 0;
    this.#timer = setInterval(() => this.#check(), this.intervalMs);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    const count = this.count();
    if (count.agent && count.worker) {
      this.#misses = 0;
      return;
    }
    if (++this.#misses >= this.maxMisses) {
      this.stop();
      this.onException(count);
    }
  }
}
