import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../../src/errors.js';
import {
  checkEnv, closeTimeouts, isProductionEnv, normalizeOptions, type ClusterOptions, type NormalizeContext,
} from '../../src/options.js';
import { checkHttpsFiles } from '../../src/option_files.js';
import { redactOptions } from '../../src/redact.js';
import { cgroupCpuLimit } from '../../src/cpus.js';
import { argvOptions, checkSendable, decodeOptions, encodeOptions } from '../../src/worker/options_codec.js';
import { createFakeCluster, flush, type FakeCluster } from '../helpers/fake_launcher.js';

const CWD = path.resolve('/srv/app');

function ctx(over: Partial<NormalizeContext> = {}): NormalizeContext {
  return { env: {}, execArgv: [], cwd: CWD, cpus: 4, ...over };
}

function norm(input: ClusterOptions | undefined, over: Partial<NormalizeContext> = {}) {
  return normalizeOptions(input, ctx(over));
}

/** Asserts an InvalidOptionError whose message names the option and shows the bad value. */
function assertInvalid(input: ClusterOptions, name: string, shown: string, over: Partial<NormalizeContext> = {}): void {
  assert.throws(() => norm(input, over), (err: unknown) => {
    assert.ok(err instanceof InvalidOptionError, `expected InvalidOptionError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_CLUSTER_INVALID_OPTION');
    assert.ok(err.message.includes(`options.${name}`), `message names options.${name}: ${err.message}`);
    assert.ok(err.message.includes(shown), `message shows ${shown}: ${err.message}`);
    return true;
  });
}

describe('normalizeOptions', () => {
  it('applies the defaults', () => {
    const { options, warnings } = norm(undefined, { env: { EGG_SERVER_ENV: 'prod' } });
    assert.equal(options.workers, 4);
    assert.equal(options.port, undefined);
    assert.equal(options.https, false);
    assert.equal(options.startMode, 'process');
    assert.equal(options.env, 'prod');
    assert.equal(options.baseDir, CWD);
    assert.equal(options.framework, '');
    assert.equal(options.plugins, null);
    assert.equal(options.sticky, false);
    assert.equal(options.reusePort, false);
    assert.deepEqual(options.ports, []);
    assert.equal(options.isDebug, undefined);
    assert.deepEqual(warnings, []);
  });

  it('takes env from EGG_SERVER_ENV only when options.env is not given', () => {
    assert.equal(norm({}, { env: {} }).options.env, undefined);
    assert.equal(norm({}, { env: { EGG_SERVER_ENV: '' } }).options.env, undefined);
    assert.equal(norm({ env: 'local' }, { env: { EGG_SERVER_ENV: 'prod' } }).options.env, 'local');
  });

  it('uses at least one worker even when the CPU count is 0', () => {
    assert.equal(norm({}, { cpus: 0 }).options.workers, 1);
  });

  describe('workers', () => {
    const ok: Array<[unknown, number]> = [['4', 4], [4, 4], [' 2 ', 2], [1, 1], [1024, 1024], [0, 4], ['', 4]];
    for (const [value, expected] of ok) {
      it(`${JSON.stringify(value)} -> ${expected}`, () => {
        assert.equal(norm({ workers: value as number }).options.workers, expected);
      });
    }
    const bad: Array<[unknown, string]> = [
      ['abc', '"abc" (string)'], [-1, '-1 (number)'], [1.5, '1.5 (number)'], ['1.5', '"1.5" (string)'],
      [1025, '1025'], [Number.NaN, 'NaN'], [true, 'true (boolean)'], [{}, '(object)'], [[2], '[2] (array)'],
    ];
    for (const [value, shown] of bad) {
      it(`${String(value)} is rejected`, () => assertInvalid({ workers: value as number }, 'workers', shown));
    }
  });

  describe('port', () => {
    it('parses a numeric string', () => assert.equal(norm({ port: '7001' }).options.port, 7001));
    it('keeps a number', () => assert.equal(norm({ port: 8080 }).options.port, 8080));
    for (const value of [0, '0', '']) {
      it(`${JSON.stringify(value)} means "the app's config" (undefined)`, () => {
        assert.equal(norm({ port: value }).options.port, undefined);
      });
    }
    it('0 stays undefined with https too (parseInt(port) || undefined)', () => {
      assert.equal(norm({ port: 0, https: { key: '/k', cert: '/c' } }).options.port, undefined);
    });
    it('defaults to 8443 with https', () => {
      assert.equal(norm({ https: { key: '/k', cert: '/c' } }).options.port, 8443);
    });
    it('null does not override the https default', () => {
      assert.equal(norm({ port: null, https: { key: '/k', cert: '/c' } }).options.port, 8443);
    });
    for (const [value, shown] of [[70000, '70000'], [-1, '-1'], ['http', '"http" (string)'], [80.5, '80.5']] as const) {
      it(`${String(value)} is rejected`, () => assertInvalid({ port: value }, 'port', shown));
    }
  });

  describe('https', () => {
    it('https: true with key/cert is accepted with a deprecation warning', () => {
      const { options, warnings } = norm({ https: true, key: '/etc/key.pem', cert: '/etc/cert.pem' });
      assert.deepEqual(options.https, { key: '/etc/key.pem', cert: '/etc/cert.pem' });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /\[master\] Please use `https: \{ key, cert, ca \}` instead of `https: true`/);
    });
    it('an object without cert is rejected, naming https.cert', () => {
      assertInvalid({ https: { key: '/etc/key.pem' } }, 'https.cert', 'undefined');
    });
    it('https: true without key is rejected, naming options.key (where https: true takes it from)', () => {
      assertInvalid({ https: true, cert: '/c' }, 'key', 'undefined');
    });
    it('Buffers (PEM in memory) are accepted and kept', () => {
      const key = Buffer.from('-----BEGIN PRIVATE KEY-----');
      const cert = Buffer.from('-----BEGIN CERTIFICATE-----');
      const { options } = norm({ https: { key, cert, ca: [cert, '/etc/ca.pem'] } });
      assert.ok(options.https);
      assert.equal(options.https.key, key);
      assert.equal(options.https.cert, cert);
    });
    it('a bad ca entry is rejected, naming its index', () => assertInvalid({ https: { key: '/k', cert: '/c', ca: ['/ca', 1] as unknown as string[] } }, 'https.ca[1]', 'got a number'));
    it('a string https is rejected, by type and size only', () => assertInvalid({ https: 'yes' as unknown as boolean }, 'https', 'got a string of 3 characters'));
    it('false and null mean no https', () => {
      assert.equal(norm({ https: false }).options.https, false);
      assert.equal(norm({ https: null as unknown as boolean }).options.https, false);
    });
    it('does not share the caller\'s https object', () => {
      const https = { key: '/k', cert: '/c' };
      const { options } = norm({ https });
      assert.notEqual(options.https, https);
      assert.deepEqual(options.https, https);
    });
  });

  describe('require', () => {
    it('a string becomes an array', () => assert.deepEqual(norm({ require: 'ts-node/register' }).options.require, ['ts-node/register']));
    it('an array is kept', () => assert.deepEqual(norm({ require: ['a', './b'] }).options.require, ['a', './b']));
    it('[1] is rejected', () => assertInvalid({ require: [1] as unknown as string[] }, 'require', '[1] (array)'));
    it('[""] is rejected', () => assertInvalid({ require: [''] }, 'require', '[""]'));
  });

  it('startMode "x" is rejected', () => assertInvalid({ startMode: 'x' as 'process' }, 'startMode', '"x" (string)'));
  it('startMode worker_threads is accepted', () => assert.equal(norm({ startMode: 'worker_threads' }).options.startMode, 'worker_threads'));
  it('sticky must be a boolean', () => assertInvalid({ sticky: 'yes' as unknown as boolean }, 'sticky', '"yes"'));
  it('ports entries are checked', () => assertInvalid({ ports: [7001, 0] }, 'ports[1]', '0 (number)'));
  it('debugPort is checked', () => assertInvalid({ debugPort: 99999 }, 'debugPort', '99999'));
  it('a wrong value is described without throwing, however odd (BigInt, cycles, long strings)', () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    assertInvalid({ workers: 2n as unknown as number }, 'workers', 'got 2n (bigint)');
    assertInvalid({ require: [1n] as unknown as string[] }, 'require', 'got an array of 1 item that JSON cannot show');
    assertInvalid({ workers: cyclic as unknown as number }, 'workers', 'got an array of 1 item that JSON cannot show');
    assertInvalid({ workers: 'x'.repeat(300) }, 'workers', `got "${'x'.repeat(100)}…" (string)`);
  });
  it('plugins must be an object', () => assertInvalid({ plugins: [] as unknown as Record<string, unknown> }, 'plugins', '[] (array)'));

  describe('startTimeout', () => {
    it('defaults to 10 minutes (egg\'s workerStartTimeout)', () => assert.equal(norm({}).options.startTimeout, 600_000));
    it('accepts a number or a numeric string', () => {
      assert.equal(norm({ startTimeout: 1000 }).options.startTimeout, 1000);
      assert.equal(norm({ startTimeout: '2500' as unknown as number }).options.startTimeout, 2500);
    });
    for (const [value, shown] of [[0, '0 (number)'], [-5, '-5'], ['10s', '"10s" (string)'], [1.5, '1.5'], [2 ** 31, String(2 ** 31)]] as const) {
      it(`${String(value)} is rejected`, () => assertInvalid({ startTimeout: value as number }, 'startTimeout', shown));
    }
  });

  describe('secretKeys', () => {
    it('is kept when it is an array of names', () => {
      assert.deepEqual(norm({ secretKeys: ['apiToken'] }).options.secretKeys, ['apiToken']);
    });
    for (const bad of ['apiToken', [1], {}]) {
      it(`${JSON.stringify(bad)} is rejected`, () => {
        assert.throws(() => norm({ secretKeys: bad as unknown as string[] }), (err: unknown) => {
          assert.ok(err instanceof InvalidOptionError);
          assert.match(err.message, /options\.secretKeys/);
          return true;
        });
      });
    }
  });

  it('rejects options that are not an object', () => {
    for (const bad of ['x', 1, null, []]) {
      assert.throws(() => norm(bad as unknown as ClusterOptions), InvalidOptionError);
    }
  });

  it('null and undefined values do not override defaults', () => {
    const { options } = norm({
      workers: null as unknown as number, port: null, https: undefined, baseDir: undefined,
      startMode: undefined, env: null as unknown as string, plugins: null, sticky: undefined,
    }, { env: { EGG_SERVER_ENV: 'prod' } });
    assert.equal(options.workers, 4);
    assert.equal(options.port, undefined);
    assert.equal(options.https, false);
    assert.equal(options.baseDir, CWD);
    assert.equal(options.startMode, 'process');
    assert.equal(options.env, 'prod');
    assert.equal(options.sticky, false);
    assert.equal(options.plugins, null);
  });

  it('passes unknown keys through unchanged (they reach new Application())', () => {
    const custom = { deep: { list: [1, 2] } };
    const { options } = norm({ foo: true, custom, title: 'egg-server-x' });
    assert.equal(options.foo, true);
    assert.equal(options.custom, custom);
    assert.equal(options.title, 'egg-server-x');
  });

  it('does not mutate its input', () => {
    const input: ClusterOptions = { workers: '2', port: '7001', require: 'a', https: true, key: '/k', cert: '/c', baseDir: 'rel' };
    const copy = structuredClone(input);
    norm(input);
    assert.deepEqual(input, copy);
  });

  it('makes baseDir absolute against cwd', () => {
    assert.equal(norm({ baseDir: 'sub/app' }).options.baseDir, path.join(CWD, 'sub', 'app'));
    assert.equal(norm({ baseDir: '/abs/app' }).options.baseDir, path.resolve('/abs/app'));
  });

  it('framework falls back to customEgg', () => {
    assert.equal(norm({ customEgg: '/fw' }).options.framework, '/fw');
    assert.equal(norm({ framework: '/a', customEgg: '/b' }).options.framework, '/a');
  });

  describe('isDebug from execArgv', () => {
    const table: Array<[string[], boolean | undefined]> = [
      [['--inspect'], true], [['--inspect-brk=9229'], true], [['--inspect=0.0.0.0:9229'], true],
      [['--debug'], true], [['--max-old-space-size=100'], undefined], [[], undefined],
    ];
    for (const [execArgv, expected] of table) {
      it(`${JSON.stringify(execArgv)} -> ${String(expected)}`, () => {
        assert.equal(norm({}, { execArgv }).options.isDebug, expected);
      });
    }
  });
});

describe('isProductionEnv', () => {
  const table: Array<[string | undefined, string | undefined, boolean]> = [
    ['prod', undefined, true],
    ['test', undefined, true],
    ['local', undefined, false],
    ['unittest', undefined, false],
    ['local', 'production', false],
    ['prod', 'development', true],
    [undefined, 'production', true],
    ['', 'production', true],
    [undefined, 'development', false],
    [undefined, undefined, false],
  ];
  for (const [env, nodeEnv, expected] of table) {
    it(`env=${String(env)} NODE_ENV=${String(nodeEnv)} -> ${expected}`, () => {
      assert.equal(isProductionEnv(env, nodeEnv), expected);
    });
  }
});

describe('closeTimeouts', () => {
  it('defaults to 5000 for both phases', () => {
    assert.deepEqual(closeTimeouts({}), { app: 5000, agent: 5000 });
  });
  it('falls back to EGG_MASTER_CLOSE_TIMEOUT', () => {
    assert.deepEqual(closeTimeouts({ EGG_MASTER_CLOSE_TIMEOUT: '1000' }), { app: 1000, agent: 1000 });
  });
  it('each phase variable wins over the legacy one', () => {
    assert.deepEqual(
      closeTimeouts({ EGG_MASTER_CLOSE_TIMEOUT: '1000', EGG_APP_CLOSE_TIMEOUT: '200', EGG_AGENT_CLOSE_TIMEOUT: '300' }),
      { app: 200, agent: 300 },
    );
    assert.deepEqual(closeTimeouts({ EGG_APP_CLOSE_TIMEOUT: '200' }), { app: 200, agent: 5000 });
    assert.deepEqual(closeTimeouts({ EGG_AGENT_CLOSE_TIMEOUT: '0' }), { app: 5000, agent: 0 });
  });
  it('an empty variable counts as unset', () => {
    assert.deepEqual(closeTimeouts({ EGG_APP_CLOSE_TIMEOUT: '', EGG_MASTER_CLOSE_TIMEOUT: '700' }), { app: 700, agent: 700 });
  });
  for (const name of ['EGG_MASTER_CLOSE_TIMEOUT', 'EGG_APP_CLOSE_TIMEOUT', 'EGG_AGENT_CLOSE_TIMEOUT']) {
    it(`a non-numeric ${name} is an error naming the variable and the value`, () => {
      assert.throws(() => closeTimeouts({ [name]: '5s' }), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionError);
        assert.match(err.message, new RegExp(`${name}.*"5s"`));
        return true;
      });
    });
  }
  it('a negative timeout is an error', () => {
    assert.throws(() => closeTimeouts({ EGG_APP_CLOSE_TIMEOUT: '-1' }), InvalidOptionError);
  });
});

describe('redactOptions', () => {
  const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----';
  const base = () => norm({}).options;

  it('hides inline PEM, Buffers and the passphrase but keeps file paths', () => {
    const options = {
      ...base(),
      https: { key: PEM_KEY, cert: Buffer.from('cert bytes'), ca: ['/etc/ssl/ca.pem', PEM_KEY], passphrase: 's3cret' },
    };
    const shown = redactOptions(options);
    assert.deepEqual(shown.https, { key: '[redacted]', cert: '[redacted]', ca: ['/etc/ssl/ca.pem', '[redacted]'], passphrase: '[redacted]' });
    const text = JSON.stringify(shown);
    assert.ok(!text.includes('s3cret'));
    assert.ok(!text.includes('MIIEv'));
    assert.ok(!text.includes('cert bytes'));
  });

  it('keeps https file paths as they are', () => {
    const https = { key: '/etc/ssl/key.pem', cert: '/etc/ssl/cert.pem', ca: '/etc/ssl/ca.pem' };
    assert.deepEqual(redactOptions({ ...base(), https }).https, https);
  });

  it('hides the legacy top-level key/cert when they are PEM, keeps them when paths', () => {
    assert.equal(redactOptions({ ...base(), key: PEM_KEY }).key, '[redacted]');
    assert.equal(redactOptions({ ...base(), cert: Buffer.from('x') }).cert, '[redacted]');
    assert.equal(redactOptions({ ...base(), key: '/etc/key.pem' }).key, '/etc/key.pem');
  });

  it('hides every key named in options.secretKeys, and only those', () => {
    const options = { ...base(), apiToken: 'tok-123', dbPassword: 'pw', title: 'visible', secretKeys: ['apiToken', 'dbPassword', 'absent'] };
    const shown = redactOptions(options);
    assert.equal(shown.apiToken, '[redacted]');
    assert.equal(shown.dbPassword, '[redacted]');
    assert.equal(shown.title, 'visible');
    assert.ok(!('absent' in shown));
    assert.equal(options.apiToken, 'tok-123', 'the options themselves keep the value');
  });

  it('does not change the options it is given', () => {
    const options = { ...base(), https: { key: PEM_KEY, cert: '/c', passphrase: 'p' } };
    redactOptions(options);
    assert.equal(options.https.key, PEM_KEY);
    assert.equal(options.https.passphrase, 'p');
  });
});

describe('cgroupCpuLimit', () => {
  const reader = (files: Record<string, string>) => (file: string): string | undefined => files[file];
  const table: Array<[string, Record<string, string>, number | undefined]> = [
    ['v2 unlimited', { '/sys/fs/cgroup/cpu.max': 'max 100000' }, undefined],
    ['v2 two CPUs', { '/sys/fs/cgroup/cpu.max': '200000 100000' }, 2],
    ['v2 1.5 CPUs rounds up', { '/sys/fs/cgroup/cpu.max': '150000 100000' }, 2],
    ['v2 half a CPU is one', { '/sys/fs/cgroup/cpu.max': '50000 100000' }, 1],
    ['v2 garbage', { '/sys/fs/cgroup/cpu.max': 'abc def' }, undefined],
    ['v1 unlimited', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }, undefined],
    ['v1 three CPUs', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }, 3],
    ['v1 2.5 CPUs rounds up', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '250000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }, 3],
    ['no cgroup files', {}, undefined],
  ];
  for (const [name, files, expected] of table) {
    it(`${name} -> ${String(expected)}`, () => assert.equal(cgroupCpuLimit(reader(files)), expected));
  }
});

describe('options on argv and over IPC', () => {
  it('argvOptions shows title/baseDir/framework but never https, plugins or custom keys', () => {
    const { options } = norm({
      title: 'egg-server-demo', baseDir: '/srv/demo', framework: '/fw',
      https: { key: '-----BEGIN PRIVATE KEY-----', cert: '/c', passphrase: 'pw' },
      plugins: { secret: { enable: true } }, apiToken: 'tok', key: '/legacy.key',
    });
    const argv = argvOptions(options);
    const parsed = JSON.parse(argv) as Record<string, unknown>;
    assert.equal(parsed.title, 'egg-server-demo');
    assert.equal(parsed.baseDir, path.resolve('/srv/demo'));
    assert.equal(parsed.framework, '/fw');
    for (const hidden of ['https', 'plugins', 'apiToken', 'key', 'cert']) {
      assert.ok(!(hidden in parsed), `${hidden} must not be on argv`);
    }
    assert.ok(!argv.includes('BEGIN'));
    assert.ok(!argv.includes('pw'));
    assert.ok(!argv.includes('tok'));
    // egg-scripts stop greps `"title":"<title>"` in ps output
    assert.ok(argv.includes('"title":"egg-server-demo"'));
  });

  it('encodeOptions/decodeOptions round-trip Buffers through JSON', () => {
    const key = Buffer.from([0, 1, 2, 250, 255]);
    const { options } = norm({ https: { key, cert: '/c', ca: [Buffer.from('ca')] }, custom: { n: 1 } });
    const wire = JSON.parse(JSON.stringify(encodeOptions(options))) as unknown;
    const back = decodeOptions(wire);
    assert.ok(back.https);
    assert.ok(Buffer.isBuffer(back.https.key));
    assert.ok(back.https.key.equals(key));
    const ca = back.https.ca as unknown[];
    assert.ok(Buffer.isBuffer(ca[0]));
    assert.equal(String(ca[0]), 'ca');
    assert.equal(back.https.cert, '/c');
    assert.deepEqual(back.custom, { n: 1 });
    assert.equal(back.workers, options.workers);
  });
});

/** ready() settled, with a handler attached at once so that a rejection is never unhandled. */
async function readyError(c: FakeCluster): Promise<unknown> {
  const result = c.master.ready().then(() => undefined, (err: unknown) => err);
  await flush();
  return result;
}

describe('environment variables are checked at start (issue 8 item 7)', () => {
  const MS = 'a whole number of milliseconds from 0 to 2147483647';
  const bad: Array<[string, string, RegExp]> = [
    ['EGG_APP_CLOSE_TIMEOUT', 'abc', new RegExp(`${MS}, got "abc"\\. Set it to a number such as 5000, or unset it \\(then EGG_MASTER_CLOSE_TIMEOUT applies, else 5000 ms\\)`)],
    ['EGG_AGENT_CLOSE_TIMEOUT', '-5', new RegExp(`${MS}, got "-5"`)],
    ['EGG_MASTER_CLOSE_TIMEOUT', '5s', new RegExp(`${MS}, got "5s"\\. .*unset it \\(then the default of 5000 ms applies\\)`)],
    // setTimeout fires at once above 2^31-1: the close would not wait at all
    ['EGG_APP_CLOSE_TIMEOUT', '2147483648', /got "2147483648"/],
    ['EGG_AGENT_CLOSE_TIMEOUT', '1e4', /got "1e4"/],
    ['EGG_APP_CLOSE_TIMEOUT', '0x10', /got "0x10"/],
    ['EGG_APP_CLOSE_TIMEOUT', '1500.5', /got "1500\.5"/],
    ['GRACEFUL_TIMEOUT', 'ten', new RegExp(`${MS}, got "ten"`)],
    ['EGG_MASTER_LOGGER_LEVEL', 'verbose', /must be a log level: one of ALL, DEBUG, INFO, WARN, ERROR, NONE \(any case\), got "verbose"\. egg-logger prints nothing at an unknown level/],
    ['EGG_APP_WORKER_LOGGER_LEVEL', 'warning', /log level.*got "warning"/],
    ['EGG_AGENT_WORKER_LOGGER_LEVEL', ' INFO', /log level.*got " INFO"/],
    ['EGG_LOG', 'loud', /log level.*got "loud"/],
    ['NODE_CONSOLE_LOGGRE_LEVEL', 'x', /log level.*got "x"/],
    ['EGG_AGENT_DEBUG_PORT', '70000', /must be a port number from 0 to 65535 \(the agent's --inspect-port under a debugger\), got "70000"\. Set a free port, or unset it for 5800/],
    ['EGG_AGENT_DEBUG_PORT', 'auto', /got "auto"/],
  ];
  for (const [name, value, expected] of bad) {
    it(`${name}=${JSON.stringify(value)} is an InvalidOptionError naming the variable, the value and the fix`, () => {
      assert.throws(() => norm({}, { env: { [name]: value } }), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionError, String(err));
        assert.equal(err.code, 'ERR_CLUSTER_INVALID_OPTION');
        assert.ok(err.message.startsWith(`environment variable ${name} must be `), err.message);
        assert.match(err.message, expected);
        return true;
      });
    });
  }

  it('a long or multi-line value is shown escaped and cut', () => {
    assert.throws(() => norm({}, { env: { EGG_LOG: `a\n${'x'.repeat(500)}` } }), (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError);
      assert.match(err.message, /got "a\\nxxx+…"/);
      assert.ok(err.message.length < 400, err.message);
      return true;
    });
  });

  it('valid values, empty ones and any EGG_SERVER_ENV / NODE_ENV / HOST pass', () => {
    const env = {
      EGG_APP_CLOSE_TIMEOUT: '0', EGG_AGENT_CLOSE_TIMEOUT: '2147483647', EGG_MASTER_CLOSE_TIMEOUT: '',
      GRACEFUL_TIMEOUT: ' 3000 ', EGG_MASTER_LOGGER_LEVEL: 'debug', EGG_APP_WORKER_LOGGER_LEVEL: 'NONE',
      EGG_AGENT_WORKER_LOGGER_LEVEL: 'Warn', EGG_LOG: 'ALL', NODE_CONSOLE_LOGGRE_LEVEL: '', EGG_AGENT_DEBUG_PORT: '0',
      EGG_SERVER_ENV: 'any thing', NODE_ENV: 'whatever', HOST: '::',
    };
    const { options } = norm({}, { env });
    assert.deepEqual(options.closeTimeouts, { app: 0, agent: 2147483647 });
    assert.equal(options.agentDebugPort, 0);
  });

  it('options.closeTimeouts and agentDebugPort hold the resolved values (defaults: 5000, 5800)', () => {
    assert.deepEqual(norm({}).options.closeTimeouts, { app: 5000, agent: 5000 });
    assert.equal(norm({}).options.agentDebugPort, 5800);
    const { options } = norm({}, { env: { EGG_MASTER_CLOSE_TIMEOUT: '900', EGG_AGENT_CLOSE_TIMEOUT: '300', EGG_AGENT_DEBUG_PORT: '9230' } });
    assert.deepEqual(options.closeTimeouts, { app: 900, agent: 300 });
    assert.equal(options.agentDebugPort, 9230);
    assert.deepEqual(checkEnv({ EGG_APP_CLOSE_TIMEOUT: '1' }), { closeTimeouts: { app: 1, agent: 5000 }, agentDebugPort: 5800 });
  });

  it('the resolved close timeouts are fixed at start: a later change of the environment cannot break a close', () => {
    const env: NodeJS.ProcessEnv = { EGG_APP_CLOSE_TIMEOUT: '1200' };
    const { options } = norm({}, { env });
    env.EGG_APP_CLOSE_TIMEOUT = 'abc';
    assert.throws(() => closeTimeouts(env), InvalidOptionError);
    assert.deepEqual(options.closeTimeouts, { app: 1200, agent: 5000 });
    assert.ok(Object.isFrozen(options.closeTimeouts));
  });

  it('they are master settings: not enumerable, so not logged, not on argv, not sent to the workers', () => {
    const { options } = norm({ title: 't' }, { env: { EGG_APP_CLOSE_TIMEOUT: '1200' } });
    assert.ok(!Object.keys(options).includes('closeTimeouts'));
    assert.ok(!Object.keys(options).includes('agentDebugPort'));
    assert.doesNotMatch(JSON.stringify(options), /closeTimeouts|agentDebugPort|1200/);
    assert.doesNotMatch(argvOptions(options), /closeTimeouts/);
    assert.equal((decodeOptions(encodeOptions(options)) as Record<string, unknown>).closeTimeouts, undefined);
    assert.doesNotMatch(JSON.stringify(redactOptions(options)), /closeTimeouts/);
  });

  it('an option error is reported before an environment error', () => {
    assert.throws(() => norm({ workers: 'x' }, { env: { EGG_APP_CLOSE_TIMEOUT: 'abc' } }), /options\.workers/);
  });

  for (const [name, value] of [['EGG_APP_CLOSE_TIMEOUT', 'abc'], ['EGG_AGENT_CLOSE_TIMEOUT', '-5'], ['EGG_MASTER_LOGGER_LEVEL', 'verbose']] as const) {
    it(`Master with ${name}=${value}: ready() rejects with the InvalidOptionError and nothing is forked`, async () => {
      const c = createFakeCluster({ env: { [name]: value } });
      const err = await readyError(c);
      assert.ok(err instanceof InvalidOptionError, String(err));
      assert.match(err.message, new RegExp(`^environment variable ${name} must be .*got "${value}"`));
      await flush();
      assert.equal(c.launcher.agents.length, 0);
      assert.equal(c.launcher.pools.length, 0);
      assert.equal(c.master.closed, true);
    });
  }
});

/** A real private key and certificate-shaped PEM, and the base64 body lines no message may show. */
function realPem(): { key: string; cert: string; secrets: string[] } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const cert = pub.replace(/PUBLIC KEY/g, 'CERTIFICATE');
  const bodies = [key, cert].map(pem => pem.split('\n').filter(l => l && !l.startsWith('-----')).join(''));
  // every 12-character slice of the base64 bodies, so that no part of them can hide in a message
  const secrets = bodies.flatMap(body => Array.from({ length: body.length - 11 }, (_, i) => body.slice(i, i + 12)));
  return { key, cert, secrets };
}

function assertNoKeyMaterial(text: string, secrets: string[], what: string): void {
  const found = secrets.find(s => text.includes(s));
  assert.equal(found, undefined, `${what} shows key material (${found}): ${text}`);
}

describe('https key material never reaches an error or a log line (issue 7 §3)', () => {
  const { key, cert, secrets } = realPem();
  const cases: Array<[string, ClusterOptions, RegExp]> = [
    ['key as an array of PEM strings', { https: { key: [key] as unknown as string, cert } },
      /^options\.https\.key must be a file path, or the PEM content as one string or Buffer \(the private key\), got an array of 1 item \(not shown: it may hold key material\)\. Pass one private key$/],
    ['cert as an array of PEM strings', { https: { key, cert: [cert, cert] as unknown as string } },
      /^options\.https\.cert must be .*\(the certificate\), got an array of 2 items \(not shown.*\)\. Pass a single certificate; put intermediate certificates in the same PEM after it, or in options\.https\.ca$/],
    ['key as an array of Buffers', { https: { key: [Buffer.from(key)] as unknown as string, cert } }, /^options\.https\.key .*got an array of 1 item/],
    ['key as { pem } (Node\'s tls form)', { https: { key: { pem: key } as unknown as string, cert } }, /^options\.https\.key .*got \[object Object\] \(object\)/],
    ['https: true with options.key an array', { https: true, key: [key] as unknown as string, cert },
      /^options\.key must be .*got an array of 1 item.*With https: true they come from options\.key and options\.cert; better, use https: \{ key, cert \}$/],
    ['https as a PEM string', { https: key as unknown as boolean }, /^options\.https must be an object \{ key, cert, ca\? \} or false, got a string of \d+ characters \(not shown: it may be key material\)/],
    ['https as a Buffer', { https: Buffer.from(key) as unknown as boolean }, /^options\.https must be .*got a Buffer of \d+ bytes/],
    ['a bad entry among PEM ca entries', { https: { key, cert, ca: [cert, 7] as unknown as string[] } }, /^options\.https\.ca\[1\] must be .*got a number/],
  ];
  for (const [name, options, expected] of cases) {
    it(`${name}: an InvalidOptionError naming the option, without the key`, () => {
      assert.throws(() => norm(options), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionError, String(err));
        assert.match(err.message, expected);
        assertNoKeyMaterial(err.message, secrets, 'the message');
        assertNoKeyMaterial(String(err.stack), secrets, 'the stack');
        return true;
      });
    });
  }

  it('a one-line base64 key without its PEM header is neither printed as a path nor passed on', () => {
    const body = key.split('\n').filter(l => l && !l.startsWith('-----')).join('');
    assert.throws(() => checkHttpsFiles({ key: body, cert: '/etc/ssl/cert.pem' }), (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError);
      assert.match(err.message, /^options\.https\.key is neither an existing file nor PEM content \(a string of \d+ characters, not shown: it may be key material\); give a file path, or the PEM content with its -----BEGIN line/);
      assertNoKeyMaterial(err.message, secrets, 'the message');
      return true;
    });
    // a PEM body broken over lines without its header: the same
    assert.throws(() => checkHttpsFiles({ key: `${body.slice(0, 64)}\n${body.slice(64)}`, cert: '/c' }), /not shown: it may be key material/);
  });

  it('a missing file path is still named (paths are not secret)', () => {
    assert.throws(() => checkHttpsFiles({ key, cert, ca: [cert, '/etc/ssl/nope-ca.pem'] }),
      /^InvalidOptionError: options\.https\.ca\[1\] file "\/etc\/ssl\/nope-ca\.pem" does not exist/);
  });

  it('the Master (production, so options are logged in full) neither logs nor rejects with key material', async () => {
    for (const https of [{ key: [key], cert }, { key, cert: [cert] }, { key, cert, ca: [cert, 1] }]) {
      const c = createFakeCluster({ options: { https: https as ClusterOptions['https'], apiToken: key }, env: { NODE_ENV: 'production' } });
      const err = await readyError(c);
      assert.ok(err instanceof InvalidOptionError, String(err));
      assertNoKeyMaterial(err.message, secrets, 'the ready() error');
      assertNoKeyMaterial(c.logger.lines().join('\n'), secrets, 'the log');
      assert.equal(c.launcher.agents.length, 0);
    }
  });

  it('a cluster started with PEM strings logs no key material either', async () => {
    const c = createFakeCluster({ options: { https: { key, cert, ca: [cert], passphrase: 'pw-xyz' } }, env: { NODE_ENV: 'production' } });
    await flush();
    assert.equal(c.launcher.agents.length, 1, c.logger.lines().join('\n'));
    assert.ok(c.logger.has('[master] start with options'), 'the options were logged');
    assertNoKeyMaterial(c.logger.lines().join('\n'), secrets, 'the log');
    assert.ok(!c.logger.lines().some(l => l.includes('pw-xyz')));
    await c.master.close();
  });
});

describe('options that cannot travel to the workers (issue 8 item 8)', () => {
  const rejected: Array<[string, () => ClusterOptions, RegExp]> = [
    ['a BigInt', () => ({ custom: { limit: 10n } }),
      /^options\.custom\.limit is a BigInt: options travel to the agent and the app workers as JSON, and JSON has no BigInt\. Pass it as a string or a number$/],
    ['a BigInt in an array', () => ({ list: [1, 2n] }), /^options\.list\[1\] is a BigInt/],
    ['a BigInt under an odd key', () => ({ 'my-opts': { 'a b': 3n } }), /^options\["my-opts"\]\["a b"\] is a BigInt/],
    ['an object that contains itself', () => {
      const self: Record<string, unknown> = { name: 'x' };
      self.self = self;
      return { custom: self };
    }, /^options\.custom\.self is a circular reference \(it points back to options\.custom\): options travel to the agent and the app workers as JSON, which cannot hold a cycle\. Pass a plain copy of the data the app needs, without the back reference$/],
    ['a cycle through an array', () => {
      const a: Record<string, unknown> = {};
      a.children = [{ parent: a }];
      return { plugins: { tree: a } };
    }, /^options\.plugins\.tree\.children\[0\]\.parent is a circular reference \(it points back to options\.plugins\.tree\)/],
    ['a toJSON that throws', () => ({ conn: { toJSON() { throw new Error('socket closed'); } } }),
      /^options\.conn cannot be read for the workers: socket closed\. options travel to the agent and the app workers as JSON; pass plain data there$/],
    ['a getter that throws', () => ({ lazy: Object.defineProperty({}, 'x', { enumerable: true, get() { throw new Error('not yet'); } }) }),
      /^options\.lazy\.x cannot be read for the workers: not yet/],
    ['a toJSON that returns a BigInt', () => ({ id: { toJSON: () => 5n } }), /^options\.id is a BigInt/],
  ];
  for (const [name, make, expected] of rejected) {
    it(`${name}: an InvalidOptionError with the key path`, () => {
      assert.throws(() => norm(make()), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionError, String(err));
        assert.match(err.message, expected);
        return true;
      });
    });
  }

  it('the value itself is never printed (it may be a secret)', () => {
    assert.throws(() => norm({ token: 123456789012345678901234567890n }), (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError);
      assert.doesNotMatch(err.message, /1234567890/);
      return true;
    });
  });

  it('shared objects that are not cycles, Buffers, Dates and toJSON values pass, and survive the codec', () => {
    const shared = { a: 1 };
    const input = { one: shared, two: [shared, shared], at: new Date(0), raw: Buffer.from('x'), j: { toJSON: () => ({ ok: true }) } };
    const { options, warnings } = norm(input);
    assert.deepEqual(warnings, []);
    const back = decodeOptions(JSON.parse(JSON.stringify(encodeOptions(options)))) as Record<string, unknown>;
    assert.deepEqual(back.two, [{ a: 1 }, { a: 1 }]);
    assert.equal(back.at, '1970-01-01T00:00:00.000Z');
    assert.deepEqual(back.j, { ok: true });
  });

  it('what JSON drops (functions, symbols, Map contents, NaN, undefined in arrays) is dropped as in egg-cluster, with one warning naming the paths', () => {
    const { options, warnings } = norm({ onReady() {}, tag: Symbol('t'), m: new Map([[1, 2]]), list: [undefined, Number.NaN], gone: undefined });
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0], '[master] options.onReady (function), options.tag (symbol), options.m (a Map, arrives as {}), '
      + 'options.list[0] (undefined, becomes null), options.list[1] (NaN, becomes null): options travel to the agent and the app workers as JSON, '
      + 'which drops or changes these values, so the agent and the app workers do not get them as given (egg-cluster drops them the same way). '
      + 'Pass plain data, or set it up in the app');
    const back = decodeOptions(encodeOptions(options)) as Record<string, unknown>;
    assert.equal('onReady' in back, false);
    assert.deepEqual(back.m, {});
    assert.deepEqual(back.list, [null, null]);
  });

  it('the warning lists at most 10 paths', () => {
    const many = Object.fromEntries(Array.from({ length: 13 }, (_, i) => [`f${i}`, () => i]));
    const warning = checkSendable(many);
    assert.match(warning ?? '', /options\.f9 \(function\) and 3 more: /);
    assert.doesNotMatch(warning ?? '', /options\.f10/);
  });

  it('a deep but acyclic object passes', () => {
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 500; i++) deep = { next: deep };
    assert.equal(checkSendable({ deep }), undefined);
  });

  for (const env of [{ EGG_SERVER_ENV: 'prod' }, {}]) {
    it(`new Master() does not throw on a BigInt or a cycle (env ${JSON.stringify(env)}): ready() rejects, nothing is forked`, async () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.me = cyclic;
      for (const extra of [{ big: 1n }, { cyclic }]) {
        let c: FakeCluster | undefined;
        assert.doesNotThrow(() => {
          c = createFakeCluster({ options: extra, env });
        });
        const err = await readyError(c!);
        assert.ok(err instanceof InvalidOptionError, String(err));
        assert.match(err.message, /^options\.(big is a BigInt|cyclic\.me is a circular reference)/);
        assert.equal(c!.launcher.agents.length, 0);
      }
    });
  }
});
