'use strict';

// Agent side of the /agent round trip: answer `compat-ping` with `compat-pong`,
// addressed to the asking app worker only.
module.exports = agent => {
  agent.messenger.on('compat-ping', ({ id, pid }) => {
    agent.messenger.sendTo(pid, 'compat-pong', { id, agentPid: process.pid });
  });
};
