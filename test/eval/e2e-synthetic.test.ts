// Synthetic invariance end to end from images against the original's pipeline run in Python
// (torchvision ops on PIL images, torch ResNet-18, np.cov / np.linalg.inv / torch's float32
// Cholesky, scipy's mahalanobis, np.nanmean): every view of 17 transforms within 1e-3 (cosine
// similarities on their [-1, 1] scale, distances relative to the larger of the view's distance and
// the transform's mean distance: the original's untransformed views have distance ~1e-3 instead of
// 0, because it runs the clean image and the views through the network in batches of different
// sizes and PyTorch's float32 convolutions round differently per batch size; ours give exactly 0).
// Inputs are regenerated here exactly as test/fixtures/eval/make_e2e_synthetic.py made them.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSceneSet } from '../../src/demo/scenes';
import { torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { runSyntheticEvaluation } from '../../src/eval/synthetic-run';
import { SyntheticTransform } from '../../src/transforms/grid';

interface Ref {
  resize: number; crop: number; num_images: number; sampled: number[];
  transforms: Record<string, { k: number; similarity: number[]; distance: number[]; mean_similarity: number; mean_distance: number }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'eval', 'e2e-synthetic.json'), 'utf8')) as Ref;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-e2e-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('every view of every transform agrees with the original pipeline', async (t) => {
  await writeSceneSet(path.join(dir, 'data', 'val'), { objects: 37, viewsPerObject: 14, width: 24, height: 18, seed: 2 });
  fs.mkdirSync(path.join(dir, 'models'));
  await torchSave(path.join(dir, 'models', 'net.pth.tar'), torchvisionInitStateDict('resnet18', 4));
  const names = Object.keys(ref.transforms) as SyntheticTransform[];
  const results = await runSyntheticEvaluation({
    data: path.join(dir, 'data'), dataset: 'scenes', split: 'val', model: 'net', transforms: names,
    kFor: (tr) => ref.transforms[tr]!.k, batchSize: 64, numImages: ref.num_images, resize: ref.resize, crop: ref.crop,
    ckptDir: path.join(dir, 'models'), resultsDir: path.join(dir, 'results'), fuseMode: 'cat', featureLayer: 'backbone',
    seed: 0, device: 'cpu', precision: 'fp32', sink: { start: () => ({ tick() {}, done() {} }), notice() {} },
  });
  t.same(results[0]!.config.sampledImages, ref.sampled, 'the same images are sampled');
  for (const r of results) {
    const want = ref.transforms[r.transform!]!;
    let ws = 0, wd = 0;
    r.rows.forEach((row, j) => {
      ws = Math.max(ws, Math.abs(row.similarity - want.similarity[j]!));
      wd = Math.max(wd, Math.abs(row.distance - want.distance[j]!) / Math.max(want.distance[j]!, want.mean_distance));
    });
    t.ok(ws <= 1e-3 && wd <= 1e-3, `${r.transform}: similarity max |diff| ${ws.toExponential(1)}, distance max rel ${wd.toExponential(1)}`);
    t.ok(Math.abs(r.summary.similarity - want.mean_similarity) <= 1e-3 &&
      Math.abs(r.summary.distance - want.mean_distance) <= 1e-3 * want.mean_distance, `${r.transform}: summary`);
  }
});
