/**
 * scikit-learn 1.2's StandardScaler (with_mean, with_std) on dense float64 data, computed as
 * `_incremental_mean_and_var` computes it from an empty state:
 *   mean = sum(X, axis=0) / n;  T = sum / n;  c = sum(X - T, axis=0);
 *   var = (sum((X - T)^2, axis=0) - c^2 / n) / n            (population variance, ddof = 0)
 * Features whose variance is indistinguishable from zero (var <= n eps var + (n mean eps)^2, scikit-learn's
 * `_is_constant_feature`) are scaled by 1. transform: (X - mean) / scale.
 */
import { SslInvError } from '../errors';
import { numpySum } from './numeric';

export interface StandardScaler {
  mean: Float64Array;
  variance: Float64Array;
  scale: Float64Array;
}

const EPS = 2.220446049250313e-16;

/** Fits a StandardScaler on the rows `rows` of x [*, d] (all rows when omitted). */
export function fitStandardScaler(x: Float64Array, d: number, rows?: ArrayLike<number>): StandardScaler {
  const n = rows ? rows.length : x.length / d;
  if (n < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', 'StandardScaler: no samples');
  const row = (i: number) => (rows ? rows[i]! : i) * d;
  // sum(axis=0): row by row per column; a single column is contiguous and summed as numpy sums 1-D arrays
  const colSum = (f: (v: number, j: number) => number): Float64Array => {
    const out = new Float64Array(d);
    if (d === 1) {
      const col = new Float64Array(n);
      for (let i = 0; i < n; i++) col[i] = f(x[row(i)]!, 0);
      out[0] = numpySum(col);
      return out;
    }
    for (let i = 0; i < n; i++) {
      const o = row(i);
      for (let j = 0; j < d; j++) out[j]! += f(x[o + j]!, j);
    }
    return out;
  };
  const sum = colSum((v) => v);
  const mean = new Float64Array(d), t = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    mean[j] = (0 + sum[j]!) / n;
    t[j] = sum[j]! / n;
  }
  const correction = colSum((v, j) => v - t[j]!);
  const sq = colSum((v, j) => {
    const c = v - t[j]!;
    return c * c;
  });
  const variance = new Float64Array(d), scale = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const unnormalized = sq[j]! - (correction[j]! * correction[j]!) / n;
    variance[j] = unnormalized / n;
    const m = n * mean[j]! * EPS;
    const bound = n * EPS * variance[j]! + m * m;
    scale[j] = variance[j]! <= bound ? 1 : Math.sqrt(variance[j]!);
  }
  return { mean, variance, scale };
}

/** (x[rows] - mean) / scale, row-major [rows, d]. */
export function transformStandard(s: StandardScaler, x: Float64Array, d: number, rows?: ArrayLike<number>): Float64Array {
  const n = rows ? rows.length : x.length / d;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const o = (rows ? rows[i]! : i) * d;
    for (let j = 0; j < d; j++) out[i * d + j] = (x[o + j]! - s.mean[j]!) / s.scale[j]!;
  }
  return out;
}
