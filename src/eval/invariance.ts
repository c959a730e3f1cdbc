/**
 * The invariance measures of the original's evaluations, shared by the synthetic and the real-world
 * ones.
 *
 * From the feature statistics: cov (+ 1e-10 I for the random model, as the original adds), its
 * inverse in float64 (LU, as np.linalg.inv), and L = cholesky(float32(inverse)) in float32 (the
 * original's torch.linalg.cholesky of the float32 inverse). The mean is used in float32 (the
 * original keeps torch's float32 mean). Then, for features f (float32 rows):
 *   whitened     z = (mean - f) @ L                      float32 matrix product
 *   similarity   cos(z_a, z_b) = <z_a, z_b> / (max(|z_a|, 1e-8) max(|z_b|, 1e-8))
 *   distance     Mahalanobis sqrt(d^T inv d), d = f_a - f_b rounded to float32 (scipy's
 *                mahalanobis on the original's float32 vectors), in float64
 * Results are rounded to float32 where the original stores them in float32 tensors.
 *
 * A covariance of fewer images than feature dimensions (N - 1 < D) is singular: the original turns
 * it into meaningless numbers (np.linalg.inv of a singular matrix) and hides them with nanmean; we
 * refuse it with ERR_SINGULAR_MATRIX, except for `random`, whose 1e-10 I the original adds on purpose.
 */
import { SslInvError } from '../errors';
import { cholesky, dgemm, inverse } from '../linalg';
import * as ops from '../ops';
import { keep, scope, Tensor, tensor } from '../tensor';
import { FeatureStats } from './stats';

export interface Whitening {
  dim: number;
  /** float32 mean. */
  mean: Float32Array;
  /** float32 [dim, dim] lower Cholesky factor of the inverse covariance. */
  chol: Float32Array;
  /** float64 [dim, dim] inverse covariance. */
  inv: Float64Array;
}

const f32 = Math.fround;

export function prepareWhitening(stats: FeatureStats, opts: { ridge: boolean; source?: string }): Whitening {
  const d = stats.dim;
  const where = { file: opts.source ?? stats.file };
  if (!opts.ridge && stats.count - 1 < d) {
    throw new SslInvError('ERR_SINGULAR_MATRIX',
      `the covariance of ${stats.count} images' ${d}-dimensional features is singular (rank <= ${stats.count - 1}); ` +
      `compute the statistics on more images than feature dimensions (ImageNet's validation set has 50,000)`, where);
  }
  const cov = Float64Array.from(stats.cov);
  if (opts.ridge) for (let i = 0; i < d; i++) cov[i * d + i]! += 1e-10;
  const covT = tensor(cov, [d, d]);
  let inv: Float64Array;
  let chol: Float32Array;
  try {
    const invT = inverse(covT);
    inv = invT.toArray() as Float64Array;
    invT.dispose();
    const inv32 = tensor(Float64Array.from(inv, f32), [d, d]);
    try {
      const l = cholesky(inv32);
      chol = Float32Array.from(l.toArray() as Float64Array);
      l.dispose();
    } finally {
      inv32.dispose();
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_SINGULAR_MATRIX') {
      throw new SslInvError('ERR_SINGULAR_MATRIX', `the feature covariance cannot be inverted and factored (${(e as Error).message})`, where);
    }
    throw e;
  } finally {
    covT.dispose();
  }
  return { dim: d, mean: Float32Array.from(stats.mean), chol, inv };
}

/**
 * The whitening's two dim x dim matrices as host tensors, made once for a whole evaluation (at dim
 * 2048 they are 16 and 32 MB, which each image's call would otherwise copy again).
 */
export class WhiteningTensors {
  readonly chol: Tensor;
  readonly inv: Tensor;

  constructor(readonly w: Whitening) {
    this.chol = keep(tensor(w.chol, [w.dim, w.dim]));
    try {
      this.inv = keep(tensor(w.inv, [w.dim, w.dim]));
    } catch (e) {
      this.chol.dispose();
      throw e;
    }
  }

  dispose(): void {
    this.chol.dispose();
    this.inv.dispose();
  }
}

/** z = (mean - f) @ L for rows f [n, dim]; float32. `m` (optional) holds L already as a tensor. */
export function whiten(w: Whitening, f: Float32Array, m?: WhiteningTensors): Float32Array {
  const n = f.length / w.dim;
  const centred = new Float32Array(f.length);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < w.dim; j++) centred[r * w.dim + j] = f32(w.mean[j]! - f[r * w.dim + j]!);
  }
  return scope(() => ops.matmul(tensor(centred, [n, w.dim]), m ? m.chol : tensor(w.chol, [w.dim, w.dim])).toFloat32Array());
}

/** torch.nn.functional.cosine_similarity of two rows (eps 1e-8), rounded to float32. */
export function cosineSimilarity(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let dot = 0, na = 0, nb = 0;
  for (let j = 0; j < dim; j++) {
    const x = a[ai * dim + j]!, y = b[bi * dim + j]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return f32(dot / (Math.max(Math.sqrt(na), 1e-8) * Math.max(Math.sqrt(nb), 1e-8)));
}

/**
 * Mahalanobis distances sqrt(delta_r^T inv delta_r), float64, for each row of `delta` [k, dim]
 * (float64 rows of float32 differences f_a - f_b: scipy's mahalanobis on the original's float32
 * vectors): one GEMM for all rows, so callers with many pairs read the inverse once. `m` (optional)
 * holds the inverse already as a tensor.
 */
export function mahalanobisOfDeltas(w: Whitening, delta: Float64Array, m?: WhiteningTensors): Float64Array {
  const d = w.dim, k = delta.length / d;
  const pv = scope(() => dgemm(tensor(delta, [k, d]), m ? m.inv : tensor(w.inv, [d, d])).toArray() as Float64Array);
  const out = new Float64Array(k);
  for (let r = 0; r < k; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += pv[r * d + j]! * delta[r * d + j]!;
    out[r] = Math.sqrt(s);
  }
  return out;
}

/** numpy's nanmean over the first axis of an [n, k] array: per column, the mean of non-NaN values. */
export function nanmeanColumns(rows: Float32Array[], k: number): Float64Array {
  const out = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0, c = 0;
    for (const r of rows) {
      const v = r[j]!;
      if (!Number.isNaN(v)) {
        s += v;
        c++;
      }
    }
    out[j] = c ? s / c : NaN;
  }
  return out;
}

/** Mean of an array (NaN if it holds one, as torch's mean). */
export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return values.length ? s / values.length : NaN;
}
