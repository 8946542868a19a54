/**
 * `egg-clutch status`: a running master's /status as a table, as `pm2 ls` shows its processes.
 * Pure: the JSON in, the text out.
 */
import type { ClusterStatus, ExitInfo } from './state.js';

const COLUMNS = ['name', 'pid', 'state', 'uptime', '↺', 'last exit', 'rss', 'heap', 'elu', 'delay p99', 'requests', 'in flight'] as const;

export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return '-';
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)}kb`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)}mb`;
  return `${(bytes / 1024 ** 3).toFixed(2)}gb`;
}

function formatExit(exit: ExitInfo | null): string {
  if (!exit) return '-';
  return exit.signal ? exit.signal : `code ${exit.code}`;
}

const orDash = (value: number | null, format: (n: number) => string): string => (value === null ? '-' : format(value));

/** The rows of the table: the master, the agent, then each app worker by id. */
export function statusRows(status: ClusterStatus): string[][] {
  const { master, agent, workers } = status;
  const rows: string[][] = [
    ['master', String(master.pid), master.state, formatDuration(master.uptimeMs), '-', '-', '-', '-', '-', '-', '-', '-'],
    ['agent', agent.pid === null ? '-' : String(agent.pid), agent.state, formatDuration(agent.uptimeMs), String(agent.restarts),
      formatExit(agent.lastExit), '-', '-', '-', '-', '-', '-'],
  ];
  for (const w of workers) {
    rows.push([
      `app#${w.id}`, String(w.pid), w.state, formatDuration(w.uptimeMs), String(w.restarts), formatExit(w.lastExit),
      formatBytes(w.rss), formatBytes(w.heapUsed), orDash(w.elu, n => `${Math.round(n * 100)}%`),
      orDash(w.eventLoopDelayP99Ms, n => `${n.toFixed(1)}ms`), orDash(w.requests, String), orDash(w.inFlight, String),
    ]);
  }
  return rows;
}

/** A boxed table, one line per row. */
export function formatStatusTable(status: ClusterStatus): string {
  const rows = [[...COLUMNS], ...statusRows(status)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map(r => (r[i] ?? '').length)));
  const line = (left: string, mid: string, right: string): string => `${left}${widths.map(w => '─'.repeat(w + 2)).join(mid)}${right}`;
  const row = (cells: string[]): string => `│${cells.map((c, i) => ` ${c.padEnd(widths[i] ?? 0)} `).join('│')}│`;
  const [header, ...body] = rows;
  return [line('┌', '┬', '┐'), row(header!), line('├', '┼', '┤'), ...body.map(row), line('└', '┴', '┘')].join('\n');
}
