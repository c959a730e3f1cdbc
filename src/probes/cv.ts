/**
 * The original's probe searches (eval_downstream.py's CVTester, eval_causal3dident.py's CVTester):
 *
 *   wd_range = torch.logspace(-6 + 2c, 5 + 2c, 45) (float32), c = 2 for w3 models, else the number of
 *   '+' in the model name; C = 1 / wd.item(). For each wd in order, for each of the k folds in order:
 *   fit on the training rows, score the validation rows; the CV score is the mean over folds; the best
 *   is the first with the largest mean (`score > best_score`, so NaN scores never win); then refit on
 *   all of trainval with the best value and score the test set.
 *
 *   - classification: LogisticRegression(lbfgs, multinomial, warm_start=True), ONE estimator for the
 *     whole search, so every fit starts from the previous fit's coefficients: C values in wd order,
 *     folds in order, then the final refit (from the last fold of the last C). Metric: accuracy, or the
 *     mean per-class accuracy (Caltech101, Flowers). Multi-label: one binary problem per attribute,
 *     attributes in order, the same warm-started estimator for all of them; the score is the mean
 *     accuracy over attributes.
 *   - regression: Ridge with alpha = C (the same 1/wd value the classifier would get as C: the
 *     original's set_params renames C to alpha), scored by R^2 (uniform average over outputs).
 *   - Causal3DIdent: StandardScaler + RBF KernelRidge over alpha in logspace(0, -4, 5) x gamma in
 *     logspace(-5, 2, 8), alpha outer; R^2.
 *
 * The original's KFold(shuffle=True) is unseeded; ours is KFold(k, shuffle=True, random_state=seed),
 * so the folds are reproducible and the same for every C (see kfold.ts).
 *
 * Warm starts and batching. The warm-start chain makes the original's 45 x k + 1 logistic fits one
 * sequential chain (fold i of C_j starts where fold i-1 of C_j stopped), so in the faithful mode
 * `warmStart: 'chain'` (the default) the fits run one after another and only the work inside a fit is
 * parallel (the GEMMs). Two other modes trade that fidelity for batching, and say so in the result:
 *   - 'per-fold': fold i of C_j starts from fold i of C_{j-1}, so the k folds of one C are independent
 *     and run in lockstep, one stacked GEMM pair per round over all k problems;
 *   - 'none': every fit starts from zeros (scikit-learn's default warm_start=False), so all 45 x k fits
 *     are independent and run together, in batches bounded by memory.
 * Ridge and KernelRidge have no warm start; all their regularisation values come from shared
 * factorisations per fold (one eigendecomposition per fold for Ridge; one kernel per gamma and a
 * Cholesky per alpha for KernelRidge).
 *
 * Devices. With `device: 'cuda'` the feature matrices live on the GPU and every GEMM of the search
 * runs there in float64 (cuBLAS DGEMM), as does the logistic loss; L-BFGS-B, the eigendecompositions
 * and the Cholesky solves stay on the host in float64. The search itself (folds, order, warm starts,
 * selection) is identical; the GPU's summation order moves results by rounding only.
 *
 * Cancellation. A `signal` is checked where progress is reported (before each fit, fold or batch of
 * fits, and before the refit): ERR_ABORTED (src/abort.ts), with the search's tensors freed. The
 * searches are synchronous, so the signal can only change during one if the caller aborts from its
 * onProgress callback; a timer's or another request's abort is seen when the search has returned.
 */
import { throwIfAborted } from '../abort';
import { DeviceSpec, resolveDevice } from '../device';
import { SslInvError } from '../errors';
import { scope, Tensor } from '../tensor';
import { CAUSAL3DIDENT_ALPHAS, CAUSAL3DIDENT_GAMMAS, kernelRidgeGrid } from './kernel-ridge';
import { Fold, kfoldSplits } from './kfold';
import {
  BatchProblem, encodeLabels, fitLogisticBatch, fitLogisticRegression, LogisticModel, modelFromSolution, predictLogistic,
  transposeTensor, warmStartWeights,
} from './logistic';
import { accuracy, meanPerClassAccuracy, meanSquaredError, r2Score } from './metrics';
import { gatherRows, numpyMean } from './numeric';
import { matrixOn } from './placement';
import { fitRidgePath, predictRidgePath, selectAlpha } from './ridge';

