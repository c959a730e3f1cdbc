// Float64 references of train-mode batch norm for the backward tests (layers.test.ts, and
// batchnorm-groups.test.ts per group): the batch statistics, y from given float32 mean and invstd,
// and PyTorch's backward formula, each with the magnitude scales that `check` (reference.ts) bounds
// the error by. Rows are [rows, C] with C innermost (NHWC flattened).

export interface BnStats { mean: Float64Array; absMean: Float64Array; variance: Float64Array; invstd: Float64Array }

export function bnStatsRef(x: Float32Array, rows: number, C: number, eps: number): BnStats {
  const mean = new Float64Array(C), absMean = new Float64Array(C), variance = new Float64Array(C), invstd = new Float64Array(C);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) { mean[c]! += x[r * C + c]!; absMean[c]! += Math.abs(x[r * C + c]!); }
  for (let c = 0; c < C; c++) { mean[c]! /= rows; absMean[c]! /= rows; }
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) { const d = x[r * C + c]! - mean[c]!; variance[c]! += d * d; }
  for (let c = 0; c < C; c++) { variance[c]! /= rows; invstd[c] = 1 / Math.sqrt(variance[c]! + eps); }
  return { mean, absMean, variance, invstd };
}

/** y from given (float32) mean and invstd, with its magnitude scale. */
export function bnForwardRef(x: Float32Array, rows: number, C: number, mean: ArrayLike<number>, invstd: ArrayLike<number>,
  w: Float32Array, b: Float32Array, relu: boolean) {
  const y = new Float64Array(x.length), mag = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) {
    const i = r * C + c, a = invstd[c]! * w[c]!;
    const v = (x[i]! - mean[c]!) * a + b[c]!;
    y[i] = relu && v <= 0 ? 0 : v;
    mag[i] = Math.abs(x[i]! - mean[c]!) * Math.abs(a) + Math.abs(b[c]!);
  }
  return { y, mag };
}

/** PyTorch's batch-norm backward in float64, from the given mean and invstd, with magnitude scales. */
export function bnBackwardRef(dy: Float32Array, x: Float32Array, rows: number, C: number, w: ArrayLike<number>,
  mean: ArrayLike<number>, invstd: ArrayLike<number>) {
  const sdy = new Float64Array(C), sabs = new Float64Array(C), dot = new Float64Array(C), dotAbs = new Float64Array(C);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) {
    const i = r * C + c, d = x[i]! - mean[c]!;
    sdy[c]! += dy[i]!; sabs[c]! += Math.abs(dy[i]!);
    dot[c]! += d * dy[i]!; dotAbs[c]! += Math.abs(d * dy[i]!);
  }
  const dx = new Float64Array(x.length), dxMag = new Float64Array(x.length);
  const dweight = new Float64Array(C), dwMag = new Float64Array(C);
  for (let c = 0; c < C; c++) { dweight[c] = dot[c]! * invstd[c]!; dwMag[c] = dotAbs[c]! * invstd[c]!; }
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) {
    const i = r * C + c, d = x[i]! - mean[c]!, is = invstd[c]!, k = dot[c]! * is * is / rows, a = is * w[c]!;
    dx[i] = (dy[i]! - sdy[c]! / rows - d * k) * a;
    dxMag[i] = (Math.abs(dy[i]!) + sabs[c]! / rows + Math.abs(d) * dotAbs[c]! * is * is / rows) * Math.abs(a);
  }
  return { dx, dxMag, dweight, dwMag, dbias: sdy, dbMag: sabs };
}
