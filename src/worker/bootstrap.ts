import { pathToFileURL } from 'node:url';
import { closeTimeouts, type ResolvedOptions } from '../options.js';
import type { Logger } from '../logger.js';
import { GRACEFUL_EXIT_ACTION, type WorkerIO } from './io.js';

/**
 * require() refuses an ES module with ERR_REQUIRE_ESM before Node 20.19 / 22.12; from there on
 * it loads one, except a graph with top-level await (ERR_REQUIRE_ASYNC_MODULE, nothing
 * evaluated yet). Both mean "import() it".
 */
const IMPORT_INSTEAD = new Set(['ERR_REQUIRE_ESM', 'ERR_REQUIRE_ASYNC_MODULE']);

/** `require`, or `import()` for an ES module, of a path or package name resolved from baseDir. */
export async function importModule(spec: string, baseDir: string): Promise<unknown> {
  const resolved = require.resolve(spec, { paths: [baseDir, process.cwd()] });
  try {
    return require(resolved) as unknown;
  } catch (err) {
    if (!IMPORT_INSTEAD.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    return import(pathToFileURL(resolved).href) as Promise<unknown>;
  }
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
  callback?(): (req: any, res: any) => void;
  config?: { cluster?: { listen?: { port?: unknown; hostname?: string; path?: string }; https?: Record<string, unknown> } };
}

/** Load the framework and return the class it must export, with a message that says how to fix it. */
export async function loadFramework(options: ResolvedOptions, exportName: 'Application' | 'Agent', also: string[] = []): Promise<Constructor> {
  let framework: Record<string, unknown>;
  try {
    framework = await importModule(options.framework, options.baseDir) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`framework ${options.framework} failed to load: ${(err as Error).message}`, { cause: err });
  }
  const mod = (framework.default && typeof framework[exportName] !== 'function'
    ? framework.default : framework) as Record<string, unknown>;
  for (const name of [exportName, ...also]) {
    if (typeof mod[name] !== 'function') {
      throw new Error(`should define ${name} in ${options.framework}: the framework must export an ${name} class (like egg does)`);
    }
  }
  return mod[exportName] as Constructor;
}


export interface ThreadGracefulOptions {
  logger: Logger;
  /** `app_worker` / `agent_worker`, as graceful-process labels its lines. */
  label: string;
  /** Upper bound for `beforeExit` (GRACEFUL_TIMEOUT, as in process mode). */
  timeoutMs: number;
  beforeExit: () => Promise<void>;
  /** Ends the thread (`process.exit` inside a worker thread ends only that thread). */
  exit: (code: number) => void;
}

/**
 * Thread mode's graceful-process: threads get no SIGTERM, so the master posts
 * GRACEFUL_EXIT_ACTION; `beforeExit` (drain, then app.close() / agent.close()) is really
 * awaited, bounded by `timeoutMs`, then the thread exits 0. egg-cluster ran the close in
 * `process.on('exit', async …)`, where nothing can be awaited (defect D11b).
 */
export function onThreadGracefulExit(io: WorkerIO, opts: ThreadGracefulOptions): void {
  let closing = false;
  io.onMessage(msg => {
    if (closing || (msg as { action?: unknown } | null)?.action !== GRACEFUL_EXIT_ACTION) return;
    closing = true;
    const { logger, label } = opts;
    logger.info('[%s] receive graceful-exit from the master (worker_threads), closing', label);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${opts.timeoutMs}ms`)), opts.timeoutMs);
    });
    void Promise.race([Promise.resolve().then(opts.beforeExit), timedOut]).then(
      () => logger.info('[%s] beforeExit success', label),
      (err: unknown) => logger.error('[%s] beforeExit fail, error: %s', label, (err as Error)?.message ?? err),
    ).finally(() => {
      clearTimeout(timer);
      logger.info('[%s] exit with code:0', label);
      opts.exit(0);
    });
  });
}

/**
 * How long a worker's own close (drain + app.close()) may take: GRACEFUL_TIMEOUT when set;
 * otherwise the master's close timeout for this role (EGG_APP_CLOSE_TIMEOUT /
 * EGG_AGENT_CLOSE_TIMEOUT / EGG_MASTER_CLOSE_TIMEOUT) less 500 ms, so the worker finishes
 * before the master's SIGKILL instead of racing it at the same 5 s (defect D14).
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
  return Math.max(1000, master - 500);
}

/**
 * Wait for the instance to be ready. A failed `ready` and an `error` emitted while booting
 * are both start errors, reported once; after a successful start `error` is the app's own.
 */
export function whenStarted(instance: FrameworkInstance, onStarted: () => void, onStartError: (err: unknown) => void): void {
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    onStartError(err);
  };
  instance.once('error', fail);
  instance.ready(err => {
    if (err) {
      fail(err);
      return;
    }
    if (failed) return;
    instance.removeListener('error', fail);
    onStarted();
  });
}
