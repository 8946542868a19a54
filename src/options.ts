import net from 'node:net';
import path from 'node:path';
import { InvalidOptionError } from './errors.js';
import { checkSendable } from './worker/options_codec.js';

export type ClusterStartMode = 'process' | 'worker_threads';

/** HTTPS material: each of key / cert / ca is a file path, or the PEM itself as a string or Buffer. */
export interface ClusterHTTPSSecureOptions {
  key?: string | Buffer;
  cert?: string | Buffer;
  ca?: string | Buffer | Array<string | Buffer>;
  passphrase?: string;
  [key: string]: unknown;
}

/** What `startCluster(options)` accepts. Every key, known or not, also reaches `new Application()` / `new Agent()`. */
export interface ClusterOptions {
  /** App root (the folder with package.json). Default `process.cwd()`. */
  baseDir?: string;
  /** Framework: absolute path or npm name. Default: `customEgg`, then package.json `egg.framework`, then `egg`. */
  framework?: string;
  /** @deprecated use `framework` */
  customEgg?: string;
  /** Plugins passed to Application / Agent (for unit tests). */
  plugins?: Record<string, unknown> | null;
  /** Number of app workers. Default: the CPUs this process may use. */
  workers?: number | string;
  /** Listening port. Default: 8443 with https, else the app's `config.cluster.listen.port` (7001). */
  port?: number | string | null;
  /** HTTPS server options, merged over the app's `config.cluster.https`. */
  https?: ClusterHTTPSSecureOptions | boolean;
  /** @deprecated use `https: { key }` */
  key?: string;
  /** @deprecated use `https: { cert }` */
  cert?: string;
  /** An extra plain-HTTP listener on this port, serving the same app. */
  debugPort?: number;
  /** Sticky sessions: the same client IP always reaches the same app worker. */
  sticky?: boolean;
  /** Modules required in the agent and every app worker before the framework. */
  require?: string | string[];
  /** Write the master pid here; removed when the master exits. */
  pidFile?: string;
  /** Server env (`EGG_SERVER_ENV`). */
  env?: string;
  /** 'process' (default): agent and apps are processes. 'worker_threads': threads of the master (no sticky). */
  startMode?: ClusterStartMode;
  /** worker_threads: one app thread per port (default `[port]`); `workers` becomes ports.length. */
  ports?: number[];
  /** SO_REUSEPORT (Node >= 22.12 on Linux/FreeBSD/SunOS/AIX); worker_threads: `workers` threads share `port`. */
  reusePort?: boolean;
  /** Shown in `ps` on every worker's command line (egg-scripts `--title`). */
  title?: string;
  /** ms the whole cluster may take to start before the master gives up with exit 1. Default 600000 (egg's workerStartTimeout). */
  startTimeout?: number;
  /** Names of option keys whose values are secret: never logged, never in `egg-ready` payloads. */
  secretKeys?: string[];
  /**
   * How dead app workers (production) and a dead agent are restarted. An app worker that
   * served (listened for at least `minUptimeMs`) is replaced at once, outside the budget.
   * Other deaths: at most `limit` restarts per `windowMs`, the first at once, then
   * `baseDelayMs` doubling up to `maxDelayMs` while deaths come less than `stableMs` after the
   * start. `limit: 0`: never restart.
   * Defaults: 60 per 60000 ms, 1000 → 30000 ms, stable after 10000 ms, minUptimeMs 1000.
   */
  restartPolicy?: Partial<RestartPolicy>;
  /**
   * Rolling reload (`reload-worker`, SIGUSR2): `surge` replacements boot at once; each old
   * worker drains as soon as its replacement listens. Default: all workers at once in the
   * `local` and `unittest` envs (a reload takes about one boot time, as in egg-cluster), 1
   * elsewhere (memory-tight containers: never more than workers + 1 app processes).
   */
  reload?: { surge?: number };
  /** Custom agent entry (bundles, startup snapshots); it must run egg-clutch's lib/agent_worker.js. */
  agentWorkerFile?: string;
  /** Custom app worker entry; it must run egg-clutch's lib/app_worker.js. */
  appWorkerFile?: string;
  /**
   * The master's own HTTP status server (/livez, /readyz, /status); off unless set. Host
   * defaults to 127.0.0.1. Env: EGG_CLUSTER_STATUS_PORT / EGG_CLUSTER_STATUS_HOST.
   */
  status?: { port: number | string; host?: string } | false | null;
  /**
   * ms between a close signal (readiness turns 503 at once) and the drain; the app keeps
   * serving meanwhile. Default 0. Env: EGG_CLUSTER_SHUTDOWN_DELAY.
   */
  shutdownDelay?: number | string;
  /**
   * A worker that sends no heartbeat (its report) for `timeout` ms is hung and replaced; false
   * = off. On by default (30000), except in the local env and under an inspector.
   * Env: EGG_CLUSTER_WATCHDOG_TIMEOUT (ms; 0 or false = off).
   */
  watchdog?: { timeout?: number | string } | false | null;
  /**
   * Per app worker RSS limit: bytes, or '512MB' / '512M' / '1G' (K/M/G 1024-based); 0 = off.
   * Env: EGG_CLUSTER_MAX_MEMORY.
   */
  maxMemory?: number | string;
  [key: string]: unknown;
}

