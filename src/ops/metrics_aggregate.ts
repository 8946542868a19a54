/**
 * The pure part of `GET /metrics` (issue 10): merging the app's prom-client metrics of several
 * workers the way prom-client's AggregatorRegistry does (by metric name, then by series: the
 * metric's `aggregator`, `sum` by default), carrying counters forward from workers that are
 * gone, and the Prometheus text exposition. No I/O; prom-client itself is never loaded here
 * (the master stays light): the workers send `register.getMetricsAsJSON()`.
 */

/** One series of `getMetricsAsJSON()`: histograms and summaries name theirs (`x_bucket`, `x_sum`…). */
export interface MetricValue {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
}

/** One metric of `getMetricsAsJSON()`. */
export interface MetricJSON {
  name: string;
  help: string;
  type: string;
  values: MetricValue[];
  aggregator?: string;
}

type Reduce = (values: number[]) => number;

/** prom-client's aggregators (metricAggregators.js), by the same names. `omit` drops the metric. */
const REDUCERS: Record<string, Reduce | null> = {
  sum: v => v.reduce((a, b) => a + b, 0),
  first: v => v[0] ?? 0,
  omit: null,
  average: v => v.reduce((a, b) => a + b, 0) / v.length,
  min: v => v.reduce((a, b) => Math.min(a, b), Infinity),
  max: v => v.reduce((a, b) => Math.max(a, b), -Infinity),
};

const aggregatorOf = (metric: MetricJSON): string => metric.aggregator ?? 'sum';

/**
 * Is this metric carried forward from a worker that is gone (or does not answer)? Counters
 * and histograms (their buckets, sum and count are counters too) that are summed over the
 * workers: the cluster's total must not drop when one worker's share leaves. Gauges,
 * summaries (quantiles over a window) and any other aggregator describe the live workers only.
 */
export function isCarried(metric: MetricJSON): boolean {
  return aggregatorOf(metric) === 'sum' && (metric.type === 'counter' || metric.type === 'histogram');
}

function seriesKey(value: MetricValue): string {
  const labels = value.labels ?? {};
  const names = Object.keys(labels).sort();
  return `${value.metricName ?? ''}\u0000${names.map(n => `${n}=${String(labels[n])}`).join('\u0001')}`;
}

function isMetric(m: unknown): m is MetricJSON {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Partial<MetricJSON>;
  return typeof x.name === 'string' && typeof x.type === 'string' && Array.isArray(x.values);
}

/** The metrics of one worker's answer that look like getMetricsAsJSON() output; the rest is dropped. */
export function sanitize(list: unknown): MetricJSON[] {
  if (!Array.isArray(list)) return [];
  return list.filter(isMetric).map(m => ({
    ...m,
    help: typeof m.help === 'string' ? m.help : '',
    values: m.values.filter(v => typeof v === 'object' && v !== null && typeof v.value === 'number'),
  }));
}

/**
 * Merge the metrics of several workers as AggregatorRegistry.aggregate() does: grouped by name
 * (the first worker's help, type and aggregator win), then by series (metricName + labels),
 * reduced with the metric's aggregator. `carried` lists (departed workers, workers that did
 * not answer) contribute their counters only (isCarried). An unknown aggregator (prom-client
 * throws) is taken as `sum`.
 */
export function aggregate(fresh: MetricJSON[][], carried: MetricJSON[][] = []): MetricJSON[] {
  const byName = new Map<string, MetricJSON[]>();
  const add = (metric: MetricJSON): void => {
    const group = byName.get(metric.name);
    if (group) group.push(metric);
    else byName.set(metric.name, [metric]);
  };
  for (const list of fresh) for (const metric of list) add(metric);
  for (const list of carried) for (const metric of list) if (isCarried(metric)) add(metric);

  const out: MetricJSON[] = [];
  for (const group of byName.values()) {
    const head = group[0]!;
    // a metric summed for live workers stays summed with the carried ones; the carried part of
    // a metric that is now aggregated otherwise (the app changed it) is left out
    const members = isCarried(head) ? group : group.filter(m => aggregatorOf(m) === aggregatorOf(head));
    const name = aggregatorOf(head);
    if (REDUCERS[name] === null) continue; // omit
    const reduce = REDUCERS[name] ?? REDUCERS.sum!;
    const series = new Map<string, { sample: MetricValue; values: number[] }>();
    for (const metric of members) {
      for (const value of metric.values) {
        const key = seriesKey(value);
        const entry = series.get(key);
        if (entry) entry.values.push(value.value);
        else series.set(key, { sample: value, values: [value.value] });
      }
    }
    const values: MetricValue[] = [];
    for (const { sample, values: numbers } of series.values()) {
      const merged: MetricValue = { value: reduce(numbers), labels: sample.labels ?? {} };
      if (sample.metricName !== undefined) merged.metricName = sample.metricName;
      values.push(merged);
    }
    out.push({ name: head.name, help: head.help, type: head.type, aggregator: name, values });
  }
  return out;
}

/**
 * What the workers that are gone contributed to the counters: each one's last collected
 * metrics are folded in when it exits. Increments it made after its last collection are lost.
 */
export class Departed {
  #metrics: MetricJSON[] = [];
  #workers = 0;

  /** Fold a gone worker's last collected metrics in (its counters only). */
  add(last: MetricJSON[]): void {
    this.#metrics = aggregate([], [this.#metrics, last]);
    this.#workers++;
  }

  /** The counters so far, summed over every departed worker. */
  get metrics(): MetricJSON[] {
    return this.#metrics;
  }

  /** How many departed workers were folded in. */
  get workers(): number {
    return this.#workers;
  }
}

/** A sample value as the text format writes it. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** The Prometheus text format (0.0.4) of these metrics: HELP, TYPE, then one line per series. */
export function exposition(metrics: MetricJSON[]): string {
  let text = '';
  for (const metric of metrics) {
    text += `# HELP ${metric.name} ${escapeHelp(metric.help)}\n# TYPE ${metric.name} ${metric.type}\n`;
    for (const value of metric.values) {
      const labels = Object.entries(value.labels ?? {})
        .map(([k, v]) => `${k}="${escapeLabel(typeof v === 'number' ? formatValue(v) : String(v))}"`);
      const name = value.metricName ?? metric.name;
      text += `${name}${labels.length ? `{${labels.join(',')}}` : ''} ${formatValue(value.value)}\n`;
    }
  }
  return text;
}
