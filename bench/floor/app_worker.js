'use strict';
// The floor's app worker (node:cluster): `new Application(options)`, once ready listen on the
// port (sticky: on the worker port, sockets come from the master); SIGTERM: stop accepting,
// let the requests in flight finish, app.close(), exit 0.
const http = require('node:http');

const options = JSON.parse(process.argv[2]);
let app;
let server;

// options.earlyFork (a prototype, `bench/run.js --early-fork`): the worker is forked while the
// agent boots; it loads the framework's code now and builds the Application on `agent-start`.
// The listener comes first: a message that arrives before it would be lost.
if (options.earlyFork) {
  process.on('message', function onAgentStart(msg) {
    if (!msg || msg.action !== 'agent-start') return;
    process.removeListener('message', onAgentStart);
    start();
  });
}
const { Application } = require(options.framework);
if (!options.earlyFork) start();

function start() {
  app = new Application(options);
  app.ready(onReady);
}

function onReady(err) {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  server = http.createServer(app.callback());
  app.emit('server', server);
  if (options.sticky) {
    server.listen(options.stickyWorkerPort, '127.0.0.1');
    process.on('message', (msg, socket) => {
      if (msg !== 'sticky-session:connection' || !socket) return;
      server.emit('connection', socket);
      socket.resume();
    });
  } else {
    server.listen(options.port);
  }
}

process.once('SIGTERM', () => {
  const closed = server ? new Promise(resolve => {
    server.close(resolve);
    server.closeIdleConnections();
  }) : Promise.resolve();
  closed.then(() => app && app.close()).finally(() => process.exit(0));
});
process.once('disconnect', () => process.exit(0));