/** Where the master's status server listens. */
export interface StatusOptions {
  port: number;
  host: string;
}

export interface RestartPolicy {
  limit: number;
  windowMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  stableMs: number;
  minUptimeMs: number;
}

/** Options after defaults and checks; this is `master.options` and what workers receive. */
export interface ResolvedOptions {
  baseDir: string;
  framework: string;
  plugins: Record<string, unknown> | null;
  workers: number;
  port: number | undefined;
  https: ClusterHTTPSSecureOptions | false;
  debugPort?: number;
  sticky: boolean;
  require?: string[];
  pidFile?: string;
  env: string | undefined;
  startMode: ClusterStartMode;
  ports: number[];
  reusePort: boolean;
  isDebug?: boolean;
  clusterPort?: number;
  stickyWorkerPort?: number;
  title?: string;
  startTimeout: number;
  secretKeys?: string[];
  restartPolicy?: Partial<RestartPolicy>;
  /** Replacements booting at once during a rolling reload, resolved for the env. */
  reload: { surge: number };
  agentWorkerFile?: string;
  appWorkerFile?: string;
  /** The status server (options.status, else EGG_CLUSTER_STATUS_PORT/HOST); absent when off. */
  status?: StatusOptions;
  /** options.shutdownDelay, else EGG_CLUSTER_SHUTDOWN_DELAY, else 0. */
  shutdownDelay: number;
  /** The watchdog (options.watchdog, else EGG_CLUSTER_WATCHDOG_TIMEOUT); false when off. */
  watchdog: { timeout: number } | false;
  /** Bytes; 0 = off. */
  maxMemory: number;
  /**
   * From EGG_APP_CLOSE_TIMEOUT / EGG_AGENT_CLOSE_TIMEOUT / EGG_MASTER_CLOSE_TIMEOUT, checked at
   * start. Not enumerable: a master-side setting, so it is neither logged with the options nor
   * sent to the workers (nor seen by `new Application()`).
   */
  readonly closeTimeouts: CloseTimeouts;
  /** EGG_AGENT_DEBUG_PORT (default 5800), checked at start; not enumerable, as closeTimeouts. */
  readonly agentDebugPort: number;
  [key: string]: unknown;
}

export interface NormalizeContext {
  env: NodeJS.ProcessEnv;
  execArgv: readonly string[];
  cwd: string;
  /** How many CPUs the cluster may use (the default worker count). */
  cpus: number;
  /** For the reusePort check; default process.version / process.platform. */
  nodeVersion?: string;
  platform?: string;
  /** The master runs under an inspector opened at run time (inspector.url()); default false. */
  inspectorActive?: boolean;
}

export interface Normalized {
  options: ResolvedOptions;
  /** Deprecation notices to print once (never thrown). */
  warnings: string[];
}

