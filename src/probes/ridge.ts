/**
 * scikit-learn 1.2's Ridge(alpha, fit_intercept=True) on dense float64 data, for many alphas at once.
 *
 * scikit-learn centres X and y on their training means (`_preprocess_data`), then solves with the
 * 'cholesky' solver: (Xc^T Xc + alpha I) w = Xc^T yc when n_features <= n_samples, and the dual
 * (Xc Xc^T + alpha I) a = yc, w = Xc^T a, when n_features > n_samples; intercept = y_mean - x_mean . w.
 * We take every alpha from one symmetric eigendecomposition of the same Gram matrix (native, see
 * src/probes/eigen.ts): w(alpha) = V diag(1 / (lambda + alpha)) V^T Xc^T yc (primal) or
 * Xc^T U diag(1 / (mu + alpha)) U^T yc (dual), with V kept in factored form (Householder reflections
 * and QL rotations applied to the right-hand sides, all alphas at once). Results agree
 * with scikit-learn's Cholesky solves to rounding; a direction whose lambda + alpha is not positive
 * (where scikit-learn's Cholesky would fail and fall back to its SVD solver, which drops singular values
 * below 1e-15) contributes nothing.
 *
 * Targets are row-major [n, T] (T outputs); a 1-D target is T = 1.
 *
 * With a CUDA `device` the GEMMs (the Gram matrix, X^T y, the dual's X^T a and the predictions) run
 * there in float64; the eigendecomposition and the shifted solves stay on the host.
 */
import { DeviceSpec } from '../device';
import { SslInvError } from '../errors';
import { dgemm } from '../linalg';
import { scope, tensor } from '../tensor';
import { symmetricShiftedSolve } from './eigen';
import { gatherRows, numpySum } from './numeric';
import { matrixOn, moveTo, onHost } from './placement';

export interface RidgePath {
  alphas: number[];
  nFeatures: number;
  nOutputs: number;
  /** coef for every alpha, row-major [d, alphas * T]: column a * T + t is alpha a's output t. */
  coef: Float64Array;
  /** intercept_ for every alpha, [alphas * T]. */
  intercept: Float64Array;
}

/** Column means as numpy's mean(axis=0) computes them (sequential per column; pairwise for one column). */
function columnMeans(x: Float64Array, n: number, m: number): Float64Array {
  const out = new Float64Array(m);
  if (m === 1) {
    out[0] = numpySum(x.subarray(0, n)) / n;
    return out;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j]! += x[i * m + j]!;
  for (let j = 0; j < m; j++) out[j] = out[j]! / n;
  return out;
}

/**
 * Fits Ridge for every alpha on the training rows `rows` of x [*, d] with targets y [*, T].
 */
export function fitRidgePath(x: Float64Array, d: number, y: Float64Array, T: number, alphas: number[], rows?: ArrayLike<number>,
  device: DeviceSpec = 'cpu'): RidgePath {
  for (const a of alphas) {
    if (!(a >= 0) || !Number.isFinite(a)) throw new SslInvError('ERR_INVALID_ARGUMENT', `Ridge alpha must be a finite number >= 0, got ${a}`);
  }
  const nAll = x.length / d;
  if (y.length !== nAll * T) throw new SslInvError('ERR_SHAPE_MISMATCH', `Ridge: ${y.length / T} target rows for ${nAll} feature rows`);
  const xs = rows ? gatherRows(x, d, rows) : x;
  const ys = rows ? gatherRows(y, T, rows) : y;
  const n = xs.length / d;
  if (n < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', 'Ridge: no training samples');
  const xOffset = columnMeans(xs, n, d), yOffset = columnMeans(ys, n, T);
  const xc = new Float64Array(n * d), yc = new Float64Array(n * T);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) xc[i * d + j] = xs[i * d + j]! - xOffset[j]!;
    for (let t = 0; t < T; t++) yc[i * T + t] = ys[i * T + t]! - yOffset[t]!;
  }
  const A = alphas.length, AT = A * T;
  const coef = scope(() => {
    const X = matrixOn(xc, n, d, device), Y = tensor(yc, [n, T]);
    const dual = d > n; // n_features > n_samples: the kernel form
    const gram = onHost(dual ? dgemm(X, X, { transB: true }) : dgemm(X, X, { transA: true }));
    // (gram + alpha I)^{-1} rhs for every alpha, from one eigendecomposition of gram
    const rhs = dual ? Y : onHost(dgemm(X, moveTo(Y, device), { transA: true }));
    const { x: sol } = symmetricShiftedSolve(gram, rhs, alphas); // [m, A*T]
    return (dual ? dgemm(X, moveTo(sol, device), { transA: true }) : sol).toArray() as Float64Array; // [d, A*T]
  });
  const intercept = new Float64Array(AT);
  for (let c = 0; c < AT; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += xOffset[j]! * coef[j * AT + c]!;
    intercept[c] = yOffset[c % T]! - s;
  }
  return { alphas: [...alphas], nFeatures: d, nOutputs: T, coef, intercept };
}

/** Predictions of every alpha on rows `rows` of x: row-major [rows, alphas * T]. */
export function predictRidgePath(path: RidgePath, x: Float64Array, rows?: ArrayLike<number>, device: DeviceSpec = 'cpu'): Float64Array {
  const d = path.nFeatures, AT = path.alphas.length * path.nOutputs;
  const xs = rows ? gatherRows(x, d, rows) : x;
  const n = xs.length / d;
  const pred = scope(() => dgemm(matrixOn(xs, n, d, device), matrixOn(path.coef, d, AT, device)).toArray() as Float64Array);
  for (let i = 0; i < n; i++) for (let c = 0; c < AT; c++) pred[i * AT + c] = pred[i * AT + c]! + path.intercept[c]!;
  return pred;
}

/** The predictions of alpha index `a` from predictRidgePath's output, [n, T]. */
export function selectAlpha(pred: Float64Array, n: number, A: number, T: number, a: number): Float64Array {
  const out = new Float64Array(n * T);
  for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) out[i * T + t] = pred[i * A * T + a * T + t]!;
  return out;
}