export type WarmStartMode = 'chain' | 'per-fold' | 'none';
export type ClassificationMetric = 'accuracy' | 'mean-per-class';

/** c of the original: 2 for w3 models, else the number of '+' in the model name. */
export function wdOffset(modelName = 'default'): number {
  return modelName.includes('w3') ? 2 : modelName.split('+').length - 1;
}

/** torch.logspace(-6 + 2c, 5 + 2c, 45) as float32 values (computed as torch 1.13's CPU kernel does). */
export function wdRange(modelName = 'default', steps = 45): number[] {
  const c = wdOffset(modelName);
  const start = -6 + 2 * c, end = 5 + 2 * c;
  const step = (end - start) / (steps - 1);
  const half = Math.floor(steps / 2);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const e = i < half ? start + step * i : end - step * (steps - i - 1);
    out.push(Math.fround(Math.pow(10, e)));
  }
  return out;
}

/** The C values of the search: 1 / wd.item() for each float32 wd, in wd order. */
export function cGrid(modelName = 'default'): number[] {
  return wdRange(modelName).map((w) => 1 / w);
}

export interface ProgressEvent {
  /** Units of work done and in total (fits or solves). */
  done: number;
  total: number;
  stage: 'cv' | 'refit';
}

export type ProgressCallback = (e: ProgressEvent) => void;

/** Features: row-major [rows, cols]. float32 features are widened to float64 (as scikit-learn does for lbfgs). */
export interface FeatureMatrix {
  data: Float32Array | Float64Array;
  rows: number;
  cols: number;
}

export interface SearchTimings {
  cvSeconds: number;
  refitSeconds: number;
  totalSeconds: number;
}

export interface ProbeResult {
  mode: 'classification' | 'multi-label' | 'regression';
  metric: string;
  /** The C values searched, in wd order (null when C was given). */
  Cs: number[] | null;
  /** The wd values (float32, as doubles), in order (null when C was given). */
  wds: number[] | null;
  /** cvScores[j][f]: fold f's validation score with Cs[j]. */
  cvScores: number[][];
  /** The mean over folds per C. */
  meanCvScores: number[];
  bestIndex: number;
  chosenC: number;
  /** For regression, the alpha given to Ridge (= chosenC). */
  chosenAlpha?: number;
  testScore: number;
  /** Regression: the test MSE (scikit-learn's mean_squared_error). */
  testMse?: number;
  folds: number;
  seed: number;
  warmStart?: WarmStartMode;
  /** Logistic fits that stopped at max_iter, and the total number of fits. */
  unconvergedFits?: number;
  fits: number;
  notes: string[];
  timings: SearchTimings;
  /** The final model (classification), for callers that predict more. */
  model?: LogisticModel | LogisticModel[];
}

function toFloat64(m: FeatureMatrix, what: string): Float64Array {
  if (m.data.length !== m.rows * m.cols) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `${what}: ${m.data.length} values do not form [${m.rows}, ${m.cols}]`);
  }
  const out = m.data instanceof Float64Array ? m.data : Float64Array.from(m.data);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `${what} contain a non-finite value (${out[i]}) at row ${Math.floor(i / m.cols)}, column ${i % m.cols}`);
    }
  }
  return out;
}

function checkRows(n: number, targets: number, what: string): void {
  if (n !== targets) throw new SslInvError('ERR_SHAPE_MISMATCH', `${what}: ${n} feature rows but ${targets} targets`);
}

/** The first index of the largest value, comparing as the original does (`score > best`, NaN never wins); -1 if none. */
export function firstBest(scores: number[]): number {
  let best = -Infinity, idx = -1;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i]! > best) {
      best = scores[i]!;
      idx = i;
    }
  }
  return idx;
}

function now(): number {
  return performance.now() / 1000;
}

