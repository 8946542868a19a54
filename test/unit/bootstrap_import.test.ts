/**
 * importModule / pickExports / resolveImport: options.require and the framework are loaded
 * the way egg 4 loads them (@eggjs/utils importModule): CommonJS by require, ES modules by
 * import() when require() refuses them, import-only packages resolved with the import
 * conditions, `default` unwrapped. The packages are in test/fixtures/apps/w-esm/node_modules.
 *
 * In this process tsx's require hook compiles ES modules to CommonJS, which hides Node's own
 * errors; the "plain Node" cases run the built lib/ in a child `node` without tsx, where
 * require() really throws ERR_REQUIRE_ASYNC_MODULE / ERR_REQUIRE_ESM /
 * ERR_PACKAGE_PATH_NOT_EXPORTED.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { importModule, pickExports, resolveImport } from '../../src/worker/bootstrap.js';

const ROOT = path.resolve(__dirname, '..', '..');
const BASE = path.join(ROOT, 'test', 'fixtures', 'apps', 'w-esm');
const MODULES = path.join(BASE, 'node_modules');
const LIB = path.join(ROOT, 'lib', 'worker', 'bootstrap.js');

describe('importModule (in process)', () => {
  it('requires CommonJS and returns module.exports as is', async () => {
    const mod = await importModule('w-cjs', BASE) as { kind: string };
    assert.equal(mod.kind, 'cjs');
    assert.equal(mod, require(path.join(MODULES, 'w-cjs')), 'the same instance the app\'s own require gets');
  });

  it('loads a package whose exports has only an "import" condition, and its subpath patterns', async () => {
    assert.equal((await importModule('w-import-only', BASE) as { kind: string }).kind, 'import-only');
    assert.equal((await importModule('w-import-only/feature/a', BASE) as { kind: string }).kind, 'import-only/feature/a');
  });

  it('loads an ES module with top-level await', async () => {
    assert.equal((await importModule('w-tla', BASE) as { kind: string }).kind, 'tla');
  });

  it('loads by absolute path and by a path relative to baseDir', async () => {
    assert.equal((await importModule(path.join(MODULES, 'w-cjs', 'index.js'), '/') as { kind: string }).kind, 'cjs');
    assert.equal((await importModule('./node_modules/w-cjs', BASE) as { kind: string }).kind, 'cjs');
  });

  it('a module that throws: the error comes through unchanged', async () => {
    await assert.rejects(importModule('w-throws', BASE), /w-throws failed on purpose/);
  });

  it('a missing module: MODULE_NOT_FOUND, as require says it', async () => {
    await assert.rejects(importModule('w-no-such-package', BASE), (err: NodeJS.ErrnoException) => err.code === 'MODULE_NOT_FOUND');
  });
});

describe('pickExports', () => {
  class Application {}
  class Agent {}

  it('takes the exports themselves when they carry the names', () => {
    const mod = { Application, Agent };
    assert.equal(pickExports(mod, ['Application', 'Agent']), mod);
  });

  it('unwraps default (ES module `export default`) and default.default (tsc CommonJS loaded by import())', () => {
    const inner = { Application, Agent };
    assert.equal(pickExports({ default: inner }, ['Application']), inner);
    assert.equal(pickExports({ default: { __esModule: true, default: inner } }, ['Application', 'Agent']), inner);
  });

  it('prefers named exports over default', () => {
    const mod = { Application, Agent, default: { Application: class Other {} } };
    assert.equal(pickExports(mod, ['Application']), mod);
  });

  it('undefined when a name is missing at every level', () => {
    assert.equal(pickExports({ Application, default: { Application } }, ['Application', 'Agent']), undefined);
    assert.equal(pickExports(undefined, ['Application']), undefined);
    assert.equal(pickExports('egg', ['Application']), undefined);
  });

  it('the fixture packages: CommonJS with __esModule + default, and ESM export default', async () => {
    assert.ok(pickExports(await importModule('w-cjs-default', BASE), ['Application', 'Agent']));
    assert.ok(pickExports(await importModule('w-esm-default', BASE), ['Application', 'Agent']));
  });
});

describe('resolveImport (the "import" conditions of exports)', () => {
  it('resolves ".", a subpath pattern, and a package folder given by path', () => {
    assert.equal(resolveImport('w-import-only', [BASE]), path.join(MODULES, 'w-import-only', 'index.js'));
    assert.equal(resolveImport('w-import-only/feature/a', [BASE]), path.join(MODULES, 'w-import-only', 'features', 'a.js'));
    assert.equal(resolveImport(path.join(MODULES, 'w-import-only'), ['/']), path.join(MODULES, 'w-import-only', 'index.js'));
    assert.equal(resolveImport('./node_modules/w-import-only', [BASE]), path.join(MODULES, 'w-import-only', 'index.js'));
  });

  it('finds a package in a parent folder\'s node_modules, as Node does', () => {
    assert.equal(resolveImport('w-import-only', [path.join(BASE, 'some', 'deep', 'dir')]), path.join(MODULES, 'w-import-only', 'index.js'));
  });

  it('undefined for an unexported subpath, a package without exports, a missing package', () => {
    assert.equal(resolveImport('w-import-only/nope', [BASE]), undefined);
    assert.equal(resolveImport('w-cjs', [BASE]), undefined);
    assert.equal(resolveImport('w-no-such-package', [BASE]), undefined);
  });
});

/** Runs importModule from the built lib/ in a child `node` (no tsx); prints `kind` or the error code. */
function plainNode(spec: string, nodeArgs: string[] = []): { kind?: string; rawRequire: string } {
  assert.ok(fs.existsSync(LIB), `${LIB} is missing: run npm run build first (these cases test the built code in plain Node)`);
  const script = `
    const { importModule } = require(${JSON.stringify(LIB)});
    let rawRequire = 'ok';
    try { require(require.resolve(${JSON.stringify(spec)}, { paths: [${JSON.stringify(BASE)}] })); }
    catch (err) { rawRequire = err.code; }
    importModule(${JSON.stringify(spec)}, ${JSON.stringify(BASE)}).then(
      mod => console.log(JSON.stringify({ kind: mod.kind, rawRequire })),
      err => console.log(JSON.stringify({ error: err.code || err.message, rawRequire })),
    );`;
  const out = execFileSync(process.execPath, [...nodeArgs, '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(out.trim().split('\n').pop()!) as { kind?: string; rawRequire: string };
}

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const requireEsmByDefault = major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19);

describe(`importModule in plain Node ${process.version}`, () => {
  it('import-only package: require.resolve throws ERR_PACKAGE_PATH_NOT_EXPORTED, importModule loads it', () => {
    assert.deepEqual(plainNode('w-import-only'), { kind: 'import-only', rawRequire: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
  });

  it('top-level await: require() throws ERR_REQUIRE_ASYNC_MODULE (or ERR_REQUIRE_ESM before require(esm)), importModule loads it', () => {
    const expected = requireEsmByDefault ? 'ERR_REQUIRE_ASYNC_MODULE' : 'ERR_REQUIRE_ESM';
    assert.deepEqual(plainNode('w-tla'), { kind: 'tla', rawRequire: expected });
  });

  it('ES module without require(esm) (--no-experimental-require-module): ERR_REQUIRE_ESM, importModule loads it', t => {
    if (!requireEsmByDefault) {
      // no require(esm) on this Node at all: the plain run is that case
      assert.deepEqual(plainNode('w-esm-sync'), { kind: 'esm-sync', rawRequire: 'ERR_REQUIRE_ESM' });
      return;
    }
    t.diagnostic('require(esm) switched off with --no-experimental-require-module');
    assert.deepEqual(plainNode('w-esm-sync', ['--no-experimental-require-module']), { kind: 'esm-sync', rawRequire: 'ERR_REQUIRE_ESM' });
    assert.deepEqual(plainNode('w-tla', ['--no-experimental-require-module']), { kind: 'tla', rawRequire: 'ERR_REQUIRE_ESM' });
  });

  it('CommonJS and a synchronous ES module load through require()', () => {
    assert.deepEqual(plainNode('w-cjs'), { kind: 'cjs', rawRequire: 'ok' });
    assert.deepEqual(plainNode('w-esm-sync'), { kind: 'esm-sync', rawRequire: requireEsmByDefault ? 'ok' : 'ERR_REQUIRE_ESM' });
  });
});
