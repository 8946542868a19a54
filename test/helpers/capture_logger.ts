import { format } from 'node:util';
import type { Logger } from '../../src/logger.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface LogEntry {
  level: Level;
  /** The printf-formatted line; an Error logged on its own reads `nodejs.<Name>: <message>` (egg-logger style). */
  line: string;
  /** The Error when the first argument was one. */
  error?: Error;
}

export interface CaptureLogger extends Logger {
  readonly entries: LogEntry[];
  /** The formatted lines, optionally of one level only. */
  lines(level?: Level): string[];
  /** Some line (of that level, when given) matches. */
  has(pattern: RegExp | string, level?: Level): boolean;
  /** Index of the first line matching, or -1. */
  indexOf(pattern: RegExp | string, level?: Level): number;
  /** The errors logged as the first argument, optionally of one class name. */
  errors(name?: string): Error[];
  clear(): void;
}

function matches(line: string, pattern: RegExp | string): boolean {
  return typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
}

/** A Logger that records every call; formatting as egg-logger does (util.format). */
export function captureLogger(): CaptureLogger {
  const entries: LogEntry[] = [];
  const record = (level: Level) => (message: unknown, ...args: unknown[]): void => {
    if (message instanceof Error) {
      const rest = args.length ? ` ${format(...args)}` : '';
      entries.push({ level, line: `nodejs.${message.name}: ${message.message}${rest}`, error: message });
      return;
    }
    entries.push({ level, line: format(message, ...args) });
  };
  const select = (level?: Level): LogEntry[] => (level ? entries.filter(e => e.level === level) : entries);
  return {
    entries,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    lines: level => select(level).map(e => e.line),
    has: (pattern, level) => select(level).some(e => matches(e.line, pattern)),
    indexOf: (pattern, level) => entries.findIndex(e => (!level || e.level === level) && matches(e.line, pattern)),
    errors: name => entries.flatMap(e => (e.error && (!name || e.error.name === name) ? [e.error] : [])),
    clear: () => {
      entries.length = 0;
    },
  };
}