/**
 * Per-fold tensors for the logistic chain: the training rows, their transpose (for the CPU's gradient
 * GEMM; not on a device) and the validation rows, made on first use on `device` and kept while their
 * total stays under a budget; when a fold does not fit, the least recently used folds are freed first
 * (never the one being returned).
 */
class FoldTensors {
  private readonly cache = new Map<number, { x: Tensor; xT: Tensor | undefined; val: Tensor; bytes: number }>();
  private bytes = 0;
  constructor(private readonly x: Float64Array, private readonly d: number, private readonly folds: Fold[],
    private readonly budget: number, private readonly device: DeviceSpec) {}

  get(f: number): { x: Tensor; xT: Tensor | undefined; val: Tensor } {
    const hit = this.cache.get(f);
    if (hit) {
      this.cache.delete(f);
      this.cache.set(f, hit); // most recently used last
      return hit;
    }
    const fold = this.folds[f]!;
    const cpu = this.device === 'cpu';
    const size = ((cpu ? 2 : 1) * fold.train.length + fold.test.length) * this.d * 8;
    for (const [key, e] of this.cache) {
      if (this.bytes + size <= this.budget) break;
      this.drop(key, e);
    }
    const x = matrixOn(gatherRows(this.x, this.d, fold.train), fold.train.length, this.d, this.device);
    const xT = cpu ? transposeTensor(x) : undefined;
    const val = matrixOn(gatherRows(this.x, this.d, fold.test), fold.test.length, this.d, this.device);
    const entry = { x, xT, val, bytes: size };
    this.cache.set(f, entry);
    this.bytes += size;
    return entry;
  }

  private drop(key: number, e: { x: Tensor; xT: Tensor | undefined; val: Tensor; bytes: number }): void {
    e.x.dispose();
    e.xT?.dispose();
    e.val.dispose();
    this.bytes -= e.bytes;
    this.cache.delete(key);
  }

  clear(): void {
    for (const [key, e] of [...this.cache]) this.drop(key, e);
  }
}

export interface ClassificationProbeOptions {
  /** Multi-label targets: one binary problem per column of the [n, L] 0/1 targets. */
  multiLabel?: boolean;
  metric?: ClassificationMetric;
  /** A fixed C: no search, fit on trainval and score the test set. */
  C?: number;
  /** Override the C grid (default: cGrid(modelName)). */
  Cs?: number[];
  modelName?: string;
  folds?: number;
  seed?: number;
  warmStart?: WarmStartMode;
  maxIter?: number;
  tol?: number;
  onProgress?: ProgressCallback;
  /** Memory bound (bytes) for one batched evaluation in the batched modes. Default 512 MiB. */
  batchBytes?: number;
  /** Memory bound (bytes) for the per-fold row tensors the chain keeps between fits. Default 2 GiB on the CPU, 16 GiB on a GPU. */
  foldCacheBytes?: number;
  /** Where the GEMMs and the loss run: 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Stops the search between fits (see 'Cancellation' above). */
  signal?: AbortSignal;
}

function labelsOf(y: ArrayLike<number>, rows: Int32Array): number[] {
  return Array.from(rows, (r) => y[r]!);
}

/**
 * The original's classification probe: CV search of C on (x, y), refit on all of it, score the test set.
 * y: class labels (multiLabel: row-major [n, L] 0/1 values).
 */
