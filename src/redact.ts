import type { ResolvedOptions } from './options.js';

const REDACTED = '[redacted]';

function isPem(value: unknown): boolean {
  return Buffer.isBuffer(value) || (typeof value === 'string' && value.includes('-----BEGIN'));
}

/**
 * A copy of the options fit for a log line or an `egg-ready` payload: key material given
 * inline (PEM string or Buffer), the https passphrase and every key named in
 * `options.secretKeys` are replaced; file paths stay, they are not secret (D3).
 */
export function redactOptions(options: ResolvedOptions): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...options };
  if (options.https) {
    const https: Record<string, unknown> = { ...options.https };
    for (const key of ['key', 'cert', 'ca', 'pfx']) {
      const value = https[key];
      if (Array.isArray(value)) https[key] = value.map(v => (isPem(v) ? REDACTED : v));
      else if (isPem(value)) https[key] = REDACTED;
    }
    if (https.passphrase !== undefined) https.passphrase = REDACTED;
    shown.https = https;
  }
  if (isPem(shown.key)) shown.key = REDACTED;
  if (isPem(shown.cert)) shown.cert = REDACTED;
  for (const key of options.secretKeys ?? []) {
    if (key in shown) shown[key] = REDACTED;
  }
  return shown;
}