/** JSON for a message, at most ~100 characters; undefined when JSON cannot show it (BigInt, cycle). */
function shortJson(value: unknown): string | undefined {
  if (typeof value === 'string') return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return undefined;
  }
  return text !== undefined && text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const json = shortJson(value);
    return json === undefined ? `an array of ${value.length} item${value.length === 1 ? '' : 's'} that JSON cannot show` : `${json} (array)`;
  }
  if (typeof value === 'bigint') return `${value}n (bigint)`;
  if (typeof value === 'string') return `${shortJson(value)} (string)`;
  if (typeof value === 'object') return `${Object.prototype.toString.call(value)} (object)`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} (${typeof value})`;
  return typeof value;
}

function invalid(name: string, expected: string, value: unknown, hint = ''): InvalidOptionError {
  return new InvalidOptionError(`options.${name} must be ${expected}, got ${describe(value)}${hint ? `. ${hint}` : ''}`);
}

const isPresent = (value: unknown): boolean => value !== undefined && value !== null;

/** An integer option that may come from a CLI as a string ("4"). */
function toInteger(name: string, value: unknown, min: number, max: number, expected: string): number {
  let n: number;
  if (typeof value === 'number') {
    n = value;
  } else if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) {
    n = Number(value);
  } else {
    throw invalid(name, expected, value);
  }
  if (!Number.isInteger(n) || n < min || n > max) throw invalid(name, expected, value);
  return n;
}

function optionalString(raw: Record<string, unknown>, name: string): string | undefined {
  const value = raw[name];
  if (!isPresent(value) || value === '') return undefined;
  if (typeof value !== 'string') throw invalid(name, 'a string', value);
  return value;
}

function optionalBoolean(raw: Record<string, unknown>, name: string): boolean {
  const value = raw[name];
  if (!isPresent(value)) return false;
  if (typeof value !== 'boolean') throw invalid(name, 'a boolean', value);
  return value;
}

function isPemOrPath(value: unknown): boolean {
  return (typeof value === 'string' && value !== '') || Buffer.isBuffer(value);
}

/**
 * What a wrong https value is, by type and size only: these values may hold key material
 * (a PEM string, a Buffer, an array of them), which must never reach an error or a log line.
 */
function describeSecret(value: unknown): string {
  if (value === undefined || value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return `a string of ${value.length} characters (not shown: it may be key material)`;
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'} (not shown: it may hold key material)`;
  if (typeof value === 'object') return `${Object.prototype.toString.call(value)} (object)`;
  return `a ${typeof value}`;
}

function invalidHttps(name: string, expected: string, value: unknown, hint: string): InvalidOptionError {
  return new InvalidOptionError(`options.${name} must be ${expected}, got ${describeSecret(value)}. ${hint}`);
}

const ONE_PEM = 'a file path, or the PEM content as one string or Buffer';

function normalizeHttps(raw: Record<string, unknown>, warnings: string[]): ClusterHTTPSSecureOptions | false {
  const value = raw.https;
  if (!isPresent(value) || value === false) return false;
  let https: ClusterHTTPSSecureOptions;
  let where = 'https.';
  let legacy = '';
  if (value === true) {
    warnings.push('[egg-cluster:deprecated] [master] Please use `https: { key, cert, ca }` instead of `https: true`');
    https = { key: raw.key as string, cert: raw.cert as string };
    // https: true takes the deprecated top-level options.key / options.cert
    where = '';
    legacy = '. With https: true they come from options.key and options.cert; better, use https: { key, cert }';
  } else if (typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)) {
    https = { ...(value as ClusterHTTPSSecureOptions) };
  } else {
    throw invalidHttps('https', 'an object { key, cert, ca? } or false', value,
      'Give the key and certificate as options.https.key and options.https.cert');
  }
  // egg-cluster reads one key and one certificate (fs.readFileSync): an array is not a chain
  if (!isPemOrPath(https.key)) {
    throw invalidHttps(`${where}key`, `${ONE_PEM} (the private key)`, https.key,
      `Pass one private key${legacy}`);
  }
  if (!isPemOrPath(https.cert)) {
    throw invalidHttps(`${where}cert`, `${ONE_PEM} (the certificate)`, https.cert,
      `Pass a single certificate; put intermediate certificates in the same PEM after it, or in options.https.ca${legacy}`);
  }
  if (isPresent(https.ca)) {
    const list = Array.isArray(https.ca) ? https.ca : [https.ca];
    list.forEach((item, i) => {
      if (!isPemOrPath(item)) {
        const name = Array.isArray(https.ca) ? `https.ca[${i}]` : 'https.ca';
        throw invalidHttps(name, `${ONE_PEM} (options.https.ca may also be an array of them)`, item,
          'Remove the entry or give the CA certificate as a path or PEM');
      }
    });
  }
  return https;
}

/**
 * The env settings as properties that are not enumerable: master-side settings stay out of the
 * options that are logged, put on argv, sent to the workers and given to `new Application()`.
 */
function withSettings<T extends object>(target: T, settings: EnvSettings): T & Pick<ResolvedOptions, 'closeTimeouts' | 'agentDebugPort'> {
  Object.defineProperties(target, {
    closeTimeouts: { value: Object.freeze({ ...settings.closeTimeouts }), enumerable: false },
    agentDebugPort: { value: settings.agentDebugPort, enumerable: false },
  });
  return target as T & Pick<ResolvedOptions, 'closeTimeouts' | 'agentDebugPort'>;
}