export function classificationProbe(x: FeatureMatrix, y: ArrayLike<number>, xTest: FeatureMatrix, yTest: ArrayLike<number>,
  opts: ClassificationProbeOptions = {}): ProbeResult {
  const t0 = now();
  const d = x.cols;
  if (xTest.cols !== d) throw new SslInvError('ERR_SHAPE_MISMATCH', `test features have ${xTest.cols} columns, trainval features ${d}`);
  const xs = toFloat64(x, 'trainval features'), xt = toFloat64(xTest, 'test features');
  const multiLabel = opts.multiLabel ?? false;
  const L = multiLabel ? y.length / x.rows : 1;
  if (multiLabel) {
    if (!Number.isInteger(L) || L < 1 || yTest.length !== xTest.rows * L) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `multi-label targets must be [rows, labels]: got ${y.length} trainval and ${yTest.length} test values`);
    }
  } else {
    checkRows(x.rows, y.length, 'trainval');
    checkRows(xTest.rows, yTest.length, 'test');
  }
  for (let i = 0; i < y.length; i++) if (!Number.isInteger(y[i]!)) throw new SslInvError('ERR_INVALID_ARGUMENT', `classification targets must be integers, got ${y[i]} at ${i}`);
  const metric = opts.metric ?? 'accuracy';
  const warmStart = opts.warmStart ?? 'chain';
  if (multiLabel && warmStart !== 'chain') {
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'the multi-label probe runs the original\'s warm-start chain only (warmStart: \'chain\')');
  }
  const seed = opts.seed ?? 0;
  const k = opts.folds ?? 5;
  const maxIter = opts.maxIter ?? 100, tol = opts.tol ?? 1e-4;
  const device = resolveDevice(opts.device ?? 'cpu');
  const fixed = opts.C !== undefined;
  const wds = fixed ? null : opts.Cs ? null : wdRange(opts.modelName);
  const Cs = fixed ? [opts.C!] : opts.Cs ? [...opts.Cs] : wds!.map((w) => 1 / w);
  const folds = fixed ? [] : kfoldSplits(x.rows, k, { seed });
  const notes: string[] = [];
  const total = (fixed ? 0 : Cs.length * folds.length) + 1;
  let done = 0, unconverged = 0, fits = 0;
  const progress = (stage: 'cv' | 'refit') => opts.onProgress?.({ done, total, stage });
  // Before each fit (and the refit): a signal aborted before the call stops the search before its first.
  const checkAbort = () => throwIfAborted(opts.signal, () => `the logistic regression search stopped after ${done} of ${total} fits`);
  const score = (yt: ArrayLike<number>, yp: ArrayLike<number>) => (metric === 'mean-per-class' ? meanPerClassAccuracy(yt, yp) : accuracy(yt, yp));
  const foldT = new FoldTensors(xs, d, folds, opts.foldCacheBytes ?? (device === 'cpu' ? 2 ** 31 : 2 ** 34), device);
  const allRows = Int32Array.from({ length: x.rows }, (_, i) => i);
  const testRows = Int32Array.from({ length: xTest.rows }, (_, i) => i);

  const noteModel = (m: LogisticModel & { warmStartIgnored?: boolean }, where: string) => {
    fits++;
    if (m.status === 'max-iterations') unconverged++;
    if (m.warmStartIgnored) notes.push(`${where}: the previous fit has another number of classes; started from zeros (scikit-learn would raise)`);
  };

  // one warm-started estimator, as the original's LogisticRegression(warm_start=True)
  let prev: LogisticModel | undefined;
  /** Fits (multi-label: all attributes in order) and scores, on train rows / eval set. */
  const fitAndScore = (trainX: Tensor, trainXT: Tensor | undefined, trainRows: Int32Array, evalX: Tensor, evalRows: Int32Array,
    C: number, where: string, labelsEval: (rows: Int32Array, l: number) => number[]): { score: number; models: LogisticModel[] } => {
    if (!multiLabel) {
      const m = fitLogisticRegression(trainX, labelsOf(y, trainRows), { C, maxIter, tol, warmStart: prev, ...(trainXT ? { xT: trainXT } : {}) });
      noteModel(m, where);
      prev = m;
      return { score: score(labelsEval(evalRows, 0), predictLogistic(m, evalX)), models: [m] };
    }
    const perAttr: number[] = [];
    const models: LogisticModel[] = [];
    for (let l = 0; l < L; l++) {
      const yl = Array.from(trainRows, (r) => y[r * L + l]!);
      const m = fitLogisticRegression(trainX, yl, { C, maxIter, tol, warmStart: prev, ...(trainXT ? { xT: trainXT } : {}) });
      noteModel(m, `${where}, attribute ${l}`);
      prev = m;
      models.push(m);
      perAttr.push(accuracy(labelsEval(evalRows, l), predictLogistic(m, evalX)));
    }
    return { score: numpyMean(perAttr), models };
  };
  const trainvalLabels = (rows: Int32Array, l: number) => Array.from(rows, (r) => (multiLabel ? y[r * L + l]! : y[r]!));
  const testLabels = (rows: Int32Array, l: number) => Array.from(rows, (r) => (multiLabel ? yTest[r * L + l]! : yTest[r]!));

  const cvScores: number[][] = Cs.map(() => new Array<number>(folds.length).fill(NaN));
  const tCv = now();
  // The fold tensors are freed however the search ends (an error, an abort).
  try {
    if (!fixed) {
      if (warmStart === 'chain') {
        for (let j = 0; j < Cs.length; j++) {
          for (let f = 0; f < folds.length; f++) {
            checkAbort();
            const fold = folds[f]!;
            const t = foldT.get(f);
            const r = fitAndScore(t.x, t.xT, fold.train, t.val, fold.test, Cs[j]!, `C=${Cs[j]} fold ${f}`, trainvalLabels);
            cvScores[j]![f] = r.score;
            done++;
            progress('cv');
          }
        }
      } else {
        const batched = runBatchedSearch(xs, d, y, folds, Cs, warmStart, { maxIter, tol, batchBytes: opts.batchBytes ?? 2 ** 29, device }, () => {
          done++;
          progress('cv');
        }, checkAbort);
        const valT = folds.map((fold) => matrixOn(gatherRows(xs, d, fold.test), fold.test.length, d, device));
        try {
          for (const r of batched.results) {
            noteModel(r.model, `C=${Cs[r.j]} fold ${r.f}`);
            cvScores[r.j]![r.f] = score(trainvalLabels(folds[r.f]!.test, 0), predictLogistic(r.model, valT[r.f]!));
          }
        } finally {
          for (const t of valT) t.dispose();
        }
        prev = warmStart === 'per-fold' ? batched.lastModel : undefined;
        notes.push(warmStart === 'per-fold'
          ? 'warm starts per fold (fold i of each C starts from fold i of the previous C), not the original\'s single chain'
          : 'every fit starts from zeros, not the original\'s warm-start chain');
      }
    }
  } finally {
    foldT.clear();
  }
  const cvSeconds = now() - tCv;
  const meanCvScores = cvScores.map((s) => numpyMean(s));
  const bestIndex = fixed ? 0 : firstBest(meanCvScores);
  if (bestIndex < 0) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'no C value gave a finite cross-validation score (the original would fail here too)');
  }
  const chosenC = Cs[bestIndex]!;
  checkAbort();
  const tRefit = now();
  const trainvalX = matrixOn(xs, x.rows, d, device);
  const trainvalXT = device === 'cpu' ? transposeTensor(trainvalX) : undefined;
  const testX = matrixOn(xt, xTest.rows, d, device);
  let final: { score: number; models: LogisticModel[] };
  try {
    final = fitAndScore(trainvalX, trainvalXT, allRows, testX, testRows, chosenC, `refit C=${chosenC}`, testLabels);
  } finally {
    trainvalX.dispose();
    trainvalXT?.dispose();
    testX.dispose();
  }
  done++;
  progress('refit');
  const refitSeconds = now() - tRefit;
  return {
    mode: multiLabel ? 'multi-label' : 'classification', metric: multiLabel ? 'mean accuracy over labels' : metric,
    Cs: fixed ? null : Cs, wds, cvScores: fixed ? [] : cvScores, meanCvScores: fixed ? [] : meanCvScores, bestIndex, chosenC,
    testScore: final.score, folds: fixed ? 0 : k, seed, warmStart, unconvergedFits: unconverged, fits, notes,
    timings: { cvSeconds, refitSeconds, totalSeconds: now() - t0 },
    model: multiLabel ? final.models : final.models[0],
  };
}

