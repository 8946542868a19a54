// @eggjs/mock 6 mm.cluster() on egg-clutch (installed as node_modules/@eggjs/cluster), run the
// way an egg 4 TypeScript app runs its tests: `egg-bin test`, which puts ts-node in NODE_OPTIONS,
// so the master, the agent and every app worker start behind that preload.
// test/compat/egg4-ts.test.ts runs it with COMPAT_PORT set to a free port.
import assert from 'node:assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mm } from '@eggjs/mock';

const baseDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('@eggjs/mock mm.cluster() on egg-clutch (TypeScript, ESM)', () => {
  // mm.cluster() returns a ClusterApplication (coffee + supertest), typed `any` by @eggjs/mock 6
  let app: ReturnType<typeof mm.cluster>;

  before(async () => {
    app = mm.cluster({
      baseDir,
      workers: 1,
      port: process.env.COMPAT_PORT ? Number(process.env.COMPAT_PORT) : undefined,
    });
    await app.ready();
  });

  after(() => app.close());

  it('runs behind @eggjs/bin\'s TypeScript hook in NODE_OPTIONS (which the cluster inherits)', () => {
    assert.match(process.env.NODE_OPTIONS ?? '', /--import "?file:\/\/\S*ts-node\S*register/);
  });

  it('is ready: the master printed egg started, nothing on stderr', () => {
    app.expect('code', 0);
    app.expect('stdout', /\[master\] egg started on http:\/\/127\.0\.0\.1:\d+ \(\d+ms\)/);
    app.expect('stdout', /\[master\] agent_worker#1:\d+ started \(\d+ms\)/);
    app.expect('stderr', /^$/);
  });

  it('serves GET / from a TypeScript controller', async () => {
    const res = await app.httpRequest()
      .get('/')
      .expect(200);
    assert.match(res.text, /^egg4 ts compat \(pid \d+\)$/);
  });

  it('round-trips a message app -> agent -> app through the messenger', async () => {
    const res = await app.httpRequest()
      .get('/agent')
      .expect(200);
    assert.strictEqual(typeof res.body.worker, 'number');
    assert.strictEqual(typeof res.body.agent, 'number');
    assert.notStrictEqual(res.body.agent, res.body.worker);
    assert.notStrictEqual(res.body.agent, app.process.pid);
  });
});
