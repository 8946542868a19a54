import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { OPTIONS_ACTION } from '../protocol.js';
import type { ResolvedOptions } from '../options.js';
import { decodeOptions } from './options_codec.js';

/**
 * Wait for the master's first message, the full options. Resolves undefined when the
 * channel closes first (the master died): the caller exits.
 */
export function receiveOptions(): Promise<ResolvedOptions | undefined> {
  return new Promise(resolve => {
    const onMessage = (msg: unknown): void => {
      if (!msg || typeof msg !== 'object' || (msg as { action?: unknown }).action !== OPTIONS_ACTION) return;
      cleanup();
      resolve(decodeOptions((msg as { data?: unknown }).data));
    };
    const onDisconnect = (): void => {
      cleanup();
      resolve(undefined);
    };
    const cleanup = (): void => {
      process.removeListener('message', onMessage);
      process.removeListener('disconnect', onDisconnect);
    };
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
  });
}

/** `require`, or `import()` for an ES module, of a path or package name resolved from baseDir. */
export async function importModule(spec: string, baseDir: string): Promise<unknown> {
  const resolved = require.resolve(spec, { paths: [baseDir, process.cwd()] });
  try {
    return require(resolved) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw err;
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

export const workerLabel = (role: 'agent' | 'app'): string => `${role}_worker`;
export const absolute = (p: string): string => path.resolve(p);
