'use strict';
// Message relay benchmark, agent side: counts "relay" messages, then tells the app.
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
};
