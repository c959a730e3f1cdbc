// Image batches made as uint8 pixels and normalised where the network runs (data/device-input.ts),
// on the CPU and on each CUDA device of this machine (the emulated one in the default suite):
//   1. loadBatches with pixels 'uint8' holds torchvision's cropped pixels (the golden croppedSha256,
//      CenterCrop's zero padding included), and deviceInput of each batch gives the float32 loader's
//      bits (torchvision's tensors), also after a skipped file compacted the batch;
//   2. resizeCropNormalizeU8 / its async form / cropNormalizeU8 into a uint8 slot, then
//      normalizeImagesU8: the float32 slot's bits, for windows inside and past the image;
//   3. featuresOfFiles and sampleFeatures hand a network on a device the float32 batch's bits (a
//      recording extractor stands in for the network);
//   4. deviceInput refuses other dtypes and frees what it was given.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { deviceInput } from '../../src/data/device-input';
import { decodeImageFile } from '../../src/data/decode';
import { Batch, loadBatches } from '../../src/data/loader';
import { EvalTransform } from '../../src/data/preprocess';
import { FeatureExtractor, featuresOfFiles } from '../../src/eval/features';
import { fileImages, sampleFeatures } from '../../src/eval/sample-features';
import { cropNormalizeU8, resizeCropNormalizeU8, resizeCropNormalizeU8Async } from '../../src/image-ops';
import { normalizeImagesU8 } from '../../src/ops';
import { Tensor, empty, memoryStats, tensor } from '../../src/tensor';
import { fixturePath, golden, sha256 } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-device-input-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const files = golden.images.map((g) => fixturePath(g.file));
const norm = { mean: golden.mean, std: golden.std };
const devices = ['cpu', ...cudaInfo().devices.map((d) => `cuda:${d.index}`)];

async function collect(fs_: readonly string[], tr: EvalTransform, pixels: 'float32' | 'uint8', onError: 'error' | 'skip' = 'error'): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loadBatches(fs_, tr, { batchSize: 5, pixels, onError })) out.push(b);
  return out;
}

const bitsOf = (x: Tensor) => sha256(x.toFloat32Array());

