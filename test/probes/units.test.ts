// The probes' pieces against scikit-learn / numpy / torch values (small.json) and direct references:
// KFold splits, the search grids, metrics, StandardScaler, numpy's summation order, the eigensolver,
// the RBF kernel and the batched multinomial loss kernel, and their bad inputs.
import t from 'tap';
import { dgemm } from '../../src/linalg';
import { tensor } from '../../src/tensor';
import { cGrid, firstBest, wdOffset, wdRange } from '../../src/probes/cv';
import { multinomialLossGrad, rbfFromGram, symmetricEigen, symmetricShiftedSolve } from '../../src/probes/eigen';
import { CAUSAL3DIDENT_ALPHAS, CAUSAL3DIDENT_GAMMAS } from '../../src/probes/kernel-ridge';
import { kfoldSplits } from '../../src/probes/kfold';
import { accuracy, confusionMatrix, meanPerClassAccuracy, meanSquaredError, r2Score } from '../../src/probes/metrics';
import { numpyMean, numpySum, sumAxis0 } from '../../src/probes/numeric';
import { RandomState } from '../../src/random/mt19937';
import { fitStandardScaler, transformStandard } from '../../src/probes/scaler';
import { fixture } from './data';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const F = fixture<any>('small.json');

t.test('KFold(k, shuffle=True, random_state=seed) split for split', async (t) => {
  for (const c of F.kfold) {
    const folds = kfoldSplits(c.n, c.k, { seed: c.seed });
    t.same(folds.map((f) => [Array.from(f.train), Array.from(f.test)]), c.splits, `n ${c.n}, k ${c.k}, seed ${c.seed}`);
  }
  t.throws(() => kfoldSplits(3, 5), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => kfoldSplits(10, 1), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('the grids: torch.logspace float32 wd ranges, C = 1/wd, numpy logspace for Causal3DIdent', async (t) => {
  for (const [name, values] of Object.entries(F.grids.wd_range as Record<string, number[]>)) {
    t.same(wdRange(name), values, `wd_range for ${name} (c = ${wdOffset(name)})`);
    t.same(cGrid(name), values.map((w) => 1 / w));
  }
  t.equal(wdOffset('default'), 0);
  t.equal(wdOffset('default+ventral+dorsal'), 2);
  t.equal(wdOffset('resnet50w3'), 2);
  t.same(CAUSAL3DIDENT_ALPHAS, F.grids.alphas);
  t.same(CAUSAL3DIDENT_GAMMAS, F.grids.gammas);
  t.equal(firstBest([0.5, 0.7, 0.7, NaN, 0.6]), 1, 'ties: the first; NaN never wins');
  t.equal(firstBest([NaN, NaN]), -1);
});

t.test('metrics as scikit-learn 1.2 and the original compute them', async (t) => {
  const m = F.metrics;
  t.equal(meanPerClassAccuracy(m.mean_per_class.y_true, m.mean_per_class.y_pred), m.mean_per_class.value);
  t.ok(Number.isNaN(meanPerClassAccuracy(m.mean_per_class_nan.y_true, m.mean_per_class_nan.y_pred)),
    'a class predicted but absent from y gives NaN, as the original');
  t.equal(m.mean_per_class_nan.value, null);
  for (const c of m.r2) {
    const T = c.y_true[0].length;
    t.equal(r2Score(c.y_true.flat(), c.y_pred.flat(), T), c.value, `R^2 with ${T} output(s)`);
    if (c.mse !== undefined) t.ok(Math.abs(meanSquaredError(c.y_true.flat(), c.y_pred.flat(), T) - c.mse) <= 1e-15 * c.mse, 'MSE');
  }
  t.ok(Number.isNaN(r2Score([1], [1])), 'R^2 of one sample is NaN');
  t.equal(accuracy([1, 2, 3, 4], [1, 2, 0, 4]), 0.75);
  t.same(confusionMatrix([0, 1, 1], [1, 1, 2]), { labels: [0, 1, 2], matrix: [[0, 1, 0], [0, 1, 1], [0, 0, 0]] });
  t.throws(() => accuracy([1, 2], [1]), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => r2Score([1, 2, 3], [1, 2, 3], 2), { code: 'ERR_SHAPE_MISMATCH' });
});

t.test('StandardScaler: population variance, constant features scaled by 1', async (t) => {
  const s = F.metrics.scaler;
  const x = Float64Array.from(s.x.flat() as number[]);
  const sc = fitStandardScaler(x, 4);
  const close = (a: ArrayLike<number>, b: number[], tol: number) => b.every((v, i) => Math.abs(a[i]! - v) <= tol * Math.max(1, Math.abs(v)));
  t.ok(close(sc.mean, s.mean, 1e-15), 'mean');
  t.ok(close(sc.variance, s.var, 1e-14), 'var');
  t.same(Array.from(sc.scale), s.scale, 'scale (1 for the constant column)');
  t.ok(close(transformStandard(sc, x, 4), s.transformed.flat(), 1e-14), 'transform');
});

t.test('numpy summation order: pairwise within 8192-element buffers', async (t) => {
  let differs = 0;
  for (const c of F.sums) {
    const r = new RandomState(c.seed);
    const u1 = r.rand(c.n), u2 = r.rand(c.n);
    const a = u1.map((v, i) => (v - 0.5) * (1.0 + u2[i]! * 1e12));
    t.equal(numpySum(a), c.sum, `a.sum() of ${c.n} values`);
    t.equal(numpyMean(a), c.mean, 'a.mean()');
    t.equal(sumAxis0(a, c.n, 1)[0], c.column_sum, 'a[:, None].sum(axis=0)');
    let seq = 0;
    for (const v of a) seq += v;
    if (seq !== c.sum) differs++;
  }
  t.ok(differs > 0, 'the order matters for these values');
  t.equal(numpySum([1, 2, 3]), 6);
  t.equal(numpySum([]), 0);
});

t.test('symmetric eigensolver', async (t) => {
  for (const n of [1, 2, 7, 64, 200]) {
    const r = new Float64Array(n * (n + 3)).map((_, i) => Math.sin(i * 1.7 + 0.3));
    const X = tensor(r, [n, n + 3]);
    const A = dgemm(X, X, { transB: true });
    const { values, vectors } = symmetricEigen(A);
    const w = values.toArray() as Float64Array, V = vectors.toArray() as Float64Array;
    const AV = dgemm(A, vectors).toArray() as Float64Array;
    const a = A.toArray() as Float64Array;
    const norm = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let res = 0, orth = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) res = Math.max(res, Math.abs(AV[i * n + j]! - V[i * n + j]! * w[j]!));
    const VtV = dgemm(vectors, vectors, { transA: true }).toArray() as Float64Array;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) orth = Math.max(orth, Math.abs(VtV[i * n + j]! - (i === j ? 1 : 0)));
    t.ok(res <= 1e-13 * norm * Math.max(1, n / 10), `n ${n}: |AV - VW| / |A| = ${(res / norm).toExponential(2)}`);
    t.ok(orth <= 1e-13 * Math.max(1, n / 10), `n ${n}: orthonormal (${orth.toExponential(2)})`);
    t.ok(w.every((v, i) => i === 0 || v >= w[i - 1]!), `n ${n}: ascending`);
    for (const tt of [X, A, values, vectors]) tt.dispose();
  }
  // repeated eigenvalues and a diagonal matrix
  const D = tensor(Float64Array.from([3, 0, 0, 0, 1, 0, 0, 0, 3]), [3, 3]);
  t.same(Array.from(symmetricEigen(D).values.toArray()), [1, 3, 3]);
  t.throws(() => symmetricEigen(tensor(new Float64Array(6), [2, 3])), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => symmetricEigen(tensor(Float64Array.from([NaN, 0, 0, 1]), [2, 2])), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => symmetricEigen(tensor(new Float32Array(4), [2, 2])), { code: 'ERR_DTYPE_MISMATCH' });
});

t.test('RBF kernel from a Gram matrix, as euclidean_distances + rbf_kernel', async (t) => {
  const x = Float64Array.from([0, 1, 2, 3, 1, 1, 0.5, -1]); // 4 x 2
  const X = tensor(x, [4, 2]);
  const G = dgemm(X, X, { transB: true });
  const nrm = tensor(Float64Array.from([0, 1, 2, 3].map((i) => x[2 * i]! ** 2 + x[2 * i + 1]! ** 2)), [4]);
  const K = rbfFromGram(G, nrm, nrm, 0.5, true).toArray() as Float64Array;
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const g = G.toArray()[i * 4 + j] as number;
      const dd = i === j ? 0 : Math.max(0, -2 * g + (nrm.toArray()[i] as number) + (nrm.toArray()[j] as number));
      t.equal(K[i * 4 + j], Math.exp(dd * -0.5));
    }
  }
  t.throws(() => rbfFromGram(G, nrm, tensor(new Float64Array(3), [3]), 1, false), { code: 'ERR_SHAPE_MISMATCH' });
});

