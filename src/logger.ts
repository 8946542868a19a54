import fs from 'node:fs';
import os from 'node:os';
import { format } from 'node:util';
import type { EggConsoleLogger } from 'egg-logger';

/** What the master and the workers log through; egg-logger's console logger by default. */
export interface Logger {
  debug(message: unknown, ...args: unknown[]): void;
  info(message: unknown, ...args: unknown[]): void;
  warn(message: unknown, ...args: unknown[]): void;
  error(message: unknown, ...args: unknown[]): void;
}

type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** egg-logger's levels (lib/level.js): any other name is `undefined`, which prints nothing. */
const LEVELS: Record<string, number> = { ALL: -Infinity, DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3, NONE: Infinity };
const levelOf = (name: string): number | undefined => (Object.hasOwn(LEVELS, name) ? LEVELS[name] : undefined);

/** egg-errors' mark of a FrameworkBaseError, which egg-logger formats its own way. */
const FRAMEWORK_ERROR = Symbol.for('FrameworkBaseError');
const MAX_CAUSE_CHAIN = 10;

let hostname: string | undefined;
let eggLogger: typeof import('egg-logger') | undefined;
const loadEggLogger = (): typeof import('egg-logger') => (eggLogger ??= require('egg-logger') as typeof import('egg-logger'));

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** `YYYY-MM-DD HH:mm:ss,SSS` in local time (egg-logger: utility.logDate(',')). */
export function logDate(d = new Date()): string {
  const ms = d.getMilliseconds();
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:`
    + `${pad2(d.getSeconds())},${ms < 10 ? `00${ms}` : ms < 100 ? `0${ms}` : ms}`;
}

/**
 * `tty.isatty(1)` without loading node:tty (~2 MiB and 10+ ms where nothing else needs it): only
 * a character device can be a terminal, and stdout is rarely one that is not (/dev/null).
 */
function stdoutIsTerminal(): boolean {
  try {
    if (!fs.fstatSync(1).isCharacterDevice()) return false;
  } catch {
    return false; // no fd 1: isatty(1) is false too
  }
  return (require('node:tty') as typeof import('node:tty')).isatty(1);
}

/**
 * Whether chalk (through supports-color 7, which egg-logger's console formatter asks) may colour
 * the console: yes when fd 1 is a TTY (supports-color asks `tty.isatty(1)`, also inside a worker
 * thread, whose process.stdout is no TTY), or when FORCE_COLOR or a --color / --no-color flag
 * decides. Only when this says no is the plain line certain; otherwise egg-logger writes it.
 */
export function colourMayApply(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv,
  stdoutIsTTY = stdoutIsTerminal()): boolean {
  if (stdoutIsTTY || 'FORCE_COLOR' in env) return true;
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some(a => /^--(no-)?colou?rs?(=|$)/.test(a));
}

/** A value egg-logger prints through circular-json, which for a primitive equals JSON.stringify. */
function isPlainValue(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function') || typeof value === 'function';
}

/** An error whose own properties, causes and sub-errors are all errors with plain values. */
function isSimpleError(err: unknown, depth = 0): err is Error {
  if (!(err instanceof Error) || depth > MAX_CAUSE_CHAIN) return false;
  if ((err as unknown as Record<symbol, unknown>)[FRAMEWORK_ERROR] === true) return false;
  if (!Object.keys(err).every(key => isPlainValue((err as unknown as Record<string, unknown>)[key]))) return false;
  const { cause, errors } = err as Error & { errors?: unknown };
  if (cause && !isSimpleError(cause, depth + 1)) return false;
  if (err.name === 'AggregateError' && errors) {
    if (!Array.isArray(errors) || !errors.every(e => isSimpleError(e, depth + 1))) return false;
  }
  return true;
}

function plainJSON(value: unknown): string | undefined {
  if (typeof value === 'bigint') return String(value); // JSON.stringify throws; egg-logger prints String()
  const v = typeof value === 'string' && value.length > 10000 ? `${value.slice(0, 10000)}...(${value.length})` : value;
  return JSON.stringify(v);
}

/** egg-logger's errorToString, for an error that isSimpleError accepted. */
function errorToString(err: Error, causeLength: number): string {
  if (causeLength > MAX_CAUSE_CHAIN) return 'too long cause chain';
  const e = err as Error & { code?: unknown; host?: unknown; errors?: Error[] };
  let name = e.name || 'no_name';
  if (e.name === 'Error' && typeof e.code === 'string') name = e.code + name;
  let message = e.message || 'no_message';
  if (e.host) message += ` (${e.host as string})`;
  const stack = e.stack || 'no_stack';
  const props = Object.keys(e).map(key => `${key}: ${plainJSON((e as unknown as Record<string, unknown>)[key])}`).join('\n');
  let out = format('nodejs.%s: %s\n%s\n%s', name, message, stack.substring(stack.indexOf('\n') + 1), props);
  if (e.name === 'AggregateError' && e.errors) {
    e.errors.forEach((sub, i) => {
      out = format('%s\n[error-%d]:\n\n%s', out, i, errorToString(sub, causeLength + 1));
    });
  }
  if (e.cause) out = format('%s\ncause:\n\n%s', out, errorToString(e.cause as Error, causeLength + 1));
  return out;
}

/**
 * egg-logger's EggConsoleLogger, byte for byte, without loading egg-logger on the way: a line is
 * `YYYY-MM-DD HH:mm:ss,SSS LEVEL pid message` + EOL, ERROR to stderr and the rest to stdout;
 * the level is the given one (else NODE_CONSOLE_LOGGRE_LEVEL, else INFO in production and WARN
 * otherwise), EGG_LOG overrides it, an unknown name prints nothing. Loading egg-logger costs
 * ~56 ms and ~8 MiB in every process (it pulls utility, egg-errors, chalk, iconv-lite); it is
 * loaded only for what only it prints the same way: colours (a TTY, FORCE_COLOR, --color flags),
 * egg's framework errors, and errors carrying objects (printed through circular-json).
 */
export class ConsoleLogger implements Logger {
  readonly #level: number | undefined;
  readonly #option: string | undefined;
  #egg: EggConsoleLogger | undefined;

  constructor(level?: string, env: NodeJS.ProcessEnv = process.env) {
    // egg-logger: options.level (null/undefined skipped), else its default; then EGG_LOG wins
    this.#option = level;
    const name = level || env.NODE_CONSOLE_LOGGRE_LEVEL || (env.NODE_ENV === 'production' ? 'INFO' : 'WARN');
    this.#level = levelOf(name.toUpperCase());
    if (env.EGG_LOG) this.#level = levelOf(env.EGG_LOG.toUpperCase());
    if (colourMayApply(env)) this.#delegate();
  }

  debug(...args: unknown[]): void {
    this.#log('DEBUG', args);
  }

  info(...args: unknown[]): void {
    this.#log('INFO', args);
  }

  warn(...args: unknown[]): void {
    this.#log('WARN', args);
  }

  error(...args: unknown[]): void {
    this.#log('ERROR', args);
  }

  /** egg-logger itself, at the level this logger resolved when it was made. */
  #delegate(): EggConsoleLogger {
    if (!this.#egg) {
      const { EggConsoleLogger: Egg } = loadEggLogger();
      this.#egg = new Egg(this.#option ? { level: this.#option.toUpperCase() as never } : {});
      // the level as resolved at construction (the environment may have changed since)
      (this.#egg.get('console') as unknown as { level: number | undefined }).level = this.#level;
    }
    return this.#egg;
  }

  #log(level: Level, args: unknown[]): void {
    if (this.#egg) {
      this.#egg[level.toLowerCase() as Lowercase<Level>](...args as [unknown]);
      return;
    }
    const threshold = this.#level;
    if (threshold === undefined || threshold === Infinity || !(threshold <= LEVELS[level]!)) return;
    let text: string;
    const first = args[0];
    if (first instanceof Error) {
      // egg-logger prints an Error first argument alone, the other arguments are dropped
      if (!isSimpleError(first)) {
        this.#delegate()[level.toLowerCase() as Lowercase<Level>](...args as [unknown]);
        return;
      }
      hostname ??= os.hostname();
      text = format('%s\npid: %s\nhostname: %s\n', errorToString(first, 0), process.pid, hostname);
    } else {
      text = format(...args);
    }
    const line = `${logDate()} ${level} ${process.pid} ${text}${os.EOL}`;
    if (level === 'ERROR') process.stderr.write(line);
    else process.stdout.write(line);
  }
}

/** egg-logger's EggConsoleLogger format and behaviour (see ConsoleLogger), loaded lazily. */
export function createConsoleLogger(level: string | undefined): Logger {
  return new ConsoleLogger(level);
}
