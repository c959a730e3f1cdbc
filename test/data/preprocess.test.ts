// The evaluation transform against torchvision 0.14 on Pillow 9.4: Resize(r) -> CenterCrop(c) ->
// ToTensor -> Normalize, stage by stage, on every fixture and for (256, 224), (224, 224), (32, 28)
// and (23, 28) (crop larger than the short side: zero padding, odd amount).
import t from 'tap';
import { decodeImageFile } from '../../src/data/decode';
import { EvalTransform, centerCrop, centerCropOffset, centerCropWindow, imagenetEvalTransform, preprocess,
  preprocessBatch, preprocessInto, preprocessIntoAsync, resizeShorterSide, resizedSize, roundHalfEvenHalf,
  toTensorNormalize } from '../../src/data/preprocess';
import { empty } from '../../src/tensor';
import { diffStats, fixturePath, golden, readGz, sha256 } from './fixtures';

const transform = (resize: number, crop: number): EvalTransform => ({ resize, crop, mean: golden.mean, std: golden.std });

t.test('Resize(int) output sizes follow torchvision (shorter side, truncation)', async (t) => {
  t.same(resizedSize(333, 251, 224), { width: 297, height: 224 });   // int(224 * 333 / 251) = int(297.18)
  t.same(resizedSize(257, 511, 256), { width: 256, height: 509 });   // int(256 * 511 / 257) = int(509.01)
  t.same(resizedSize(224, 300, 224), { width: 224, height: 300 });
  t.same(resizedSize(500, 500, 256), { width: 256, height: 256 });
  t.same(resizedSize(100, 80, 256), { width: 320, height: 256 });
  t.same(resizedSize(3, 1000, 2), { width: 2, height: 666 });          // int(666.67)
  t.same(resizedSize(640, 427, 256), { width: 383, height: 256 });   // int(383.70)
  for (const g of golden.images) {
    for (const tr of g.transforms) {
      t.same(resizedSize(g.width, g.height, tr.resize), { width: tr.resizedWidth, height: tr.resizedHeight },
        `${g.file} Resize(${tr.resize})`);
    }
  }
});

t.test('CenterCrop offsets: round half to even, and torchvision padding', async (t) => {
  t.equal(roundHalfEvenHalf(73), 36, 'round(36.5) = 36');
  t.equal(roundHalfEvenHalf(75), 38, 'round(37.5) = 38');
  t.equal(roundHalfEvenHalf(1), 0, 'round(0.5) = 0');
  t.equal(roundHalfEvenHalf(3), 2, 'round(1.5) = 2');
  t.equal(roundHalfEvenHalf(4), 2);
  t.equal(centerCropOffset(297, 224), 36);
  t.equal(centerCropOffset(299, 224), 38);
  t.equal(centerCropOffset(224, 224), 0);
  t.equal(centerCropOffset(24, 28), -2, 'pad (28 - 24) // 2 = 2 before');
  t.equal(centerCropOffset(23, 28), -2, 'pad 5 // 2 = 2 before, 3 after');
  t.same(centerCropWindow(31, 24, 28), { top: -2, left: 2, height: 28, width: 28 });
});

t.test('every fixture and transform: identical to torchvision at every stage', async (t) => {
  let exact = 0, total = 0;
  for (const g of golden.images) {
    const img = await decodeImageFile(fixturePath(g.file));
    const decodeSame = sha256(img.data) === g.decodeSha256;
    t.ok(decodeSame, `${g.file}: decode`);
    for (const tr of g.transforms) {
      const name = `${g.file} Resize(${tr.resize}) CenterCrop(${tr.crop})`;
      const resized = resizeShorterSide(img, tr.resize);
      t.same([resized.width, resized.height], [tr.resizedWidth, tr.resizedHeight], `${name}: resized size`);
      t.equal(sha256(resized.data), tr.resizedSha256, `${name}: resized pixels identical to Pillow`);
      const cropped = centerCrop(resized, tr.crop);
      t.equal(sha256(cropped.data), tr.croppedSha256, `${name}: cropped pixels identical`);
      if (tr.croppedFile) {
        const want = readGz(tr.croppedFile);
        const d = diffStats(cropped.data, want);
        t.equal(d.max, 0, `${name}: crop max abs diff ${d.max}, ${d.percent.toFixed(3)}% of values differ`);
      }
      const staged = toTensorNormalize(cropped, { mean: golden.mean, std: golden.std });
      const fused = preprocess(img, transform(tr.resize, tr.crop));
      t.equal(sha256(fused), sha256(staged), `${name}: fused path = staged path`);
      total++;
      if (sha256(fused) === tr.tensorSha256) {
        exact++;
      } else if (decodeSame) {
        t.fail(`${name}: the tensor differs from torchvision although the decode is identical`);
      }
      let sum = 0;
      for (const v of fused) sum += v;
      t.ok(Math.abs(sum - tr.tensorSum) <= 1e-6 * Math.max(1, Math.abs(tr.tensorSum)) + 1e-3, `${name}: tensor sum`);
    }
  }
  t.equal(exact, total, `${exact}/${total} normalised tensors bit-identical to torchvision`);
});

t.test('batch, slot and async forms give the same tensors', async (t) => {
  const files = golden.images.slice(0, 6);
  const imgs = await Promise.all(files.map((g) => decodeImageFile(fixturePath(g.file))));
  const tr = imagenetEvalTransform();
  t.same(tr, { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  const batch = preprocessBatch(imgs, tr);
  t.same(batch.shape, [6, 3, 224, 224]);
  const all = batch.toFloat32Array();
  const per = 3 * 224 * 224;
  const viaAsync = empty('float32', [6, 3, 224, 224]);
  await Promise.all(imgs.map((im, i) => preprocessIntoAsync(im, tr, viaAsync, 5 - i)));
  const asyncAll = viaAsync.toFloat32Array();
  const slot = empty('float32', [2, 3, 224, 224]);
  files.forEach((g, i) => {
    const want = g.transforms.find((x) => x.resize === 256 && x.crop === 224)!.tensorSha256;
    t.equal(sha256(all.subarray(i * per, (i + 1) * per)), want, `${g.file} batch`);
    t.equal(sha256(asyncAll.subarray((5 - i) * per, (6 - i) * per)), want, `${g.file} async slot ${5 - i}`);
    preprocessInto(imgs[i], tr, slot, 1);
    t.equal(sha256(slot.toFloat32Array().subarray(per)), want, `${g.file} into slot 1`);
  });
  batch.dispose();
  viaAsync.dispose();
  slot.dispose();
});

t.test('bad transforms and images are refused', async (t) => {
  const img = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 };
  t.throws(() => preprocess(img, transform(0, 224)), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => preprocess(img, transform(256, 22.5)), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => preprocess(img, { ...transform(4, 2), std: [1, 0, 1] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => preprocess(img, { ...transform(4, 2), mean: [0, 0] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => preprocess({ ...img, channels: 1, data: new Uint8Array(4) }, transform(4, 2)), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => preprocess({ ...img, data: new Uint8Array(11) }, transform(4, 2)), { code: 'ERR_SHAPE_MISMATCH' });
  t.equal(preprocess(img, transform(4, 2)).length, 12);
});
