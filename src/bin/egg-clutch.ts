#!/usr/bin/env node
/**
 * egg-clutch's command line. `egg-clutch status [--port N] [--host H] [--json]`: the cluster
 * of a running master, from its status server (options.status / EGG_CLUSTER_STATUS_PORT).
 */
import http from 'node:http';
import type { ClusterStatus } from '../ops/state.js';
import { formatStatusTable } from '../ops/table.js';

const USAGE = `Usage: egg-clutch status [--port N] [--host H] [--json] [--timeout MS]

  Prints the cluster of a running egg-clutch master as a table, from its status server
  (startCluster({ status: { port } }) or EGG_CLUSTER_STATUS_PORT).

  --port N      the status server's port (default: $EGG_CLUSTER_STATUS_PORT)
  --host H      its host (default: $EGG_CLUSTER_STATUS_HOST, else 127.0.0.1)
  --json        print /status as JSON instead of the table
  --timeout MS  give up after MS milliseconds (default 3000)
`;

export class UsageError extends Error {}

export interface StatusArgs {
  port: number;
  host: string;
  json: boolean;
  timeoutMs: number;
}

/** argv after the command name → the settings; throws UsageError with what is wrong. */
export function parseStatusArgs(argv: string[], env: NodeJS.ProcessEnv): StatusArgs {
  let port: string | undefined = env.EGG_CLUSTER_STATUS_PORT || undefined;
  let host: string | undefined = env.EGG_CLUSTER_STATUS_HOST || undefined;
  let json = false;
  let timeout = '3000';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--port': case '-p': port = value(); break;
      case '--host': case '-h': host = value(); break;
      case '--timeout': timeout = value(); break;
      case '--json': json = true; break;
      default: throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (port === undefined) throw new UsageError('no port: pass --port N (the master\'s options.status.port) or set EGG_CLUSTER_STATUS_PORT');
  const portNumber = /^\d+$/.test(port) ? Number(port) : Number.NaN;
  if (!(portNumber >= 1 && portNumber <= 65535)) throw new UsageError(`--port must be a port number from 1 to 65535, got ${JSON.stringify(port)}`);
  const timeoutMs = /^\d+$/.test(timeout) ? Number(timeout) : Number.NaN;
  if (!(timeoutMs >= 1)) throw new UsageError(`--timeout must be a positive number of milliseconds, got ${JSON.stringify(timeout)}`);
  // a server listening on every address is reached on loopback
  if (host === undefined || host === '0.0.0.0' || host === '::') host = '127.0.0.1';
  return { port: portNumber, host, json, timeoutMs };
}

export function fetchStatus(args: StatusArgs): Promise<ClusterStatus> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: args.host, port: args.port, path: '/status', agent: false, timeout: args.timeoutMs }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /status answered ${res.statusCode}: ${body.trim()}`));
        try {
          resolve(JSON.parse(body) as ClusterStatus);
        } catch {
          reject(new Error('GET /status did not answer JSON: is this port an egg-clutch status server?'));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${args.timeoutMs}ms`)));
    req.on('error', reject);
  });
}

export async function main(
  argv: string[], env: NodeJS.ProcessEnv, out: (text: string) => void, err: (text: string) => void = out,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help') {
    out(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'status') {
    err(`egg-clutch: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  let args: StatusArgs;
  try {
    args = parseStatusArgs(rest, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`egg-clutch status: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const status = await fetchStatus(args);
    out(args.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatusTable(status)}\n`);
    return 0;
  } catch (e) {
    err(`egg-clutch status: cannot read the status of http://${args.host}:${args.port}: ${(e as Error).message}\n`
      + 'Is the master running with options.status (or EGG_CLUSTER_STATUS_PORT) set to this port?\n');
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), process.env, text => process.stdout.write(text), text => process.stderr.write(text)).then(code => {
    process.exitCode = code;
  }, (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
