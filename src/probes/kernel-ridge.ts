/**
 * `make_pipeline(StandardScaler(), KernelRidge(kernel='rbf', alpha, gamma))` of scikit-learn 1.2, for a
 * grid of (alpha, gamma) on one train/validation split at a time.
 *
 * Per split: the scaler is fitted on the training rows and applied to both sets (src/probes/scaler.ts);
 * the Gram matrices Xs_tr Xs_tr^T and Xs_val Xs_tr^T and the squared row norms are formed once; for
 * each gamma the RBF kernels are exp(-gamma * max(0, ||x||^2 + ||y||^2 - 2 x.y)) as euclidean_distances
 * computes them (zero on the diagonal of the training kernel); for each alpha the dual coefficients
 * solve (K + alpha I) a = y by Cholesky (scikit-learn: scipy.linalg.solve(assume_a='pos')), falling
 * back, as scikit-learn does when that fails, to the least-squares solution (singular values below
 * eps * the largest dropped, scipy.linalg.lstsq's default); predictions are K_val a.
 *
 * With a CUDA `device` the two Gram matrices (the bulk of the work for wide features) are float64
 * GEMMs there; the kernels, the Cholesky solves and the predictions stay on the host.
 */
import { DeviceSpec } from '../device';
import { SslInvError, isSslInvError } from '../errors';
import { dgemm, solveSPD } from '../linalg';
import { scope, Tensor, tensor } from '../tensor';
import { addDiagonal, rbfFromGram, symmetricEigen } from './eigen';
import { matrixOn, onHost } from './placement';
import { fitStandardScaler, transformStandard } from './scaler';

/** np.logspace(0, -4, 5) and np.logspace(-5, 2, 8) as numpy 1.24 computes them (10.0 ** -1 is 0.09999999999999999 there). */
export const CAUSAL3DIDENT_ALPHAS: readonly number[] = [1.0, 0.09999999999999999, 0.01, 0.001, 9.999999999999999e-05];
export const CAUSAL3DIDENT_GAMMAS: readonly number[] = [9.999999999999999e-06, 9.999999999999999e-05, 0.001, 0.01,
  0.09999999999999999, 1.0, 10.0, 100.0];

/** Squared row norms of a row-major [n, d] matrix. */
function rowNorms(x: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j]! * x[i * d + j]!;
    out[i] = s;
  }
  return out;
}

/** Least-squares solution of the symmetric system A x = b (scipy.linalg.lstsq's cutoff). */
function symmetricLstsq(a: Tensor, b: Tensor): Tensor {
  const { values, vectors } = symmetricEigen(a);
  const lam = values.toArray() as Float64Array;
  const maxAbs = lam.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const cutoff = 2.220446049250313e-16 * maxAbs;
  const proj = dgemm(vectors, b, { transA: true }).toArray() as Float64Array;
  const m = b.shape[1]!;
  for (let i = 0; i < lam.length; i++) {
    const s = Math.abs(lam[i]!) > cutoff ? 1 / lam[i]! : 0;
    for (let t = 0; t < m; t++) proj[i * m + t] = proj[i * m + t]! * s;
  }
  return dgemm(vectors, tensor(proj, [lam.length, m]));
}

export interface KernelRidgeGridResult {
  /** predictions[ai * gammas + gi] on the validation rows, row-major [nVal, T]. */
  predictions: Float64Array[];
  /** How many (alpha, gamma) solves fell back to least squares. */
  lstsqFallbacks: number;
}

/**
 * Fits the pipeline for every (alpha, gamma) on x[trainRows] and predicts x[valRows] (x row-major
 * [*, d], y [*, T]). Grid order: alpha outer, gamma inner, as itertools.product(alphas, gammas).
 */
export function kernelRidgeGrid(x: Float64Array, d: number, y: Float64Array, T: number, trainRows: ArrayLike<number>,
  valRows: ArrayLike<number>, alphas: readonly number[], gammas: readonly number[],
  onSolve?: () => void, device: DeviceSpec = 'cpu'): KernelRidgeGridResult {
  const n = trainRows.length, nv = valRows.length;
  if (n < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', 'KernelRidge: no training samples');
  for (const g of gammas) if (!(g > 0) || !Number.isFinite(g)) throw new SslInvError('ERR_INVALID_ARGUMENT', `gamma must be positive, got ${g}`);
  for (const a of alphas) if (!(a >= 0) || !Number.isFinite(a)) throw new SslInvError('ERR_INVALID_ARGUMENT', `alpha must be >= 0, got ${a}`);
  const scaler = fitStandardScaler(x, d, trainRows);
  const xtr = transformStandard(scaler, x, d, trainRows), xval = transformStandard(scaler, x, d, valRows);
  const ytr = new Float64Array(n * T);
  for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) ytr[i * T + t] = y[trainRows[i]! * T + t]!;
  const predictions: Float64Array[] = new Array(alphas.length * gammas.length);
  let lstsqFallbacks = 0;
  scope(() => {
    const Xtr = matrixOn(xtr, n, d, device), Xval = matrixOn(xval, nv, d, device), Y = tensor(ytr, [n, T]);
    const G = onHost(dgemm(Xtr, Xtr, { transB: true })), Gv = onHost(dgemm(Xval, Xtr, { transB: true }));
    const xx = tensor(rowNorms(xtr, n, d), [n]), vv = tensor(rowNorms(xval, nv, d), [nv]);
    for (let gi = 0; gi < gammas.length; gi++) {
      scope(() => {
        const K = rbfFromGram(G, xx, xx, gammas[gi]!, true);
        const Kv = rbfFromGram(Gv, vv, xx, gammas[gi]!, false);
        for (let ai = 0; ai < alphas.length; ai++) {
          scope(() => {
            const A = addDiagonal(K, alphas[ai]!);
            let dual: Tensor;
            try {
              dual = solveSPD(A, Y);
            } catch (e) {
              if (!isSslInvError(e) || e.code !== 'ERR_SINGULAR_MATRIX') throw e;
              dual = symmetricLstsq(A, Y);
              lstsqFallbacks++;
            }
            predictions[ai * gammas.length + gi] = dgemm(Kv, dual).toArray() as Float64Array;
            onSolve?.();
          });
        }
      });
    }
  });
  return { predictions, lstsqFallbacks };
}
