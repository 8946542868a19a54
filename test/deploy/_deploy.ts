/**
 * Readers for deploy/: the Kubernetes manifests (YAML, every document) and the Dockerfile
 * (instructions per stage). Docker cannot build or run on the CI machine, so the Dockerfile
 * is checked by reading it; see test/deploy/manifests.test.ts for what is checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DEPLOY = path.join(ROOT, 'deploy');
export const KUBE_DIR = path.join(DEPLOY, 'kubernetes');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown };
  spec: any;
  /** `<file>#<document index>`, for messages. */
  source: string;
}

/** Every document of every deploy/kubernetes/*.yaml; a YAML error names its file. */
export function loadManifests(dir = KUBE_DIR): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const file of fs.readdirSync(dir).filter(f => /\.ya?ml$/.test(f)).sort()) {
    const docs = parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'));
    docs.forEach((doc, i) => {
      if (doc.errors.length) throw new Error(`${file}#${i}: ${doc.errors.map(e => e.message).join('; ')}`);
      const value = doc.toJS() as KubeObject | null;
      if (value) objects.push(Object.assign(value, { source: `${file}#${i}` }));
    });
  }
  return objects;
}

export interface Instruction {
  /** Upper-cased: FROM, RUN, ENV, ... */
  op: string;
  args: string;
  line: number;
}

/**
 * The Dockerfile's instructions grouped by stage (a stage starts at each FROM): comments
 * and blank lines dropped, `\` continuations joined.
 */
export function parseDockerfile(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  let current: Instruction[] | undefined;
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    if (!pending) startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    if (!m) return;
    const instruction = { op: m[1]!.toUpperCase(), args: m[2]!, line: startLine };
    if (instruction.op === 'FROM') {
      current = [];
      stages.push(current);
    }
    if (instruction.op === 'ARG' && !current) return; // a global ARG before the first FROM
    if (!current) throw new Error(`Dockerfile line ${startLine}: ${instruction.op} before the first FROM`);
    current.push(instruction);
  });
  return stages;
}

/** ENV of one stage, `ENV A=b C="d e"` and the legacy `ENV A b` forms. */
export function stageEnv(stage: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { op, args } of stage) {
    if (op !== 'ENV') continue;
    if (!/^\S+=/.test(args)) {
      const [key, ...rest] = args.split(/\s+/);
      env[key!] = rest.join(' ');
      continue;
    }
    for (const m of args.matchAll(/(\S+?)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      const value = m[2]!;
      env[m[1]!] = value.startsWith('"') ? JSON.parse(value) as string : value;
    }
  }
  return env;
}

/** The exec-form (JSON array) arguments of the stage's last ENTRYPOINT or CMD; undefined for the shell form. */
export function execForm(stage: Instruction[], op: 'ENTRYPOINT' | 'CMD'): string[] | undefined {
  const last = stage.filter(i => i.op === op).pop();
  if (!last) return undefined;
  try {
    const value = JSON.parse(last.args) as unknown;
    return Array.isArray(value) && value.every(v => typeof v === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Milli-CPUs of a Kubernetes CPU quantity: "2" -> 2000, "1500m" -> 1500, "0.5" -> 500. */
export function milliCpus(quantity: string | number): number {
  const text = String(quantity);
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(text);
  if (!m) throw new Error(`not a CPU quantity: ${JSON.stringify(quantity)}`);
  return m[2] ? Number(m[1]) : Math.round(Number(m[1]) * 1000);
}
