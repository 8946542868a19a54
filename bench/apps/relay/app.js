'use strict';
// Message relay benchmark, app side: GET /relay?n=N sends N messages to the agent through the
// master (app -> master -> agent), waits for the agent's "relay-done", answers the elapsed ms.
module.exports = app => {
  let pending;
  app.messenger.on('relay-done', data => {
    if (pending) pending(data);
  });
  app.handler = (req, res) => {
    const n = Number(new URL(req.url, 'http://x').searchParams.get('n') || 10000);
    const payload = { text: 'x'.repeat(200), nested: { a: 1, b: [1, 2, 3] } };
    const t0 = process.hrtime.bigint();
    pending = () => {
      pending = undefined;
      res.end(JSON.stringify({ n, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    };
    app.messenger.sendToAgent('relay-start', { n, from: process.pid });
    for (let i = 0; i < n; i++) app.messenger.sendToAgent('relay', payload);
  };
};
