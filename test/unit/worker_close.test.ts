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

  it('never below 1000 ms, and an invalid value falls back to the default', () => {
    assert.equal(workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: '800' }), 1000);
    assert.equal(workerCloseTimeout('app', { EGG_APP_CLOSE_TIMEOUT: 'soon' }), 4500);
    assert.equal(workerCloseTimeout('app', { GRACEFUL_TIMEOUT: 'x' }), 4500);
  });
});