/**
 * ClusterOptions -> ResolvedOptions. Pure and synchronous: no file system, no framework
 * loading (framework.ts does that), every environment variable read from `ctx.env`.
 * Like egg-cluster 2.x, a key set to `undefined`/`null` does not override a default.
 */
export function normalizeOptions(input: ClusterOptions | undefined, ctx: NormalizeContext): Normalized {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new InvalidOptionError(`options must be an object, got ${describe(input)}`);
  }
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input ?? {})) {
    if (isPresent(v)) raw[k] = v;
  }
  const warnings: string[] = [];

  // egg's loader needs an absolute baseDir
  const baseDir = path.resolve(ctx.cwd, optionalString(raw, 'baseDir') ?? ctx.cwd);
  const framework = optionalString(raw, 'framework') ?? optionalString(raw, 'customEgg') ?? '';

  const plugins = raw.plugins ?? null;
  if (plugins !== null && (typeof plugins !== 'object' || Array.isArray(plugins))) {
    throw invalid('plugins', 'an object', plugins);
  }

  // 0 / '' mean "default", as in egg-cluster.
  const workers = raw.workers === 0 || raw.workers === '' || raw.workers === undefined
    ? Math.max(1, ctx.cpus)
    : toInteger('workers', raw.workers, 1, 1024, 'a positive integer (1 to 1024)');

  const https = normalizeHttps(raw, warnings);

  let port: number | undefined;
  if (raw.port === undefined) {
    port = https ? 8443 : undefined;
  } else if (raw.port === '' || raw.port === 0 || raw.port === '0') {
    // egg-cluster: parseInt(port) || undefined, so the app's config.cluster.listen.port applies
    port = undefined;
  } else {
    port = toInteger('port', raw.port, 1, 65535, 'a port number from 1 to 65535');
  }

  const debugPort = raw.debugPort === undefined
    ? undefined
    : toInteger('debugPort', raw.debugPort, 1, 65535, 'a port number from 1 to 65535');

  let requires: string[] | undefined;
  if (raw.require !== undefined) {
    const list = Array.isArray(raw.require) ? raw.require : [raw.require];
    if (!list.every(m => typeof m === 'string' && m !== '')) {
      throw invalid('require', 'a module name or path, or an array of them', raw.require);
    }
    requires = list as string[];
  }

  const startMode = raw.startMode ?? 'process';
  if (startMode !== 'process' && startMode !== 'worker_threads') {
    throw invalid('startMode', '"process" or "worker_threads"', startMode);
  }

  let ports: number[] = [];
  if (raw.ports !== undefined) {
    if (!Array.isArray(raw.ports)) throw invalid('ports', 'an array of port numbers', raw.ports);
    ports = raw.ports.map((p, i) => toInteger(`ports[${i}]`, p, 1, 65535, 'a port number from 1 to 65535'));
  }

  const env = optionalString(raw, 'env') ?? (ctx.env.EGG_SERVER_ENV || undefined);
  const pidFile = optionalString(raw, 'pidFile');
  const title = optionalString(raw, 'title');
  const sticky = optionalBoolean(raw, 'sticky');
  const startTimeout = raw.startTimeout === undefined
    ? 600_000
    : toInteger('startTimeout', raw.startTimeout, 1, 2 ** 31 - 1, 'a number of milliseconds (a positive integer)');
  let restartPolicy: Partial<RestartPolicy> | undefined;
  if (raw.restartPolicy !== undefined) {
    const value = raw.restartPolicy as Record<string, unknown>;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw invalid('restartPolicy', 'an object { limit, windowMs, baseDelayMs, maxDelayMs, stableMs, minUptimeMs }', value);
    }
    restartPolicy = {};
    for (const key of ['limit', 'windowMs', 'baseDelayMs', 'maxDelayMs', 'stableMs', 'minUptimeMs'] as const) {
      if (value[key] === undefined) continue;
      restartPolicy[key] = toInteger(`restartPolicy.${key}`, value[key], 0, 2 ** 31 - 1, 'a non-negative integer');
    }
    for (const key of Object.keys(value)) {
      if (!['limit', 'windowMs', 'baseDelayMs', 'maxDelayMs', 'stableMs', 'minUptimeMs'].includes(key)) {
        throw new InvalidOptionError(`options.restartPolicy.${key} is not a restart policy setting; use limit, windowMs, baseDelayMs, maxDelayMs, stableMs or minUptimeMs`);
      }
    }
  }
  let surge: number | undefined;
  if (raw.reload !== undefined) {
    const value = raw.reload as Record<string, unknown>;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalid('reload', 'an object { surge } (surge: how many replacements boot at once during a reload)', value);
    }
    for (const key of Object.keys(value)) {
      if (key !== 'surge') throw new InvalidOptionError(`options.reload.${key} is not a reload setting; use surge`);
    }
    if (value.surge !== undefined) {
      surge = toInteger('reload.surge', value.surge, 1, 1024, 'a positive integer (replacements that boot at once during a reload; 1 = one at a time)');
    }
  }
  let secretKeys: string[] | undefined;
  if (raw.secretKeys !== undefined) {
    if (!Array.isArray(raw.secretKeys) || !raw.secretKeys.every(k => typeof k === 'string')) {
      throw invalid('secretKeys', 'an array of option names', raw.secretKeys);
    }
    secretKeys = raw.secretKeys;
  }
  const reusePort = optionalBoolean(raw, 'reusePort');
  const settings = checkEnv(ctx.env);
  const status = normalizeStatus(raw.status, settings, warnings);
  const shutdownDelay = raw.shutdownDelay === undefined
    ? settings.shutdownDelay ?? 0
    : toInteger('shutdownDelay', raw.shutdownDelay, 0, MAX_TIMER_MS,
      `a number of milliseconds from 0 to ${MAX_TIMER_MS} (the time the load balancer needs to stop routing here; Kubernetes: about 5000)`);
  const inspected = [...ctx.execArgv, ...(ctx.env.NODE_OPTIONS ?? '').split(/\s+/)]
    .some(a => a.includes('--debug') || a.includes('--inspect')) || (ctx.inspectorActive ?? false);
  // egg's own env rule: EGG_SERVER_ENV, else NODE_ENV test/production, else local
  const local = env ? env === 'local' : !['test', 'production'].includes(ctx.env.NODE_ENV ?? '');
  const watchdog = normalizeWatchdog(raw.watchdog, settings, local || inspected);
  const maxMemory = raw.maxMemory === undefined ? settings.maxMemory ?? 0 : parseMemory(raw.maxMemory, 'options.maxMemory');
  const listeners = startMode === 'worker_threads'
    ? resolveThreadListeners({ sticky, reusePort, port, ports, workers }, warnings, ctx)
    : { ports, workers };

  // `reload` is defined right below, not enumerable
  const options = withSettings({
    ...raw,
    baseDir,
    framework,
    plugins: plugins as Record<string, unknown> | null,
    workers: listeners.workers,
    port,
    https,
    sticky,
    env,
    startMode,
    ports: listeners.ports,
    reusePort,
    startTimeout,
    shutdownDelay,
    watchdog,
    maxMemory,
  }, settings) as ResolvedOptions;
  // outside production (local, unittest): replace every worker at once (egg-bin dev reloads
  // after each save); production: one at a time. Not enumerable, as closeTimeouts: a master
  // setting that the logged options, argv and the workers do not need
  Object.defineProperty(options, 'reload', {
    value: Object.freeze({ surge: surge ?? (isProductionEnv(env, ctx.env.NODE_ENV) ? 1 : listeners.workers) }),
    enumerable: false,
  });
  if (status) options.status = status;
  else delete options.status;
  if (secretKeys) options.secretKeys = secretKeys;
  if (restartPolicy) options.restartPolicy = restartPolicy;
  for (const key of ['agentWorkerFile', 'appWorkerFile'] as const) {
    const file = optionalString(raw, key);
    if (file) options[key] = path.resolve(baseDir, file);
  }
  if (debugPort !== undefined) options.debugPort = debugPort;
  if (requires) options.require = requires;
  if (pidFile) options.pidFile = pidFile;
  if (title !== undefined) options.title = title;
  if (ctx.execArgv.some(a => a.includes('--debug') || a.includes('--inspect'))) options.isDebug = true;

  // the workers get the options as JSON: what JSON cannot carry is an error now, not a crash later
  const dropped = checkSendable(options);
  if (dropped) warnings.push(dropped);
  return { options, warnings };
}

