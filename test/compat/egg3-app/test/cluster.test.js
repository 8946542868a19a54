'use strict';

// egg-mock's cluster mode against egg-clutch (installed as node_modules/egg-cluster).
// Run by test/compat/egg3.test.ts as `egg-bin test test/cluster.test.js` with COMPAT_PORT set
// to a free port; on its own, `npx egg-bin test` uses egg-mock's default port (17001…).
const assert = require('node:assert');
const path = require('node:path');
const mm = require('egg-mock');

describe('egg-mock mm.cluster() on egg-clutch', () => {
  let app;

  before(async () => {
    app = mm.cluster({
      baseDir: path.join(__dirname, '..'),
      workers: 1,
      port: process.env.COMPAT_PORT ? Number(process.env.COMPAT_PORT) : undefined,
    });
    await app.ready();
  });

  after(() => app.close());

  it('is ready: the master sent egg-ready to its parent (coffee close code 0)', () => {
    app.expect('code', 0);
  });

  it('prints the master start lines on stdout', () => {
    app.expect('stdout', /\[master\] egg started on http:\/\/127\.0\.0\.1:\d+ \(\d+ms\)/);
    app.expect('stdout', /\[master\] agent_worker#1:\d+ started \(\d+ms\)/);
    app.expect('stderr', /^$/);
  });

  it('serves GET /', async () => {
    await app.httpRequest()
      .get('/')
      .expect(200)
      .expect(/^egg3 compat \(pid \d+\)$/);
  });

  it('passes options.plugins to the worker: egg-mock\'s own plugin answers mockLog/expectLog', async () => {
    app.mockLog();
    await app.httpRequest().get('/').expect(200);
    app.expectLog('[compat] GET / served by pid');
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
