import net from 'node:net';

/**
 * Sticky sessions: the master accepts on the real port (paused) and hands each connection
 * to an app worker chosen from the client IP.
 *
 * The choice is rendezvous hashing (highest random weight) over the worker *slots* that are
 * listening right now: for each slot, score = hash(ip, slot); the highest score wins.
 * - the same IP always reaches the same slot while that slot is up;
 * - when a worker dies only its own clients move, and they move back when its slot is
 *   reforked (slots are reused) — egg-cluster's `digits(ip) % workers` indexed a list that
 *   shrinks, so one death reshuffled everyone and a missing index crashed the master (D9);
 * - IPv4 and IPv6 are hashed as normalized text with 32-bit FNV-1a and a final avalanche,
 *   so clients spread evenly (no concatenated-digit number, no precision loss for IPv6).
 */

/** `::ffff:1.2.3.4` (IPv4-mapped IPv6) is the same client as `1.2.3.4`. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** 32-bit FNV-1a of the text, then murmur3's fmix32 so close inputs land far apart. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The slot (from `slots`) that serves this client IP, or undefined when there is none. */
export function pickStickySlot(ip: string, slots: readonly number[]): number | undefined {
  const key = normalizeIp(ip);
  let best: number | undefined;
  let bestScore = -1;
  for (const slot of slots) {
    const score = hash32(`${key}#${slot}`);
    if (score > bestScore || (score === bestScore && best !== undefined && slot < best)) {
      best = slot;
      bestScore = score;
    }
  }
  return best;
}

/** A worker that can take a sticky connection: its slot and how to hand the socket over. */
export interface StickyTarget {
  readonly slot: number;
  readonly handle: { sendConnection(socket: net.Socket): boolean };
}

/**
 * Hand the socket to the worker its client IP maps to; a worker that cannot take it (its
 * channel just closed) is skipped and the next choice among the rest is tried. With none
 * left the connection is refused rather than held forever.
 */
export function routeStickyConnection(socket: net.Socket, targets: readonly StickyTarget[]): StickyTarget | undefined {
  const candidates = [...targets];
  while (candidates.length) {
    const slot = pickStickySlot(socket.remoteAddress ?? '', candidates.map(t => t.slot));
    const index = candidates.findIndex(t => t.slot === slot);
    const [target] = candidates.splice(index, 1);
    if (target?.handle.sendConnection(socket)) return target;
  }
  socket.destroy();
  return undefined;
}

/** The master's public listener in sticky mode: accepts paused sockets and passes them on. */
export class StickyServer {
  readonly #server: net.Server;

  constructor(onConnection: (socket: net.Socket) => void) {
    this.#server = net.createServer({ pauseOnConnect: true }, socket => {
      // a client that sent RST right after the handshake has no remote address any more
      if (!socket.remoteAddress) {
        socket.destroy();
        return;
      }
      onConnection(socket);
    });
  }

  /** Rejects with the listen error (EADDRINUSE…) instead of throwing it as uncaught (D9). */
  listen(port: number, host?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.removeListener('error', onError);
        this.#server.on('error', () => {});
        resolve();
      });
    });
  }

  /** Stop accepting; connections already handed to workers are theirs to finish. */
  close(): void {
    if (this.#server.listening) this.#server.close();
  }
}
