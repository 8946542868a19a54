import type { Agent } from 'egg';

// Agent side of the /agent round trip: answer `compat-ping` with `compat-pong`,
// addressed to the asking app worker only.
export default (agent: Agent) => {
  agent.messenger.on('compat-ping', ({ id, pid }: { id: number; pid: number }) => {
    // egg 4 types the pid as a string; egg routes by it either way
    agent.messenger.sendTo(String(pid), 'compat-pong', { id, agentPid: process.pid });
  });
};
