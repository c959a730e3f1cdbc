/**
 * Result files of the invariance evaluations: one JSON per run (configuration, checkpoint SHA-256s,
 * seed, versions, device, per-view or per-class arrays with each view's transform parameter, and the
 * summary) and a long-format CSV beside it (one row per view/class and metric). Names parallel the
 * original's `{model}_{layer}_{dataset}_{transform}_invariance_{distance,similarity}.pth`:
 *   synthetic   {model}_{layer}_{dataset}_{transform}_invariance.json / .csv
 *   real-world  {model}_{layer}_{dataset}_invariance.json / .csv
 * Both are written atomically.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-write';
import { native } from '../native';
import { cudaInfo } from '../device';
import { packageVersion } from '../cli/info';

export const RESULT_FORMAT = 'ssl-inv-invariance/1';

export interface ResultModel {
  name: string;
  file: string;
  sha256: string;
  arch: string;
}

export interface ResultRow {
  /** View index (synthetic) or class name (real-world). */
  id: number | string;
  /** The view's transform parameter (synthetic). */
  param?: number | number[];
  distance: number;
  similarity: number;
}

export interface InvarianceResult {
  format: typeof RESULT_FORMAT;
  kind: 'synthetic' | 'realworld';
  model: string;
  models: ResultModel[];
  fuseMode: string;
  featureLayer: string;
  dataset: string;
  transform?: string;
  paramName?: string;
  originalIndex?: number;
  config: Record<string, unknown>;
  statistics: { file: string; key: string; images: number; cached: boolean };
  device: string;
  precision: string;
  /** Activation storage between layers; absent in results of versions before it was a choice (float32). */
  activations?: string;
  seed?: number;
  versions: Record<string, string>;
  rows: ResultRow[];
  summary: { distance: number; similarity: number };
  created: string;
  seconds: number;
}

/**
 * What made a result: the package, Node, the CPU kernel, the platform, and for a CUDA device the card
 * (name, compute capability) and the CUDA runtime and driver, since a kernel's bits can depend on them.
 */
export function versions(device?: string): Record<string, string> {
  const info = native().info();
  const out: Record<string, string> = { 'ssl-invariances': packageVersion(), node: process.version, cpuKernel: info.gemmKernel, platform: `${os.platform()}-${os.arch()}` };
  const m = device === undefined ? null : /^cuda:(\d+)$/.exec(device);
  if (m) {
    const cuda = cudaInfo();
    const card = cuda.devices[Number(m[1])];
    if (card) out.gpu = `${card.name} (compute capability ${card.computeCapability})`;
    out.cudaRuntime = cuda.runtimeVersion;
    out.cudaDriver = cuda.driverVersion;
  }
  return out;
}

export function resultBaseName(r: Pick<InvarianceResult, 'kind' | 'model' | 'featureLayer' | 'dataset' | 'transform'>): string {
  return r.kind === 'synthetic'
    ? `${r.model}_${r.featureLayer}_${r.dataset}_${r.transform}_invariance`
    : `${r.model}_${r.featureLayer}_${r.dataset}_invariance`;
}

/** One CSV cell: arrays space-joined, quoted when it holds a quote, comma or newline (RFC 4180). */
export function csvCell(v: unknown): string {
  const s = Array.isArray(v) ? v.join(' ') : v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(r: InvarianceResult): string {
  const lines = ['model,kind,dataset,transform,id,param,metric,value'];
  for (const row of r.rows) {
    for (const metric of ['distance', 'similarity'] as const) {
      lines.push([r.model, r.kind, r.dataset, r.transform ?? '', row.id, row.param, metric, row[metric]].map(csvCell).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the JSON and CSV; returns their paths. */
export async function writeResult(resultsDir: string, r: InvarianceResult): Promise<{ json: string; csv: string }> {
  fs.mkdirSync(resultsDir, { recursive: true });
  const base = path.join(resultsDir, resultBaseName(r));
  const json = `${base}.json`, csv = `${base}.csv`;
  await writeFileAtomic(json, Buffer.from(`${JSON.stringify(r, null, 1)}\n`));
  await writeFileAtomic(csv, Buffer.from(toCsv(r)));
  return { json, csv };
}
