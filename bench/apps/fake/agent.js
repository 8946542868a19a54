'use strict';
// Benchmark app, agent side (the test fake framework): counts relayed messages, answers pings.
module.exports = agent => {
  let expected = 0;
  let from;
  let seen = 0;
  agent.messenger.on('relay-start', data => {
    expected = data.n;
    from = data.from;
    seen = 0;
  });
  agent.messenger.on('relay', () => {
    if (++seen === expected) agent.messenger.sendTo(from, 'relay-done', { seen });
  });
  // app -> agent -> app round trip: the same payload goes back
  agent.messenger.on('rtt-ping', data => agent.messenger.sendTo(data.from, 'rtt-pong', data));
};
