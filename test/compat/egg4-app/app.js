'use strict';

// App side of the /agent round trip: send `compat-ping` to the agent and wait for its
// `compat-pong`, which the agent addresses to this worker's pid.
const TIMEOUT = 5000;

class AppBootHook {
  constructor(app) {
    this.app = app;
    this.pending = new Map();
    this.seq = 0;

    app.messenger.on('compat-pong', ({ id, agentPid }) => {
      const entry = this.pending.get(id);
      if (!entry) return;
      this.pending.delete(id);
      clearTimeout(entry.timer);
      entry.resolve(agentPid);
    });

    app.askAgentPid = () => new Promise((resolve, reject) => {
      const id = ++this.seq;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`agent did not answer within ${TIMEOUT}ms`));
      }, TIMEOUT);
      this.pending.set(id, { resolve, timer });
      app.messenger.sendToAgent('compat-ping', { id, pid: process.pid });
    });
  }

  beforeClose() {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}

module.exports = AppBootHook;