interface BatchedFit {
  j: number;
  f: number;
  model: LogisticModel;
}

/** The 'per-fold' and 'none' warm-start modes: independent fits run in lockstep batches. */
function runBatchedSearch(xs: Float64Array, d: number, y: ArrayLike<number>, folds: Fold[], Cs: number[], mode: WarmStartMode,
  opts: { maxIter: number; tol: number; batchBytes: number; device: DeviceSpec }, onFit: () => void, checkAbort: () => void):
  { results: BatchedFit[]; lastModel?: LogisticModel } {
  const n = xs.length / d;
  const X = matrixOn(xs, n, d, opts.device);
  const XT = opts.device === 'cpu' ? transposeTensor(X) : undefined;
  try {
    // per fold: its classes and the labels of the full rows (-1 outside its training rows)
    const foldInfo = folds.map((fold) => {
      const { classes, encoded } = encodeLabels(labelsOf(y, fold.train));
      if (classes.length < 2) throw new SslInvError('ERR_INVALID_ARGUMENT', 'a training fold has only one class');
      const full = new Int32Array(n).fill(-1);
      fold.train.forEach((r, i) => { full[r] = encoded[i]!; });
      return { classes, y: full };
    });
    const results: BatchedFit[] = [];
    const run = (jobs: { j: number; f: number; w0?: Float64Array }[]) => {
      // group by class set so every batch shares K
      const groups = new Map<string, typeof jobs>();
      for (const job of jobs) {
        const key = foldInfo[job.f]!.classes.join(',');
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key)!.push(job);
      }
      const out: BatchedFit[] = [];
      for (const group of groups.values()) {
        const classes = foldInfo[group[0]!.f]!.classes, K = classes.length;
        const perProblem = n * K * 8 * 3;
        const size = Math.max(1, Math.floor(opts.batchBytes / perProblem));
        for (let s = 0; s < group.length; s += size) {
          checkAbort();
          const chunk = group.slice(s, s + size);
          const problems: BatchProblem[] = chunk.map((job) => ({ y: foldInfo[job.f]!.y, C: Cs[job.j]!, ...(job.w0 ? { w0: job.w0 } : {}) }));
          const sols = scope(() => fitLogisticBatch(X, K, problems, { maxIter: opts.maxIter, tol: opts.tol, ...(XT ? { xT: XT } : {}) }));
          sols.forEach((sol, i) => {
            out.push({ j: chunk[i]!.j, f: chunk[i]!.f, model: modelFromSolution(sol.w, classes, d, sol.result, opts.maxIter) });
            onFit();
          });
        }
      }
      return out;
    };
    if (mode === 'none') {
      const jobs = Cs.flatMap((_, j) => folds.map((__, f) => ({ j, f })));
      results.push(...run(jobs));
      return { results };
    }
    // per-fold: the C values in order, the folds of one C together, each from its own previous fit
    const last: (LogisticModel | undefined)[] = folds.map(() => undefined);
    let lastModel: LogisticModel | undefined;
    for (let j = 0; j < Cs.length; j++) {
      const jobs = folds.map((_, f) => {
        const K = foldInfo[f]!.classes.length;
        const w0 = last[f] ? warmStartWeights(K, d, last[f]) : undefined;
        return { j, f, ...(w0 ? { w0 } : {}) };
      });
      const fitsJ = run(jobs).sort((a, b) => a.f - b.f);
      for (const r of fitsJ) {
        last[r.f] = r.model;
        lastModel = r.model;
      }
      results.push(...fitsJ);
    }
    return { results, ...(lastModel ? { lastModel } : {}) };
  } finally {
    X.dispose();
    XT?.dispose();
  }
}

