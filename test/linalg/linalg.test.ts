// float64 linear algebra against numpy/scipy (inputs regenerated from numpy's RandomState(7)):
// covariance streamed in uneven chunks vs np.cov, LU inverse vs np.linalg.inv, Cholesky vs
// np.linalg.cholesky, triangular and SPD solves vs scipy; sizes cross the 128-wide blocks.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CovarianceAccumulator, CovarianceSyrk, cholesky, dgemm, inverse, solveSPD, solveTriangular } from '../../src/linalg';
import { RandomState } from '../../src/random/mt19937';
import { tensor } from '../../src/tensor';
import { cudaAvailable } from '../../src/device';

interface Picked { index: number[]; value: number[]; fro: number }
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'linalg', 'linalg.json'), 'utf8')) as {
  N: number; D: number; M: number; mean: number[]; cov: Picked; inv: Picked; chol: Picked; xtx: Picked;
  fwd: number[]; bwd: number[]; spd: number[];
};
const { N, D, M } = ref;
const rs = new RandomState(7);
const X = rs.rand(N * D);
const B = rs.rand(D * M);

function fro(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s);
}

function agree(t: Test, name: string, ours: Float64Array, p: Picked, rtol: number): void {
  let worst = 0;
  p.index.forEach((idx, i) => { worst = Math.max(worst, Math.abs(ours[idx]! - p.value[i]!)); });
  const rel = worst / p.fro;
  t.ok(rel < rtol, `${name}: max sampled |diff| / ||ref|| = ${rel.toExponential(2)} (< ${rtol})`);
  t.ok(Math.abs(fro(ours) - p.fro) / p.fro < rtol, `${name}: Frobenius norm`);
}

function close(t: Test, name: string, ours: Float64Array, want: number[], rtol: number): void {
  let num = 0, den = 0;
  want.forEach((w, i) => { num += (ours[i]! - w) ** 2; den += w * w; });
  const rel = Math.sqrt(num / den);
  t.ok(rel < rtol, `${name}: relative error ${rel.toExponential(2)} (< ${rtol})`);
}

t.test('covariance in uneven chunks equals np.cov', async (t) => {
  const acc = new CovarianceAccumulator(D);
  for (const [a, b] of [[0, 1], [1, 130], [130, 131], [131, 377], [377, N]] as const) {
    acc.add(tensor(X.slice(a * D, b * D), [b - a, D]));
  }
  t.equal(acc.rows, N);
  close(t, 'mean', acc.mean(), ref.mean, 1e-14);
  agree(t, 'cov', acc.covariance(), ref.cov, 1e-13);
  const f32 = new CovarianceAccumulator(D);
  f32.add(tensor(Float32Array.from(X), [N, D]));
  t.equal(f32.rows, N, 'float32 rows are accepted');
  t.throws(() => acc.add(tensor(new Float64Array(5), [1, 5])), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => new CovarianceAccumulator(4).covariance(), { code: 'ERR_INVALID_ARGUMENT' });
  acc.dispose();
  f32.dispose();
});

