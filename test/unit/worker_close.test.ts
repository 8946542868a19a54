import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workerCloseTimeout } from '../../src/worker/bootstrap.js';

// D14: egg-cluster's workers closed within GRACEFUL_TIMEOUT (5 s) while the master SIGKILLed
// them at EGG_*_CLOSE_TIMEOUT (5 s): the two raced. A worker now finishes 500 ms earlier.
describe('workerCloseTimeout', () => {
  it('defaults to the master\'s 5000 ms less 500 ms', () => {
    assert.equal(workerCloseTimeout('app', {}), 4500);
    assert.equal(workerCloseTimeout('agent', {}), 4500);
  });

  it('follows the role\'s close timeout, then EGG_MASTER_CLOSE_TIMEOUT', () => {
    const env = { EGG_APP_CLOSE_TIMEOUT: '20000', EGG_MASTER_CLOSE_TIMEOUT: '8000' };
    assert.equal(workerCloseTimeout('app', env), 19_500);
    assert.equal(workerCloseTimeout('agent', env), 7500);
  });

  it('GRACEFUL_TIMEOUT, when set, wins as is', () => {
    assert.equal(workerCloseTimeout('app', { GRACEFUL_TIMEOUT: '3000', EGG_APP_CLOSE_TIMEOUT: '20000' }), 3000);
  });

  it('stays below the master\'s close timeout however short it is (no 1000 ms floor: D14 again at <= 1500 ms)', () => {
    assert.equal(workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: '1500' }), 1125);
    assert.equal(workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: '1000' }), 750);
    assert.equal(workerCloseTimeout('agent', { EGG_AGENT_CLOSE_TIMEOUT: '800' }), 600);
    assert.equal(workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: '2000' }), 1500);
    for (let master = 2; master <= 30_000; master += master < 3000 ? 1 : 97) {
      const worker = workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: String(master) });
      assert.ok(worker > 0 && worker < master, `master ${master} ms -> worker ${worker} ms`);
      assert.ok(worker >= master - 500, `master ${master} ms -> worker ${worker} ms keeps most of the budget`);
    }
  });

  it('an invalid value falls back to the default', () => {
    assert.equal(workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: 'soon' }), 4500);
    assert.equal(workerCloseTimeout('app', { GRACEFUL_TIMEOUT: 'x' }), 4500);
  });
});