const STATUS_EXPECTED = 'an object { port, host? } (port 1 to 65535; host defaults to 127.0.0.1), or false';

/**
 * options.status, else the EGG_CLUSTER_STATUS_* variables: off (undefined) unless a port is
 * given. Not a secret: like every option it reaches the workers (their report loop runs only
 * when it is set).
 */
function normalizeStatus(value: unknown, settings: EnvSettings, warnings: string[]): StatusOptions | undefined {
  if (value === undefined || value === false) {
    if (settings.statusPort === undefined) {
      if (settings.statusHost !== undefined) {
        warnings.push('[master] EGG_CLUSTER_STATUS_HOST is set but EGG_CLUSTER_STATUS_PORT is not: the status server stays off; set EGG_CLUSTER_STATUS_PORT to turn it on');
      }
      return undefined;
    }
    return { port: settings.statusPort, host: settings.statusHost ?? DEFAULT_STATUS_HOST };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('status', STATUS_EXPECTED, value);
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'port' && key !== 'host') {
      throw new InvalidOptionError(`options.status.${key} is not a status server setting; use status: { port, host }`);
    }
  }
  if (!isPresent(o.port)) throw invalid('status.port', 'a port number from 1 to 65535 (the status server is off unless a port is set)', o.port);
  const port = toInteger('status.port', o.port, 1, 65535, 'a port number from 1 to 65535');
  let host = settings.statusHost ?? DEFAULT_STATUS_HOST;
  if (isPresent(o.host)) {
    if (!isHost(o.host)) throw invalid('status.host', 'an IP address or a host name, such as "127.0.0.1" or "0.0.0.0"', o.host);
    host = o.host;
  }
  return { port, host };
}

