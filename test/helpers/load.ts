/**
 * HTTP load for the fault tests: `concurrency` loops, each on its own keep-alive connection
 * (as a load balancer or a browser keeps them), until stopped or `maxMs` has passed. Bounded
 * in count and time, loopback only. Counts successes and failures by error code.
 */
import http from 'node:http';

export interface LoadResult {
  ok: number;
  failed: number;
  /** error code (ECONNREFUSED, ECONNRESET, …) or `HTTP <status>` → count */
  byCode: Record<string, number>;
  /** pids that answered (the body is `{"pid":…}` JSON) */
  pids: Set<number>;
}

export interface Load {
  stop(): Promise<LoadResult>;
  /** Results so far. */
  readonly result: LoadResult;
}

export function startLoad(url: string, opts: { concurrency?: number; maxMs?: number; timeoutMs?: number; keepAlive?: boolean } = {}): Load {
  const concurrency = opts.concurrency ?? 8;
  const deadline = Date.now() + (opts.maxMs ?? 60_000);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const agent = new http.Agent({ keepAlive: opts.keepAlive ?? true, maxSockets: concurrency });
  const result: LoadResult = { ok: 0, failed: 0, byCode: {}, pids: new Set() };
  let running = true;
  const fail = (code: string): void => {
    result.failed++;
    result.byCode[code] = (result.byCode[code] ?? 0) + 1;
  };
  const once = (): Promise<void> => new Promise(resolve => {
    const req = http.get(url, { agent, timeout: timeoutMs }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => {
        if (res.statusCode === 200) {
          result.ok++;
          try {
            result.pids.add((JSON.parse(body) as { pid: number }).pid);
          } catch {
            // not JSON: counted, no pid
          }
        } else {
          fail(`HTTP ${res.statusCode}`);
        }
        resolve();
      });
      res.on('error', err => {
        fail((err as NodeJS.ErrnoException).code ?? err.message);
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', err => {
      fail((err as NodeJS.ErrnoException).code ?? err.message);
      resolve();
    });
  });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running && Date.now() < deadline) await once();
  });
  return {
    result,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}
