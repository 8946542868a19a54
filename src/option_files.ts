import fs from 'node:fs';
import { InvalidOptionError } from './errors.js';
import type { ClusterHTTPSSecureOptions } from './options.js';

const isPem = (value: unknown): boolean =>
  Buffer.isBuffer(value) || (typeof value === 'string' && value.includes('-----BEGIN'));

/**
 * https key / cert / ca given as file paths must exist now, in the master, so that a typo
 * is one clear error at start instead of every app worker failing on its own.
 */
export function checkHttpsFiles(https: ClusterHTTPSSecureOptions | false): void {
  if (!https) return;
  for (const name of ['key', 'cert', 'ca'] as const) {
    const value = https[name];
    const list = Array.isArray(value) ? value : [value];
    for (const item of list) {
      if (item === undefined || isPem(item)) continue;
      if (typeof item === 'string' && !fs.existsSync(item)) {
        throw new InvalidOptionError(
          `options.https.${name} file "${item}" does not exist: give an existing file path, or the PEM content as a string or Buffer`,
        );
      }
    }
  }
}

/** options.agentWorkerFile / appWorkerFile must exist: a typo would fail every fork. */
export function checkWorkerFiles(options: { agentWorkerFile?: string; appWorkerFile?: string }): void {
  for (const key of ['agentWorkerFile', 'appWorkerFile'] as const) {
    const file = options[key];
    if (file !== undefined && !fs.existsSync(file)) {
      throw new InvalidOptionError(`options.${key} "${file}" does not exist: give the path of a worker entry (relative paths are resolved from baseDir)`);
    }
  }
}
