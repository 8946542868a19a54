'use strict';

// App side of the /agent round trip: send `example-ping` to the agent and wait for the
// agent's `example-pong`, which the agent addresses to this worker's pid.
const TIMEOUT = 5000;

module.exports = app => {
  const pending = new Map();
  let seq = 0;

  app.messenger.on('example-pong', ({ id, agentPid }) => {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(agentPid);
  });

  app.askAgentPid = () => new Promise((resolve, reject) => {
    const id = ++seq;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('agent did not answer within 5s'));
    }, TIMEOUT);
    pending.set(id, { resolve, timer });
    app.messenger.sendToAgent('example-ping', { id, pid: process.pid });
  });

  app.beforeClose(() => {
    for (const { timer } of pending.values()) clearTimeout(timer);
    pending.clear();
  });
};
