import type { ResolvedOptions } from '../options.js';

/**
 * Keys that may appear on a worker's command line. egg-scripts `stop` finds workers by the
 * entry path plus `"title":"..."` in the argv JSON, and people grep `ps` for baseDir; the
 * full options (with https material, plugins, user keys) go over IPC instead (defect D3).
 */
const ARGV_KEYS = ['title', 'baseDir', 'framework', 'env', 'workers', 'port', 'startMode', 'sticky'] as const;

export function argvOptions(options: ResolvedOptions): string {
  const visible: Record<string, unknown> = {};
  for (const key of ARGV_KEYS) {
    if (options[key] !== undefined) visible[key] = options[key];
  }
  return JSON.stringify(visible);
}

const BUFFER_TAG = '__eggClutchBuffer';

/** JSON over IPC turns a Buffer into `{type, data:[...]}`; tag it so the worker gets a Buffer back. */
export function encodeOptions(options: ResolvedOptions): unknown {
  return JSON.parse(JSON.stringify(options, function (this: Record<string, unknown>, key, value: unknown) {
    const original = this[key];
    if (Buffer.isBuffer(original)) return { [BUFFER_TAG]: original.toString('base64') };
    return value;
  }));
}

export function decodeOptions(data: unknown): ResolvedOptions {
  return JSON.parse(JSON.stringify(data), (_key, value: unknown) => {
    if (value && typeof value === 'object' && typeof (value as Record<string, unknown>)[BUFFER_TAG] === 'string') {
      return Buffer.from((value as Record<string, string>)[BUFFER_TAG]!, 'base64');
    }
    return value;
  }) as ResolvedOptions;
}