t.test('the CUDA SYRK variants: within 1e-5 of the float64 CPU covariance, or refused where they cannot run', async (t) => {
  t.throws(() => new CovarianceAccumulator(8, { syrk: '3xtf32' }), { code: 'ERR_INVALID_ARGUMENT', field: 'syrk' }, 'a CUDA variant on the CPU');
  t.throws(() => new CovarianceAccumulator(8, { syrk: 'simt' }), { code: 'ERR_INVALID_ARGUMENT', field: 'syrk' });
  t.throws(() => new CovarianceAccumulator(8, { syrk: 'simt-bk16' }), { code: 'ERR_INVALID_ARGUMENT', field: 'syrk' });
  const nat = new CovarianceAccumulator(4);
  t.ok(nat, "syrk 'auto' on the CPU");
  nat.dispose();
  if (!cudaAvailable()) return;
  t.throws(() => new CovarianceAccumulator(130, { device: 'cuda', syrk: '3xtf32' }), { code: 'ERR_INVALID_ARGUMENT', field: 'syrk' }, 'dim % 4 != 0');
  // 600 rows of 132 columns (two column blocks, one partial) around 3, in float32.
  const n = 600, d = 132;
  const x32 = Float32Array.from(new RandomState(11).rand(n * d), (v, i) => 3 + v + 0.01 * (i % d));
  const cpu = new CovarianceAccumulator(d);
  cpu.add(tensor(Float64Array.from(x32), [n, d]));
  const want = cpu.covariance();
  cpu.dispose();
  const results: Partial<Record<CovarianceSyrk, Float64Array>> = {};
  for (const syrk of ['auto', 'simt', 'simt-bk16', '3xtf32'] as const) {
    const acc = new CovarianceAccumulator(d, { device: 'cuda', syrk });
    acc.add(tensor(x32.slice(0, 250 * d), [250, d]));
    acc.add(tensor(x32.slice(250 * d), [n - 250, d]));
    const got = acc.covariance();
    acc.dispose();
    results[syrk] = got;
    let num = 0, den = 0;
    for (let i = 0; i < want.length; i++) { num += (got[i]! - want[i]!) ** 2; den += want[i]! ** 2; }
    t.ok(Math.sqrt(num / den) < 1e-5, `syrk ${syrk}: relative Frobenius error ${Math.sqrt(num / den).toExponential(2)} (< 1e-5)`);
  }
  // 250 and 350 rows: slices of 16 end past both chunks, so the rows the 16-row slices zero-fill count too.
  t.same(Array.from(results['simt-bk16']!), Array.from(results.simt!), "syrk 'simt-bk16' gives the bits of 'simt'");
  t.same(Array.from(results.auto!), Array.from(results.simt!), "syrk 'auto' is 'simt'");
});

t.test('dgemm, inverse, cholesky, solves', async (t) => {
  const x = tensor(X, [N, D]);
  agree(t, 'X^T X', dgemm(x, x, { transA: true }).toArray() as Float64Array, ref.xtx, 1e-14);
  const acc = new CovarianceAccumulator(D);
  acc.add(x);
  const cov = tensor(acc.covariance(), [D, D]);
  const inv = inverse(cov);
  agree(t, 'inverse', inv.toArray() as Float64Array, ref.inv, 1e-10);
  const l = cholesky(inv);
  agree(t, 'cholesky', l.toArray() as Float64Array, ref.chol, 1e-10);
  const lv = l.toArray() as Float64Array;
  t.equal(lv[1], 0, 'upper triangle zeroed');
  const b = tensor(B, [D, M]);
  close(t, 'L x = b', solveTriangular(l, b).toArray() as Float64Array, ref.fwd, 1e-10);
  close(t, 'L^T x = b', solveTriangular(l, b, { transpose: true }).toArray() as Float64Array, ref.bwd, 1e-10);
  close(t, 'SPD solve', solveSPD(inv, b).toArray() as Float64Array, ref.spd, 1e-9);
  // Upper-triangular solves through the transpose of L.
  const u = dgemm(l, tensor(new Float64Array(D * D).map((_, i) => (i % (D + 1) === 0 ? 1 : 0)), [D, D]), { transA: true });
  close(t, 'U x = b with U = L^T', solveTriangular(u, b, { lower: false }).toArray() as Float64Array, ref.bwd, 1e-10);
  acc.dispose();
});

t.test('singular and non-positive-definite matrices are typed errors', async (t) => {
  const sing = tensor(Float64Array.from([1, 2, 2, 4]), [2, 2]);
  t.throws(() => inverse(sing), { code: 'ERR_SINGULAR_MATRIX' });
  t.throws(() => cholesky(tensor(Float64Array.from([1, 2, 2, 1]), [2, 2])), { code: 'ERR_SINGULAR_MATRIX' });
  t.throws(() => cholesky(tensor(Float64Array.from([1, 0, 0, NaN]), [2, 2])), { code: 'ERR_SINGULAR_MATRIX' }, 'NaN pivot');
  t.throws(() => inverse(tensor(new Float64Array(6), [2, 3])), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => dgemm(tensor(new Float32Array(4), [2, 2]), tensor(new Float64Array(4), [2, 2])), { code: 'ERR_DTYPE_MISMATCH' });
});
