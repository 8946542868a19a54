import type { Application, ILifecycleBoot } from 'egg';
import { dropPending, listenForPongs } from './utils/ping.js';

export default class AppBootHook implements ILifecycleBoot {
  constructor(app: Application) {
    listenForPongs(app);
  }

  async beforeClose() {
    dropPending();
  }
}
