import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { closeTimeouts, type ResolvedOptions } from '../options.js';
import type { Logger } from '../logger.js';
import { graceful } from 'graceful-process';
import { GRACEFUL_EXIT_ACTION, type WorkerIO } from './io.js';

const IMPORT_CONDITIONS = new Set(['node', 'import', 'default']);

/** A package's `exports` target for `subpath` under the conditions of `import` (node, import, default). */
function exportsTarget(exportsField: unknown, subpath: string): string | undefined {
  let entry: unknown = exportsField;
  const isSubpathMap = typeof exportsField === 'object' && exportsField !== null && !Array.isArray(exportsField)
    && Object.keys(exportsField).some(key => key.startsWith('.'));
  let star: string | undefined;
  if (isSubpathMap) {
    const map = exportsField as Record<string, unknown>;
    entry = map[subpath];
    if (entry === undefined) {
      // the longest matching pattern ("./features/*.js") wins
      let best = '';
      for (const key of Object.keys(map)) {
        const at = key.indexOf('*');
        if (at < 0) continue;
        const prefix = key.slice(0, at);
        const suffix = key.slice(at + 1);
        if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1 && key.length > best.length) {
          best = key;
          star = subpath.slice(prefix.length, subpath.length - suffix.length);
        }
      }
      if (best) entry = map[best];
    }
  } else if (subpath !== '.') {
    return undefined;
  }
  const pick = (value: unknown): string | undefined => {
    if (typeof value === 'string') return star === undefined ? value : value.replaceAll('*', star);
    if (Array.isArray(value)) {
      for (const item of value) {
        const found = pick(item);
        if (found) return found;
      }
      return undefined;
    }
    if (typeof value === 'object' && value !== null) {
      for (const [condition, target] of Object.entries(value)) {
        if (!IMPORT_CONDITIONS.has(condition)) continue;
        const found = pick(target);
        if (found) return found;
      }
    }
    return undefined;
  };
  return pick(entry);
}

/**
 * Resolve a bare specifier the way `import` does (the "import" condition of `exports`), for a
 * package that require.resolve refuses (ERR_PACKAGE_PATH_NOT_EXPORTED: no "require" or
 * "default" condition). Looks in node_modules from each of `paths` upwards, as Node does.
 */
export function resolveImport(spec: string, paths: string[]): string | undefined {
  if (path.isAbsolute(spec) || spec.startsWith('./') || spec.startsWith('../')) {
    // a package folder given by path (options.framework is one): its `exports` "."
    for (const base of paths) {
      const pkgDir = path.resolve(base, spec);
      const target = packageTarget(pkgDir, '.');
      if (target) return target;
      if (path.isAbsolute(spec)) break;
    }
    return undefined;
  }
  const parts = spec.split('/');
  const nameLength = spec.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = parts.length > nameLength ? `./${parts.slice(nameLength).join('/')}` : '.';
  for (const start of paths) {
    for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
      const pkgDir = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(pkgDir, 'package.json'))) return packageTarget(pkgDir, subpath);
      if (path.dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** The file a package folder's `exports` maps `subpath` to under the import conditions. */
function packageTarget(pkgDir: string, subpath: string): string | undefined {
  let pkg: { exports?: unknown };
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown };
  } catch {
    return undefined;
  }
  const target = pkg.exports === undefined ? undefined : exportsTarget(pkg.exports, subpath);
  if (!target?.startsWith('./')) return undefined;
  const file = path.join(pkgDir, target);
  return fs.existsSync(file) ? file : undefined;
}

/** Node's errors that mean "this is an ES module: use import()". */
const USE_IMPORT = new Set(['ERR_REQUIRE_ESM', 'ERR_REQUIRE_ASYNC_MODULE']);

