// Batching the views of several source images into one forward pass (transforms with k = 2 or 7)
// gives exactly the per-view results of one image at a time: the same images, the same deform seeds,
// and features that do not depend on the batch. Also: makeViewsOfImages against makeViews per image,
// and its argument checks. (On a GPU the device path is compared in views-device.test.ts.)
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSceneSet } from '../../src/demo/scenes';
import { evaluateSynthetic } from '../../src/eval/synthetic';
import { Whitening } from '../../src/eval/invariance';
import { ResNetFeatures } from '../../src/nn/resnet';
import { tensor } from '../../src/tensor';
import { transformGrid, SyntheticTransform } from '../../src/transforms/grid';
import { makeViews } from '../../src/transforms/views';
import { makeViewsOfImages } from '../../src/transforms/views-batch';
import { randomResNetParams } from '../helpers/random-resnet';
import { testImage } from '../helpers/test-image';

const MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-batch-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('makeViewsOfImages: image-major rows equal to makeViews of each image', async (t) => {
  const imgs = [testImage(31, 23), testImage(20, 27), testImage(16, 16)];
  for (const tr of ['h_flip', 'posterize', 'rotation', 'resized_crop'] as SyntheticTransform[]) {
    const grid = transformGrid(tr, tr === 'rotation' ? 5 : tr === 'resized_crop' ? 16 : undefined, 24, 20);
    const opts = imgs.map((_, i) => ({ mean: MEAN, std: STD, deformSeed: 7 * i }));
    const all = makeViewsOfImages(imgs, grid, 1, grid.k, opts).toFloat32Array();
    const per = imgs.map((img, i) => makeViews(img, grid, 1, grid.k, opts[i]!).toFloat32Array());
    const want = new Float32Array(all.length);
    per.forEach((p, i) => want.set(p, i * p.length));
    t.same(Array.from(all), Array.from(want), `${tr}: ${imgs.length} images x ${grid.k - 1} views`);
  }
  const grid = transformGrid('h_flip', 2, 24, 20);
  t.throws(() => makeViewsOfImages([testImage()], grid, 0, 2, []), { code: 'ERR_INVALID_ARGUMENT' }, 'one option set per image');
  t.throws(() => makeViewsOfImages([testImage()], grid, 0, 3, [{ mean: MEAN, std: STD }]), { code: 'ERR_INVALID_ARGUMENT' }, 'views past k');
  t.throws(() => makeViews(testImage(), grid, 0, 2, { mean: MEAN, std: STD }, { tensor: tensor(new Float32Array(3 * 20 * 20), [1, 3, 20, 20]), slot: 0 }),
    { code: 'ERR_SHAPE_MISMATCH' }, 'two views do not fit one row');
});

t.test('evaluateSynthetic: batched images give the per-image results bit for bit', async (t) => {
  const set = await writeSceneSet(path.join(dir, 'val'), { objects: 5, viewsPerObject: 2, width: 30, height: 22, seed: 3 });
  const net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
  const d = net.featureDim;
  const identity = new Float32Array(d * d), inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) { identity[i * d + i] = 1; inv[i * d + i] = 1; }
  const whitening: Whitening = { dim: d, mean: new Float32Array(d).fill(0.01), chol: identity, inv };
  try {
    for (const tr of ['h_flip', 'equalize', 'posterize'] as SyntheticTransform[]) {
      const grid = transformGrid(tr, undefined, 36, 32);
      const run = (batchSize: number) => evaluateSynthetic({
        model: net, whitening, files: set.files, grid, numImages: 7, seed: 0, batchSize, mean: MEAN, std: STD,
      });
      const one = await run(grid.k);       // one image per forward pass
      const many = await run(64);          // 64 / k images per forward pass
      t.same(many.sampled, one.sampled, `${tr}: the same images`);
      t.same(many.distance, one.distance, `${tr}: distances identical`);
      t.same(many.similarity, one.similarity, `${tr}: similarities identical`);
      t.ok(one.distance.some((v) => v > 0), `${tr}: the transformed views differ from the clean image`);
    }
  } finally {
    net.dispose();
  }
});
