/**
 * deploy/: the Kubernetes manifests and the Dockerfile, checked by reading them (no cluster,
 * no Docker engine on the CI machine).
 *
 * - Every object of deploy/kubernetes/*.yaml validates against the Kubernetes JSON schemas of
 *   the npm package kubernetes-models (types, required fields, quantity formats; like those
 *   schemas, unknown fields are not rejected, so the fields this file relies on are read and
 *   asserted one by one below).
 * - terminationGracePeriodSeconds covers shutdownDelay + app close + agent close + margin,
 *   computed with egg-clutch's own closeTimeouts() from the env the pod really gets (the
 *   image's ENV overlaid with the manifest's).
 * - Probes hit the master's status port at /readyz and /livez; no preStop hook.
 * - The CPU limit gives the worker count egg-clutch's cgroup reader derives from it.
 * - The Dockerfile: non-root user, `npm ci --omit=dev`, tini as PID 1, production env, and
 *   every path it COPYs exists.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { closeTimeouts } from '../../src/options.js';
import { cgroupCpuLimit } from '../../src/cpus.js';
import { DEPLOY, ROOT, execForm, loadManifests, milliCpus, parseDockerfile, stageEnv, type KubeObject } from './_deploy.js';

/** What a margin must at least leave for the signal to arrive and the processes to exit. */
const MIN_MARGIN_MS = 5000;
const STATUS_PATHS = { startupProbe: '/readyz', readinessProbe: '/readyz', livenessProbe: '/livez' } as const;

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const objects = loadManifests();
const dockerStages = parseDockerfile(fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8'));
const runtime = dockerStages[dockerStages.length - 1]!;
const imageEnv = stageEnv(runtime);

function only(kind: string): KubeObject {
  const found = objects.filter(o => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind} in deploy/kubernetes, found ${found.length}`);
  return found[0]!;
}

/** The app container of the Deployment. */
function appContainer(): any {
  const containers = only('Deployment').spec.template.spec.containers as any[];
  assert.equal(containers.length, 1, 'one container per pod: the egg-clutch master');
  return containers[0];
}

/** The env the master sees: the image's ENV, then the container's `env` over it. */
function podEnv(container: any): Record<string, string> {
  const env: Record<string, string> = { ...imageEnv };
  for (const { name, value, valueFrom } of container.env ?? []) {
    assert.equal(valueFrom, undefined, `${name}: the checks below need literal values`);
    env[name] = String(value);
  }
  return env;
}

/** Grace period in ms minus what the shutdown may take, and the parts, for a pod env. */
function graceBudget(graceSeconds: number, env: Record<string, string>) {
  const shutdownDelay = env.EGG_CLUSTER_SHUTDOWN_DELAY === undefined ? 0 : Number(env.EGG_CLUSTER_SHUTDOWN_DELAY);
  assert.ok(Number.isInteger(shutdownDelay) && shutdownDelay >= 0, `EGG_CLUSTER_SHUTDOWN_DELAY=${env.EGG_CLUSTER_SHUTDOWN_DELAY}`);
  const { app, agent } = closeTimeouts(env);
  const needed = shutdownDelay + app + agent;
  return { shutdownDelay, app, agent, needed, margin: graceSeconds * 1000 - needed };
}

/** The containerPort a probe's `port` (a number or a port name) points at. */
function probePort(container: any, port: number | string): number {
  if (typeof port === 'number') return port;
  const named = (container.ports as any[]).find(p => p.name === port);
  assert.ok(named, `probe port ${port} names no container port`);
  return named.containerPort as number;
}

describe('deploy/kubernetes', () => {
  it('every object validates against the Kubernetes schemas (kubernetes-models)', () => {
    assert.ok(objects.length >= 2, 'a Deployment and a Service at least');
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      assert.ok(Model, `${object.source}: no schema checked for ${object.apiVersion} ${object.kind}; add it to MODELS`);
      const { source, ...data } = object;
      assert.doesNotThrow(() => new Model(data).validate(), `${source} (${object.kind} ${object.metadata.name})`);
    }
    console.log('validated: %s', objects.map(o => `${o.kind}/${o.metadata.name}`).join(', '));
  });

  it('the schema check rejects a broken object (it can fail)', () => {
    const deployment: Partial<KubeObject> = structuredClone(only('Deployment'));
    delete deployment.source;
    deployment.spec.template.spec.containers[0].resources.limits.cpu = 'two';
    assert.throws(() => new Deployment(deployment).validate(), /cpu/);
  });

  it('selectors match the pod template labels', () => {
    const deployment = only('Deployment');
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    const selects = (selector: Record<string, string>, what: string): void => {
      assert.ok(Object.keys(selector).length > 0, `${what}: empty selector`);
      for (const [k, v] of Object.entries(selector)) assert.equal(labels[k], v, `${what} selects ${k}=${v}, the pods have ${labels[k]}`);
    };
    selects(deployment.spec.selector.matchLabels, 'Deployment');
    for (const o of objects.filter(x => x.kind === 'Service')) selects(o.spec.selector, `Service ${o.metadata.name}`);
    for (const o of objects.filter(x => x.kind === 'PodDisruptionBudget')) selects(o.spec.selector.matchLabels, `PDB ${o.metadata.name}`);
    const ports = (appContainer().ports as any[]).map(p => p.name);
    for (const o of objects.filter(x => x.kind === 'Service')) {
      for (const p of o.spec.ports) {
        if (typeof p.targetPort === 'string') assert.ok(ports.includes(p.targetPort), `Service targetPort ${p.targetPort} is no container port`);
      }
    }
  });

  it('terminationGracePeriodSeconds >= shutdownDelay + app close + agent close + margin', () => {
    const grace = only('Deployment').spec.template.spec.terminationGracePeriodSeconds as number;
    assert.equal(typeof grace, 'number', 'terminationGracePeriodSeconds must be set (the default 30 s is not derived from anything)');
    const env = podEnv(appContainer());
    const b = graceBudget(grace, env);
    console.log('grace period: %s ms >= shutdownDelay %s + app close %s + agent close %s = %s ms, margin %s ms (minimum %s)',
      grace * 1000, b.shutdownDelay, b.app, b.agent, b.needed, b.margin, MIN_MARGIN_MS);
    assert.ok(b.shutdownDelay > 0, 'deploy/ sets EGG_CLUSTER_SHUTDOWN_DELAY: Kubernetes routes traffic for a while after SIGTERM');
    assert.ok(b.margin >= MIN_MARGIN_MS,
      `terminationGracePeriodSeconds ${grace} leaves ${b.margin} ms after ${b.needed} ms of shutdown; need >= ${MIN_MARGIN_MS}`);
    // the same arithmetic fails for a grace period that does not cover it, and follows the close timeouts
    assert.ok(graceBudget(b.needed / 1000, env).margin < MIN_MARGIN_MS);
    assert.ok(graceBudget(grace, { ...env, EGG_APP_CLOSE_TIMEOUT: String(grace * 1000) }).margin < MIN_MARGIN_MS);
  });

  it('probes target the master status port: startup and readiness /readyz, liveness /livez', () => {
    const container = appContainer();
    const env = podEnv(container);
    assert.equal(env.EGG_CLUSTER_STATUS_HOST, '0.0.0.0', 'the kubelet probes the pod IP: the status server must not bind loopback');
    const statusPort = Number(env.EGG_CLUSTER_STATUS_PORT);
    assert.ok(Number.isInteger(statusPort) && statusPort > 0, `EGG_CLUSTER_STATUS_PORT=${env.EGG_CLUSTER_STATUS_PORT}`);
    for (const [probe, expectedPath] of Object.entries(STATUS_PATHS)) {
      const spec = container[probe];
      assert.ok(spec?.httpGet, `${probe}: an httpGet probe`);
      assert.equal(spec.httpGet.path, expectedPath, probe);
      assert.equal(probePort(container, spec.httpGet.port), statusPort, `${probe} port`);
    }
    // the app port is never the status port
    const http = (container.ports as any[]).find(p => p.name === 'http');
    assert.notEqual(http?.containerPort, statusPort);
    // boot budget before the kubelet gives up on the startup probe
    const s = container.startupProbe;
    console.log('startup budget: %s s; liveness restarts after %s s of failed /livez', s.periodSeconds * s.failureThreshold,
      container.livenessProbe.periodSeconds * container.livenessProbe.failureThreshold);
  });

  it('no preStop hook: shutdownDelay keeps the pod serving after SIGTERM instead', () => {
    for (const c of [...only('Deployment').spec.template.spec.containers, ...(only('Deployment').spec.template.spec.initContainers ?? [])]) {
      assert.equal(c.lifecycle?.preStop, undefined, `container ${c.name} has a preStop hook`);
    }
  });

  it('the CPU limit is a whole number of CPUs and sets the default worker count', () => {
    const container = appContainer();
    const env = podEnv(container);
    assert.equal(env.WORKERS, undefined, 'WORKERS unset: the worker count follows the CPU limit');
    const limit = milliCpus(container.resources.limits.cpu);
    assert.equal(milliCpus(container.resources.requests.cpu), limit, 'requests = limits (Guaranteed QoS)');
    assert.ok(container.resources.limits.memory && container.resources.requests.memory, 'memory request and limit');
    assert.equal(limit % 1000, 0, `limits.cpu ${container.resources.limits.cpu}: a fraction would round the worker count up past the quota`);
    // the kubelet writes cpu.max = "<limit in ms of CPU per 100 ms period> 100000" (CFS period 100 ms)
    const cpuMax = `${limit * 100} 100000`;
    const workers = cgroupCpuLimit(file => (file === '/sys/fs/cgroup/cpu.max' ? cpuMax : undefined));
    console.log('limits.cpu %s -> cpu.max "%s" -> %s app workers', container.resources.limits.cpu, cpuMax, workers);
    assert.equal(workers, limit / 1000);
  });

  it('non-root, read-only root filesystem, the dirs egg writes are emptyDir volumes', () => {
    const pod = only('Deployment').spec.template.spec;
    const container = appContainer();
    const sc = { ...pod.securityContext, ...container.securityContext };
    assert.equal(sc.runAsNonRoot, true);
    assert.ok(sc.runAsUser > 0, `runAsUser ${sc.runAsUser}`);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities?.drop, ['ALL']);
    // the image's user is the one the pod runs as
    const user = runtime.filter(i => i.op === 'USER').pop()?.args;
    assert.equal(user?.split(':')[0], String(sc.runAsUser), 'Dockerfile USER = runAsUser');

    const env = podEnv(container);
    const workdir = runtime.filter(i => i.op === 'WORKDIR').pop()!.args;
    const baseDir = path.posix.join(workdir, 'example');
    // egg 3's logs go to <EGG_HOME or the passwd home of the uid>/logs: EGG_HOME must be set and mounted
    assert.ok(env.EGG_HOME, 'EGG_HOME set: egg ignores $HOME and takes the passwd entry of runAsUser otherwise');
    const needed = [env.HOME!, env.EGG_HOME, `${baseDir}/run`, `${baseDir}/.egg`, '/tmp'];
    const volumes = new Map<string, any>((pod.volumes as any[]).map(v => [v.name, v]));
    for (const dir of needed) {
      const mount = (container.volumeMounts as any[]).find(m => m.mountPath === dir);
      assert.ok(mount, `no volume mounted at ${dir}`);
      assert.ok(volumes.get(mount.name)?.emptyDir, `${dir}: volume ${mount.name} is not an emptyDir`);
      assert.notEqual(mount.readOnly, true, `${dir} must be writable`);
    }
  });
});

describe('deploy/Dockerfile (read, not built: no Docker engine here)', () => {
  it('runtime stage: non-root USER, npm ci --omit=dev, tini as PID 1, production env', () => {
    const runs = runtime.filter(i => i.op === 'RUN').map(i => i.args);
    assert.ok(runs.some(r => /\bnpm ci\b[^&|;]*--omit=dev/.test(r)), 'npm ci --omit=dev');
    assert.ok(!runs.some(r => /\bnpm (install|i)\b/.test(r)), 'no npm install in the runtime stage');
    assert.ok(runs.some(r => /apt-get install\b.*\btini\b/.test(r)), 'tini installed in the runtime stage');
    const user = runtime.filter(i => i.op === 'USER').pop()?.args ?? 'root';
    assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user}`);
    assert.ok(/^\d+(:\d+)?$/.test(user), 'a numeric USER, so that runAsNonRoot can verify it');
    const entrypoint = execForm(runtime, 'ENTRYPOINT');
    assert.ok(entrypoint, 'ENTRYPOINT in exec form (a shell would be PID 1 and not forward signals)');
    assert.equal(entrypoint[0], '/usr/bin/tini');
    assert.equal(entrypoint[entrypoint.length - 1], '--');
    assert.ok(!entrypoint.includes('-g'), 'tini without -g: the master alone signals the workers (shutdownDelay)');
    const cmd = execForm(runtime, 'CMD');
    assert.deepEqual(cmd?.slice(0, 1), ['node'], 'CMD in exec form, node directly');
    assert.equal(imageEnv.NODE_ENV, 'production');
    assert.equal(imageEnv.EGG_SERVER_ENV, 'prod');
    // egg-static mkdirs <baseDir>/app/public at boot when it is missing: the read-only image must have it
    assert.ok(runs.some(r => /\bmkdir\b[^&|;]*\bexample\/app\/public\b/.test(r)), 'the image creates example/app/public');
    console.log('ENTRYPOINT %j CMD %j USER %s', entrypoint, cmd, user);
  });

  it('every path the Dockerfile COPYs from the context exists, and the CMD script is copied', () => {
    const copied: string[] = [];
    for (const stage of dockerStages) {
      for (const { op, args, line } of stage) {
        if (op !== 'COPY' && op !== 'ADD') continue;
        const parts = args.split(/\s+/);
        if (parts.some(p => p.startsWith('--from='))) continue;
        const sources = parts.filter(p => !p.startsWith('--')).slice(0, -1);
        for (const src of sources) assert.ok(fs.existsSync(path.join(ROOT, src)), `line ${line}: COPY ${src}: not in the repository`);
        copied.push(parts[parts.length - 1]!);
      }
    }
    const script = execForm(runtime, 'CMD')![1]!;
    assert.ok(copied.some(dest => path.posix.basename(dest) === path.posix.basename(script)), `CMD runs ${script}, which no COPY puts in the image`);
  });

  it("the image's lockfile has egg-clutch's runtime dependencies, in sync with its package.json", () => {
    const own = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const image = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'image', 'package.json'), 'utf8'));
    const lock = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'image', 'package-lock.json'), 'utf8'));
    for (const [name, range] of Object.entries(own.dependencies as Record<string, string>)) {
      assert.equal(image.dependencies[name], range, `deploy/image/package.json: ${name} must be ${range} as in egg-clutch's package.json`);
    }
    assert.ok(image.dependencies.egg, 'the example app needs its framework, egg');
    // npm ci refuses a lockfile whose root entry differs from package.json
    assert.deepEqual(lock.packages[''].dependencies, image.dependencies, 'regenerate: cd deploy/image && npm install --package-lock-only');
    for (const name of Object.keys(image.dependencies)) assert.ok(lock.packages[`node_modules/${name}`], `${name} locked`);
  });
});
