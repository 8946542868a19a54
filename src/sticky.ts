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

/** Give a socket back to the router: its worker went away before acknowledging it. */
export type Reroute = (socket: net.Socket) => void;

/** A worker that can take a sticky connection: its slot and how to hand the socket over. */
export interface StickyTarget {
  readonly slot: number;
  readonly handle: { sendConnection(socket: net.Socket, reroute?: Reroute): boolean };
}

/** The workers that may take a connection now; a function is asked again for every re-route. */
export type StickyTargets = readonly StickyTarget[] | (() => readonly StickyTarget[]);

/** A socket that keeps coming back (its workers keep dying) is closed after this many re-routes. */
export const MAX_REROUTES = 5;

/**
 * Hand the socket to the worker its client IP maps to; a worker that cannot take it (its
 * channel just closed) is skipped and the next choice among the rest is tried. With none
 * left the connection is refused rather than held forever. A worker that goes away before
 * acknowledging the socket gives it back: it is routed again among the workers serving then.
 */
export function routeStickyConnection(socket: net.Socket, targets: StickyTargets, reroutes = 0): StickyTarget | undefined {
  const list = typeof targets === 'function' ? targets() : targets;
  if (list.length) {
    const reroute: Reroute = again => {
      if (reroutes >= MAX_REROUTES) again.destroy();
      else routeStickyConnection(again, targets, reroutes + 1);
    };
    // rendezvous order: the best score first; a tie goes to the lower slot (pickStickySlot)
    const key = normalizeIp(socket.remoteAddress ?? '');
    const ranked = list.map(target => ({ target, score: hash32(`${key}#${target.slot}`) }));
    if (ranked.length > 1) ranked.sort((a, b) => b.score - a.score || a.target.slot - b.target.slot);
    for (const { target } of ranked) {
      if (target.handle.sendConnection(socket, reroute)) return target;
    }
  }
  socket.destroy();
  return undefined;
}

/**
 * The worker's acknowledgement of sockets it took: `data` lists the remote port of each one,
 * in the order they arrived (null when the worker could not read it). An empty list is the
 * worker's hello: it acknowledges, so the master may keep its copies until it does.
 * An `egg-clutch:*` action: the launcher consumes it, it never reaches message routing.
 */
export const STICKY_ACK_ACTION = 'egg-clutch:sticky-ack';

interface PendingSocket {
  readonly socket: net.Socket;
  readonly port: number | undefined;
  readonly reroute: Reroute;
}

/** Whether acknowledgements can still arrive from the worker. */
export interface HandoffChannel {
  /** Closed for good: everything the worker wrote on it has been read. */
  readonly closed: boolean;
}

export interface HandoffTiming {
  /** While sockets wait for their acknowledgement: how often to look whether the channel closed. */
  checkMs: number;
  /** After the worker's exit: how often to look whether its channel closed… */
  afterExitMs: number;
  /** …and how long to wait for it at most. */
  exitGraceMs: number;
}

const TIMING: HandoffTiming = { checkMs: 200, afterExitMs: 10, exitGraceMs: 1000 };

/**
 * The master's side of the sticky hand-off to one worker (process mode).
 *
 * The socket goes to the worker with `keepOpen`: the master's copy stays open, so a socket
 * lost on the way (still queued in the master, in the channel, or in a worker that dies
 * before it takes it) still belongs to the master, which routes it again instead of leaving
 * the client hanging. The worker acknowledges the sockets it takes, in order, *before* it
 * reads from any of them; the master then closes its copies. The channel is ordered, so
 * the pending sockets are a FIFO; the ports in the acknowledgement keep it in step even if
 * the channel lost a socket on the way (Node's NACK: the worker never saw it).
 *
 * When the worker goes away, the sockets it never acknowledged are routed again, but only
 * once its channel is closed: an acknowledgement written just before a SIGKILL is still read,
 * so a socket the worker took (and maybe read from) is never given to a second worker.
 */
export class StickyHandoff {
  /** The worker said it acknowledges (its hello): sockets go with keepOpen and wait for it. */
  acks = false;
  #pending: PendingSocket[] = [];
  #timer: NodeJS.Timeout | undefined;
  #exitedAt: number | undefined;
  #released = false;

