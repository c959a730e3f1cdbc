/**
 * Does invariance predict transfer? For each synthetic transform (and their mean) and each downstream
 * data set: the correlation, across the models that have both results, of the model's mean
 * similarity under the transform with its downstream test score. Spearman's rho (the rank
 * correlation, robust to a metric's scale) and Pearson's r, as scipy computes them; a pair with
 * fewer than MIN_MODELS models gets no coefficient (NaN), since two points always correlate perfectly.
 */
import { pearson, spearman } from '../eval/correlation';
import { csvCell } from '../eval/results';
import type { InvarianceResult } from '../eval/results';
import { SYNTHETIC_TRANSFORMS } from '../transforms/grid';
import type { DownstreamSummary } from './result-files';

export const MIN_MODELS = 3;
export const MEAN_ROW = 'mean of the transforms';

export interface CorrelationRow {
  /** A synthetic transform, or MEAN_ROW. */
  transform: string;
  dataset: string;
  /** Models with both results. */
  n: number;
  spearman: number;
  pearson: number;
}

export function invarianceTransferCorrelations(results: readonly InvarianceResult[], downstream: readonly DownstreamSummary[]): CorrelationRow[] {
  const synth = results.filter((r) => r.kind === 'synthetic');
  const transforms = SYNTHETIC_TRANSFORMS.filter((t) => synth.some((r) => r.transform === t));
  const datasets = [...new Set(downstream.map((d) => d.dataset))].sort();
  const similarity = (model: string, transform: string): number | undefined =>
    synth.find((r) => r.model === model && r.transform === transform)?.summary.similarity;
  // The mean over every transform evaluated: only for models that have all of them, so that the
  // means compare like with like.
  const mean = (model: string): number | undefined => {
    const s = transforms.map((t) => similarity(model, t));
    return s.every((v) => v !== undefined) ? s.reduce((a, b) => a! + b!, 0)! / s.length : undefined;
  };
  const rows: CorrelationRow[] = [];
  for (const transform of [...transforms, MEAN_ROW]) {
    for (const dataset of datasets) {
      const x: number[] = [], y: number[] = [];
      for (const d of downstream.filter((r) => r.dataset === dataset)) {
        const s = transform === MEAN_ROW ? mean(d.model) : similarity(d.model, transform);
        if (s === undefined || !Number.isFinite(s) || !Number.isFinite(d.testScore)) continue;
        x.push(s);
        y.push(d.testScore);
      }
      const enough = x.length >= MIN_MODELS;
      rows.push({ transform, dataset, n: x.length, spearman: enough ? spearman(x, y) : NaN, pearson: enough ? pearson(x, y) : NaN });
    }
  }
  return transforms.length && datasets.length ? rows : [];
}

/** transform,dataset,n,spearman,pearson (empty cells for no coefficient). */
export function correlationsCsv(rows: readonly CorrelationRow[]): string {
  const num = (v: number) => (Number.isNaN(v) ? '' : String(v));
  return `${['transform,dataset,n,spearman,pearson', ...rows.map((r) => [csvCell(r.transform), csvCell(r.dataset), String(r.n), num(r.spearman), num(r.pearson)].join(','))].join('\n')}\n`;
}