/**
 * Load a path or package name resolved from baseDir (then cwd), as egg 4 itself does with
 * @eggjs/utils' importModule: a CommonJS module is `require`d (the same instance the app's
 * own `require` gets); an ES module is `import()`ed when require() cannot load it — before
 * Node 20.19 / 22.12 any ES module (ERR_REQUIRE_ESM), after it one with top-level await
 * (ERR_REQUIRE_ASYNC_MODULE) — and a package whose `exports` only has an "import" condition
 * (ERR_PACKAGE_PATH_NOT_EXPORTED for require.resolve) is resolved with the import
 * conditions. The module's exports come back as loaded; see `pickExports` for `default`.
 */
export async function importModule(spec: string, baseDir: string): Promise<unknown> {
  const paths = [baseDir, process.cwd()];
  let resolved: string;
  try {
    resolved = require.resolve(spec, { paths });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const viaImport = code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' || code === 'MODULE_NOT_FOUND'
      ? resolveImport(spec, paths) : undefined;
    if (!viaImport) throw err;
    return import(pathToFileURL(viaImport).href) as Promise<unknown>;
  }
  try {
    return require(resolved) as unknown;
  } catch (err) {
    if (!USE_IMPORT.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    return import(pathToFileURL(resolved).href) as Promise<unknown>;
  }
}

/**
 * The object that carries `names` among what a module exported: the exports themselves,
 * their `default` (an ES module's `export default { Application, Agent }`, or a CommonJS
 * module imported by import()), or `default.default` (TypeScript's CommonJS output of
 * `export default`, loaded by import()) — egg 4's importModule unwraps the same shapes.
 */
export function pickExports(mod: unknown, names: string[]): Record<string, unknown> | undefined {
  let candidate = mod as Record<string, unknown> | undefined;
  for (let depth = 0; depth < 3 && candidate && (typeof candidate === 'object' || typeof candidate === 'function'); depth++) {
    if (names.every(name => typeof candidate![name] === 'function')) return candidate;
    candidate = candidate.default as Record<string, unknown> | undefined;
  }
  return undefined;
}

/** options.require: modules loaded in every agent and app worker before the framework. */
export async function loadRequires(options: ResolvedOptions): Promise<void> {
  for (const mod of options.require ?? []) {
    try {
      await importModule(mod, options.baseDir);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
        ? `cannot find it from ${options.baseDir}; install it or give its absolute path`
        : `it threw: ${(err as Error).message}`;
      throw new Error(`options.require "${mod}" failed to load: ${reason}`, { cause: err });
    }
  }
}

export type Constructor = new (options: ResolvedOptions) => FrameworkInstance;

/** The part of egg's Application / Agent the workers use. */
export interface FrameworkInstance {
  ready(callback: (err?: Error) => void): void;
  close(): Promise<void>;
  once(event: string, listener: (...args: any[]) => void): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  listenerCount(event: string): number;
  /** The options object the instance holds (egg: `app.options`, and its deprecated alias `app._options`). */
  options?: unknown;
  callback?(): (req: any, res: any) => void;
  config?: { cluster?: { listen?: { port?: unknown; hostname?: string; path?: string }; https?: Record<string, unknown> } };
}

/** True when the app's package.json says `"type": "module"`. */
export function isESMApp(baseDir: string): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(baseDir, 'package.json'), 'utf8')) as { type?: unknown }).type === 'module';
  } catch {
    return false;
  }
}

/** Load the framework and return the class it must export, with a message that says how to fix it. */
export async function loadFramework(options: ResolvedOptions, exportName: 'Application' | 'Agent', also: string[] = []): Promise<Constructor> {
  let framework: Record<string, unknown>;
  try {
    // An ESM app ("type": "module", e.g. every egg 4 TypeScript app on @eggjs/tsconfig) runs on
    // the framework's ESM build, as under @eggjs/cluster (egg-bin and @eggjs/mock import egg
    // from ESM, and it forks its ESM worker entries): egg 4's CommonJS build require()s the
    // app's own files, which fails for ES modules (ERR_REQUIRE_ESM) before the app starts.
    const esmEntry = isESMApp(options.baseDir) ? resolveImport(options.framework, [options.baseDir, process.cwd()]) : undefined;
    framework = (esmEntry
      ? await import(pathToFileURL(esmEntry).href)
      : await importModule(options.framework, options.baseDir)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`framework ${options.framework} failed to load: ${(err as Error).message}`, { cause: err });
  }
  const mod = pickExports(framework, [exportName, ...also]);
  if (!mod) {
    const found = pickExports(framework, [exportName]) ?? framework;
    const missing = [exportName, ...also].find(name => typeof (found as Record<string, unknown> | undefined)?.[name] !== 'function');
    throw new Error(`should define ${missing} in ${options.framework}: the framework must export an ${missing} class (like egg does)`);
  }
  return mod[exportName] as Constructor;
}


