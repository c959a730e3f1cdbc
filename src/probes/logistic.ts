/**
 * scikit-learn 1.2's LogisticRegression(solver='lbfgs', multi_class='multinomial', C, fit_intercept=True,
 * max_iter=100, tol=1e-4), reproduced step for step:
 *
 *   - the objective is LinearModelLoss(HalfMultinomialLoss(n_classes=K), fit_intercept=True).loss_gradient
 *     with unit sample weights: the SUM over samples of log(sum_k exp(raw_ik)) - raw_{i,y_i}, plus
 *     0.5 * (1 / C) * ||W||^2; the intercepts are not penalised. (1.2 rescales the weights to sum 1 only
 *     for the newton-cholesky solver; for lbfgs l2_reg_strength = 1 / C on the plain sum.)
 *   - the variables scipy sees are coef.ravel(order='F') of the [K, d + 1] matrix [W | b]: element
 *     j * K + k is W[k, j], and the intercepts are the last K elements;
 *   - two classes are still a multinomial problem with K = 2 rows, of which coef_ keeps row 1 only;
 *   - the start is zeros, or with warm_start the previous fit's coef_/intercept_ ([-c; c] for two
 *     classes, as scikit-learn expands a one-row coef);
 *   - scipy.optimize.minimize(method='L-BFGS-B', jac=True, options={gtol: tol, maxiter: max_iter}) with
 *     scipy's defaults otherwise (m = 10, ftol = 2.22e-9 i.e. factr 1e7, maxls = 20, maxfun = 15000). The
 *     `maxls: 50, ftol: 64 eps` options are from scikit-learn 1.3+, not 1.2;
 *   - predict: argmax of X coef_^T + intercept_ (first maximum), or decision > 0 for two classes.
 *
 * The heavy work per function evaluation is two float64 GEMMs, Z = X W^T and X^T G (src/linalg.ts), and
 * the pointwise softmax (native, as scikit-learn's Cython computes it). Independent problems that share
 * the rows of X (folds, regularisation values) are evaluated together: their weight matrices are
 * stacked into one [d, P*K] matrix so a round of P line-search evaluations is one GEMM pair, each
 * problem marking its own training rows (see `fitLogisticBatch`).
 *
 * On a CUDA device (X given as a device tensor) everything of size n stays there: each solver's
 * vectors live on the device (lbfgsb-device.ts), the weights are packed from them into the stacked
 * GEMM operand by a kernel, both GEMMs are cuBLAS DGEMMs, the softmax a float64 kernel, and the
 * gradients are assembled straight into the solvers' g; only the P losses, the regularisation dot
 * products and the solvers' scalars cross the bus. The solver's control flow and small dense algebra
 * are the same code as on the host. GPU sums are ordered differently from the CPU's, so results agree
 * with the CPU's to rounding, not bit for bit.
 */
import { callNative, SslInvError } from '../errors';
import { dgemm } from '../linalg';
import { native, NativeTensor } from '../native';
import { keep, scope, Tensor, tensor, wrap } from '../tensor';
import { multinomialLossGrad, multinomialLossGradTensors } from './eigen';
import { LbfgsbResult, LbfgsbSolver, LbfgsbStatus, runLbfgsbBatch, runLbfgsbBatchInPlace } from './lbfgsb';
import { DeviceLbfgsbVectors } from './lbfgsb-device';
import { G as G_SLOT, X as X_SLOT } from './lbfgsb-vectors';
import { dot } from './numeric';
import { moveTo } from './placement';

export interface LogisticOptions {
  /** Inverse regularisation strength (l2_reg_strength = 1 / C). */
  C: number;
  /** L-BFGS-B iterations (max_iter). Default 100. */
  maxIter?: number;
  /** Projected-gradient tolerance (tol, passed as gtol). Default 1e-4. */
  tol?: number;
}

/** A fitted model, with scikit-learn's shapes. */
export interface LogisticModel {
  /** The sorted distinct labels of the training targets (classes_). */
  classes: number[];
  nFeatures: number;
  /** coef_ row-major [rows, nFeatures]: rows = 1 for two classes, else the number of classes. */
  coef: Float64Array;
  /** intercept_ [rows]. */
  intercept: Float64Array;
  /** n_iter_: min(iterations, max_iter). */
  nIter: number;
  /** How L-BFGS-B stopped. */
  status: LbfgsbStatus;
  /** The objective at the returned point (scipy's fun). */
  loss: number;
  /** Function evaluations. */
  nfev: number;
}

