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
import { FeatureExtractor } from '../../src/eval/features';
import { ResNetFeatures } from '../../src/nn/resnet';
import { preprocess } from '../../src/data/preprocess';
import { tensor } from '../../src/tensor';
import { transformGrid, SyntheticTransform } from '../../src/transforms/grid';
import { makeViews } from '../../src/transforms/views';
import { makeViewsOfImages } from '../../src/transforms/views-batch';
import { randomResNetParams } from '../helpers/random-resnet';
import { testImage } from '../helpers/test-image';

// A whitening with dense matrices (random, fixed), so that every GEMM sum depends on its order: an
// identity matrix would hide a result that changes with the rows batched beside it.
function denseWhitening(d: number): Whitening {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
  const chol = new Float32Array(d * d), inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) chol[i * d + j] = i === j ? 1 + Math.abs(rnd()) : 0.05 * rnd();
  }
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) inv[i * d + j] = inv[j * d + i] = i === j ? 2 + Math.abs(rnd()) : 0.01 * rnd();
  return { dim: d, mean: Float32Array.from({ length: d }, () => 0.5 * rnd()), chol, inv };
}

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
  {
    // withClean: the clean inputs (preprocess of each image) in rows [0, images), then the views.
    const grid = transformGrid('rotation', 3, 24, 20);
    const opts = imgs.map((_, i) => ({ mean: MEAN, std: STD, deformSeed: i }));
    const all = makeViewsOfImages(imgs, grid, 0, 3, opts, 'cpu', true).toFloat32Array();
    const plane = 3 * 20 * 20;
    t.equal(all.length, (imgs.length + imgs.length * 3) * plane, 'rows: 3 clean inputs + 3 x 3 views');
    const want = new Float32Array(all.length);
    imgs.forEach((img, i) => want.set(preprocess(img, { resize: 24, crop: 20, mean: MEAN, std: STD }), i * plane));
    imgs.forEach((img, i) => want.set(makeViews(img, grid, 0, 3, opts[i]!).toFloat32Array(), (imgs.length + 3 * i) * plane));
    t.same(Array.from(all), Array.from(want), 'withClean: preprocess of each image, then its views');
  }
  const grid = transformGrid('h_flip', 2, 24, 20);
  t.throws(() => makeViewsOfImages([testImage()], grid, 0, 2, []), { code: 'ERR_INVALID_ARGUMENT' }, 'one option set per image');
  t.throws(() => makeViewsOfImages([testImage()], grid, 0, 3, [{ mean: MEAN, std: STD }]), { code: 'ERR_INVALID_ARGUMENT' }, 'views past k');
  t.throws(() => makeViews(testImage(), grid, 0, 2, { mean: MEAN, std: STD }, { tensor: tensor(new Float32Array(3 * 20 * 20), [1, 3, 20, 20]), slot: 0 }),
    { code: 'ERR_SHAPE_MISMATCH' }, 'two views do not fit one row');
  t.throws(() => makeViews(testImage(), grid, 0, 1, { mean: MEAN, std: STD }, { tensor: tensor(new Float32Array(3 * 20 * 20), [1, 3, 20, 20]), slot: 0, cleanSlot: 1 }),
    { code: 'ERR_SHAPE_MISMATCH' }, 'the clean input\'s row outside the tensor');
});

t.test('evaluateSynthetic: batched images give the per-image results bit for bit', async (t) => {
  const set = await writeSceneSet(path.join(dir, 'val'), { objects: 5, viewsPerObject: 2, width: 30, height: 22, seed: 3 });
  const net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
  const d = net.featureDim;
  const whitening = denseWhitening(d);
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

t.test('evaluateSynthetic: passes are started before the previous group\'s metrics, with the same results', async (t) => {
  const set = await writeSceneSet(path.join(dir, 'pipe'), { objects: 4, viewsPerObject: 1, width: 30, height: 22, seed: 4 });
  const net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
  const d = net.featureDim;
  const whitening = denseWhitening(d);
  const log: string[] = [];
  // A model that computes at collect() time, as a device would finish its queued work then.
  const lazy: FeatureExtractor = {
    featureDim: d,
    features: (x) => net.features(x),
    startFeatures: (x) => {
      const copy = x.clone();
      log.push(`start ${x.shape[0]}`);
      return {
        collect: () => { log.push('collect'); try { return net.features(copy); } finally { copy.dispose(); } },
        dispose: () => copy.dispose(),
      };
    },
  };
  const plain: FeatureExtractor = { featureDim: d, features: (x) => net.features(x) };
  try {
    const grid = transformGrid('rotation', 3, 36, 32);
    const run = (model: FeatureExtractor) => evaluateSynthetic({
      model, whitening, files: set.files, grid, numImages: 3, seed: 0, batchSize: 4, mean: MEAN, std: STD,
      onProgress: (done) => log.push(`metrics ${done}`),
    });
    const a = await run(plain);
    log.length = 0;
    const b = await run(lazy);
    t.same(b.distance, a.distance, 'distances identical');
    t.same(b.similarity, a.similarity, 'similarities identical');
    // batch 4, k = 3: one image per group, its clean input + 3 views in one pass of 4 rows
    t.same(log, ['start 4', 'collect', 'start 4', 'metrics 1', 'collect', 'start 4', 'metrics 2', 'collect', 'metrics 3'],
      'each group\'s pass starts before the previous group\'s metrics');
    log.length = 0;
    const c = await run({ ...lazy, featureDim: d });
    t.same(c.distance, a.distance, 'the same again (no state kept between runs)');
    // k > batchSize: an image's views in chunks; the first carries the clean input
    log.length = 0;
    const grid5 = transformGrid('rotation', 5, 36, 32);
    const run5 = (model: FeatureExtractor) => evaluateSynthetic({
      model, whitening, files: set.files, grid: grid5, numImages: 2, seed: 0, batchSize: 2, mean: MEAN, std: STD,
      onProgress: (done) => log.push(`metrics ${done}`),
    });
    const p5 = await run5(plain);
    log.length = 0;
    const l5 = await run5(lazy);
    t.same(l5.distance, p5.distance, 'chunked views: distances identical');
    t.same(log, ['start 3', 'start 2', 'start 1', 'collect', 'collect', 'collect', 'start 3', 'start 2', 'start 1', 'metrics 1', 'collect', 'collect', 'collect', 'metrics 2'],
      'chunked views: 1 clean + 2 views, then 2 and 1 views per image');
  } finally {
    net.dispose();
  }
});
