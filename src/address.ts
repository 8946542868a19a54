import nodeModule from 'node:module';
import net from 'node:net';
import path from 'node:path';
import type { ListeningAddress } from './protocol.js';

/** The "started on" URL: a unix socket path as is; an unspecified host as HOST or 127.0.0.1. */
export function appAddress(address: ListeningAddress, envHost: string | undefined): string {
  if (address.addressType === -1 || address.addressType === 'pipe') return String(address.address);
  let hostname = address.address && address.address !== '::' && address.address !== '0.0.0.0' ? address.address : '';
  if (!hostname && envHost && envHost !== '0.0.0.0') hostname = envHost;
  if (!hostname) hostname = '127.0.0.1';
  if (hostname.includes(':')) hostname = `[${hostname}]`;
  return `${address.protocol ?? 'http'}://${hostname}:${address.port}`;
}

/**
 * Node's module compile cache for the master and (through the env) every worker, in
 * `<baseDir>/.egg/compile-cache`, as egg's monorepo cluster does; unless the user set
 * NODE_COMPILE_CACHE or NODE_DISABLE_COMPILE_CACHE, and only where Node has it (>= 22.1).
 */
export function enableCompileCache(env: NodeJS.ProcessEnv, baseDir: string): void {
  const enable = (nodeModule as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
  if (typeof enable !== 'function' || env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return;
  const dir = path.join(baseDir, '.egg', 'compile-cache');
  env.NODE_COMPILE_CACHE = dir;
  env.NODE_COMPILE_CACHE_PORTABLE = '1';
  try {
    enable(dir);
  } catch {
    // a read-only baseDir: run without the cache
  }
}

/**
 * A free TCP port for the agent's cluster client (options.clusterPort), as egg-cluster's
 * detectPort() gave: one listen on port 0 at the unspecified address, then closed. A port the
 * kernel hands out there is free on every address, which is what detect-port's further four
 * listens (0.0.0.0, 127.0.0.1, localhost, the machine's IP) checked one after the other; those
 * cost ~57 ms and ~5 MiB of master RSS at every start (the `localhost` lookup starts libuv's
 * thread pool), against ~15 ms and ~2 MiB here. The port can still be taken before the agent
 * binds it (defect D19), as with detect-port.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
