'use strict';

const { Controller } = require('egg');

class HomeController extends Controller {
  // GET / -> "egg4 compat (pid 1234)"
  async index() {
    this.app.logger.info('[compat] GET / served by pid %s', process.pid);
    this.ctx.body = `egg4 compat (pid ${process.pid})`;
  }

  // GET /agent -> {"worker":1234,"agent":1230}: a round trip to the agent through the messenger
  async agent() {
    const { ctx, app } = this;
    try {
      const agentPid = await app.askAgentPid();
      ctx.body = { worker: process.pid, agent: agentPid };
    } catch (err) {
      ctx.status = 504;
      ctx.body = { worker: process.pid, error: err.message };
    }
  }
}

module.exports = HomeController;
