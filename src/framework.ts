import fs from 'node:fs';
import path from 'node:path';
import { FrameworkError, InvalidOptionError } from './errors.js';

export interface FrameworkInfo {
  /** Absolute path of the framework package folder. */
  path: string;
  name: string;
  version: string;
}

function readJSON(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** The app's package.json must exist: it is how egg finds the app and its framework. */
export function readAppPackage(baseDir: string): Record<string, unknown> {
  const pkgPath = path.join(baseDir, 'package.json');
  if (!fs.existsSync(pkgPath)) {
    throw new InvalidOptionError(
      `${pkgPath} should exist: options.baseDir must be the root folder of an egg app (the one with its package.json), got "${baseDir}"`,
    );
  }
  try {
    return readJSON(pkgPath);
  } catch (err) {
    throw new InvalidOptionError(`${pkgPath} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function resolvePackageDir(name: string, baseDir: string, cwd: string): string {
  const dirs = [...new Set([path.join(baseDir, 'node_modules'), path.join(cwd, 'node_modules')])];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate);
  }
  // Hoisted or workspace installs: let Node's resolver walk up from baseDir.
  try {
    const pkg = require.resolve(`${name}/package.json`, { paths: [baseDir, cwd] });
    return path.dirname(fs.realpathSync(pkg));
  } catch {
    throw new FrameworkError(
      `${name} is not found in ${JSON.stringify(dirs)}: install it in the app (npm i ${name}) or set options.framework to its absolute path`,
    );
  }
}

/**
 * Find the framework as egg-utils' getFrameworkPath does: explicit `framework` (absolute
 * path or npm name; `customEgg` is its deprecated alias), else package.json `egg.framework`,
 * else `egg`, resolved from baseDir/node_modules then cwd/node_modules.
 * The exports (Application, Agent) are checked inside the agent, which loads the framework
 * anyway: loading it in the master too costs ~200 ms and 30+ MiB of master memory.
 */
export function resolveFramework(framework: string, baseDir: string, cwd: string): FrameworkInfo {
  const appPkg = readAppPackage(baseDir);
  let name = framework;
  if (!name) {
    const egg = appPkg.egg as { framework?: unknown } | undefined;
    name = typeof egg?.framework === 'string' && egg.framework ? egg.framework : 'egg';
  }
  let dir: string;
  if (path.isAbsolute(name)) {
    if (!fs.existsSync(name)) {
      throw new FrameworkError(`${name} should exist: options.framework points to a folder that is not there`);
    }
    dir = name;
  } else if (name.startsWith('./') || name.startsWith('../')) {
    dir = path.resolve(baseDir, name);
    if (!fs.existsSync(dir)) {
      throw new FrameworkError(`${dir} should exist: options.framework "${name}" is resolved from baseDir`);
    }
  } else {
    dir = resolvePackageDir(name, baseDir, cwd);
  }
  let pkg: Record<string, unknown> = {};
  try {
    pkg = readJSON(path.join(dir, 'package.json'));
  } catch {
    // a framework given as a plain folder (tests do this): name it after the folder
  }
  return {
    path: dir,
    name: typeof pkg.name === 'string' ? pkg.name : path.basename(dir),
    version: typeof pkg.version === 'string' ? pkg.version : 'unknown',
  };
}