/** One problem of a batch: labels 0..K-1 per row of the shared X, or -1 where the row is not used. */
export interface BatchProblem {
  y: Int32Array;
  C: number;
  /** The start, in scipy's layout ((d + 1) * K, see above). Default zeros. */
  w0?: Float64Array;
}

/** The device objective's weight packing and gradient assembly (native/bindings/cuda_lbfgsb_binding.cc). */
interface LogisticDeviceAddon {
  cudaLogisticPack(states: NativeTensor[], n: number, xSlot: number, dim: number, K: number): [NativeTensor, NativeTensor];
  cudaLogisticUnpack(gx: NativeTensor, gb: NativeTensor, states: NativeTensor[], n: number, xSlot: number, gSlot: number, dim: number,
    K: number, l2s: number[]): void;
}

function checkC(C: number): void {
  if (!(C > 0) || !Number.isFinite(C)) throw new SslInvError('ERR_INVALID_ARGUMENT', `C must be a positive finite number, got ${C}`);
}

function checkX(x: Tensor): { n: number; d: number } {
  if (x.dtype !== 'float64' || x.shape.length !== 2) {
    throw new SslInvError('ERR_DTYPE_MISMATCH', `logistic regression: X must be a float64 [n, d] tensor, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  return { n: x.shape[0]!, d: x.shape[1]! };
}

/** LabelEncoder: the sorted distinct labels and each row's index among them. */
export function encodeLabels(y: ArrayLike<number>): { classes: number[]; encoded: Int32Array } {
  const classes = [...new Set(Array.from(y))].sort((a, b) => a - b);
  const index = new Map(classes.map((c, i) => [c, i]));
  const encoded = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) encoded[i] = index.get(y[i]!)!;
  return { classes, encoded };
}

/**
 * The start scikit-learn builds from a warm-start model for K classes and d features, in scipy's layout;
 * undefined when the shapes do not match (scikit-learn raises "Initialization coef is of shape ...").
 */
export function warmStartWeights(K: number, d: number, warm: LogisticModel | undefined): Float64Array | undefined {
  const w0 = new Float64Array((d + 1) * K);
  if (!warm) return w0;
  const rows = K === 2 ? 1 : K;
  if (warm.nFeatures !== d || warm.intercept.length !== rows) return undefined;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j <= d; j++) {
      const v = j < d ? warm.coef[r * d + j]! : warm.intercept[r]!;
      if (K === 2) {
        w0[j * K + 0] = -v;
        w0[j * K + 1] = v;
      } else {
        w0[j * K + r] = v;
      }
    }
  }
  return w0;
}

/** The model scikit-learn keeps from a solution in scipy's layout. */
export function modelFromSolution(w: Float64Array, classes: number[], d: number, res: LbfgsbResult, maxIter: number): LogisticModel {
  const K = classes.length;
  const rows = K === 2 ? 1 : K;
  const coef = new Float64Array(rows * d), intercept = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const k = K === 2 ? 1 : r;
    for (let j = 0; j < d; j++) coef[r * d + j] = w[j * K + k]!;
    intercept[r] = w[d * K + k]!;
  }
  return {
    classes: [...classes], nFeatures: d, coef, intercept, nIter: Math.min(res.nit, maxIter), status: res.status,
    loss: res.f, nfev: res.nfev,
  };
}

/**
 * The objective and gradient of a set of problems sharing the rows of X (labels ys[p], -1 for rows
 * outside problem p; l2s[p] = 1 / C_p), evaluated for any subset of them at once as one GEMM pair:
 * Z = X [W_1^T ... W_P^T], then X^T G. The stacked label tensor is kept while the subset is unchanged
 * (a batch of L-BFGS solvers asks for the same subset until one of them finishes).
 */
export class LogisticBatchObjective {
  private readonly n: number;
  private readonly d: number;
  private labels: { key: string; t: Tensor } | undefined;

  /**
   * x [n, d]; xT [d, n] (optional) its transpose: X^T G is then a plain GEMM, which the CPU GEMM runs
   * faster than a transposed operand (worth the copy over a fit's hundred or so evaluations).
   */
  constructor(private readonly x: Tensor, private readonly K: number, private readonly ys: Int32Array[], private readonly l2s: number[],
    private readonly xT?: Tensor) {
    const { n, d } = checkX(x);
    if (xT && (xT.dtype !== 'float64' || xT.shape[0] !== d || xT.shape[1] !== n || xT.device !== x.device)) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `logistic regression: X^T must be float64 [${d}, ${n}] on ${x.device}, got [${xT.shape.join(', ')}] on ${xT.device}`);
    }
    this.n = n;
    this.d = d;
    for (const y of ys) {
      if (y.length !== n) throw new SslInvError('ERR_SHAPE_MISMATCH', `logistic regression: ${y.length} labels for ${n} rows`);
    }
  }

  private labelTensor(active: number[]): Tensor {
    const key = active.join(',');
    if (this.labels?.key === key) return this.labels.t;
    this.labels?.t.dispose();
    this.labels = undefined;
    const n = this.n;
    const Y = new Int32Array(active.length * n);
    active.forEach((p, a) => Y.set(this.ys[p]!, a * n));
    const t = keep(moveTo(tensor(Y, [active.length, n]), this.x.device));
    this.labels = { key, t };
    return t;
  }


  /** f and g of problems `active` at the points ws (scipy's layout), in the same order. */
  evaluate(active: number[], ws: Float64Array[]): { f: number[]; g: Float64Array[] } {
    const { d, K } = this;
    const P = active.length;
    const PK = P * K, dK = d * K;
    const Y = this.labelTensor(active);
    return scope(() => {
      let M: Float64Array;
      if (P === 1) {
        M = ws[0]!.slice(0, dK);
      } else {
        M = new Float64Array(d * PK);
        for (let p = 0; p < P; p++) {
          const w = ws[p]!;
          for (let j = 0; j < d; j++) {
            const src = j * K, dst = j * PK + p * K;
            for (let k = 0; k < K; k++) M[dst + k] = w[src + k]!;
          }
        }
      }
      const bias = new Float64Array(PK);
      for (let p = 0; p < P; p++) for (let k = 0; k < K; k++) bias[p * K + k] = ws[p]![dK + k]!;
      const Z = dgemm(this.x, moveTo(tensor(M, [d, PK]), this.x.device));
      const { loss, g, gb } = multinomialLossGrad(Z, moveTo(tensor(bias, [PK]), this.x.device), Y, K);
      Z.dispose();
      const GX = (this.xT ? dgemm(this.xT, g) : dgemm(this.x, g, { transA: true })).toArray() as Float64Array; // [d, P*K]
      const f: number[] = [], grads: Float64Array[] = [];
      for (let p = 0; p < P; p++) {
        const w = ws[p]!, l2 = this.l2s[active[p]!]!;
        const grad = new Float64Array(dK + K);
        for (let j = 0; j < d; j++) {
          const src = j * PK + p * K, dst = j * K;
          for (let k = 0; k < K; k++) grad[dst + k] = GX[src + k]! + l2 * w[dst + k]!;
        }
        for (let k = 0; k < K; k++) grad[dK + k] = gb[p * K + k]!;
        f.push(loss[p]! + 0.5 * l2 * dot(w, w, dK));
        grads.push(grad);
      }
      return { f, g: grads };
    });
  }

  /**
   * The device form of `evaluate`: problem active[k]'s weights are the x of `vectors[k]` (on X's
   * device); its gradient is written into that solver's g and its f returned.
   */
  evaluateInPlace(active: number[], vectors: DeviceLbfgsbVectors[]): number[] {
    const { d, K } = this;
    const n1 = (d + 1) * K, dK = d * K;
    const Y = this.labelTensor(active);
    const a = native() as unknown as LogisticDeviceAddon;
    const states = vectors.map((v) => v.state.handle);
    const l2s = active.map((p) => this.l2s[p]!);
    return scope(() => {
      const [m, b] = callNative('logistic regression on the device', () => a.cudaLogisticPack(states, n1, X_SLOT, d, K));
      const M = wrap(m), bias = wrap(b);
      const Z = dgemm(this.x, M);
      const { loss, g, gb } = multinomialLossGradTensors(Z, bias, Y, K);
      Z.dispose();
      const GX = dgemm(this.x, g, { transA: true }); // [d, P*K]
      callNative('logistic regression on the device', () => a.cudaLogisticUnpack(GX.handle, gb.handle, states, n1, X_SLOT, G_SLOT, d, K, l2s));
      return vectors.map((v, k) => loss[k]! + 0.5 * l2s[k]! * v.dotsOf(dK, X_SLOT, [X_SLOT])[0]!);
    });
  }

  dispose(): void {
    this.labels?.t.dispose();
    this.labels = undefined;
  }
}

/** One-shot evaluation of LogisticBatchObjective for all the problems given. */
export function logisticLossGradBatch(x: Tensor, K: number, ys: Int32Array[], l2s: number[], ws: Float64Array[]): { f: number[]; g: Float64Array[] } {
  const obj = new LogisticBatchObjective(x, K, ys, l2s);
  try {
    return obj.evaluate(ys.map((_, i) => i), ws);
  } finally {
    obj.dispose();
  }
}

/**
 * Fits P independent problems with the same number of classes K on the rows of X, in lockstep: one
 * batched evaluation per round for every problem still running. Returns the solutions (scipy's layout)
 * and the L-BFGS-B results.
 */
export function fitLogisticBatch(x: Tensor, K: number, problems: BatchProblem[], opts: { maxIter?: number; tol?: number; xT?: Tensor } = {},
  onRound?: (active: number) => void): { w: Float64Array; result: LbfgsbResult }[] {
  const { d } = checkX(x);
  const maxIter = opts.maxIter ?? 100, tol = opts.tol ?? 1e-4;
  for (const p of problems) checkC(p.C);
  if (x.device !== 'cpu') return fitLogisticBatchOnDevice(x, K, problems, maxIter, tol, onRound);
  const solvers = problems.map((p) => new LbfgsbSolver(p.w0 ?? new Float64Array((d + 1) * K), { gtol: tol, maxiter: maxIter }));
  // The CPU GEMM prefers a plain X^T operand (a device X returned above: cuBLAS reads it transposed).
  const xT = opts.xT ?? transposeTensor(x);
  const objective = new LogisticBatchObjective(x, K, problems.map((p) => p.y), problems.map((p) => 1 / p.C), xT);
  try {
    const results = runLbfgsbBatch(solvers, (active, xs) => objective.evaluate(active, xs), onRound);
    return results.map((r) => ({ w: r.x, result: r }));
  } finally {
    objective.dispose();
    if (!opts.xT) xT.dispose();
  }
}

/** fitLogisticBatch with X on a CUDA device: the solvers' vectors live there too. */
function fitLogisticBatchOnDevice(x: Tensor, K: number, problems: BatchProblem[], maxIter: number, tol: number,
  onRound?: (active: number) => void): { w: Float64Array; result: LbfgsbResult }[] {
  const { d } = checkX(x);
  const vectors: DeviceLbfgsbVectors[] = [];
  const objective = new LogisticBatchObjective(x, K, problems.map((p) => p.y), problems.map((p) => 1 / p.C));
  try {
    const solvers = problems.map((p) => new LbfgsbSolver(p.w0 ?? new Float64Array((d + 1) * K), { gtol: tol, maxiter: maxIter }, (n, m) => {
      const v = new DeviceLbfgsbVectors(n, m, x.device);
      vectors.push(v);
      return v;
    }));
    const results = runLbfgsbBatchInPlace(solvers, (active) => objective.evaluateInPlace(active, active.map((i) => vectors[i]!)), onRound);
    return results.map((r) => ({ w: r.x, result: r }));
  } finally {
    objective.dispose();
    for (const v of vectors) v.dispose();
  }
}

/** The transpose of a float64 [n, d] tensor, as a new [d, n] tensor. */
export function transposeTensor(x: Tensor): Tensor {
  const { n, d } = checkX(x);
  const a = x.toArray() as Float64Array;
  const t = new Float64Array(n * d);
  const B = 64;
  for (let i0 = 0; i0 < n; i0 += B) {
    const i1 = Math.min(n, i0 + B);
    for (let j0 = 0; j0 < d; j0 += B) {
      const j1 = Math.min(d, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) t[j * n + i] = a[i * d + j]!;
    }
  }
  return tensor(t, [d, n]);
}

/**
 * LogisticRegression(solver='lbfgs', multi_class='multinomial', C, max_iter, tol, warm_start).fit(X, y):
 * X float64 [n, d], y the class labels. With `warmStart` (the previous fit of the same estimator) the
 * start is its coef_/intercept_; if the shapes differ scikit-learn would raise, and we start from
 * zeros instead (reported in `warmStartIgnored`).
 */
export function fitLogisticRegression(x: Tensor, y: ArrayLike<number>, opts: LogisticOptions & { warmStart?: LogisticModel; xT?: Tensor }):
  LogisticModel & { warmStartIgnored: boolean } {
  const { n, d } = checkX(x);
  checkC(opts.C);
  if (y.length !== n) throw new SslInvError('ERR_SHAPE_MISMATCH', `logistic regression: ${y.length} labels for ${n} rows`);
  const { classes, encoded } = encodeLabels(y);
  if (classes.length < 2) {
    throw new SslInvError('ERR_INVALID_ARGUMENT',
      `logistic regression needs samples of at least 2 classes, but the data contain only class ${classes[0]}`);
  }
  const K = classes.length;
  let w0 = warmStartWeights(K, d, opts.warmStart);
  const warmStartIgnored = w0 === undefined;
  if (!w0) w0 = new Float64Array((d + 1) * K);
  const maxIter = opts.maxIter ?? 100;
  const [sol] = fitLogisticBatch(x, K, [{ y: encoded, C: opts.C, w0 }], { maxIter, tol: opts.tol ?? 1e-4, ...(opts.xT ? { xT: opts.xT } : {}) });
  return { ...modelFromSolution(sol!.w, classes, d, sol!.result, maxIter), warmStartIgnored };
}

/** decision_function: X coef_^T + intercept_, row-major [n, rows]. */
export function decisionFunction(model: LogisticModel, x: Tensor): Float64Array {
  const { n, d } = checkX(x);
  if (d !== model.nFeatures) throw new SslInvError('ERR_SHAPE_MISMATCH', `the model has ${model.nFeatures} features, X has ${d}`);
  const rows = model.intercept.length;
  const scores = scope(() => {
    return dgemm(x, moveTo(tensor(model.coef, [rows, d]), x.device), { transB: true }).toArray() as Float64Array;
  });
  for (let i = 0; i < n; i++) for (let r = 0; r < rows; r++) scores[i * rows + r] = scores[i * rows + r]! + model.intercept[r]!;
  return scores;
}

/** predict: the class with the largest score (the first on ties), or score > 0 for two classes. */
export function predictLogistic(model: LogisticModel, x: Tensor): number[] {
  const scores = decisionFunction(model, x);
  const rows = model.intercept.length, n = x.shape[0]!;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    if (rows === 1) {
      out[i] = model.classes[scores[i]! > 0 ? 1 : 0]!;
    } else {
      let best = 0;
      for (let r = 1; r < rows; r++) if (scores[i * rows + r]! > scores[i * rows + best]!) best = r;
      out[i] = model.classes[best]!;
    }
  }
  return out;
}

/** The objective scikit-learn minimises, at the model's coefficients, on (X, y) with this C. */
export function logisticObjective(model: LogisticModel, x: Tensor, y: ArrayLike<number>, C: number): number {
  const { d } = checkX(x);
  const { classes, encoded } = encodeLabels(y);
  if (classes.join() !== model.classes.join()) throw new SslInvError('ERR_INVALID_ARGUMENT', 'logisticObjective: the labels differ from the model\'s classes');
  const w = warmStartWeights(classes.length, d, model)!;
  return logisticLossGradBatch(x, classes.length, [encoded], [1 / C], [w]).f[0]!;
}
