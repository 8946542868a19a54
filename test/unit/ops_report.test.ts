import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it, mock } from 'node:test';
import { isWorkerReport, REPORT_VERSION, WorkerReporter } from '../../src/worker/report.js';
import { normalizeMessage } from '../../src/protocol.js';

function request(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, res => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

/** Turn the event loop (timers phase included) until `check` holds; 5 s at most. */
async function turnsUntil(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise(resolve => setTimeout(resolve, 1));
  }
}

describe('worker report', () => {
  it('counts requests and the ones in flight on the tracked servers', async () => {
    const reporter = new WorkerReporter(() => {});
    let release: (() => void) | undefined;
    let arrived: (() => void) | undefined;
    const held = new Promise<void>(resolve => { arrived = resolve; });
    const server = http.createServer((req, res) => {
      if (req.url === '/hold') {
        release = () => res.end('late');
        arrived!();
        return;
      }
      res.end('ok');
    });
    reporter.track(server);
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      assert.equal(await request(port, '/'), 200);
      assert.equal(await request(port, '/'), 200);
      const pending = request(port, '/hold');
      await held;
      let report = reporter.collect();
      assert.equal(report.requests, 3);
      assert.equal(report.inFlight, 1);
      release!();
      assert.equal(await pending, 200);
      report = reporter.collect();
      assert.equal(report.requests, 3);
      assert.equal(report.inFlight, 0);
    } finally {
      server.close();
    }
  });

  it('memory in bytes, ELU in 0..1, and the event-loop delay of a blocked loop (200 ms)', async () => {
    const reporter = new WorkerReporter(() => {});
    reporter.start();
    try {
      reporter.collect(); // the interval starts now
      // the delay monitor has taken a sample (its timer ticks every 20 ms)…
      await turnsUntil(() => reporter.delaySamples >= 1);
      const before = reporter.delaySamples;
      // …then the loop is blocked for 200 ms, and the monitor's next tick measures it
      const until = Date.now() + 200;
      while (Date.now() < until) { /* busy */ }
      await turnsUntil(() => reporter.delaySamples > before);
      const report = reporter.collect();
      assert.equal(report.v, REPORT_VERSION);
      assert.equal(report.seq, 2);
      assert.ok(report.rss > 10 * 1024 * 1024 && report.heapUsed > 0 && report.heapTotal >= report.heapUsed, JSON.stringify(report));
      assert.ok(report.elu > 0.3 && report.elu <= 1, `ELU ${report.elu} after a 200 ms block in a ~250 ms interval`);
      assert.ok(report.eventLoopDelayMaxMs >= 100, `max delay ${report.eventLoopDelayMaxMs} ms after a 200 ms block`);
      assert.ok(report.eventLoopDelayP99Ms >= 100, `p99 ${report.eventLoopDelayP99Ms} ms`);
      assert.ok(report.cpuUserUs > 0);
      // gauges are per interval: the next one starts from zero
      const next = reporter.collect();
      assert.ok(next.eventLoopDelayMaxMs < 100, `max delay after reset ${next.eventLoopDelayMaxMs}`);
    } finally {
      reporter.stop();
    }
  });

  it('sends one egg-clutch:report per interval, which routing drops as internal', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const sent: unknown[] = [];
    const reporter = new WorkerReporter(m => sent.push(m), 1000);
    try {
      reporter.start();
      mock.timers.tick(999);
      assert.equal(sent.length, 0);
      mock.timers.tick(1);
      mock.timers.tick(1000);
      assert.equal(sent.length, 2);
      assert.ok(sent.every(isWorkerReport));
      const message = JSON.parse(JSON.stringify(sent[0]));
      assert.ok(JSON.stringify(message).length < 600, `one small message: ${JSON.stringify(message).length} bytes`);
      // from a worker's channel it never becomes a routed message (user code cannot see it)
      assert.equal(normalizeMessage(message, 'app'), null);
    } finally {
      reporter.stop();
      mock.timers.reset();
    }
  });

  it('isWorkerReport accepts only this version', () => {
    assert.equal(isWorkerReport({ action: 'egg-clutch:report', data: { v: REPORT_VERSION } }), true);
    assert.equal(isWorkerReport({ action: 'egg-clutch:report', data: { v: 99 } }), false);
    assert.equal(isWorkerReport({ action: 'report', data: { v: REPORT_VERSION } }), false);
    assert.equal(isWorkerReport('egg-clutch:report'), false);
  });
});
