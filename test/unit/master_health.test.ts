import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ClusterWorkerExceptionError } from '../../src/errors.js';
import { HealthCheck } from '../../src/health.js';
import { AGENT_BOOT_GRACE_MS } from '../../src/master.js';
import { agentStart, createFakeCluster, flush, startFakeCluster, type FakeCluster } from '../helpers/fake_launcher.js';

const CHECK = 10_000;

async function tick(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await flush();
}

/** Kill the agent and keep its replacement from starting (it never says agent-start). */
async function killAgent(c: FakeCluster): Promise<void> {
  c.launcher.agent!.die(1);
  await flush();
}

describe('exception check (production only)', () => {
  // Date too: the agent boot grace is measured from the agent's start time
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('three consecutive 10 s checks without a started agent (after its boot grace): ClusterWorkerExceptionError and exit 1', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    await killAgent(c);
    await tick(CHECK); // the restart at 1 s forks a new agent that never starts
    assert.equal(c.launcher.agents.length, 2);
    // D21: a restarting agent counts as alive for AGENT_BOOT_GRACE_MS after its fork
    for (let i = 0; i < AGENT_BOOT_GRACE_MS / CHECK - 1; i++) await tick(CHECK);
    assert.deepEqual(c.host.exits, [], 'no miss while the new agent is within its boot grace');
    await tick(CHECK); // miss 1
    await tick(CHECK);
    assert.deepEqual(c.host.exits, [], 'two misses are tolerated');
    assert.equal(c.logger.errors('ClusterWorkerExceptionError').length, 0);
    await tick(CHECK);
    await flush(5);
    const errors = c.logger.errors('ClusterWorkerExceptionError');
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof ClusterWorkerExceptionError);
    assert.ok(errors[0] instanceof ClusterWorkerExceptionError);
    assert.deepEqual(errors[0].count, { agent: 0, worker: 4 });
    assert.ok(c.logger.has('nodejs.ClusterWorkerExceptionError: [master] 0 agent and 4 worker(s) alive, exit to avoid unknown state', 'error'));
    assert.deepEqual(c.host.exits, [1]);
    assert.ok(c.logger.has('[master] exit with code:1', 'error'));
    for (const w of [...c.launcher.apps, ...c.launcher.agents]) assert.equal(w.isAlive, false, `${w.label} stopped`);
  });

  it('no app worker alive counts as a miss too', async () => {
    // restartPolicy.limit 0: a dead worker is not replaced
    const c = await startFakeCluster({ options: { env: 'prod', workers: 1, restartPolicy: { limit: 0 } } });
    c.launcher.apps[0]!.die(1);
    await flush();
    assert.equal(c.launcher.apps.length, 1, 'not reforked');
    assert.ok(c.logger.has('[master] app_worker#1:3001 not reforked: options.restartPolicy.limit is 0', 'error'));
    await flush();
    await tick(CHECK * 3);
    await flush(5);
    assert.ok(c.logger.has('[master] 1 agent and 0 worker(s) alive, exit to avoid unknown state', 'error'));
    assert.deepEqual(c.host.exits, [1]);
  });

  it('an agent whose replacements all die at boot is missing: exit 1 after three checks, restart scheduled or not', async () => {
    const c = await startFakeCluster({ options: { env: 'prod', workers: 2 } });
    c.launcher.agent!.die(null, 'SIGKILL'); // the started agent is killed
    await flush();
    const dieAtBoot = async (): Promise<void> => {
      const agent = c.launcher.agent!;
      if (agent.isAlive) agent.die(1);
      await flush();
    };
    let elapsed = 0;
    while (c.host.exits.length === 0 && elapsed < 120_000) {
      await tick(500); // a restart (its backoff) may fork the next one; it dies at boot at once
      elapsed += 500;
      await dieAtBoot();
    }
    assert.deepEqual(c.host.exits, [1], `after ${elapsed} ms`);
    assert.ok(elapsed <= 40_000, `ended after ${elapsed} ms (three 10 s checks)`);
    assert.ok(c.launcher.agents.length > 2, 'it kept trying meanwhile');
    assert.ok(c.logger.has('nodejs.ClusterWorkerExceptionError: [master] 0 agent and 2 worker(s) alive, exit to avoid unknown state', 'error'));
  });

  it('restartPolicy.limit 0: a dead agent is not restarted; production ends with the exception check', async () => {
    const c = await startFakeCluster({ options: { env: 'prod', restartPolicy: { limit: 0 } } });
    c.launcher.agent!.die(1);
    await flush();
    assert.ok(c.logger.has('[master] agent_worker not restarted: options.restartPolicy.limit is 0; the exception check ends the cluster', 'error'));
    await tick(CHECK * 3);
    await flush(5);
    assert.equal(c.launcher.agents.length, 1, 'never restarted');
    assert.deepEqual(c.host.exits, [1]);
  });

  it('a recovery resets the count', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    await killAgent(c);
    for (let i = 0; i < AGENT_BOOT_GRACE_MS / CHECK; i++) await tick(CHECK); // boot grace of the replacement
    await tick(CHECK); // miss 1 (replacement forked at 1 s, not started)
    await tick(CHECK); // miss 2
    await agentStart(c); // recovered before the third check
    await tick(CHECK); // ok: count reset
    await killAgent(c);
    for (let i = 0; i < AGENT_BOOT_GRACE_MS / CHECK; i++) await tick(CHECK);
    await tick(CHECK); // miss 1
    await tick(CHECK); // miss 2
    assert.deepEqual(c.host.exits, [], 'the misses before the recovery do not count');
    await tick(CHECK); // miss 3
    await flush(5);
    assert.deepEqual(c.host.exits, [1]);
  });

  for (const env of ['local', 'unittest']) {
    it(`is not started in env ${env}`, async () => {
      const c = await startFakeCluster({ options: { env } });
      await killAgent(c);
      await tick(CHECK * 10);
      assert.deepEqual(c.host.exits, []);
      assert.equal(c.logger.errors('ClusterWorkerExceptionError').length, 0);
    });
  }

  it('is not started before the cluster is ready', async () => {
    const c = createFakeCluster({ options: { env: 'prod' } });
    await flush();
    await tick(CHECK * 5); // the agent never starts: the master waits (egg-cluster has no start timeout)
    assert.deepEqual(c.host.exits, []);
  });

  it('stops when the master closes', async () => {
    const c = await startFakeCluster({ options: { env: 'prod' } });
    await c.master.close();
    await tick(CHECK * 5);
    assert.deepEqual(c.host.exits, [0]);
    assert.equal(c.logger.errors('ClusterWorkerExceptionError').length, 0);
  });
});

