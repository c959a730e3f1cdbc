/**
 * Correlation coefficients across models, for the report's "does invariance predict transfer" table:
 * Pearson's r and Spearman's rho as scipy.stats.pearsonr / spearmanr compute them (rho is r of the
 * average ranks, scipy.stats.rankdata's default for ties). Accumulated in float64 after centring
 * (two passes), as scipy does; NaN when either vector is constant (scipy warns and returns NaN) or
 * shorter than 2. Checked against scipy 1.10 in test/eval/correlation.test.ts.
 */
import { SslInvError } from '../errors';

/** 1-based ranks, ties given the mean of the ranks they span (rankdata(method='average')). */
export function rankAverage(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = r;
    i = j + 1;
  }
  return ranks;
}

export function pearson(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new SslInvError('ERR_SHAPE_MISMATCH', `pearson: ${x.length} vs ${y.length} values`);
  const n = x.length;
  if (n < 2 || [...x, ...y].some((v) => !Number.isFinite(v))) return NaN;
  const mx = x.reduce((a, b) => a + b, 0) / n, my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx, dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  // Rounding can push |r| a hair past 1; scipy clips it the same way.
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new SslInvError('ERR_SHAPE_MISMATCH', `spearman: ${x.length} vs ${y.length} values`);
  return pearson(rankAverage(x), rankAverage(y));
}
