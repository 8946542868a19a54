'use strict';

// Agent side of the /agent round trip: answer `example-ping` with `example-pong`,
// sent only to the asking app worker.
module.exports = agent => {
  agent.messenger.on('example-ping', ({ id, pid }) => {
    agent.messenger.sendTo(pid, 'example-pong', { id, agentPid: process.pid });
  });
};
