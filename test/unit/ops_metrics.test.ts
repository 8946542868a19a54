/**
 * GET /metrics, the pure parts (issue 10): prom-client-compatible aggregation, carry-forward of
 * counters from departed and silent workers, the text exposition, the worker's responder.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { aggregate, Departed, exposition, formatValue, isCarried, type MetricJSON } from '../../src/ops/metrics_aggregate.js';
import { AppMetrics, exitReason, managerMetrics, ManagerCounters } from '../../src/ops/metrics.js';
import {
  isMetricsAnswer, METRICS_ANSWER_ACTION, METRICS_REQUEST_ACTION, MetricsResponder, resolvePromRegistry,
} from '../../src/worker/metrics.js';
import { WorkerRegistry } from '../../src/registry.js';
import type { WorkerHandle } from '../../src/launcher/types.js';
import type { ClusterStatus } from '../../src/ops/state.js';
import { appDir } from '../helpers/run_cluster.js';

/** `name{labels} value` lines of a text exposition, sorted (HELP/TYPE and blank lines left out). */
function samples(text: string): string[] {
  return text.split('\n').filter(l => l && !l.startsWith('#')).sort();
}

/** One worker's registry with counters, gauges, a histogram and a summary, as an app would have. */
async function workerMetrics(n: number): Promise<MetricJSON[]> {
  const r = new client.Registry();
  const c = new client.Counter({ name: 'req_total', help: 'requests', labelNames: ['code'], registers: [r] });
  c.inc({ code: '200' }, 10 * n);
  c.inc({ code: '500' }, n);
  new client.Gauge({ name: 'g_sum', help: 'summed gauge', registers: [r] }).set(n);
  new client.Gauge({ name: 'g_max', help: 'max gauge', aggregator: 'max', registers: [r] }).set(n * 3);
  new client.Gauge({ name: 'g_min', help: 'min gauge', aggregator: 'min', registers: [r] }).set(n * 3);
  new client.Gauge({ name: 'g_avg', help: 'average gauge', aggregator: 'average', registers: [r] }).set(n);
  new client.Gauge({ name: 'g_first', help: 'first gauge', aggregator: 'first', registers: [r] }).set(n);
  new client.Gauge({ name: 'g_omit', help: 'omitted', aggregator: 'omit', registers: [r] }).set(n);
  const h = new client.Histogram({ name: 'lat_seconds', help: 'latency', buckets: [0.1, 1], labelNames: ['route'], registers: [r] });
  h.observe({ route: '/' }, 0.05 * n);
  h.observe({ route: '/' }, 2);
  const s = new client.Summary({ name: 'sz', help: 'sizes\nwith "quotes" \\ and a newline', percentiles: [0.5], registers: [r] });
  s.observe(n);
  return (await r.getMetricsAsJSON()) as unknown as MetricJSON[];
}