/** The number of outputs T of row-major [rows, T] regression targets; throws unless both splits agree. */
function regressionOutputs(x: FeatureMatrix, y: Float64Array, xTest: FeatureMatrix, yTest: Float64Array): number {
  if (xTest.cols !== x.cols) throw new SslInvError('ERR_SHAPE_MISMATCH', `test features have ${xTest.cols} columns, trainval features ${x.cols}`);
  const T = y.length / x.rows;
  if (!Number.isInteger(T) || T < 1 || yTest.length !== xTest.rows * T) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `regression targets must be [rows, outputs]: ${y.length} trainval and ${yTest.length} test values`);
  }
  return T;
}

export interface RegressionProbeOptions {
  /** A fixed C (Ridge alpha = C): no search. */
  C?: number;
  Cs?: number[];
  modelName?: string;
  folds?: number;
  seed?: number;
  onProgress?: ProgressCallback;
  /** Where the GEMMs run: 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Stops the search between folds (see 'Cancellation' above). */
  signal?: AbortSignal;
}

/**
 * The original's regression probe: Ridge(alpha = C) over the C grid, scored by R^2; y and yTest are
 * row-major [n, T] float64 targets.
 */
export function regressionProbe(x: FeatureMatrix, y: Float64Array, xTest: FeatureMatrix, yTest: Float64Array,
  opts: RegressionProbeOptions = {}): ProbeResult {
  const t0 = now();
  const d = x.cols;
  const T = regressionOutputs(x, y, xTest, yTest);
  for (let i = 0; i < y.length; i++) if (!Number.isFinite(y[i]!)) throw new SslInvError('ERR_INVALID_ARGUMENT', `the targets contain a non-finite value at ${i}`);
  const xs = toFloat64(x, 'trainval features'), xt = toFloat64(xTest, 'test features');
  const seed = opts.seed ?? 0, k = opts.folds ?? 5;
  const device = resolveDevice(opts.device ?? 'cpu');
  const fixed = opts.C !== undefined;
  const wds = fixed ? null : opts.Cs ? null : wdRange(opts.modelName);
  const Cs = fixed ? [opts.C!] : opts.Cs ? [...opts.Cs] : wds!.map((w) => 1 / w);
  const folds = fixed ? [] : kfoldSplits(x.rows, k, { seed });
  const total = folds.length + 1;
  let done = 0;
  // Before each fold's fits and the refit (so before any work when the signal is aborted already).
  const checkAbort = () => throwIfAborted(opts.signal, () => `the ridge search stopped after ${done} of ${total} fits (folds and refit)`);
  const tCv = now();
  const cvScores: number[][] = Cs.map(() => []);
  for (const fold of folds) {
    checkAbort();
    const path = fitRidgePath(xs, d, y, T, Cs, fold.train, device);
    const pred = predictRidgePath(path, xs, fold.test, device);
    const yv = gatherRows(y, T, fold.test);
    for (let j = 0; j < Cs.length; j++) cvScores[j]!.push(r2Score(yv, selectAlpha(pred, fold.test.length, Cs.length, T, j), T));
    done++;
    opts.onProgress?.({ done, total, stage: 'cv' });
  }
  const cvSeconds = now() - tCv;
  const meanCvScores = cvScores.map((s) => numpyMean(s));
  const bestIndex = fixed ? 0 : firstBest(meanCvScores);
  if (bestIndex < 0) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no alpha gave a finite cross-validation score');
  const chosenC = Cs[bestIndex]!;
  checkAbort();
  const tRefit = now();
  const path = fitRidgePath(xs, d, y, T, [chosenC], undefined, device);
  const pred = predictRidgePath(path, xt, undefined, device);
  done++;
  opts.onProgress?.({ done, total, stage: 'refit' });
  return {
    mode: 'regression', metric: 'r2', Cs: fixed ? null : Cs, wds, cvScores: fixed ? [] : cvScores, meanCvScores: fixed ? [] : meanCvScores,
    bestIndex, chosenC, chosenAlpha: chosenC, testScore: r2Score(yTest, pred, T), testMse: meanSquaredError(yTest, pred, T),
    folds: fixed ? 0 : k, seed, fits: fixed ? 1 : folds.length * Cs.length + 1, notes: [],
    timings: { cvSeconds, refitSeconds: now() - tRefit, totalSeconds: now() - t0 },
  };
}

