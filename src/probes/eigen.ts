/**
 * Typed wrappers of the probes' native kernels (native/ops/eigen.h): the symmetric eigensolver, the
 * batched multinomial logistic loss and the RBF kernel. float64 tensors throughout; native errors
 * become SslInvErrors with their stable codes.
 */
import { SslInvError, callNative as call } from '../errors';
import { native, NativeTensor } from '../native';
import { Tensor, tensor, wrap } from '../tensor';

interface ProbeAddon {
  symmetricEigen(a: NativeTensor): [NativeTensor, NativeTensor];
  symmetricShiftedSolve(a: NativeTensor, b: NativeTensor, shifts: NativeTensor): [NativeTensor, NativeTensor];
  multinomialLossGrad(z: NativeTensor, bias: NativeTensor, y: NativeTensor, K: number): [NativeTensor, NativeTensor, NativeTensor];
  addDiagonal(a: NativeTensor, alpha: number): NativeTensor;
  rbfFromGram(xy: NativeTensor, xx: NativeTensor, yy: NativeTensor, gamma: number, same: boolean): NativeTensor;
}

function addon(): ProbeAddon {
  return native() as unknown as ProbeAddon;
}

function expectF64(t: Tensor, what: string, rank: number): void {
  if (t.dtype !== 'float64') throw new SslInvError('ERR_DTYPE_MISMATCH', `${what}: expected a float64 tensor, got ${t.dtype}`);
  if (t.shape.length !== rank) throw new SslInvError('ERR_SHAPE_MISMATCH', `${what}: expected ${rank} dimensions, got [${t.shape.join(', ')}]`);
}

/**
 * Eigen-decomposition of a symmetric float64 matrix (only its lower triangle is read):
 * A = V diag(values) V^T with `values` ascending and the eigenvectors as the columns of V [n, n], as
 * numpy.linalg.eigh returns them (the sign of each eigenvector is arbitrary).
 */
export function symmetricEigen(a: Tensor): { values: Tensor; vectors: Tensor } {
  expectF64(a, 'symmetricEigen', 2);
  if (a.shape[0] !== a.shape[1]) throw new SslInvError('ERR_SHAPE_MISMATCH', `symmetricEigen: expected a square matrix, got [${a.shape.join(', ')}]`);
  return call('symmetricEigen', () => {
    const [w, v] = addon().symmetricEigen(a.handle);
    return { values: wrap(w), vectors: wrap(v) };
  });
}

/**
 * (A + shift_s I)^{-1} B for every shift, from one eigendecomposition of the symmetric A (its lower
 * triangle) kept in factored form (Householder reflections and QL rotations applied to B's columns, the
 * eigenvectors never formed). B [n, m]; returns X [n, shifts * m] (column s * m + t) and the eigenvalues
 * ascending. A direction whose eigenvalue + shift is not positive contributes nothing.
 */
export function symmetricShiftedSolve(a: Tensor, b: Tensor, shifts: ArrayLike<number>): { x: Tensor; values: Float64Array } {
  expectF64(a, 'symmetricShiftedSolve a', 2);
  expectF64(b, 'symmetricShiftedSolve b', 2);
  if (a.shape[0] !== a.shape[1] || b.shape[0] !== a.shape[0]) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `symmetricShiftedSolve: a is [${a.shape.join(', ')}], b [${b.shape.join(', ')}]`);
  }
  for (const s of Array.from(shifts)) {
    if (!Number.isFinite(s)) throw new SslInvError('ERR_INVALID_ARGUMENT', `symmetricShiftedSolve: shifts must be finite, got ${s}`);
  }
  return call('symmetricShiftedSolve', () => {
    const sh = tensor(Float64Array.from(shifts), [shifts.length]);
    try {
      const [x, w] = addon().symmetricShiftedSolve(a.handle, b.handle, sh.handle);
      const wt = wrap(w);
      try {
        return { x: wrap(x), values: wt.toArray() as Float64Array };
      } finally {
        wt.dispose();
      }
    } finally {
      sh.dispose();
    }
  });
}

/**
 * scikit-learn's HalfMultinomialLoss for P problems sharing the rows of z (see native/ops/eigen.h):
 * z [n, P*K] = X W (without intercepts), bias [P*K], y [P, n] int32 class indices (-1: row not in
 * problem p). Returns the loss sum per problem (numpy's pairwise order), the pointwise gradient g
 * [n, P*K] (zero rows outside each problem) and its column sums gb [P*K] (the intercept gradients).
 * With the tensors on a CUDA device it runs there (g stays on the device; loss and gb, copied back,
 * are summed in a fixed split order instead of numpy's, so they agree with the CPU's to rounding).
 */
export function multinomialLossGrad(z: Tensor, bias: Tensor, y: Tensor, K: number): { loss: Float64Array; g: Tensor; gb: Float64Array } {
  const r = multinomialLossGradTensors(z, bias, y, K);
  try {
    return { loss: r.loss, g: r.g, gb: r.gb.toArray() as Float64Array };
  } catch (e) {
    r.g.dispose();
    throw e;
  } finally {
    r.gb.dispose();
  }
}

/** multinomialLossGrad with every result left where it was computed (gb too: for device objectives). */
export function multinomialLossGradTensors(z: Tensor, bias: Tensor, y: Tensor, K: number): { loss: Float64Array; g: Tensor; gb: Tensor } {
  expectF64(z, 'multinomialLossGrad z', 2);
  expectF64(bias, 'multinomialLossGrad bias', 1);
  if (y.dtype !== 'int32' || y.shape.length !== 2) throw new SslInvError('ERR_DTYPE_MISMATCH', 'multinomialLossGrad: y must be an int32 [P, n] tensor');
  return call('multinomialLossGrad', () => {
    const [l, g, gb] = addon().multinomialLossGrad(z.handle, bias.handle, y.handle, K);
    const loss = wrap(l);
    try {
      return { loss: loss.toArray() as Float64Array, g: wrap(g), gb: wrap(gb) };
    } finally {
      loss.dispose();
    }
  });
}

/**
 * exp(-gamma * max(0, -2 xy + xx_i + yy_j)) with a zero distance on the diagonal when `same` (the
 * kernel of X with itself): scikit-learn's rbf_kernel over euclidean_distances, from the Gram matrix
 * xy = X Y^T [n, m] and the squared row norms xx [n], yy [m].
 */
export function rbfFromGram(xy: Tensor, xx: Tensor, yy: Tensor, gamma: number, same: boolean): Tensor {
  expectF64(xy, 'rbfFromGram xy', 2);
  if (!Number.isFinite(gamma)) throw new SslInvError('ERR_INVALID_ARGUMENT', `rbfFromGram: gamma must be finite, got ${gamma}`);
  return call('rbfFromGram', () => wrap(addon().rbfFromGram(xy.handle, xx.handle, yy.handle, gamma, same)));
}

/** a + alpha I for a square float64 matrix (a new tensor). */
export function addDiagonal(a: Tensor, alpha: number): Tensor {
  expectF64(a, 'addDiagonal', 2);
  if (!Number.isFinite(alpha)) throw new SslInvError('ERR_INVALID_ARGUMENT', `addDiagonal: alpha must be finite, got ${alpha}`);
  return call('addDiagonal', () => wrap(addon().addDiagonal(a.handle, alpha)));
}
