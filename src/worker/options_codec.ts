import { InvalidOptionError } from '../errors.js';
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

/** `options.a.b`, `options.list[2]`, `options["my-key"]`. */
function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

const WHY = 'options travel to the agent and the app workers as JSON';

/**
 * Checks that the options survive the trip to the workers (encodeOptions: JSON, Buffers
 * tagged), the way JSON.stringify walks them (toJSON first, own enumerable keys).
 * What makes JSON.stringify throw — a BigInt, a circular reference, a toJSON or a getter
 * that throws — is an InvalidOptionError naming the key path. What JSON drops or changes
 * silently (functions, symbols, undefined in arrays, NaN, Map and Set contents) is dropped as in
 * egg-cluster, which put the options on argv as JSON: the returned warning names those paths.
 * Values are never printed (they may be secrets).
 */
export function checkSendable(options: object): string | undefined {
  const changed: string[] = [];
  const ancestors: Array<{ value: object; path: string }> = [];

  const visit = (holder: object, key: string | number, path: string, inArray: boolean): void => {
    let value: unknown;
    try {
      value = (holder as Record<string | number, unknown>)[key];
      if (value !== null && (typeof value === 'object' || typeof value === 'bigint') && !Buffer.isBuffer(value)
        && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
        value = (value as { toJSON(k: string): unknown }).toJSON(String(key));
      }
    } catch (err) {
      throw new InvalidOptionError(`${path} cannot be read for the workers: ${(err as Error)?.message ?? String(err)}. `
        + `${WHY}; pass plain data there`);
    }
    switch (typeof value) {
      case 'bigint':
        throw new InvalidOptionError(`${path} is a BigInt: ${WHY}, and JSON has no BigInt. Pass it as a string or a number`);
      case 'function':
      case 'symbol':
      case 'undefined':
        // undefined in an object is simply absent in JSON: nothing is lost
        if (typeof value !== 'undefined' || inArray) changed.push(`${path} (${typeof value}${inArray ? ', becomes null' : ''})`);
        return;
      case 'number':
        if (!Number.isFinite(value)) changed.push(`${path} (${value}, becomes null)`);
        return;
      case 'string':
      case 'boolean':
        return;
      case 'object':
        break;
    }
    if (value === null || Buffer.isBuffer(value)) return;
    const loop = ancestors.find(a => a.value === value);
    if (loop) {
      throw new InvalidOptionError(`${path} is a circular reference (it points back to ${loop.path}): ${WHY}, which cannot hold a cycle. `
        + 'Pass a plain copy of the data the app needs, without the back reference');
    }
    if ((value instanceof Map || value instanceof Set) && value.size > 0) {
      changed.push(`${path} (a ${value instanceof Map ? 'Map' : 'Set'}, arrives as {})`);
      return;
    }
    ancestors.push({ value, path });
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) visit(value, i, childPath(path, i), true);
    } else {
      for (const k of Object.keys(value)) visit(value, k, childPath(path, k), false);
    }
    ancestors.pop();
  };

  const root = { options };
  visit(root, 'options', 'options', false);
  if (!changed.length) return undefined;
  const shown = changed.slice(0, 10).join(', ') + (changed.length > 10 ? ` and ${changed.length - 10} more` : '');
  return `[master] ${shown}: ${WHY}, which drops or changes ${changed.length === 1 ? 'this value' : 'these values'}, `
    + 'so the agent and the app workers do not get them as given (egg-cluster drops them the same way). Pass plain data, or set it up in the app';
}
