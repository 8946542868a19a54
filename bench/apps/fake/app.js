'use strict';
/**
 * Benchmark app, app side (the test fake framework). Routes:
 *   GET /                -> {pid}
 *   GET /slow?ms=N       -> headers at once, the body after N ms (requests in flight at shutdown)
 *   GET /relay?n=N       -> N messages app -> master -> agent (~250 B), answers the elapsed ms once
 *                           the agent has them all
 *   GET /rtt?n=N&size=B  -> N sequential app -> agent -> app round trips of B bytes; answers the
 *                           sorted RTTs in ms
 */
module.exports = app => {
  let onRelayDone;
  let onPong;
  app.messenger.on('relay-done', () => onRelayDone && onRelayDone());
  app.messenger.on('rtt-pong', data => onPong && onPong(data));

  app.handler = (req, res) => {
    const url = new URL(req.url, 'http://x');
    const param = (name, def) => Number(url.searchParams.get(name) || def);
    const json = body => res.end(JSON.stringify(body));
    switch (url.pathname) {
      case '/slow':
        // headers now (the client knows the request is in the worker), the body after `ms`
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        setTimeout(() => json({ pid: process.pid }), param('ms', 200));
        return;
      case '/relay': {
        const n = param('n', 10000);
        const payload = { text: 'x'.repeat(200), nested: { a: 1, b: [ 1, 2, 3 ] } };
        const t0 = process.hrtime.bigint();
        onRelayDone = () => {
          onRelayDone = undefined;
          json({ n, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
        };
        app.messenger.sendToAgent('relay-start', { n, from: process.pid });
        for (let i = 0; i < n; i++) app.messenger.sendToAgent('relay', payload);
        return;
      }
      case '/rtt': {
        const n = param('n', 1000);
        // the message body (action + data) is `size` bytes of JSON
        const base = JSON.stringify({ action: 'rtt-ping', data: { from: String(process.pid), id: 0, pad: '' } }).length;
        const pad = 'x'.repeat(Math.max(0, param('size', 100) - base - 4));
        const rtts = [];
        let t0;
        const next = id => {
          if (id === n) {
            onPong = undefined;
            json({ rtts: rtts.sort((a, b) => a - b) });
            return;
          }
          t0 = process.hrtime.bigint();
          app.messenger.sendToAgent('rtt-ping', { from: String(process.pid), id, pad });
        };
        onPong = data => {
          rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
          next(data.id + 1);
        };
        next(0);
        return;
      }
      default:
        json({ pid: process.pid });
    }
  };
};
