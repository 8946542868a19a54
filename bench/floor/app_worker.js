'use strict';
// The floor's app worker (node:cluster): `new Application(options)`, once ready listen on the
// port (sticky: on the worker port, sockets come from the master); SIGTERM: stop accepting,
// let the requests in flight finish, app.close(), exit 0.
const http = require('node:http');

const options = JSON.parse(process.argv[2]);
const { Application } = require(options.framework);

const app = new Application(options);
let server;
app.ready(err => {
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
});

process.once('SIGTERM', () => {
  const closed = server ? new Promise(resolve => {
    server.close(resolve);
    server.closeIdleConnections();
  }) : Promise.resolve();
  closed.then(() => app.close()).finally(() => process.exit(0));
});
process.once('disconnect', () => process.exit(0));
