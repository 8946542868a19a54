/**
 * createGracefulClose: the one close path of a worker (SIGTERM via graceful-process, the
 * master's graceful-exit message for threads, a start error). And whenStarted's two ways of
 * watching `error` during boot.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { createGracefulClose, whenStarted } from '../../src/worker/bootstrap.js';
import { captureLogger } from '../helpers/capture_logger.js';

function exitRecorder(): { codes: number[]; exited: Promise<number>; exit: (code: number) => void } {
  const codes: number[] = [];
  let resolve!: (code: number) => void;
  const exited = new Promise<number>(r => { resolve = r; });
  return { codes, exited, exit: code => { codes.push(code); resolve(code); } };
}

describe('createGracefulClose', () => {
  it('runs the close once, logs beforeExit success, exits with the first code asked for', async () => {
    const logger = captureLogger();
    const rec = exitRecorder();
    let runs = 0;
    const close = createGracefulClose({
      logger, label: 'app_worker', timeoutMs: 1000, exit: rec.exit,
      beforeExit: async () => { runs++; await new Promise(r => setImmediate(r)); },
    });
    close.closeAndExit(1);
    close.closeAndExit(0); // a SIGTERM during the start-error close
    const shared = close.beforeExit(); // graceful-process's SIGTERM handler gets the same close
    assert.equal(await rec.exited, 1);
    await shared;
    assert.equal(runs, 1);
    assert.deepEqual(rec.codes, [1]);
    assert.ok(logger.has('[app_worker] beforeExit success', 'info'), logger.lines().join('\n'));
  });

  it('a close that never ends is cut at the timeout: beforeExit fail, then exit', async () => {
    const logger = captureLogger();
    const rec = exitRecorder();
    const close = createGracefulClose({
      logger, label: 'agent_worker', timeoutMs: 50, exit: rec.exit, beforeExit: () => new Promise(() => {}),
    });
    close.closeAndExit(1);
    assert.equal(await rec.exited, 1);
    assert.ok(logger.has('[agent_worker] beforeExit fail, error: Timeout 50ms', 'error'), logger.lines().join('\n'));
  });

  it('a close that throws: beforeExit fail with its message, then exit', async () => {
    const logger = captureLogger();
    const rec = exitRecorder();
    const close = createGracefulClose({
      logger, label: 'app_worker', timeoutMs: 1000, exit: rec.exit, beforeExit: () => Promise.reject(new Error('hook broke')),
    });
    close.closeAndExit(0);
    assert.equal(await rec.exited, 0);
    assert.ok(logger.has('[app_worker] beforeExit fail, error: hook broke', 'error'), logger.lines().join('\n'));
  });
});

/** A minimal instance: an EventEmitter with get-ready's `ready(cb)` and `ready(errOrTrue)`. */
class FakeInstance extends EventEmitter {
  #callbacks: Array<(err?: Error) => void> = [];
  #done = false;
  #error: Error | undefined;
  ready(arg: ((err?: Error) => void) | Error | true): void {
    if (typeof arg === 'function') {
      if (this.#done) process.nextTick(() => arg(this.#error));
      else this.#callbacks.push(arg);
      return;
    }
    this.#done = true;
    this.#error = arg instanceof Error ? arg : undefined;
    for (const cb of this.#callbacks.splice(0)) process.nextTick(() => cb(this.#error));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('whenStarted', () => {
  it('"unhandled": no error listener the app can see, before ready (in its own ready callback) or after', async () => {
    const app = new FakeInstance();
    app.on('error', () => {}); // the app's own, like egg's onerror
    const counts: number[] = [];
    app.ready(() => counts.push(app.listenerCount('error')));
    const started = new Promise<void>(resolve => whenStarted(app, resolve, (err: unknown) => assert.fail(`start error: ${String(err)}`), 'unhandled'));
    counts.push(app.listeners('error').length);
    app.ready(true);
    await started;
    counts.push(app.listeners('error').length);
    assert.deepEqual(counts, [1, 1, 1]);
    assert.equal(Object.prototype.hasOwnProperty.call(app, 'emit'), false, 'emit is the prototype\'s again');
  });

  it('"unhandled": an error nobody handles during boot is a start error (not an ERR_UNHANDLED_ERROR throw)', async () => {
    const app = new FakeInstance();
    const failed = new Promise<unknown>(resolve => whenStarted(app, () => assert.fail('started'), resolve, 'unhandled'));
    assert.equal(app.emit('error', new Error('boom')), false);
    assert.match(String(await failed), /boom/);
  });

  it('"unhandled": an error the app handles during boot stays the app\'s', async () => {
    const app = new FakeInstance();
    const seen: unknown[] = [];
    app.on('error', err => seen.push(err));
    const started = new Promise<void>(resolve => whenStarted(app, resolve, (err: unknown) => assert.fail(`start error: ${String(err)}`), 'unhandled'));
    app.emit('error', new Error('handled'));
    app.ready(true);
    await started;
    assert.equal(seen.length, 1);
  });

  it('"listener" (the agent, as egg-cluster): once(error) until ready; ready(err) reported once', async () => {
    const agent = new FakeInstance();
    const errors: unknown[] = [];
    whenStarted(agent, () => assert.fail('started'), err => errors.push(err));
    assert.equal(agent.listenerCount('error'), 1);
    agent.emit('error', new Error('first'));
    agent.ready(new Error('second'));
    await new Promise(r => setImmediate(r));
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /first/);
  });
});
