import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveRoute, type Route, type RouteContext } from '../../src/routing.js';
import { normalizeMessage, type Envelope } from '../../src/protocol.js';

const CTX: RouteContext = { masterPid: 1000, agentWorkerId: 2001 };

describe('resolveRoute', () => {
  const table: Array<[string, Envelope, RouteContext, Route]> = [
    ['receiverPid = master pid -> master', { action: 'a', receiverPid: '1000', from: 'app' }, CTX, { to: 'master' }],
    ['receiverPid = agent pid -> agent', { action: 'a', receiverPid: '2001', from: 'app' }, CTX, { to: 'agent' }],
    ['receiverPid of an app -> that app only', { action: 'a', receiverPid: '3002', from: 'agent' }, CTX, { to: 'app', receiver: '3002' }],
    ['receiverPid as a number is compared as a string', { action: 'a', receiverPid: 1000 as unknown as string }, CTX, { to: 'master' }],
    ['receiverPid wins over to', { action: 'a', receiverPid: '3002', to: 'agent', from: 'app' }, CTX, { to: 'app', receiver: '3002' }],
    ['receiverWorkerId wins over receiverPid', { action: 'a', receiverWorkerId: '2001', receiverPid: '3002' }, CTX, { to: 'agent' }],
    ['receiverWorkerId = master pid -> master', { action: 'a', receiverWorkerId: '1000' }, CTX, { to: 'master' }],
    ['no agent: its old pid goes to the apps filter (nobody)', { action: 'a', receiverPid: '2001', from: 'app' },
      { masterPid: 1000, agentWorkerId: undefined }, { to: 'app', receiver: '2001' }],
    ['empty receiverPid is ignored', { action: 'a', receiverPid: '', from: 'agent' }, CTX, { to: 'app' }],
    ['null receiverPid is ignored', { action: 'a', receiverPid: null as unknown as string, from: 'app' }, CTX, { to: 'agent' }],
    ['to wins over from', { action: 'a', to: 'agent', from: 'agent' }, CTX, { to: 'agent' }],
    ['to: parent', { action: 'a', to: 'parent', from: 'app' }, CTX, { to: 'parent' }],
    ['to: master', { action: 'a', to: 'master', from: 'agent' }, CTX, { to: 'master' }],
    ['to: app from master', { action: 'a', to: 'app', from: 'master' }, CTX, { to: 'app' }],
    ['agent without to -> apps', { action: 'a', from: 'agent' }, CTX, { to: 'app' }],
    ['app without to -> agent', { action: 'a', from: 'app' }, CTX, { to: 'agent' }],
    ['parent without to -> master', { action: 'a', from: 'parent' }, CTX, { to: 'master' }],
    ['master without to -> dropped', { action: 'a', from: 'master' }, CTX, { to: 'drop' }],
    ['no from and no to -> dropped', { action: 'a' }, CTX, { to: 'drop' }],
  ];
  for (const [name, msg, ctx, expected] of table) {
    it(name, () => assert.deepEqual(resolveRoute(msg, ctx), expected));
  }

  it('does not change the message', () => {
    const msg: Envelope = { action: 'a', receiverPid: '3002', from: 'agent', data: { x: 1 } };
    const copy = structuredClone(msg);
    resolveRoute(msg, CTX);
    assert.deepEqual(msg, copy);
  });
});

describe('normalizeMessage', () => {
  it('a bare string becomes { action, data } stamped with the sender', () => {
    assert.deepEqual(normalizeMessage('egg-ready', 'app'), { action: 'egg-ready', data: 'egg-ready', from: 'app' });
  });

  for (const raw of ['', 42, 0, true, null, undefined, [], ['action'], () => 1, Symbol('x')]) {
    it(`${typeof raw === 'symbol' ? 'a symbol' : JSON.stringify(raw) ?? String(raw)} -> null`, () => {
      assert.equal(normalizeMessage(raw, 'agent'), null);
    });
  }

  for (const raw of [{}, { data: 1 }, { action: 1 }, { action: '' }, { action: null }, { action: ['a'] }]) {
    it(`no usable action ${JSON.stringify(raw)} -> null`, () => assert.equal(normalizeMessage(raw, 'app'), null));
  }

  for (const to of ['nobody', 'APP', 1, null, '']) {
    it(`a bad to (${JSON.stringify(to)}) -> null`, () => assert.equal(normalizeMessage({ action: 'a', to }, 'app'), null));
  }

  for (const to of ['master', 'agent', 'app', 'parent']) {
    it(`to: ${to} is kept`, () => assert.equal(normalizeMessage({ action: 'a', to }, 'app')?.to, to));
  }

  it('overwrites a spoofed from with the real sender', () => {
    assert.equal(normalizeMessage({ action: 'a', from: 'master' }, 'app')?.from, 'app');
    assert.equal(normalizeMessage({ action: 'a', from: 'agent' }, 'parent')?.from, 'parent');
  });

  it('keeps every other field (receiverPid, data, custom keys)', () => {
    const msg = normalizeMessage({ action: 'a', data: { n: 1 }, receiverPid: '3001', extra: 'x' }, 'agent');
    assert.deepEqual(msg, { action: 'a', data: { n: 1 }, receiverPid: '3001', extra: 'x', from: 'agent' });
  });

  it('stamps the sender in place (the object came off the channel: nobody else holds it)', () => {
    const raw = { action: 'a', data: { n: 1 }, from: 'master' };
    const msg = normalizeMessage(raw, 'app');
    assert.equal(msg, raw);
    assert.equal(raw.from, 'app', 'a forged from is overwritten');
    assert.deepEqual(raw.data, { n: 1 });
  });
});
