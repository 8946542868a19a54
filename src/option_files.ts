import fs from 'node:fs';
import { InvalidOptionError } from './errors.js';
import type { ClusterHTTPSSecureOptions } from './options.js';

const isPem = (value: unknown): boolean =>
  Buffer.isBuffer(value) || (typeof value === 'string' && value.includes('-----BEGIN'));

/**
 * Whether a string that is not PEM still looks like key material rather than a path (several
 * lines, PEM dashes, a long base64 run, or longer than any path): it is then not printed.
 */
function mayBeKeyMaterial(value: string): boolean {
  return /[\r\n]|-----/.test(value) || value.length > 1024 || /^[A-Za-z0-9+/=]{40,}$/.test(value);
}

/**
 * https key / cert / ca given as file paths must exist now, in the master, so that a typo
 * is one clear error at start instead of every app worker failing on its own.
 */
export function checkHttpsFiles(https: ClusterHTTPSSecureOptions | false): void {
  if (!https) return;
  for (const name of ['key', 'cert', 'ca'] as const) {
    const value = https[name];
    const list = Array.isArray(value) ? value : [value];
    list.forEach((item, i) => {
      if (item === undefined || isPem(item) || typeof item !== 'string' || fs.existsSync(item)) return;
      const option = Array.isArray(value) ? `options.https.${name}[${i}]` : `options.https.${name}`;
      if (mayBeKeyMaterial(item)) {
        throw new InvalidOptionError(
          `${option} is neither an existing file nor PEM content (a string of ${item.length} characters, not shown: it may be key material); `
          + 'give a file path, or the PEM content with its -----BEGIN line, as a string or Buffer',
        );
      }
      throw new InvalidOptionError(
        `${option} file "${item}" does not exist: give an existing file path, or the PEM content as a string or Buffer`,
      );
    });
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
