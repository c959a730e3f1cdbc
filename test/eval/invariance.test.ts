// The invariance measures agree with a Python reference that follows the original scripts' code
// (np.cov, np.linalg.inv, torch's float32 Cholesky and cosine_similarity, scipy's mahalanobis,
// np.nanmean, torch.pdist) on fixed features, within 1e-4 relative, for a trained-model covariance
// and for `random`'s 1e-10 I ridge; plus the singular-covariance refusal and Python's number formats.
// Similarities are cosines in [-1, 1] and are compared on that scale (1e-4 absolute): relative error
// is meaningless near 0, and the original's own float32 Cholesky (LAPACK spotrf) moves values near 0
// by ~1e-5; distances are compared relatively.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readNpySync } from '../../src/io/npy';
import { CovarianceAccumulator } from '../../src/linalg';
import { tensor } from '../../src/tensor';
import { mean, nanmeanColumns, prepareWhitening } from '../../src/eval/invariance';
import { pythonFixed, pythonFloatRepr } from '../../src/cli/python-format';
import { groupInvariance } from '../../src/eval/realworld';
import { FeatureStats } from '../../src/eval/stats';
import { imageInvariance } from '../../src/eval/synthetic';

const FIX = path.join(__dirname, '..', 'fixtures', 'eval');
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'invariance.json'), 'utf8')) as Record<string, unknown> & { D: number; N: number; n: number; k: number };
const statsF = readNpySync(path.join(FIX, 'stats_features.npy')).data as Float32Array;
const clean = readNpySync(path.join(FIX, 'clean_features.npy')).data as Float32Array;
const views = readNpySync(path.join(FIX, 'view_features.npy')).data as Float32Array;
const { D, N, n, k } = ref;

function stats(): FeatureStats {
  const acc = new CovarianceAccumulator(D);
  acc.add(tensor(statsF, [N, D]));
  const s = { key: 'fixture', inputs: {} as never, count: N, dim: D, mean: acc.mean(), cov: acc.covariance(), file: 'fixture', cached: false };
  acc.dispose();
  return s;
}

function relClose(a: number, b: number, rtol: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return Math.abs(a - b) <= rtol * Math.max(Math.abs(b), 1e-12);
}

for (const variant of ['model', 'random'] as const) {
  t.test(`synthetic and real-world measures (${variant})`, async (t) => {
    const r = ref[variant] as {
      similarity_per_image: number[][]; distance_per_image: number[][]; similarity: number[]; distance: number[];
      mean_similarity: number; mean_distance: number; groups: { similarity: number; distance: number }[];
    };
    const w = prepareWhitening(stats(), { ridge: variant === 'random' });
    const S: Float32Array[] = [], L: Float32Array[] = [];
    let worst = 0, worstS = 0;
    for (let i = 0; i < n; i++) {
      const m = imageInvariance(w, clean.slice(i * D, (i + 1) * D), views.slice(i * k * D, (i + 1) * k * D));
      S.push(m.similarity);
      L.push(m.distance);
      for (let j = 0; j < k; j++) {
        const s = m.similarity[j]!, sRef = r.similarity_per_image[i]![j] ?? NaN;
        const dd = m.distance[j]!, dRef = r.distance_per_image[i]![j] ?? NaN;
        if (!(Number.isNaN(s) ? Number.isNaN(sRef) : Math.abs(s - sRef) <= 1e-4)) t.fail(`image ${i} view ${j}: similarity ${s} vs ${sRef}`);
        if (!relClose(dd, dRef, 1e-4)) t.fail(`image ${i} view ${j}: distance ${dd} vs ${dRef}`);
        if (Number.isFinite(sRef)) worstS = Math.max(worstS, Math.abs(s - sRef));
        if (Number.isFinite(dRef)) worst = Math.max(worst, Math.abs(dd - dRef) / dRef);
      }
    }
    t.ok(worst < 1e-4 && worstS < 1e-4, `per image and view: distance worst relative ${worst.toExponential(2)}, similarity worst absolute ${worstS.toExponential(2)}`);
    const sv = Array.from(nanmeanColumns(S, k), Math.fround), dv = Array.from(nanmeanColumns(L, k), Math.fround);
    t.ok(sv.every((v, j) => relClose(v, r.similarity[j]!, 1e-4)), 'nanmean similarity per view');
    t.ok(dv.every((v, j) => relClose(v, r.distance[j]!, 1e-4)), 'nanmean distance per view');
    t.ok(relClose(mean(sv), r.mean_similarity, 1e-4) && relClose(mean(dv), r.mean_distance, 1e-4), 'summary means');
    for (let i = 0; i < n; i++) {
      const v = Float32Array.from(views.slice(i * k * D, (i + 1) * k * D), (x) => (Number.isNaN(x) ? 0 : x));
      const g = groupInvariance(w, v);
      t.ok(relClose(g.similarity, r.groups[i]!.similarity, 1e-4) && relClose(g.distance, r.groups[i]!.distance, 1e-4),
        `group ${i}: similarity ${g.similarity} vs ${r.groups[i]!.similarity}, distance ${g.distance} vs ${r.groups[i]!.distance}`);
    }
  });
}

t.test('a covariance of fewer images than dimensions is refused (not for random)', async (t) => {
  const s = stats();
  const few = { ...s, count: 10 };
  t.throws(() => prepareWhitening(few, { ridge: false }), { code: 'ERR_SINGULAR_MATRIX' });
  const zero = { ...s, cov: new Float64Array(D * D) };
  t.throws(() => prepareWhitening(zero, { ridge: false }), { code: 'ERR_SINGULAR_MATRIX' }, 'an all-zero covariance');
});

t.test('numbers print as Python prints them', async (t) => {
  t.equal(pythonFixed(0.0078125, 6), '0.007812', 'round half to even on exact ties');
  t.equal(pythonFixed(123.4567895, 6), '123.456789');
  t.equal(pythonFixed(-1e-7, 6), '-0.000000');
  t.equal(pythonFloatRepr(1e-5), '1e-05');
  t.equal(pythonFloatRepr(3), '3.0');
  t.equal(pythonFloatRepr(1e16), '1e+16');
  t.equal(pythonFloatRepr(Math.fround(0.1)), '0.10000000149011612');
});
