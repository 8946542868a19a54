// An OpenTelemetry-style preload, loaded with `--import` (as
// `--import @opentelemetry/auto-instrumentations-node/register` is): an ES module that awaits
// at top level before the process's main module may run, then registers itself. Node runs the
// main module only after this settles, so a worker's main module starts at least
// COMPAT_PRELOAD_DELAY_MS (default 300) late: the case in which egg-clutch's workers used to
// lose the master's first IPC message and hang (issue 7 §1).
//
// Observable effects, per process: globalThis.__eggClutchCompatPreload, and a marker file
// <COMPAT_PRELOAD_MARKERS>/<pid>.json when that variable names a folder.
import fs from 'node:fs';
import path from 'node:path';

const delayMs = Number(process.env.COMPAT_PRELOAD_DELAY_MS ?? 300);
const started = Date.now();
await new Promise(resolve => setTimeout(resolve, delayMs));

const record = {
  pid: process.pid,
  ppid: process.ppid,
  main: process.argv[1] ?? null,
  awaitedMs: Date.now() - started,
};
globalThis.__eggClutchCompatPreload = record;

const dir = process.env.COMPAT_PRELOAD_MARKERS;
if (dir) fs.writeFileSync(path.join(dir, `${process.pid}.json`), JSON.stringify(record));
