// The workers of an ESM app ("type": "module") load the framework's ESM build, as under
// @eggjs/cluster; every other app keeps require() (src/worker/bootstrap.ts loadFramework).
// The fake framework is dual like egg 4: exports["."] has an import and a require target,
// each exporting Application/Agent classes that say which build they come from.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { ResolvedOptions } from '../../src/options.js';
import { isESMApp, loadFramework } from '../../src/worker/bootstrap.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'egg-clutch-esm-app-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Writes files (relative path -> JSON value or text) under root/name and returns that folder. */
function tree(name: string, files: Record<string, unknown>): string {
  const dir = path.join(root, name);
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

// egg 4's layout: a nameless {"type": "commonjs"} package.json in dist/commonjs, `main` on the CJS build
const dualFramework = {
  'package.json': {
    name: 'dual-fw', main: './dist/commonjs/index.js',
    exports: {
      '.': {
        import: { types: './dist/esm/index.d.ts', default: './dist/esm/index.js' },
        require: { types: './dist/commonjs/index.d.ts', default: './dist/commonjs/index.js' },
      },
    },
  },
  'dist/commonjs/package.json': { type: 'commonjs' },
  'dist/commonjs/index.js': "exports.Application = class { static build = 'cjs'; };\nexports.Agent = class { static build = 'cjs'; };\n",
  'dist/esm/package.json': { type: 'module' },
  'dist/esm/index.js': "export class Application { static build = 'esm'; }\nexport class Agent { static build = 'esm'; }\n",
};

function app(name: string, pkg: Record<string, unknown>): string {
  const files: Record<string, unknown> = { 'package.json': pkg };
  for (const [rel, content] of Object.entries(dualFramework)) files[`node_modules/dual-fw/${rel}`] = content;
  return tree(name, files);
}

async function build(baseDir: string, framework: string, name: 'Application' | 'Agent'): Promise<string> {
  const options = { baseDir, framework } as unknown as ResolvedOptions;
  const ctor = await loadFramework(options, name) as unknown as { build: string };
  return ctor.build;
}

describe('loadFramework and the app\'s module type', () => {
  it('"type": "module": the ESM build, by absolute path (as egg-bin and @eggjs/mock pass it) and by name', async () => {
    const baseDir = app('esm-app', { name: 'esm-app', type: 'module' });
    assert.equal(await build(baseDir, path.join(baseDir, 'node_modules/dual-fw'), 'Application'), 'esm');
    assert.equal(await build(baseDir, 'dual-fw', 'Agent'), 'esm');
  });

  it('no "type" or "type": "commonjs": the CommonJS build, as before', async () => {
    const plain = app('plain-app', { name: 'plain-app' });
    assert.equal(await build(plain, path.join(plain, 'node_modules/dual-fw'), 'Application'), 'cjs');
    const cjs = app('cjs-app', { name: 'cjs-app', type: 'commonjs' });
    assert.equal(await build(cjs, 'dual-fw', 'Agent'), 'cjs');
  });

  it('an ESM app on a framework without exports (egg 3 style): loaded as before', async () => {
    const baseDir = tree('esm-app-egg3', {
      'package.json': { name: 'esm-app-egg3', type: 'module' },
      'node_modules/old-fw/package.json': { name: 'old-fw', main: 'index.js' },
      'node_modules/old-fw/index.js': "exports.Application = class { static build = 'main'; };\n",
    });
    assert.equal(await build(baseDir, 'old-fw', 'Application'), 'main');
  });
});

describe('isESMApp', () => {
  it('true only for "type": "module"; false without a readable package.json', () => {
    assert.equal(isESMApp(tree('t-esm', { 'package.json': { type: 'module' } })), true);
    assert.equal(isESMApp(tree('t-cjs', { 'package.json': { type: 'commonjs' } })), false);
    assert.equal(isESMApp(tree('t-none', { 'package.json': {} })), false);
    assert.equal(isESMApp(path.join(root, 'no-such-app')), false);
  });
});