describe('HealthCheck', () => {
  // Date too: the agent boot grace is measured from the agent's start time
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('counts misses, resets on a good check, fires once at maxMisses', () => {
    const counts = [
      { agent: 0, worker: 1 }, { agent: 1, worker: 0 }, { agent: 1, worker: 1 },
      { agent: 0, worker: 0 }, { agent: 0, worker: 2 }, { agent: 0, worker: 2 },
    ];
    let i = 0;
    const fired: Array<{ agent: number; worker: number }> = [];
    const check = new HealthCheck(() => counts[i++] ?? { agent: 1, worker: 1 }, c => fired.push(c), 100, 3);
    check.start();
    mock.timers.tick(300);
    assert.equal(fired.length, 0, 'two misses then a good check');
    mock.timers.tick(200);
    assert.equal(fired.length, 0, 'two misses after the reset');
    mock.timers.tick(100);
    assert.deepEqual(fired, [{ agent: 0, worker: 2 }]);
    check.stop();
  });

  it('stops checking once it fired (real timers: Node 20 mock timers keep an interval cleared in its own callback)', async () => {
    mock.timers.reset();
    let checks = 0;
    const fired: number[] = [];
    const check = new HealthCheck(() => {
      checks++;
      return { agent: 0, worker: 0 };
    }, () => fired.push(checks), 1, 3);
    check.start();
    for (let n = 0; n < 200 && fired.length === 0; n++) await new Promise(r => setTimeout(r, 1));
    assert.deepEqual(fired, [3]);
    await new Promise(r => setTimeout(r, 15));
    assert.equal(checks, 3, 'no check after firing');
    assert.deepEqual(fired, [3]);
    check.stop();
  });

  it('start() twice keeps one timer', () => {
    let calls = 0;
    const check = new HealthCheck(() => {
      calls++;
      return { agent: 1, worker: 1 };
    }, () => {}, 100);
    check.start();
    check.start();
    mock.timers.tick(100);
    assert.equal(calls, 1);
    check.stop();
    mock.timers.tick(500);
    assert.equal(calls, 1);
  });
});
