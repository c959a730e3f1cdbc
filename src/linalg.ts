/**
 * float64 linear algebra on Tensors (CPU): GEMM, Cholesky, triangular solves, inverse, SPD solves and
 * a streaming covariance accumulator. Matrices are row-major 2-D float64 tensors. Conventions follow
 * LAPACK/numpy: `cholesky` returns the lower factor (A = L L^T); `inverse` is LU with partial
 * pivoting, as np.linalg.inv. A matrix that is not positive definite (Cholesky) or exactly singular
 * (LU) throws ERR_SINGULAR_MATRIX with the failing pivot in the message.
 */
import { SslInvError, callNative as call } from './errors';
import { resolveDevice } from './device';
import { native } from './native';
import { Tensor, wrap, zeros } from './tensor';

interface LinalgAddon {
  dgemm(a: unknown, b: unknown, opts?: { transA?: boolean; transB?: boolean }): never;
  cholesky(a: unknown): never;
  triangularSolve(t: unknown, b: unknown, opts: { lower: boolean; trans: boolean; unit: boolean }): never;
  inverse(a: unknown): never;
  covarianceAccumulate(x: unknown, mean: unknown, m2: unknown, count: number, syrk?: string): number;
}

function addon(): LinalgAddon {
  return native() as unknown as LinalgAddon;
}

/**
 * C = op(A) op(B) for float64 matrices. With A on a CUDA device (B must be there too) it is cuBLAS's
 * DGEMM and C stays on the device; its summation order differs from the CPU GEMM's (rounding-level
 * differences).
 */
export function dgemm(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  return call('dgemm', () => wrap(addon().dgemm(a.handle, b.handle, { transA: opts.transA ?? false, transB: opts.transB ?? false })));
}

/** The lower Cholesky factor L of a symmetric positive-definite A (only A's lower triangle is read). */
export function cholesky(a: Tensor): Tensor {
  return call('cholesky', () => wrap(addon().cholesky(a.handle)));
}

export interface TriangularOptions {
  /** T is lower triangular (default) or upper. */
  lower?: boolean;
  /** Solve T^T X = B instead of T X = B. */
  transpose?: boolean;
  /** Take T's diagonal as ones. */
  unitDiagonal?: boolean;
}

/** X with op(T) X = B, for triangular T [n, n] and B [n, m]. */
export function solveTriangular(t: Tensor, b: Tensor, opts: TriangularOptions = {}): Tensor {
  return call('solveTriangular', () => wrap(addon().triangularSolve(t.handle, b.handle, {
    lower: opts.lower ?? true, trans: opts.transpose ?? false, unit: opts.unitDiagonal ?? false,
  })));
}

/** A^{-1} by LU with partial pivoting (what np.linalg.inv computes, up to rounding). */
export function inverse(a: Tensor): Tensor {
  return call('inverse', () => wrap(addon().inverse(a.handle)));
}

/** X with A X = B for symmetric positive-definite A, through its Cholesky factor. */
export function solveSPD(a: Tensor, b: Tensor): Tensor {
  const l = cholesky(a);
  try {
    const y = solveTriangular(l, b, { lower: true });
    try {
      return solveTriangular(l, y, { lower: true, transpose: true });
    } finally {
      y.dispose();
    }
  } finally {
    l.dispose();
  }
}

/**
 * The CUDA kernel of the covariance's centred X^T X (benchmarks compare them): 'auto' (the default:
 * the SIMT fp32 kernel, the one measured), 'simt', 'simt-bk16' (the same kernel with 16 rows per
 * k-slice instead of 8: the same bits as 'simt'; inputs with dim % 4 != 0 run 'simt'), or '3xtf32'
 * (tensor cores with each value split into two tf32 parts: fp32-level accuracy, about 1e-6 relative
 * like the SIMT kernel, not the same bits; dim % 4 == 0). The CPU takes 'auto'.
 */
export type CovarianceSyrk = 'auto' | 'simt' | 'simt-bk16' | '3xtf32';

/**
 * Mean and covariance of rows streamed in chunks, in float64, as accurate as numpy's two-pass
 * np.cov: each chunk is centred on its own mean before its scatter matrix is formed, and chunks are
 * merged with Chan et al.'s update.
 */
export class CovarianceAccumulator {
  readonly dim: number;
  private count = 0;
  private readonly meanT: Tensor;
  private readonly m2T: Tensor;

  /** Where the statistics live and chunks are merged: 'cpu' or 'cuda:N' (chunks must be there too). */
  readonly device: string;
  /** The CUDA SYRK kernel (CovarianceSyrk). */
  readonly syrk: CovarianceSyrk;

  constructor(dim: number, opts: { device?: string; syrk?: CovarianceSyrk } = {}) {
    if (!Number.isSafeInteger(dim) || dim < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', `dim must be >= 1, got ${dim}`);
    this.dim = dim;
    this.device = resolveDevice(opts.device ?? 'cpu');
    this.syrk = opts.syrk ?? 'auto';
    if (this.syrk !== 'auto' && this.device === 'cpu') {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `syrk '${this.syrk}' is a CUDA kernel variant; the CPU takes 'auto'`, { field: 'syrk' });
    }
    if (this.syrk === '3xtf32' && dim % 4 !== 0) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `syrk '3xtf32' needs dim % 4 == 0, got ${dim}`, { field: 'syrk' });
    }
    this.meanT = zeros('float64', [dim], this.device);
    try {
      this.m2T = zeros('float64', [dim, dim], this.device);
    } catch (e) {
      this.meanT.dispose();
      throw e;
    }
  }

  /** Adds the rows of x [n, dim] (float32 or float64 on the CPU; float32 on a CUDA device). */
  add(x: Tensor): void {
    if (x.shape.length !== 2 || x.shape[1] !== this.dim) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `expected rows of ${this.dim} values, got [${x.shape.join(', ')}]`);
    }
    // A chunk on another device is copied to the statistics' device first (one upload per chunk).
    const chunk = x.device === this.device ? x : x.to(this.device);
    try {
      this.count = call('covarianceAccumulate', () => addon().covarianceAccumulate(chunk.handle, this.meanT.handle, this.m2T.handle, this.count,
        ...(this.syrk !== 'auto' ? [this.syrk] : [])));
    } finally {
      if (chunk !== x) chunk.dispose();
    }
  }

  get rows(): number {
    return this.count;
  }

  /** The mean of the rows so far, float64. */
  mean(): Float64Array {
    return this.meanT.toArray() as Float64Array;
  }

  /** The covariance with divisor rows - ddof (np.cov's default ddof = 1), float64 [dim, dim]. */
  covariance(ddof = 1): Float64Array {
    if (this.count - ddof <= 0) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `a covariance of ${this.count} row(s) with ddof ${ddof} is undefined`);
    }
    const m2 = this.m2T.toArray() as Float64Array;
    const s = 1 / (this.count - ddof);
    for (let i = 0; i < m2.length; i++) m2[i]! *= s;
    return m2;
  }

  dispose(): void {
    this.meanT.dispose();
    this.m2T.dispose();
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