export const DEFAULT_WATCHDOG_TIMEOUT = 30_000;
const WATCHDOG_EXPECTED = 'false, or { timeout: ms } with a whole number of milliseconds from 1000 to 2147483647';

/**
 * options.watchdog, else EGG_CLUSTER_WATCHDOG_TIMEOUT, else on with 30 s, except in the local
 * env and under an inspector (a paused debugger is not a hung worker), where it is off unless
 * set explicitly.
 */
function normalizeWatchdog(value: unknown, settings: EnvSettings, offByDefault: boolean): { timeout: number } | false {
  if (value === undefined) {
    if (settings.watchdogTimeout !== undefined) return settings.watchdogTimeout === 0 ? false : { timeout: settings.watchdogTimeout };
    return offByDefault ? false : { timeout: DEFAULT_WATCHDOG_TIMEOUT };
  }
  if (value === false) return false;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('watchdog', WATCHDOG_EXPECTED, value);
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'timeout') throw new InvalidOptionError(`options.watchdog.${key} is not a watchdog setting; use watchdog: { timeout: ms } or false`);
  }
  if (o.timeout === undefined) return { timeout: DEFAULT_WATCHDOG_TIMEOUT };
  return { timeout: toInteger('watchdog.timeout', o.timeout, 1000, MAX_TIMER_MS,
    'a whole number of milliseconds from 1000 to 2147483647 (workers report every second; use watchdog: false to turn it off)') };
}

const MEMORY_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Bytes from 536870912, '512MB', '512M', '1G', '1.5G' (K/M/G are 1024-based, as PM2); 0 = off. */
export function parseMemory(value: unknown, name: string): number {
  const fix = 'Use a number of bytes, or a size such as \'512M\', \'512MB\' or \'1G\' (K/M/G are 1024-based); 0 turns it off';
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*$/i.exec(value);
    if (m) {
      const bytes = Math.floor(Number(m[1]) * MEMORY_UNITS[m[2]!.toUpperCase()]!);
      if (Number.isSafeInteger(bytes)) return bytes;
    }
  }
  const shown = typeof value === 'string' ? JSON.stringify(value) : describe(value);
  return (() => { throw new InvalidOptionError(`${name} must be a memory size, got ${shown}. ${fix}`); })();
}

/** The status server's host when none is given: probes from the same machine or pod only. */
export const DEFAULT_STATUS_HOST = '127.0.0.1';

function isHost(value: unknown): value is string {
  return typeof value === 'string' && (net.isIP(value) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(value));
}

/**
 * startMode 'worker_threads' has no node:cluster to share a port. As egg-cluster: one app
 * thread per entry of `ports` (default `[port]`) and `workers` = ports.length; with neither,
 * one thread on the app's own config.cluster.listen.port. With a usable reusePort (Node >=
 * 22.12 on Linux/FreeBSD/SunOS/AIX) `workers` threads share `port` instead; elsewhere
 * reusePort falls back to one thread per port, with a warning. Sticky sessions hand sockets
 * between processes and cannot work with threads (egg-cluster crashed on it: D11e).
 */
