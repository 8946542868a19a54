// egg 3 + egg-scripts 3 `start --daemon` with an OpenTelemetry-style `--import` preload (an ES
// module that awaits 300 ms at top level): the master, the agent and both app workers run it
// (a marker file per pid proves it), the app serves, and `egg-scripts stop` leaves no process.
// Two ways users pass it: NODE_OPTIONS (what OpenTelemetry's and Sentry's docs say), and
// egg-scripts' own `--node-options--import=…` (the master's execArgv, which the workers inherit).
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  COMPAT_DIR, EGG3_APP, assertInstalled, assertNoProcessWith, assertPidsGone, processesWith, removeTmpHomes, tmpHome,
} from './_helpers.js';
import { EGG3_SCRIPTS as egg3, assertServes, cleanupTitle, daemonStart, daemonStop, type StartExtra } from './_scripts.js';

const PRELOAD = path.join(COMPAT_DIR, 'preload', 'otel-like.mjs');
const DELAY_MS = 300;

const titles: string[] = [];

before(() => assertInstalled(EGG3_APP, 'egg-cluster'));
after(async () => {
  for (const title of titles) await cleanupTitle(title);
});
after(() => removeTmpHomes());

interface Marker {
  pid: number;
  main: string | null;
  awaitedMs: number;
}

function readMarkers(dir: string): Map<number, Marker> {
  const markers = new Map<number, Marker>();
  for (const file of fs.readdirSync(dir)) {
    const m = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Marker;
    markers.set(m.pid, m);
  }
  return markers;
}

async function startPreloadedServeStop(t: TestContext, label: string, extra: (markers: string) => StartExtra): Promise<void> {
  const markers = tmpHome(`${label}-markers`);
  const t0 = Date.now();
  const s = await daemonStart(egg3, label, extra(markers));
  titles.push(s.title);
  t.diagnostic(`egg-scripts start --daemon returned after ${Date.now() - t0} ms`);

  await assertServes(egg3, s.port);

  // master, agent and both app workers carry the title; each of them ran the preload to its end
  const procs = processesWith(`"title":"${s.title}"`);
  assert.equal(procs.length, 4, `master, agent and 2 app workers carry the title:\n${procs.map(p => p.args).join('\n')}`);
  const seen = readMarkers(markers);
  for (const p of procs) {
    const marker = seen.get(p.pid);
    assert.ok(marker, `pid ${p.pid} (${p.args.slice(0, 120)}…) wrote no preload marker; markers: ${[...seen.keys()].join(', ')}`);
    assert.ok(marker.awaitedMs >= DELAY_MS - 5, `pid ${p.pid} awaited ${marker.awaitedMs} ms in the preload`);
  }
  const mains = procs.map(p => path.basename(seen.get(p.pid)!.main ?? '')).sort();
  t.diagnostic(`preloaded main modules: ${mains.join(', ')}`);
  assert.deepEqual(mains, ['agent_worker.js', 'app_worker.js', 'app_worker.js', 'start-cluster'].sort());

  const stderrLog = path.join(s.home, 'logs', 'master-stderr.log');
  assert.equal(fs.existsSync(stderrLog) ? fs.readFileSync(stderrLog, 'utf8') : '', '', 'nothing on the master stderr');

  const out = await daemonStop(egg3, s.title, s.home);
  assert.match(out, /got master pid/);
  await assertNoProcessWith(`"title":"${s.title}"`, 10_000);
  await assertPidsGone(procs.map(p => p.pid), 5000, 'the preloaded cluster');
}

test('NODE_OPTIONS="--import <esm preload awaiting 300 ms>" egg-scripts start --daemon: every process ran it, serves, stop leaves none', {
  timeout: 150_000,
}, async t => {
  await startPreloadedServeStop(t, 'egg3-preload-env', markers => ({
    env: { NODE_OPTIONS: `--import ${PRELOAD}`, COMPAT_PRELOAD_MARKERS: markers, COMPAT_PRELOAD_DELAY_MS: String(DELAY_MS) },
  }));
});

test('egg-scripts start --daemon --node-options--import=<esm preload> (the master\'s execArgv): every process ran it, serves, stop leaves none', {
  timeout: 150_000,
}, async t => {
  await startPreloadedServeStop(t, 'egg3-preload-argv', markers => ({
    args: [`--node-options--import=${PRELOAD}`],
    env: { COMPAT_PRELOAD_MARKERS: markers, COMPAT_PRELOAD_DELAY_MS: String(DELAY_MS) },
  }));
});