export interface GracefulCloseOptions {
  logger: Logger;
  /** `app_worker` / `agent_worker`, as graceful-process labels its lines. */
  label: string;
  /** Upper bound for `beforeExit` (the worker's close budget, see workerCloseTimeout). */
  timeoutMs: number;
  /** The close itself: drain, then app.close() / agent.close(). */
  beforeExit: () => Promise<void>;
  /** Ends the process or the thread (`process.exit` inside a worker thread ends only that thread). */
  exit: (code: number) => void;
}

export interface GracefulClose {
  /** The close, run at most once however many times it is asked for (SIGTERM, start error). */
  beforeExit: () => Promise<void>;
  /**
   * Run the close bounded by the timeout, log `[label] beforeExit success` (or
   * `beforeExit fail, error: …`) as graceful-process does, then exit with `code`. The first
   * call decides the code; later calls wait for it.
   */
  closeAndExit: (code: number) => void;
}

/**
 * The worker's one close path. A SIGTERM (process mode: graceful-process calls `beforeExit`),
 * the master's graceful-exit message (threads) and a start error all run the same close, so a
 * start error releases what the boot opened (egg's `beforeClose` hooks), as egg-cluster's
 * self-SIGTERM does, while still exiting 1 (graceful-process would exit 0: defect D2).
 */
export function createGracefulClose(opts: GracefulCloseOptions): GracefulClose {
  let closing: Promise<void> | undefined;
  let exiting = false;
  const beforeExit = (): Promise<void> => {
    closing ??= Promise.resolve().then(opts.beforeExit);
    return closing;
  };
  return {
    beforeExit,
    closeAndExit(code) {
      if (exiting) return;
      exiting = true;
      const { logger, label, timeoutMs } = opts;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`Timeout ${timeoutMs}ms`)), timeoutMs);
      });
      void Promise.race([beforeExit(), timedOut]).then(
        () => logger.info('[%s] beforeExit success', label),
        (err: unknown) => logger.error('[%s] beforeExit fail, error: %s', label, (err as Error)?.message ?? err),
      ).finally(() => {
        clearTimeout(timer);
        opts.exit(code);
      });
    },
  };
}

/**
 * Thread mode's graceful-process: threads get no SIGTERM, so the master posts
 * GRACEFUL_EXIT_ACTION; the close (drain, then app.close() / agent.close()) is really
 * awaited, bounded by the timeout, then the thread exits 0. egg-cluster ran the close in
 * `process.on('exit', async …)`, where nothing can be awaited (defect D11b).
 */
export function onThreadGracefulExit(io: WorkerIO, close: GracefulClose, logger: Logger, label: string): void {
  let received = false;
  io.onMessage(msg => {
    if (received || (msg as { action?: unknown } | null)?.action !== GRACEFUL_EXIT_ACTION) return;
    received = true;
    logger.info('[%s] receive graceful-exit from the master (worker_threads), closing', label);
    close.closeAndExit(0);
  });
}

/**
 * The close of a worker entry, wired to what ends it: in a process, SIGTERM through
 * graceful-process; in a thread, the master's graceful-exit message. Both entries use it.
 */