function resolveThreadListeners(
  o: { sticky: boolean; reusePort: boolean; port: number | undefined; ports: number[]; workers: number },
  warnings: string[],
  ctx: NormalizeContext,
): { ports: number[]; workers: number } {
  if (o.sticky) {
    throw new InvalidOptionError('options.sticky is not supported with startMode "worker_threads": '
      + 'sticky sessions pass sockets between processes. Use startMode "process" (the default) for sticky sessions, '
      + 'or drop sticky and put a load balancer in front of the thread ports');
  }
  if (new Set(o.ports).size !== o.ports.length) {
    throw invalid('ports', 'distinct port numbers (one app thread listens on each)', o.ports);
  }
  if (o.reusePort) {
    // loaded only here: the master does not need http/https otherwise
    const { reusePortSupport } = require('./worker/app_server.js') as typeof import('./worker/app_server.js');
    const unavailable = reusePortSupport(ctx.nodeVersion ?? process.version, ctx.platform ?? process.platform);
    if (!unavailable) {
      if (o.port === undefined) {
        throw new InvalidOptionError('options.port is required with reusePort in startMode "worker_threads": every app thread listens on it');
      }
      if (o.ports.length) {
        warnings.push(`[master] options.ports is ignored with reusePort: all ${o.workers} app threads share port ${o.port}`);
      }
      return { ports: [], workers: o.workers };
    }
    warnings.push(`[master] reusePort is not available (${unavailable}); startMode "worker_threads" runs one app thread per port of options.ports instead`);
  }
  const ports = o.ports.length ? o.ports : o.port !== undefined ? [o.port] : [];
  return { ports, workers: Math.max(1, ports.length) };
}

/** egg's rule: production unless env is local/unittest; with no env, NODE_ENV decides. */
export function isProductionEnv(env: string | undefined, nodeEnv: string | undefined): boolean {
  if (env) return env !== 'local' && env !== 'unittest';
  return nodeEnv === 'production';
}

export interface CloseTimeouts {
  app: number;
  agent: number;
}

/** The close timeout of each phase when no variable sets it (egg-cluster's). */
export const DEFAULT_CLOSE_TIMEOUT = 5000;
/** The agent's `--inspect-port` under a debugger when EGG_AGENT_DEBUG_PORT is unset. */
export const DEFAULT_AGENT_DEBUG_PORT = 5800;
/** setTimeout's limit: a larger delay fires after 1 ms (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** egg-logger's levels (it upper-cases the name); any other name silences the logger. */
const LOG_LEVELS = ['ALL', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'NONE'];