describe('metrics: aggregation as prom-client\'s AggregatorRegistry', () => {
  it('gives the same samples as AggregatorRegistry.aggregate() for counters, gauges of every aggregator, histograms, summaries', async () => {
    const workers = [await workerMetrics(1), await workerMetrics(2), await workerMetrics(3)];
    const theirs = await client.AggregatorRegistry.aggregate(workers).metrics();
    const ours = exposition(aggregate(workers));
    assert.deepEqual(samples(ours), samples(theirs));
    assert.ok(samples(ours).includes('req_total{code="200"} 60'));
    assert.ok(samples(ours).includes('g_max 9'));
    assert.ok(samples(ours).includes('lat_seconds_bucket{le="+Inf",route="/"} 6') || samples(ours).includes('lat_seconds_bucket{route="/",le="+Inf"} 6'));
    assert.ok(!ours.includes('g_omit'), 'an omit aggregator drops the metric');
    // the HELP text is escaped as the text format wants
    assert.match(ours, /# HELP sz sizes\\nwith "quotes" \\\\ and a newline\n/);
  });

  it('carries counters and summed histograms only', async () => {
    const carried = (await workerMetrics(1)).filter(isCarried).map(m => m.name).sort();
    assert.deepEqual(carried, ['lat_seconds', 'req_total']);
  });

  it('adds the carried lists\' counters to the live ones, and ignores their gauges', async () => {
    const live = await workerMetrics(1);
    const gone = await workerMetrics(5);
    const merged = aggregate([live], [gone]);
    const text = samples(exposition(merged));
    assert.ok(text.includes('req_total{code="200"} 60'), text.join('\n'));
    assert.ok(text.includes('g_sum 1'), 'the gone worker\'s gauge is not added');
    assert.ok(text.includes('g_max 3'));
  });

  it('keeps a counter whose workers are all gone (departed only)', async () => {
    const departed = new Departed();
    departed.add(await workerMetrics(1));
    departed.add(await workerMetrics(2));
    assert.equal(departed.workers, 2);
    const text = samples(exposition(aggregate([], [departed.metrics])));
    assert.ok(text.includes('req_total{code="500"} 3'), text.join('\n'));
    assert.ok(!text.some(l => l.startsWith('g_')), 'no gauge from departed workers');
  });

  it('writes label values and special numbers as the text format wants', () => {
    assert.equal(formatValue(Infinity), '+Inf');
    assert.equal(formatValue(-Infinity), '-Inf');
    assert.equal(formatValue(NaN), 'NaN');
    const text = exposition([{ name: 'x', help: 'h', type: 'gauge', values: [{ value: 1.5, labels: { a: 'q"b\\c\nd' } }] }]);
    assert.equal(text, '# HELP x h\n# TYPE x gauge\nx{a="q\\"b\\\\c\\nd"} 1.5\n');
  });
});

/** A fake app worker handle: answers requests through `answer`, or not at all. */
class FakeHandle extends EventEmitter {
  isConnected = true;
  isAlive = true;
  readonly sent: any[] = [];
  answer: ((seq: number) => unknown[] | null) | undefined;
  constructor(readonly id: number) {
    super();
  }
  send(message: any): void {
    this.sent.push(message);
    if (message.action === METRICS_REQUEST_ACTION && this.answer) {
      const metrics = this.answer(message.data.seq);
      queueMicrotask(() => this.emit('message', { action: METRICS_ANSWER_ACTION, data: { seq: message.data.seq, metrics } }));
    }
  }
  exit(): void {
    this.isConnected = false;
    this.isAlive = false;
    this.emit('exit', null, 'SIGKILL');
  }
}

const counter = (value: number): MetricJSON[] => [
  { name: 'c_total', help: 'c', type: 'counter', aggregator: 'sum', values: [{ value, labels: {} }] },
  { name: 'g', help: 'g', type: 'gauge', aggregator: 'sum', values: [{ value: 1, labels: {} }] },
];
const valueOf = (metrics: MetricJSON[], name: string): number | undefined => metrics.find(m => m.name === name)?.values[0]?.value;

describe('metrics: collection and carry-forward (fake workers)', () => {
  it('never goes down across a replacement, a SIGKILL and a hung worker; reports the hung one missing', async () => {
    const m = new AppMetrics(30);
    const a = new FakeHandle(1);
    const b = new FakeHandle(2);
    let aCount = 5;
    let bCount = 7;
    a.answer = () => counter(aCount);
    b.answer = () => counter(bCount);
    m.track(a as unknown as WorkerHandle);
    m.track(b as unknown as WorkerHandle);
    let c = await m.collect();
    assert.equal(valueOf(c.metrics, 'c_total'), 12);
    assert.equal(valueOf(c.metrics, 'g'), 2);
    assert.deepEqual(c.missing, []);
    assert.equal(c.asked, 2);

    // a counts more, then is SIGKILLed before the next scrape: what it counted after the last
    // collection is lost, the rest is carried
    aCount = 9;
    a.exit();
    const a2 = new FakeHandle(3);
    a2.answer = () => counter(1);
    m.track(a2 as unknown as WorkerHandle);
    c = await m.collect();
    assert.equal(valueOf(c.metrics, 'c_total'), 5 + 7 + 1);
    assert.equal(valueOf(c.metrics, 'g'), 2, 'gauges: live workers only');
    assert.equal(m.departedWorkers, 1);

    // b hangs: missing; its last counters stand in, its gauge does not
    bCount = 100;
    b.answer = undefined;
    c = await m.collect();
    assert.deepEqual(c.missing, [2]);
    assert.equal(valueOf(c.metrics, 'c_total'), 5 + 7 + 1);
    assert.equal(valueOf(c.metrics, 'g'), 1);

    // b answers again (its answers to the old requests were never sent): back to live values
    b.answer = () => counter(bCount);
    c = await m.collect();
    assert.equal(valueOf(c.metrics, 'c_total'), 5 + 100 + 1);
  });

  it('counts a worker that answers and exits during one scrape once', async () => {
    const m = new AppMetrics(1000);
    const a = new FakeHandle(1);
    const b = new FakeHandle(2);
    a.answer = () => counter(5);
    b.answer = () => counter(7);
    m.track(a as unknown as WorkerHandle);
    m.track(b as unknown as WorkerHandle);
    const pending = m.collect();
    // a's answer is queued; it exits right after sending it
    queueMicrotask(() => queueMicrotask(() => a.exit()));
    const c = await pending;
    assert.equal(valueOf(c.metrics, 'c_total'), 12);
    assert.equal(valueOf((await m.collect()).metrics, 'c_total'), 12);
  });

  it('ignores an answer older than the last one taken, and a worker without prom-client', async () => {
    const m = new AppMetrics(1000);
    const a = new FakeHandle(1);
    m.track(a as unknown as WorkerHandle);
    a.answer = () => counter(10);
    await m.collect();
    a.emit('message', { action: METRICS_ANSWER_ACTION, data: { seq: 0, metrics: counter(1) } });
    a.answer = () => null;
    const c = await m.collect();
    assert.equal(valueOf(c.metrics, 'c_total'), 10, 'a late answer to an old request does not overwrite a newer one');
    assert.deepEqual(c.missing, []);
    const none = new AppMetrics(1000);
    const x = new FakeHandle(1);
    x.answer = () => null;
    none.track(x as unknown as WorkerHandle);
    assert.deepEqual((await none.collect()).metrics, []);
  });

  it('asks no worker whose channel is gone', async () => {
    const m = new AppMetrics(1000);
    const a = new FakeHandle(1);
    a.isConnected = false;
    m.track(a as unknown as WorkerHandle);
    const c = await m.collect();
    assert.equal(c.asked, 0);
    assert.equal(a.sent.length, 0);
  });
});

describe('metrics: the worker side', () => {
  it('resolves the app\'s prom-client from baseDir, and nothing where there is none', () => {
    const registry = resolvePromRegistry(appDir('m-counter'));
    assert.ok(registry, 'the fixture resolves the repository\'s prom-client');
    assert.equal(registry, client.register, 'the same module instance, the same default registry');
    assert.equal(resolvePromRegistry(os.tmpdir()), undefined);
  });

  it('answers a request with getMetricsAsJSON(), null without prom-client, the error when it throws; ignores other messages', async () => {
    const sent: any[] = [];
    const registry = { getMetricsAsJSON: () => Promise.resolve(counter(3)) };
    const r = new MetricsResponder('/app', m => sent.push(m), () => registry);
    assert.equal(r.onMessage({ action: 'egg-ready' }), false);
    await r.answer(4);
    assert.ok(isMetricsAnswer(sent[0]));
    assert.deepEqual(sent[0].data, { seq: 4, metrics: counter(3) });
    const none = new MetricsResponder('/app', m => sent.push(m), () => undefined);
    await none.answer(5);
    assert.deepEqual(sent[1].data, { seq: 5, metrics: null });
    const throwing = new MetricsResponder('/app', m => sent.push(m), () => ({ getMetricsAsJSON: () => { throw new Error('boom'); } }));
    await throwing.answer(6);
    assert.deepEqual(sent[2].data, { seq: 6, metrics: null, error: 'boom' });
  });
});

describe('metrics: the manager\'s own', () => {
  it('exit reasons', () => {
    assert.equal(exitReason(true, null, 'SIGTERM'), 'stopped');
    assert.equal(exitReason(false, null, 'SIGKILL'), 'signal');
    assert.equal(exitReason(false, 1, null), 'error');
    assert.equal(exitReason(false, 0, null), 'exit');
  });

  it('workers by state (every state, 0 included), restarts by role and reason, per-worker figures, agent up', () => {
    const registry = new WorkerRegistry();
    const counters = new ManagerCounters(registry, () => false);
    const agent = new FakeHandle(1);
    counters.trackAgent(agent as unknown as WorkerHandle);
    agent.exit();
    const w = { pid: 11, uptimeMs: 1, restarts: 0, lastExit: null, requests: 1, inFlight: 0 };
    const status: ClusterStatus = {
      master: { pid: 1, uptimeMs: 10, state: 'ready' },
      agent: { pid: 2, state: 'started', uptimeMs: 5, restarts: 1, lastExit: null },
      workers: [
        { ...w, id: 1, state: 'listening', rss: 1000, heapUsed: 500, elu: 0.25, eventLoopDelayP99Ms: 12 },
        { ...w, id: 2, pid: 12, state: 'starting', rss: null, heapUsed: null, elu: null, eventLoopDelayP99Ms: null },
      ],
    };
    counters.startDurationMs = 1500;
    const text = samples(exposition(managerMetrics(status, counters, { metrics: [], asked: 2, missing: [2], errors: 0 }, 3)));
    for (const line of [
      'egg_cluster_workers{state="listening"} 1', 'egg_cluster_workers{state="starting"} 1',
      'egg_cluster_workers{state="closing"} 0', 'egg_cluster_workers{state="disconnected"} 0',
      'egg_cluster_worker_restarts_total{role="agent",reason="signal"} 1',
      'egg_cluster_worker_resident_memory_bytes{worker="1",pid="11"} 1000',
      'egg_cluster_worker_heap_used_bytes{worker="1",pid="11"} 500',
      'egg_cluster_worker_event_loop_delay_p99_seconds{worker="1",pid="11"} 0.012',
      'egg_cluster_worker_event_loop_utilization{worker="1",pid="11"} 0.25',
      'egg_cluster_agent_up 1', 'egg_cluster_start_duration_seconds 1.5', 'egg_cluster_reload_forks_total 0',
      'egg_cluster_app_metrics_workers_missing 1', 'egg_cluster_app_metrics_departed_workers 3',
    ]) assert.ok(text.includes(line), `${line} in\n${text.join('\n')}`);
    assert.ok(!text.some(l => l.includes('worker="2"')), 'no figure before the first report');
  });
});

describe('metrics: a closing worker\'s last word', () => {
  it('final() answers unasked, numbered after the last request and before the next; nothing before any scrape', async () => {
    const sent: any[] = [];
    const registry = { getMetricsAsJSON: () => Promise.resolve(counter(3)) };
    const r = new MetricsResponder('/app', m => sent.push(m), () => registry);
    await r.final();
    assert.equal(sent.length, 0, 'no scrape asked yet: nothing sent');
    r.onMessage({ action: METRICS_REQUEST_ACTION, data: { seq: 7 } });
    await new Promise(resolve => setImmediate(resolve));
    await r.final();
    assert.deepEqual(sent.map(m => m.data.seq), [7, 7.5]);

    // the master takes it over the answer to request 7, and carries it on exit
    const m = new AppMetrics(1000);
    const h = new FakeHandle(1);
    m.track(h as unknown as WorkerHandle);
    h.answer = () => counter(3);
    await m.collect();
    h.emit('message', { action: METRICS_ANSWER_ACTION, data: { seq: 1.5, metrics: counter(8) } });
    h.exit();
    assert.equal(valueOf((await m.collect()).metrics, 'c_total'), 8);
  });

  it('collect() skips the workers the master does not ask (booting)', async () => {
    const m = new AppMetrics(1000);
    const a = new FakeHandle(1);
    const b = new FakeHandle(2);
    a.answer = () => counter(2);
    b.answer = () => counter(5);
    m.track(a as unknown as WorkerHandle);
    m.track(b as unknown as WorkerHandle);
    const c = await m.collect(h => h.id === 1);
    assert.equal(c.asked, 1);
    assert.equal(b.sent.length, 0);
    assert.equal(valueOf(c.metrics, 'c_total'), 2);
  });
});
