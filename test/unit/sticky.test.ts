import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, it, mock } from 'node:test';
import { hash32, normalizeIp, pickStickySlot, routeStickyConnection, type StickyTarget } from '../../src/sticky.js';

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
