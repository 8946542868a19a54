import { Controller } from 'egg';
import { askAgentPid } from '../../utils/ping.js';

// egg-bin dev's reload test rewrites this line and expects the new text from a new worker
const TEXT = 'egg4 ts compat';

export default class HomeController extends Controller {
  // GET / -> "egg4 ts compat (pid 1234)"
  async index() {
    this.app.logger.info('[compat] GET / served by pid %s', process.pid);
    this.ctx.body = `${TEXT} (pid ${process.pid})`;
  }

  // GET /agent -> {"worker":1234,"agent":1230}: a round trip app -> agent -> app through egg's messenger
  async agent() {
    const { ctx, app } = this;
    try {
      const agentPid = await askAgentPid(app);
      ctx.body = { worker: process.pid, agent: agentPid };
    } catch (err) {
      ctx.status = 504;
      ctx.body = { worker: process.pid, error: (err as Error).message };
    }
  }
}