/** A variable's value for a message: quoted, control characters escaped, cut at 80 characters. */
function showEnvValue(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function invalidEnv(name: string, value: string, expected: string, fix: string): InvalidOptionError {
  return new InvalidOptionError(`environment variable ${name} must be ${expected}, got ${showEnvValue(value)}. ${fix}`);
}

/** Unset and empty are the same for every variable egg-clutch and its dependencies read. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function envMs(env: NodeJS.ProcessEnv, name: string, unsetMeans: string): number | undefined {
  const value = envValue(env, name);
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(n <= MAX_TIMER_MS)) {
    throw invalidEnv(name, value, `a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`,
      `Set it to a number such as 5000, or unset it (then ${unsetMeans})`);
  }
  return n;
}

/**
 * EGG_APP_CLOSE_TIMEOUT / EGG_AGENT_CLOSE_TIMEOUT, each falling back to EGG_MASTER_CLOSE_TIMEOUT,
 * then 5000. Throws an InvalidOptionError for a value that is not a whole number of ms from 0
 * to 2^31-1. normalizeOptions() calls it at start and keeps the result as
 * `options.closeTimeouts`: read that after start, it cannot throw.
 */
export function closeTimeouts(env: NodeJS.ProcessEnv): CloseTimeouts {
  const legacy = envMs(env, 'EGG_MASTER_CLOSE_TIMEOUT', `the default of ${DEFAULT_CLOSE_TIMEOUT} ms applies`) ?? DEFAULT_CLOSE_TIMEOUT;
  const fallback = `EGG_MASTER_CLOSE_TIMEOUT applies, else ${DEFAULT_CLOSE_TIMEOUT} ms`;
  return {
    app: envMs(env, 'EGG_APP_CLOSE_TIMEOUT', fallback) ?? legacy,
    agent: envMs(env, 'EGG_AGENT_CLOSE_TIMEOUT', fallback) ?? legacy,
  };
}

/** The environment settings of the master, checked and resolved (see checkEnv). */
export interface EnvSettings {
  closeTimeouts: CloseTimeouts;
  agentDebugPort: number;
  /** EGG_CLUSTER_STATUS_PORT / EGG_CLUSTER_STATUS_HOST / EGG_CLUSTER_SHUTDOWN_DELAY; options win over them. */
  statusPort?: number;
  statusHost?: string;
  shutdownDelay?: number;
  /** EGG_CLUSTER_WATCHDOG_TIMEOUT: ms, 0 = off. */
  watchdogTimeout?: number;
  /** EGG_CLUSTER_MAX_MEMORY: bytes. */
  maxMemory?: number;
}

/**
 * Every environment variable that egg-clutch, or egg-logger in its processes, reads to decide
 * how it runs, checked at once: a wrong value is a start error, never a surprise at close time
 * (a close that cannot read its timeout) or a silent logger. The workers inherit the master's
 * environment, so their variables are checked here too. EGG_SERVER_ENV, NODE_ENV and HOST take
 * any value.
 */
export function checkEnv(env: NodeJS.ProcessEnv): EnvSettings {
  for (const name of [
    'EGG_MASTER_LOGGER_LEVEL', 'EGG_APP_WORKER_LOGGER_LEVEL', 'EGG_AGENT_WORKER_LOGGER_LEVEL', 'EGG_LOG', 'NODE_CONSOLE_LOGGRE_LEVEL',
  ]) {
    const value = envValue(env, name);
    if (value !== undefined && !LOG_LEVELS.includes(value.toUpperCase())) {
      throw invalidEnv(name, value, `a log level: one of ${LOG_LEVELS.join(', ')} (any case)`,
        'egg-logger prints nothing at an unknown level; set one of these, or unset it for the default');
    }
  }
  envMs(env, 'GRACEFUL_TIMEOUT', 'each worker gets 500 ms less than its close timeout');
  let agentDebugPort = DEFAULT_AGENT_DEBUG_PORT;
  const debugPort = envValue(env, 'EGG_AGENT_DEBUG_PORT');
  if (debugPort !== undefined) {
    agentDebugPort = /^\d+$/.test(debugPort.trim()) ? Number(debugPort) : Number.NaN;
    if (!(agentDebugPort <= 65535)) {
      throw invalidEnv('EGG_AGENT_DEBUG_PORT', debugPort, 'a port number from 0 to 65535 (the agent\'s --inspect-port under a debugger)',
        `Set a free port, or unset it for ${DEFAULT_AGENT_DEBUG_PORT}`);
    }
  }
  const settings: EnvSettings = { closeTimeouts: closeTimeouts(env), agentDebugPort };
  const statusPort = envValue(env, 'EGG_CLUSTER_STATUS_PORT');
  if (statusPort !== undefined) {
    const port = /^\d+$/.test(statusPort.trim()) ? Number(statusPort) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw invalidEnv('EGG_CLUSTER_STATUS_PORT', statusPort, 'a port number from 1 to 65535 (the master\'s status server)',
        'Set a free port such as 7002, or unset it to turn the status server off');
    }
    settings.statusPort = port;
  }
  const statusHost = envValue(env, 'EGG_CLUSTER_STATUS_HOST');
  if (statusHost !== undefined) {
    if (!isHost(statusHost)) {
      throw invalidEnv('EGG_CLUSTER_STATUS_HOST', statusHost, 'an IP address or a host name',
        `Set it to 0.0.0.0 (probes from other hosts) or 127.0.0.1, or unset it for ${DEFAULT_STATUS_HOST}`);
    }
    settings.statusHost = statusHost;
  }
  const delay = envMs(env, 'EGG_CLUSTER_SHUTDOWN_DELAY', 'the drain starts at once');
  if (delay !== undefined) settings.shutdownDelay = delay;
  const watchdog = envValue(env, 'EGG_CLUSTER_WATCHDOG_TIMEOUT');
  if (watchdog !== undefined) {
    const n = watchdog.trim().toLowerCase() === 'false' ? 0 : /^\d+$/.test(watchdog.trim()) ? Number(watchdog) : Number.NaN;
    if (!(n === 0 || (n >= 1000 && n <= MAX_TIMER_MS))) {
      throw invalidEnv('EGG_CLUSTER_WATCHDOG_TIMEOUT', watchdog, `a whole number of milliseconds from 1000 to ${MAX_TIMER_MS}, or 0 / false (off)`,
        'Set it to a time such as 30000, or unset it for the default (30000, off in the local env)');
    }
    settings.watchdogTimeout = n;
  }
  const maxMemory = envValue(env, 'EGG_CLUSTER_MAX_MEMORY');
  if (maxMemory !== undefined) settings.maxMemory = parseMemory(maxMemory, 'environment variable EGG_CLUSTER_MAX_MEMORY');
  return settings;
}
