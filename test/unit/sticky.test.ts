import assert from 'node:assert/strict';
import type net from 'node:net';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import {
  MAX_REROUTES, STICKY_ACK_ACTION, StickyAcks, StickyHandoff, hash32, normalizeIp, pickStickySlot, routeStickyConnection,
  type Reroute, type StickyTarget,
} from '../../src/sticky.js';

function ipv4(i: number): string {
  return `${(i >>> 24) & 255}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

function ipv6(i: number): string {
  return `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::${(i * 7919 & 0xffff).toString(16)}`;
}

/** A deterministic spread of client addresses (an LCG), not Math.random: the test must not flake. */
function clients(count: number, make: (i: number) => string): string[] {
  const out: string[] = [];
  let x = 12345;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(make(x));
  }
  return out;
}

function counts(ips: string[], slots: number[]): Map<number, number> {
  const result = new Map<number, number>(slots.map(s => [s, 0]));
  for (const ip of ips) {
    const slot = pickStickySlot(ip, slots)!;
    result.set(slot, result.get(slot)! + 1);
  }
  return result;
}

describe('sticky worker choice', () => {
  it('normalizes IPv4-mapped IPv6 to the IPv4 address, and case', () => {
    assert.equal(normalizeIp('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(normalizeIp('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(normalizeIp('2001:DB8::1'), '2001:db8::1');
    assert.equal(pickStickySlot('::ffff:10.0.0.1', [0, 1, 2, 3]), pickStickySlot('10.0.0.1', [0, 1, 2, 3]));
  });

  it('is a 32-bit unsigned hash that changes with every input', () => {
    const h = hash32('1.2.3.4#0');
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
    assert.notEqual(hash32('1.2.3.4#0'), hash32('1.2.3.4#1'));
    assert.notEqual(hash32('1.2.3.4#0'), hash32('1.2.3.5#0'));
  });

  it('the same IP always gets the same slot', () => {
    for (const ip of clients(200, ipv4)) {
      const first = pickStickySlot(ip, [0, 1, 2, 3]);
      for (let i = 0; i < 3; i++) assert.equal(pickStickySlot(ip, [3, 1, 0, 2]), first, 'order of slots does not matter');
    }
  });

  for (const [family, make] of [['IPv4', ipv4], ['IPv6', ipv6]] as const) {
    it(`spreads ${family} clients evenly over 4 slots (within 10% of the mean)`, () => {
      const ips = clients(20_000, make);
      const mean = ips.length / 4;
      for (const [slot, n] of counts(ips, [0, 1, 2, 3])) {
        assert.ok(Math.abs(n - mean) < mean * 0.1, `slot ${slot}: ${n} clients, mean ${mean}`);
      }
    });
  }

  it('spreads a /24 of neighbouring addresses evenly too (egg-cluster summed digits: skew)', () => {
    const ips = Array.from({ length: 256 * 40 }, (_, i) => `10.${(i >> 8) & 255}.${i >> 16}.${i & 255}`);
    const mean = ips.length / 4;
    for (const [slot, n] of counts(ips, [0, 1, 2, 3])) {
      assert.ok(Math.abs(n - mean) < mean * 0.1, `slot ${slot}: ${n} clients, mean ${mean}`);
    }
  });

  it('when a slot goes away only its clients move, and they come back with it', () => {
    const ips = clients(5000, ipv4);
    const all = [0, 1, 2, 3];
    const before = new Map(ips.map(ip => [ip, pickStickySlot(ip, all)]));
    const without2 = [0, 1, 3];
    for (const ip of ips) {
      const now = pickStickySlot(ip, without2);
      if (before.get(ip) !== 2) assert.equal(now, before.get(ip), `${ip} moved although its slot stayed`);
      else assert.notEqual(now, 2);
    }
    for (const ip of ips) assert.equal(pickStickySlot(ip, all), before.get(ip));
  });

  it('no slot: undefined', () => {
    assert.equal(pickStickySlot('1.2.3.4', []), undefined);
  });
});

describe('routeStickyConnection', () => {
  const socket = (ip: string) => ({ remoteAddress: ip, destroy: mock.fn() }) as unknown as net.Socket & { destroy: ReturnType<typeof mock.fn> };
  const target = (slot: number, accepts = true): StickyTarget & { got: number } => {
    const t = { slot, got: 0, handle: { sendConnection: () => { t.got++; return accepts; } } };
    return t;
  };

  it('hands the socket to the slot its IP maps to', () => {
    const targets = [target(0), target(1), target(2)];
    const s = socket('192.0.2.7');
    const chosen = routeStickyConnection(s, targets);
    assert.equal(chosen?.slot, pickStickySlot('192.0.2.7', [0, 1, 2]));
    assert.equal(targets.reduce((n, t) => n + t.got, 0), 1);
    assert.equal(s.destroy.mock.callCount(), 0);
  });

  it('skips a worker that cannot take it and uses the next choice', () => {
    const ip = '192.0.2.8';
    const first = pickStickySlot(ip, [0, 1, 2])!;
    const targets = [0, 1, 2].map(slot => target(slot, slot !== first));
    const s = socket(ip);
    const chosen = routeStickyConnection(s, targets);
    assert.ok(chosen);
    assert.notEqual(chosen.slot, first);
    assert.equal(chosen.slot, pickStickySlot(ip, [0, 1, 2].filter(x => x !== first)));
    assert.equal(s.destroy.mock.callCount(), 0);
  });

  it('no worker can take it: the connection is destroyed, not held', () => {
    const s = socket('192.0.2.9');
    assert.equal(routeStickyConnection(s, [target(0, false), target(1, false)]), undefined);
    assert.equal(s.destroy.mock.callCount(), 1);
    const empty = socket('192.0.2.10');
    assert.equal(routeStickyConnection(empty, []), undefined);
    assert.equal(empty.destroy.mock.callCount(), 1);
  });
});

describe('routeStickyConnection: re-routes', () => {
  type Sent = { slot: number; socket: net.Socket; reroute: Reroute | undefined };
  const socket = (ip: string) => ({ remoteAddress: ip, destroy: mock.fn() }) as unknown as net.Socket & { destroy: ReturnType<typeof mock.fn> };
  const targets = (slots: number[], sent: Sent[]): StickyTarget[] => slots.map(slot => ({
    slot,
    handle: { sendConnection: (s: net.Socket, reroute?: Reroute) => { sent.push({ slot, socket: s, reroute }); return true; } },
  }));

  it('a socket given back goes to the best choice among the workers serving then', () => {
    const ip = '198.51.100.4';
    const first = pickStickySlot(ip, [0, 1, 2])!;
    const sent: Sent[] = [];
    let live = targets([0, 1, 2], sent);
    let asked = 0;
    const s = socket(ip);
    routeStickyConnection(s, () => { asked++; return live; });
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.slot, first);
    // its worker dies before acknowledging: the list is asked again, without it
    live = live.filter(t => t.slot !== first);
    sent[0]!.reroute!(s);
    assert.equal(asked, 2, 'the targets are asked again for the re-route');
    assert.equal(sent.length, 2);
    assert.equal(sent[1]!.slot, pickStickySlot(ip, [0, 1, 2].filter(x => x !== first)));
    assert.equal(s.destroy.mock.callCount(), 0);
  });

  it(`a socket that keeps coming back is closed after ${MAX_REROUTES} re-routes`, () => {
    const sent: Sent[] = [];
    const live = targets([0, 1], sent);
    const s = socket('198.51.100.5');
    routeStickyConnection(s, () => live);
    for (let i = 0; i < MAX_REROUTES; i++) sent.at(-1)!.reroute!(s);
    assert.equal(sent.length, 1 + MAX_REROUTES);
    assert.equal(s.destroy.mock.callCount(), 0);
    sent.at(-1)!.reroute!(s);
    assert.equal(sent.length, 1 + MAX_REROUTES, 'not sent again');
    assert.equal(s.destroy.mock.callCount(), 1);
  });

  it('no worker left for a re-route: the connection is destroyed', () => {
    const sent: Sent[] = [];
    let live = targets([0, 1], sent);
    const s = socket('198.51.100.6');
    routeStickyConnection(s, () => live);
    live = [];
    sent[0]!.reroute!(s);
    assert.equal(s.destroy.mock.callCount(), 1);
  });
});

type FakeSocket = net.Socket & { destroy: ReturnType<typeof mock.fn>; name: string };

function fakeSocket(name: string, remotePort: number | undefined): FakeSocket {
  return { name, remotePort, destroy: mock.fn() } as unknown as FakeSocket;
}

describe('StickyHandoff (the master keeps each socket until the worker acknowledges it)', () => {
  const TIMING = { checkMs: 200, afterExitMs: 10, exitGraceMs: 1000 };
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
  afterEach(() => mock.timers.reset());

  function setup() {
    const channel = { closed: false };
    const handoff = new StickyHandoff(channel, TIMING);
    const rerouted: string[] = [];
    const reroute: Reroute = s => { rerouted.push((s as FakeSocket).name); };
    const sockets = ['a', 'b', 'c', 'd'].map((name, i) => fakeSocket(name, 40000 + i));
    const destroyed = (): string[] => sockets.filter(s => s.destroy.mock.callCount() > 0).map(s => s.name);
    return { channel, handoff, rerouted, reroute, sockets, destroyed };
  }

  it('acknowledges only after the worker\'s hello (an empty list)', () => {
    const { handoff } = setup();
    assert.equal(handoff.acks, false);
    handoff.ack('nonsense');
    handoff.ack({ length: 0 });
    assert.equal(handoff.acks, false, 'not a list: ignored');
    handoff.ack([]);
    assert.equal(handoff.acks, true);
  });

  it('closes the master\'s copy of each socket once acknowledged, in order, and re-routes none', () => {
    const { handoff, rerouted, reroute, sockets: [a, b, c], destroyed } = setup();
    for (const s of [a!, b!, c!]) handoff.track(s, reroute);
    assert.equal(handoff.pending, 3);
    assert.deepEqual(destroyed(), [], 'nothing closed before the acknowledgement');
    handoff.ack([a!.remotePort]);
    assert.deepEqual(destroyed(), ['a']);
    assert.equal(handoff.pending, 2);
    handoff.ack([b!.remotePort, c!.remotePort]);
    assert.deepEqual(destroyed(), ['a', 'b', 'c']);
    assert.equal(handoff.pending, 0);
    // an acknowledgement with nothing pending (late, or unknown) changes nothing
    handoff.ack([12345]);
    assert.equal(a!.destroy.mock.callCount(), 1);
    assert.deepEqual(rerouted, []);
  });

  it('a port the worker could not read (null) counts as the next socket', () => {
    const { handoff, reroute, sockets: [a, b], destroyed, rerouted } = setup();
    handoff.track(a!, reroute);
    handoff.track(b!, reroute);
    handoff.ack([null]);
    assert.deepEqual(destroyed(), ['a']);
    assert.deepEqual(rerouted, []);
  });

  it('a socket the channel lost on the way (the worker acknowledges the next one) is routed again', () => {
    const { handoff, reroute, sockets: [a, b, c], destroyed, rerouted } = setup();
    for (const s of [a!, b!, c!]) handoff.track(s, reroute);
    handoff.ack([b!.remotePort]);
    assert.deepEqual(destroyed(), ['b'], 'the worker has b: the master closes its copy');
    assert.deepEqual(rerouted, ['a'], 'a never reached the worker');
    assert.equal(handoff.pending, 1);
    handoff.ack([c!.remotePort]);
    assert.deepEqual(destroyed(), ['b', 'c']);
  });

  it('a port matching no pending socket counts as the next socket', () => {
    const { handoff, reroute, sockets: [a, b], destroyed, rerouted } = setup();
    handoff.track(a!, reroute);
    handoff.track(b!, reroute);
    handoff.ack([999]);
    assert.deepEqual(destroyed(), ['a']);
    assert.deepEqual(rerouted, []);
  });

  it('the channel closes (disconnect): every socket not acknowledged is routed again, in order, none closed', () => {
    const { handoff, reroute, sockets: [a, b, c, d], destroyed, rerouted } = setup();
    for (const s of [a!, b!, c!]) handoff.track(s, reroute);
    handoff.ack([a!.remotePort]);
    handoff.channelClosed();
    assert.deepEqual(rerouted, ['b', 'c']);
    assert.deepEqual(destroyed(), ['a']);
    assert.equal(handoff.released, true);
    assert.equal(handoff.pending, 0);
    // nothing can be handed to it any more: a socket tracked now goes straight back
    handoff.track(d!, reroute);
    assert.deepEqual(rerouted, ['b', 'c', 'd']);
    handoff.ack([b!.remotePort]);
    assert.deepEqual(destroyed(), ['a'], 'a late acknowledgement changes nothing');
  });

  it('the worker exits: acknowledgements still in the channel are honoured; the rest move once it is closed', () => {
    const { channel, handoff, reroute, sockets: [a, b], destroyed, rerouted } = setup();
    handoff.track(a!, reroute);
    handoff.track(b!, reroute);
    handoff.workerExited();
    assert.deepEqual(rerouted, [], 'the channel may still hold an acknowledgement');
    mock.timers.tick(TIMING.afterExitMs * 3);
    assert.deepEqual(rerouted, []);
    // the worker acknowledged `a` just before it died: read after the exit
    handoff.ack([a!.remotePort]);
    channel.closed = true;
    mock.timers.tick(TIMING.afterExitMs);
    assert.deepEqual(rerouted, ['b'], 'only the socket it never took');
    assert.deepEqual(destroyed(), ['a']);
  });

  it('the worker exits and its channel never reports closed: the sockets move after exitGraceMs', () => {
    const { handoff, reroute, sockets: [a], rerouted } = setup();
    handoff.track(a!, reroute);
    handoff.workerExited();
    mock.timers.tick(TIMING.exitGraceMs - TIMING.afterExitMs);
    assert.deepEqual(rerouted, []);
    mock.timers.tick(TIMING.afterExitMs);
    assert.deepEqual(rerouted, ['a']);
  });

  it('a channel that closes without a disconnect event (a socket was in flight) is noticed while sockets wait', () => {
    const { channel, handoff, reroute, sockets: [a, b], rerouted, destroyed } = setup();
    handoff.track(a!, reroute);
    mock.timers.tick(TIMING.checkMs);
    assert.deepEqual(rerouted, [], 'open channel: the worker is slow, not gone');
    handoff.track(b!, reroute);
    channel.closed = true;
    mock.timers.tick(TIMING.checkMs);
    assert.deepEqual(rerouted, ['a', 'b']);
    assert.deepEqual(destroyed(), []);
    assert.equal(handoff.released, true);
  });
});

describe('StickyAcks (the worker acknowledges each socket before its next poll for I/O)', () => {
  function setup() {
    const sends: Array<{ message: { action: string; data: unknown }; callback: (error: Error | null) => void }> = [];
    const deferred: Array<() => void> = [];
    const served: string[] = [];
    const acks = new StickyAcks(
      (message, callback) => { sends.push({ message: message as { action: string; data: unknown }, callback }); },
      s => { served.push((s as FakeSocket).name); },
      fn => { deferred.push(fn); },
    );
    return { acks, sends, deferred, served };
  }

  it('hello: an empty acknowledgement', () => {
    const { acks, sends } = setup();
    acks.hello();
    assert.deepEqual(sends.map(s => s.message), [{ action: STICKY_ACK_ACTION, data: [] }]);
  });

  it('sockets received in one turn: served at once, one acknowledgement with their ports at the end of the turn', () => {
    const { acks, sends, deferred, served } = setup();
    const [a, b, c] = [fakeSocket('a', 5001), fakeSocket('b', undefined), fakeSocket('c', 5003)];
    acks.receive(a);
    assert.deepEqual(served, ['a'], 'served at once: the drain knows it before any later message');
    acks.receive(b);
    assert.deepEqual(served, ['a', 'b']);
    assert.equal(deferred.length, 1, 'one flush per turn');
    assert.equal(sends.length, 0);
    deferred.shift()!();
    assert.deepEqual(sends[0]!.message, { action: STICKY_ACK_ACTION, data: [5001, null] });
    sends[0]!.callback(null);
    acks.receive(c);
    assert.equal(deferred.length, 1, 'the next turn has its own flush');
    deferred.shift()!();
    assert.deepEqual(sends[1]!.message.data, [5003]);
    sends[1]!.callback(null);
    assert.deepEqual(served, ['a', 'b', 'c']);
    assert.equal(a.destroy.mock.callCount() + b.destroy.mock.callCount() + c.destroy.mock.callCount(), 0);
  });

  it('the acknowledgement cannot be written (channel closed): the worker drops those sockets', () => {
    const { acks, sends, deferred } = setup();
    const [a, b] = [fakeSocket('a', 5001), fakeSocket('b', 5002)];
    acks.receive(a);
    acks.receive(b);
    deferred.shift()!();
    sends[0]!.callback(Object.assign(new Error('channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' }));
    assert.equal(a.destroy.mock.callCount(), 1);
    assert.equal(b.destroy.mock.callCount(), 1);
  });
});
