'use strict';

const { Controller } = require('egg');

class HomeController extends Controller {
  // GET / -> "hi, egg-clutch (pid 1234)"
  async index() {
    this.ctx.body = `hi, egg-clutch (pid ${process.pid})`;
  }

  // GET /agent -> {"worker":1234,"agent":1230}: a round trip to the agent worker
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