export interface KernelRidgeProbeResult {
  alphas: number[];
  gammas: number[];
  /** cvScores[ai * gammas + gi][f]. */
  cvScores: number[][];
  meanCvScores: number[];
  bestIndex: number;
  chosenAlpha: number;
  chosenGamma: number;
  testScore: number;
  folds: number;
  seed: number;
  lstsqFallbacks: number;
  timings: SearchTimings;
}

export interface KernelRidgeProbeOptions {
  /** The alpha and gamma grids (default: eval_causal3dident.py's, CAUSAL3DIDENT_ALPHAS / _GAMMAS). */
  alphas?: readonly number[];
  gammas?: readonly number[];
  folds?: number;
  seed?: number;
  onProgress?: ProgressCallback;
  /** Where the Gram GEMMs run: 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Stops the search between solves (see 'Cancellation' above). */
  signal?: AbortSignal;
}

/** eval_causal3dident.py's search: StandardScaler + RBF KernelRidge over (alpha, gamma), R^2. */
export function kernelRidgeProbe(x: FeatureMatrix, y: Float64Array, xTest: FeatureMatrix, yTest: Float64Array,
  opts: KernelRidgeProbeOptions = {}): KernelRidgeProbeResult {
  const t0 = now();
  const d = x.cols;
  const T = regressionOutputs(x, y, xTest, yTest);
  const xs = toFloat64(x, 'trainval features'), xt = toFloat64(xTest, 'test features');
  const alphas = [...(opts.alphas ?? CAUSAL3DIDENT_ALPHAS)], gammas = [...(opts.gammas ?? CAUSAL3DIDENT_GAMMAS)];
  const seed = opts.seed ?? 0, k = opts.folds ?? 5;
  const device = resolveDevice(opts.device ?? 'cpu');
  const folds = kfoldSplits(x.rows, k, { seed });
  const G = alphas.length * gammas.length;
  const total = (folds.length + 1) * G;
  let done = 0, fallbacks = 0;
  const checkAbort = () => throwIfAborted(opts.signal, () => `the kernel ridge search stopped after ${done} of ${total} solves`);
  // Checked after each solve's progress report; thrown inside kernelRidgeGrid, whose scopes free its tensors.
  const tick = (stage: 'cv' | 'refit') => { done++; opts.onProgress?.({ done, total, stage }); checkAbort(); };
  checkAbort();
  const tCv = now();
  const cvScores: number[][] = Array.from({ length: G }, () => []);
  for (const fold of folds) {
    const r = kernelRidgeGrid(xs, d, y, T, fold.train, fold.test, alphas, gammas, () => tick('cv'), device);
    fallbacks += r.lstsqFallbacks;
    const yv = gatherRows(y, T, fold.test);
    r.predictions.forEach((p, i) => cvScores[i]!.push(r2Score(yv, p, T)));
  }
  const cvSeconds = now() - tCv;
  const meanCvScores = cvScores.map((s) => numpyMean(s));
  const bestIndex = firstBest(meanCvScores);
  if (bestIndex < 0) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no (alpha, gamma) gave a finite cross-validation score');
  const chosenAlpha = alphas[Math.floor(bestIndex / gammas.length)]!, chosenGamma = gammas[bestIndex % gammas.length]!;
  const tRefit = now();
  // the pipeline refitted on all of trainval, scored on the test rows (x and test stacked for one call)
  const nAll = x.rows + xTest.rows;
  const stacked = new Float64Array(nAll * d);
  stacked.set(xs);
  stacked.set(xt, xs.length);
  const yStacked = new Float64Array(nAll * T);
  yStacked.set(y);
  yStacked.set(yTest, y.length);
  const trainRows = Int32Array.from({ length: x.rows }, (_, i) => i);
  const testRows = Int32Array.from({ length: xTest.rows }, (_, i) => x.rows + i);
  const r = kernelRidgeGrid(stacked, d, yStacked, T, trainRows, testRows, [chosenAlpha], [chosenGamma], undefined, device);
  fallbacks += r.lstsqFallbacks;
  done = total;
  opts.onProgress?.({ done, total, stage: 'refit' });
  return {
    alphas, gammas, cvScores, meanCvScores, bestIndex, chosenAlpha, chosenGamma, testScore: r2Score(yTest, r.predictions[0]!, T),
    folds: k, seed, lstsqFallbacks: fallbacks, timings: { cvSeconds, refitSeconds: now() - tRefit, totalSeconds: now() - t0 },
  };
}