for (const device of devices) {
  t.test(`loader batches of uint8 pixels, normalised on ${device}`, async (t) => {
    const before = memoryStats().liveBuffers;
    for (const [resize, crop] of [[32, 28], [23, 28]] as const) {
      const tr: EvalTransform = { resize, crop, mean: golden.mean, std: golden.std };
      const floats = await collect(files, tr, 'float32'), pixels = await collect(files, tr, 'uint8');
      let sameCrop = 0, compared = 0, sameBatch = 0;
      for (const [bi, b] of pixels.entries()) {
        t.same(b.batch.shape, [b.index.length, crop, crop, 3], `Resize(${resize}) CenterCrop(${crop}) batch ${bi}: uint8 NHWC`);
        const px = b.batch.toArray() as Uint8Array, per = crop * crop * 3;
        for (const [k, i] of b.index.entries()) {
          const g = golden.images[i]!, gt = g.transforms.find((x) => x.resize === resize && x.crop === crop)!;
          const img = await decodeImageFile(files[i]!);
          if (sha256(img.data) !== g.decodeSha256) continue;  // a decode that differs from PIL's (preprocess.test.ts)
          compared++;
          if (sha256(px.subarray(k * per, (k + 1) * per)) === gt.croppedSha256) sameCrop++;
        }
        const x = deviceInput(b.batch, tr, device);
        t.equal(x.device, device, 'on the device');
        if (bitsOf(x) === bitsOf(floats[bi]!.batch)) sameBatch++;
        x.dispose();
        floats[bi]!.batch.dispose();
      }
      t.ok(compared > 0 && sameCrop === compared, `Resize(${resize}) CenterCrop(${crop}): torchvision's cropped pixels (${sameCrop} of ${compared})`);
      t.equal(sameBatch, pixels.length, `Resize(${resize}) CenterCrop(${crop}): every batch normalised to the float32 loader's bits`);
    }
    // A file that cannot be read: the batch is compacted (gatherRows) the same way in both forms.
    const bad = path.join(tmp, 'bad.png');
    fs.writeFileSync(bad, 'not an image');
    const withBad = [files[0]!, bad, files[1]!, files[2]!];
    const tr: EvalTransform = { resize: 32, crop: 28, mean: golden.mean, std: golden.std };
    const [f] = await collect(withBad, tr, 'float32', 'skip'), [p] = await collect(withBad, tr, 'uint8', 'skip');
    t.same(p!.index, [0, 2, 3], 'the bad file is left out');
    t.same(p!.skipped.map((s) => s.index), [1], 'and reported');
    const x = deviceInput(p!.batch, tr, device);
    t.equal(bitsOf(x), bitsOf(f!.batch), 'the compacted batch: the same bits');
    x.dispose();
    f!.batch.dispose();
    t.equal(memoryStats().liveBuffers, before, 'no buffer left');
  });

  t.test(`uint8 slots of the image ops, normalised on ${device}`, async (t) => {
    const img = await decodeImageFile(files[0]!);
    const windows = [
      { resize: { width: 40, height: 30 }, crop: { top: 1, left: 6, height: 28, width: 28 } },  // inside
      { resize: { width: 23, height: 20 }, crop: { top: -4, left: -2, height: 28, width: 28 } },  // padded all round
      { resize: { width: 50, height: 50 }, crop: { top: 60, left: 0, height: 8, width: 8 } },   // past the image: all padding
    ];
    for (const [k, w] of windows.entries()) {
      const want = tensor(resizeCropNormalizeU8(img, w.resize, w.crop, norm), [1, 3, w.crop.height, w.crop.width]);
      const sync = empty('uint8', [2, w.crop.height, w.crop.width, 3]), async_ = empty('uint8', [1, w.crop.height, w.crop.width, 3]);
      resizeCropNormalizeU8(img, w.resize, w.crop, norm, { tensor: sync, slot: 1 });
      await resizeCropNormalizeU8Async(img, w.resize, w.crop, norm, { tensor: async_, slot: 0 });
      const s1 = tensor((sync.toArray() as Uint8Array).slice(w.crop.height * w.crop.width * 3), [1, w.crop.height, w.crop.width, 3]);
      for (const [name, u] of [['resizeCropNormalizeU8', s1], ['resizeCropNormalizeU8Async', async_]] as const) {
        const x = deviceInput(u.to('cpu'), norm, device);
        t.equal(bitsOf(x), bitsOf(want), `window ${k}, ${name}: the float32 bits`);
        x.dispose();
      }
      sync.dispose();
      s1.dispose();
      async_.dispose();
      want.dispose();
    }
    const crop = { top: -3, left: 5, height: 20, width: 30 };
    const want = tensor(cropNormalizeU8(img, crop, norm), [1, 3, 20, 30]);
    const u = empty('uint8', [1, 20, 30, 3]);
    cropNormalizeU8(img, crop, norm, { tensor: u, slot: 0 });
    const x = deviceInput(u, norm, device);
    t.equal(bitsOf(x), bitsOf(want), 'cropNormalizeU8 into a uint8 slot: the float32 bits');
    x.dispose();
    want.dispose();
    const wrong = empty('uint8', [1, 3, 20, 30]);
    t.throws(() => cropNormalizeU8(img, crop, norm, { tensor: wrong, slot: 0 }), { code: 'ERR_SHAPE_MISMATCH', message: /uint8 \[N, 20, 30, 3\]/ }, 'a uint8 slot must be HWC');
    wrong.dispose();
  });

  t.test(`feature pipelines hand a network on ${device} the float32 batch's bits`, async (t) => {
    const seen: string[] = [];
    const recorder = (dev: string): FeatureExtractor => ({
      featureDim: 1,
      device: dev,
      features(x: Tensor) {
        if (x.device !== dev || x.dtype !== 'float32' || x.shape[1] !== 3) throw new Error(`got ${x.dtype} [${x.shape}] on ${x.device}`);
        seen.push(bitsOf(x));
        return new Float32Array(x.shape[0]!);
      },
    });
    const tr: EvalTransform = { resize: 32, crop: 28, mean: golden.mean, std: golden.std };
    const run = async (dev: string) => {
      seen.length = 0;
      for await (const c of featuresOfFiles(recorder(dev), files.slice(0, 7), tr, { batchSize: 3 })) void c;
      const viaFiles = [...seen];
      seen.length = 0;
      await sampleFeatures(recorder(dev), files.slice(0, 7).map((p) => ({ path: p })), fileImages(), tr, 3);
      return { viaFiles, viaSamples: [...seen] };
    };
    const cpu = await run('cpu'), dev = await run(device);
    t.equal(dev.viaFiles.length, 3, 'featuresOfFiles: 3 batches');
    t.same(dev.viaFiles, cpu.viaFiles, 'featuresOfFiles: the same bits as the CPU\'s float32 batches');
    t.same(dev.viaSamples, cpu.viaSamples, 'sampleFeatures: the same bits as the CPU\'s float32 batches');
    t.same(dev.viaSamples, dev.viaFiles, 'and as featuresOfFiles');
  });
}

t.test('deviceInput refuses other dtypes and frees them', async (t) => {
  const before = memoryStats().liveBuffers;
  const x = empty('int32', [1, 2, 2, 3]);
  t.throws(() => deviceInput(x, norm, 'cpu'), { code: 'ERR_DTYPE_MISMATCH' });
  t.ok(x.disposed, 'freed');
  t.equal(memoryStats().liveBuffers, before, 'no buffer left');
});