t.test('batched multinomial loss: masks, class order, sums', async (t) => {
  const n = 20, K = 3;
  const z = new Float64Array(n * 2 * K).map((_, i) => Math.cos(i));
  const bias = Float64Array.from([0.1, -0.2, 0.3, 0, 0.5, -0.5]);
  const y = new Int32Array(2 * n).map((_, i) => (i < n ? i % K : i % 4 === 0 ? -1 : (i * 7) % K));
  const r = multinomialLossGrad(tensor(z, [n, 2 * K]), tensor(bias, [2 * K]), tensor(y, [2, n]), K);
  const g = r.g.toArray() as Float64Array;
  for (let p = 0; p < 2; p++) {
    let loss = 0;
    const gb = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const yi = y[p * n + i]!;
      if (yi < 0) {
        for (let k = 0; k < K; k++) t.equal(g[i * 2 * K + p * K + k], 0);
        continue;
      }
      const raw = [0, 1, 2].map((k) => z[i * 2 * K + p * K + k]! + bias[p * K + k]!);
      const mx = Math.max(...raw);
      const e = raw.map((v) => Math.exp(v - mx));
      const s = e.reduce((a, b) => a + b, 0);
      loss += Math.log(s) + mx - raw[yi]!;
      for (let k = 0; k < K; k++) {
        const gk = e[k]! / s - (k === yi ? 1 : 0);
        t.ok(Math.abs(g[i * 2 * K + p * K + k]! - gk) <= 1e-15);
        gb[k]! += gk;
      }
    }
    t.ok(Math.abs(r.loss[p]! - loss) <= 1e-13 * loss, `problem ${p}: loss`);
    for (let k = 0; k < K; k++) t.ok(Math.abs(r.gb[p * K + k]! - gb[k]!) <= 1e-14, `problem ${p}: intercept gradient ${k}`);
  }
  const bad = Int32Array.from(y);
  bad[3] = 5;
  t.throws(() => multinomialLossGrad(tensor(z, [n, 2 * K]), tensor(bias, [2 * K]), tensor(bad, [2, n]), K), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => multinomialLossGrad(tensor(z, [n, 2 * K]), tensor(bias, [2 * K]), tensor(y, [2, n]), 2), { code: 'ERR_SHAPE_MISMATCH' });
});

