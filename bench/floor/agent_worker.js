'use strict';
// The floor's agent: `new Agent(options)`, `agent-start` once ready; SIGTERM: agent.close(), exit 0.
const options = JSON.parse(process.argv[2]);
const { Agent } = require(options.framework);

const agent = new Agent(options);
agent.ready(err => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  process.send({ action: 'agent-start', to: 'master' });
});
process.once('SIGTERM', () => {
  Promise.resolve(agent.close()).finally(() => process.exit(0));
});
process.once('disconnect', () => process.exit(110));