export function installWorkerClose(io: WorkerIO, opts: GracefulCloseOptions): GracefulClose {
  const { logger, label } = opts;
  const close = createGracefulClose({
    ...opts,
    exit: code => {
      // a thread has no graceful-process to log its exit
      if (io.isThread) logger[code === 0 ? 'info' : 'error']('[%s] exit with code:%s', label, code);
      opts.exit(code);
    },
  });
  if (io.isThread) {
    onThreadGracefulExit(io, close, logger, label);
    return close;
  }
  // Ctrl-C and a closed terminal reach the whole process group: the master decides when and
  // in which order workers stop (app workers drain first, then the agent).
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  // `sigterm: 'always'`: a SIGTERM sent to the whole process group (systemd
  // KillMode=control-group, `kill -TERM -<pgid>`, tini -g) is followed by the master's own;
  // the second must not kill the worker while it closes (graceful-process's default `once`
  // leaves it to the default action, which resets the requests in flight).
  graceful({ logger, label, timeout: opts.timeoutMs, beforeExit: close.beforeExit, sigterm: 'always' });
  return close;
}

/**
 * How long a worker's own close (drain + app.close()) may take: GRACEFUL_TIMEOUT when set;
 * otherwise below the master's close timeout for this role (EGG_APP_CLOSE_TIMEOUT /
 * EGG_AGENT_CLOSE_TIMEOUT / EGG_MASTER_CLOSE_TIMEOUT), so the worker finishes before the
 * master's SIGKILL instead of racing it at the same 5 s (defect D14): 500 ms less, or a
 * quarter less when that leaves more (short timeouts), so it stays below the
 * master's for every timeout of 2 ms and more.
 */
export function workerCloseTimeout(role: 'app' | 'agent', env: NodeJS.ProcessEnv): number {
  const explicit = Number(env.GRACEFUL_TIMEOUT);
  if (env.GRACEFUL_TIMEOUT && Number.isFinite(explicit) && explicit > 0) return explicit;
  let master = 5000;
  try {
    master = closeTimeouts(env)[role];
  } catch {
    // an invalid value is reported by the master; keep the default here
  }
  return Math.max(1, master - 500, Math.floor(master * 0.75));
}

/**
 * Wait for the instance to be ready. A failed `ready` and an `error` emitted while booting
 * are both start errors, reported once; after a successful start `error` is the app's own.
 *
 * How an `error` during boot is watched (`errorWatch`):
 * - 'listener' (the agent, as egg-cluster's agent_worker): a `once('error')` listener,
 *   removed when ready.
 * - 'unhandled' (app workers): no listener the app can see — egg-cluster's app worker adds
 *   none, and apps count them (its test "should remove error listener after ready" expects
 *   one, egg's own, both in an `app.ready()` callback and after). An `error` emitted while
 *   no listener handles it, which EventEmitter would throw as ERR_UNHANDLED_ERROR, is a
 *   start error; one the app handles is the app's, as in egg-cluster.
 */
export function whenStarted(
  instance: FrameworkInstance,
  onStarted: () => void,
  onStartError: (err: unknown) => void,
  errorWatch: 'listener' | 'unhandled' = 'listener',
): void {
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    onStartError(err);
  };
  let unwatch: () => void;
  if (errorWatch === 'listener') {
    instance.once('error', fail);
    unwatch = () => instance.removeListener('error', fail);
  } else {
    const hadOwnEmit = Object.prototype.hasOwnProperty.call(instance, 'emit');
    const emit: (this: FrameworkInstance, event: string, ...args: unknown[]) => boolean = Reflect.get(instance, 'emit');
    instance.emit = function (this: FrameworkInstance, event: string, ...args: unknown[]): boolean {
      if (event === 'error' && this.listenerCount('error') === 0) {
        fail(args[0]);
        return false;
      }
      return emit.call(this, event, ...args);
    };
    unwatch = () => {
      if (hadOwnEmit) instance.emit = emit;
      else delete (instance as { emit?: unknown }).emit;
    };
  }
  instance.ready(err => {
    if (err) {
      fail(err);
      return;
    }
    if (failed) return;
    unwatch();
    onStarted();
  });
}