t.test('shifted solves from one factored eigendecomposition (Ridge\'s all-alphas path)', async (t) => {
  for (const [n, m] of [[1, 1], [5, 2], [60, 3], [150, 1]] as const) {
    const r = new Float64Array(n * (n + 2)).map((_, i) => Math.cos(i * 0.9 + 0.1));
    const X = tensor(r, [n, n + 2]);
    const A = dgemm(X, X, { transB: true });
    const B = tensor(new Float64Array(n * m).map((_, i) => Math.sin(i + 1)), [n, m]);
    const shifts = [1e-3, 0.5, 10];
    const { x, values } = symmetricShiftedSolve(A, B, shifts);
    const xs = x.toArray() as Float64Array;
    const a = A.toArray() as Float64Array, b = B.toArray() as Float64Array;
    let worst = 0;
    const scale = a.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0) * n * xs.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
    shifts.forEach((s, si) => {
      // residual of (A + sI) x - b
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < m; c++) {
          let v = s * xs[i * shifts.length * m + si * m + c]!;
          for (let k = 0; k < n; k++) v += a[i * n + k]! * xs[k * shifts.length * m + si * m + c]!;
          worst = Math.max(worst, Math.abs(v - b[i * m + c]!));
        }
      }
    });
    t.ok(worst <= 1e-13 * scale, `n ${n}: max residual / (n |A| |x|) ${(worst / scale).toExponential(2)}`);
    t.same(Array.from(values), Array.from(symmetricEigen(A).values.toArray()).map((v) => v), 'the same eigenvalues');
    for (const tt of [X, A, B, x]) tt.dispose();
  }
  t.throws(() => symmetricShiftedSolve(tensor(new Float64Array(4), [2, 2]), tensor(new Float64Array(3), [3, 1]), [1]), { code: 'ERR_SHAPE_MISMATCH' });
});