  constructor(private readonly channel: HandoffChannel, private readonly timing: HandoffTiming = TIMING) {}

  /** Sockets handed over and not acknowledged yet. */
  get pending(): number {
    return this.#pending.length;
  }

  /** The worker is gone: no socket can be handed to it any more. */
  get released(): boolean {
    return this.#released;
  }

  /** The socket was written to the worker with keepOpen: the master holds its copy until acknowledged. */
  track(socket: net.Socket, reroute: Reroute): void {
    if (this.#released) {
      reroute(socket);
      return;
    }
    this.#pending.push({ socket, port: socket.remotePort, reroute });
    this.#watch(this.timing.checkMs);
  }

  /** The worker's acknowledgement (see STICKY_ACK_ACTION). */
  ack(data: unknown): void {
    if (!Array.isArray(data)) return;
    this.acks = true;
    let lost: PendingSocket[] | undefined;
    for (const port of data) {
      const pending = this.#pending;
      if (!pending.length) break;
      // the head, unless the port says otherwise: then the sockets before the acknowledged
      // one never reached the worker (a port found nowhere counts as the head)
      const index = typeof port === 'number' && pending[0]!.port !== port ? Math.max(0, pending.findIndex(p => p.port === port)) : 0;
      if (index > 0) (lost ??= []).push(...pending.splice(0, index));
      pending.shift()!.socket.destroy();
    }
    if (lost) for (const p of lost) p.reroute(p.socket);
  }

  /** The channel closed: no acknowledgement can come any more. */
  channelClosed(): void {
    this.#release();
  }

  /** The worker exited: its unacknowledged sockets go elsewhere once its channel is read to the end. */
  workerExited(): void {
    if (this.#released) return;
    this.#exitedAt = Date.now();
    // look at the channel more often from now on
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#check();
  }

  #watch(ms: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#check();
    }, ms);
    this.#timer.unref();
  }

  #check(): void {
    if (this.#released) return;
    const exited = this.#exitedAt !== undefined;
    // a worker that closed its channel (disconnect) while a socket was on its way gets no
    // 'disconnect' event from Node: the close is only seen here
    if (this.channel.closed || (this.#exitedAt !== undefined && Date.now() - this.#exitedAt >= this.timing.exitGraceMs)) {
      this.#release();
      return;
    }
    if (exited) this.#watch(this.timing.afterExitMs);
    else if (this.#pending.length) this.#watch(this.timing.checkMs);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.reroute(p.socket);
  }
}

type SendWithCallback = (message: object, callback: (error: Error | null) => void) => void;

/**
 * The worker's side of the sticky hand-off: serve each socket at once, and acknowledge the
 * sockets received in one turn of the event loop with one message, written before the
 * worker's next poll for I/O, i.e. before it can read a byte from any of them (a socket
 * read by a worker is never given to a second one). Serving at once keeps the order the
 * drain relies on: a socket handed over before the drain barrier is known to the server
 * before the barrier's echo is. When the acknowledgement cannot be written (the channel
 * closed), the worker drops those sockets: the master still holds them and routes them again.
 */
export class StickyAcks {
  #sockets: net.Socket[] = [];
  #ports: Array<number | null> = [];

  constructor(
    private readonly send: SendWithCallback,
    private readonly serve: (socket: net.Socket) => void,
    private readonly defer: (fn: () => void) => void = setImmediate,
  ) {}

  /** Tell the master that this worker acknowledges (before it listens). */
  hello(): void {
    this.send({ action: STICKY_ACK_ACTION, data: [] }, () => {});
  }

  receive(socket: net.Socket): void {
    this.#ports.push(socket.remotePort ?? null);
    if (this.#sockets.push(socket) === 1) this.defer(this.#flush);
    this.serve(socket);
  }

  readonly #flush = (): void => {
    const sockets = this.#sockets;
    const ports = this.#ports;
    this.#sockets = [];
    this.#ports = [];
    this.send({ action: STICKY_ACK_ACTION, data: ports }, error => {
      if (error) for (const socket of sockets) socket.destroy();
    });
  };
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
