/**
 * The worker's HTTP drain (src/worker/app_server.ts) on a real loopback server, one connection
 * driven byte by byte: what a client that keeps its connection sees when a drain begins.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import net from 'node:net';
import { describe, it } from 'node:test';
import { Drainer } from '../../src/worker/app_server.js';

interface Conn {
  socket: net.Socket;
  /** Resolves with the next complete response (status line, headers, body). */
  next(): Promise<{ head: string; body: string }>;
  /** Resolves when the server ended or reset the connection: the error code, or null for a clean end. */
  readonly closed: Promise<string | null>;
}

function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffered = '';
    let waiting: ((r: { head: string; body: string }) => void) | undefined;
    let error: string | null = null;
    const closed = new Promise<string | null>(done => socket.on('close', () => done(error)));
    const tryParse = (): void => {
      const end = buffered.indexOf('\r\n\r\n');
      if (!waiting || end < 0) return;
      const head = buffered.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      const body = buffered.slice(end + 4, end + 4 + length);
      buffered = buffered.slice(end + 4 + length);
      const w = waiting;
      waiting = undefined;
      w({ head, body });
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => { buffered += chunk; tryParse(); });
    socket.on('error', err => { error = (err as NodeJS.ErrnoException).code ?? err.message; });
    socket.once('connect', () => resolve({
      socket,
      closed,
      next: () => new Promise(r => { waiting = r; tryParse(); }),
    }));
    socket.once('error', reject);
  });
}

const request = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

async function withServer(
  handler: http.RequestListener,
  body: (port: number, drainer: Drainer, server: http.Server) => Promise<void>,
): Promise<void> {
  const server = http.createServer(handler);
  const drainer = new Drainer([server]);
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  try {
    await body((server.address() as net.AddressInfo).port, drainer, server);
  } finally {
    server.closeAllConnections();
    if (server.listening) server.close();
  }
}

describe('Drainer', () => {
  it('a keep-alive response in flight when the drain begins: the next request on that connection is served with Connection: close, not reset', async () => {
    let release!: () => void;
    const held = new Promise<void>(resolve => { release = resolve; });
    await withServer((req, res) => {
      if (req.url === '/slow') {
        // headers (keep-alive) go out before the drain begins
        res.writeHead(200, { 'content-length': '2' });
        res.write('o');
        void held.then(() => res.end('k'));
      } else {
        res.setHeader('content-length', '6');
        res.end('second');
      }
    }, async (port, drainer) => {
      const conn = await connect(port);
      const first = conn.next();
      conn.socket.write(request('/slow'));
      // wait until the server has the request and sent its headers
      await new Promise<void>(resolve => conn.socket.once('data', () => resolve()));
      const drained = drainer.drain(4000);
      release();
      const one = await first;
      assert.match(one.head, /^HTTP\/1\.1 200/);
      assert.match(one.head, /connection: keep-alive/i, 'the first response was sent as keep-alive');
      // a client under load reuses the connection at once
      const second = conn.next();
      conn.socket.write(request('/second'));
      const two = await second;
      assert.match(two.head, /^HTTP\/1\.1 200/);
      assert.equal(two.body, 'second');
      assert.match(two.head, /connection: close/i);
      assert.equal(await conn.closed, null, 'the server ended the connection cleanly after answering');
      await drained;
    });
  });

  it('a connection idle since its last response is ended once idle for the grace; the drain then resolves', { timeout: 10_000 }, async () => {
    await withServer((_req, res) => {
      res.setHeader('content-length', '2');
      res.end('ok');
    }, async (port, drainer) => {
      const conn = await connect(port);
      const first = conn.next();
      conn.socket.write(request('/'));
      await first;
      // a 60 s budget: the drain resolves only if the idle grace (500 ms) ended the connection;
      // one left to the deadline fails this test by its time-out
      await drainer.drain(60_000);
      assert.equal(await conn.closed, null);
    });
  });

  it('a connection accepted before the drain whose first request comes later is served', async () => {
    await withServer((_req, res) => {
      res.setHeader('content-length', '5');
      res.end('fresh');
    }, async (port, drainer, server) => {
      const accepted = new Promise<void>(resolve => server.once('connection', () => resolve()));
      const conn = await connect(port);
      await accepted;
      const drained = drainer.drain(4000);
      const reply = conn.next();
      conn.socket.write(request('/'));
      const r = await reply;
      assert.equal(r.body, 'fresh');
      assert.match(r.head, /connection: close/i);
      assert.equal(await conn.closed, null);
      await drained;
    });
  });

  it('https: an idle keep-alive connection is ended by the grace too (the request\'s socket is the TLS socket)', { timeout: 10_000 }, async () => {
    const dir = path.join(__dirname, '..', 'fixtures', 'apps', 'https');
    const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'server.key')), cert: fs.readFileSync(path.join(dir, 'server.crt')) },
      (_req, res) => res.end('ok'));
    // longer than the test's time-out: only the drain may end the idle connection
    server.keepAliveTimeout = 60_000;
    const drainer = new Drainer([server]);
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
    try {
      const { closed } = await new Promise<{ closed: Promise<void> }>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, agent }, res => {
          const socketClosed = new Promise<void>(done => res.socket.once('close', () => done()));
          res.resume();
          res.on('end', () => resolve({ closed: socketClosed }));
        }).on('error', reject);
      });
      // before the fix the TLS connection was never matched to its requests: the drain waited
      // for its deadline (60 s here, so this test's time-out) and then cut it
      await drainer.drain(60_000);
      await closed;
    } finally {
      agent.destroy();
      server.closeAllConnections();
    }
  });
});
