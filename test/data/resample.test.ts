// Native resampling against Pillow 9.4 (hashes of Image.resize outputs in golden.json), windows,
// the fused crop + ToTensor + Normalize kernel, and argument errors.
import t from 'tap';
import { RESAMPLE_FILTER_IDS, ResampleFilter, cropNormalizeU8, resizeCropNormalizeU8, resizeCropNormalizeU8Async,
  resizeU8 } from '../../src/image-ops';
import { empty, memoryStats } from '../../src/tensor';
import { diffStats, golden, sha256, synthetic } from './fixtures';

t.test('every filter matches Pillow exactly on synthetic images (all sizes, box, up and down)', async (t) => {
  const bad: string[] = [];
  const seenFilters = new Set<string>();
  for (const c of golden.resample) {
    const src = { data: synthetic(c.kind, c.height, c.width, c.channels, c.seed), width: c.width, height: c.height,
      channels: c.channels };
    const out = resizeU8(src, { width: c.outWidth, height: c.outHeight, filter: c.filter, box: c.box });
    seenFilters.add(c.filter);
    if (sha256(out.data).slice(0, 32) !== c.sha256) {
      bad.push(`${c.kind} ${c.height}x${c.width}x${c.channels} -> ${c.outHeight}x${c.outWidth} ${c.filter}` +
        (c.box ? ` box ${c.box.join(',')}` : ''));
    }
  }
  t.same(bad, [], `${golden.resample.length} Pillow resizes reproduced bit for bit`);
  t.same([...seenFilters].sort(), Object.keys(RESAMPLE_FILTER_IDS).sort());
  t.ok(golden.resample.length > 300);
});

t.test('a window of the resize equals the same window of the full resize', async (t) => {
  const cases: [number, number, number, number, ResampleFilter][] = [
    [251, 333, 224, 297, 'bilinear'], [375, 500, 256, 341, 'bicubic'], [80, 100, 256, 320, 'bilinear'],
    [300, 224, 300, 200, 'bilinear'], [300, 224, 200, 224, 'bicubic'], [100, 90, 77, 51, 'nearest'],
    [64, 64, 64, 64, 'bilinear'], [60, 50, 61, 49, 'lanczos'],
  ];
  for (const [h, w, oh, ow, filter] of cases) {
    const src = { data: synthetic('noise', h, w, 3, h + w), width: w, height: h, channels: 3 };
    const full = resizeU8(src, { width: ow, height: oh, filter });
    for (const r of [{ top: 0, left: 0, height: oh, width: ow }, { top: 3, left: 5, height: Math.max(1, oh - 10),
      width: Math.max(1, ow - 7) }, { top: oh - 1, left: ow - 1, height: 1, width: 1 },
    { top: Math.floor(oh / 2), left: 0, height: Math.ceil(oh / 2), width: ow }]) {
      const part = resizeU8(src, { width: ow, height: oh, filter, region: r });
      const expect = new Uint8Array(r.height * r.width * 3);
      for (let y = 0; y < r.height; y++) {
        expect.set(full.data.subarray(((r.top + y) * ow + r.left) * 3, ((r.top + y) * ow + r.left + r.width) * 3),
          y * r.width * 3);
      }
      t.equal(sha256(part.data), sha256(expect), `${h}x${w}->${oh}x${ow} ${filter} window ${JSON.stringify(r)}`);
    }
  }
});

t.test('the multi-threaded path of a large resize equals the single-threaded one', async (t) => {
  // resizeU8 splits rows over the thread pool; the async fused call runs on one thread.
  const h = 1200, w = 1700, oh = 700, ow = 900;
  const src = { data: synthetic('smooth', h, w, 3, 7), width: w, height: h, channels: 3 };
  const norm = { mean: [0, 0, 0], std: [1, 1, 1] };
  const full = resizeU8(src, { width: ow, height: oh });
  const crop = { top: 0, left: 0, height: oh, width: ow };
  const out = empty('float32', [1, 3, oh, ow]);
  await resizeCropNormalizeU8Async(src, { width: ow, height: oh }, crop, norm, { tensor: out, slot: 0 });
  const viaFull = cropNormalizeU8(full, crop, norm);
  t.equal(sha256(out.toFloat32Array()), sha256(viaFull));
  out.dispose();
});

t.test('ToTensor + Normalize is (float32(x) / 255 - mean) / std in float32, CHW, zero padded', async (t) => {
  const h = 5, w = 4;
  const data = new Uint8Array(h * w * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 255;
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const f = Math.fround;
  const crop = { top: -1, left: 1, height: 7, width: 4 };  // one row of padding above, one column right, ...
  const out = cropNormalizeU8({ data, width: w, height: h, channels: 3 }, crop, { mean, std });
  let bad = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < crop.height; y++) {
      for (let x = 0; x < crop.width; x++) {
        const sy = crop.top + y, sx = crop.left + x;
        const v = sy >= 0 && sy < h && sx >= 0 && sx < w ? data[(sy * w + sx) * 3 + c] : 0;
        const expect = f(f(f(v) / f(255)) - f(mean[c])) / f(std[c]);
        if (out[(c * crop.height + y) * crop.width + x] !== f(expect)) bad++;
      }
    }
  }
  t.equal(bad, 0, 'every value as torchvision computes it');
  t.equal(out.length, 3 * 7 * 4);
});

t.test('fused resize + crop + normalise equals resize, then crop, then normalise; sync, async, slots', async (t) => {
  const h = 251, w = 333;
  const src = { data: synthetic('noise', h, w, 3, 1), width: w, height: h, channels: 3 };
  const norm = { mean: golden.mean, std: golden.std };
  const resize = { width: 297, height: 224 };
  const full = resizeU8(src, resize);
  for (const crop of [{ top: 0, left: 36, height: 224, width: 224 }, { top: -8, left: 36, height: 240, width: 224 },
    { top: -3, left: -2, height: 230, width: 301 }]) {
    const expect = cropNormalizeU8(full, crop, norm);
    const fused = resizeCropNormalizeU8(src, resize, crop, norm);
    t.equal(sha256(fused), sha256(expect), `crop ${JSON.stringify(crop)}`);
    const batch = empty('float32', [3, 3, crop.height, crop.width]);
    resizeCropNormalizeU8(src, resize, crop, norm, { tensor: batch, slot: 2 });
    await resizeCropNormalizeU8Async(src, resize, crop, norm, { tensor: batch, slot: 0 });
    const all = batch.toFloat32Array();
    const per = expect.length;
    t.equal(sha256(all.subarray(2 * per, 3 * per)), sha256(expect), 'sync into slot 2');
    t.equal(sha256(all.subarray(0, per)), sha256(expect), 'async into slot 0');
    batch.dispose();
  }
});

t.test('many async calls in parallel write their own slots', async (t) => {
  const norm = { mean: golden.mean, std: golden.std };
  const before = memoryStats().liveBuffers;
  const batch = empty('float32', [12, 3, 56, 56]);
  const imgs = Array.from({ length: 12 }, (_, i) => ({ data: synthetic('noise', 80 + i, 90 - i, 3, i), width: 90 - i,
    height: 80 + i, channels: 3 }));
  const crop = { top: 4, left: 4, height: 56, width: 56 };
  await Promise.all(imgs.map((im, i) => resizeCropNormalizeU8Async(im, { width: 64, height: 64 }, crop, norm,
    { tensor: batch, slot: i })));
  const all = batch.toFloat32Array();
  const per = 3 * 56 * 56;
  imgs.forEach((im, i) => {
    const one = resizeCropNormalizeU8(im, { width: 64, height: 64 }, crop, norm);
    t.equal(diffStats(all.subarray(i * per, (i + 1) * per), one).count, 0, `slot ${i}`);
  });
  batch.dispose();
  t.equal(memoryStats().liveBuffers, before);
});

t.test('argument errors are typed', async (t) => {
  const img = { data: new Uint8Array(4 * 5 * 3), width: 5, height: 4, channels: 3 };
  const norm = { mean: [0, 0, 0], std: [1, 1, 1] };
  t.throws(() => resizeU8({ ...img, data: new Uint8Array(7) }, { width: 2, height: 2 }), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => resizeU8(img, { width: 0, height: 2 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => resizeU8(img, { width: 2, height: 2, filter: 'cubic' as ResampleFilter }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => resizeU8(img, { width: 2, height: 2, box: [-1, 0, 3, 3] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => resizeU8(img, { width: 2, height: 2, box: [0, 0, 6, 3] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => resizeU8(img, { width: 2, height: 2, box: [3, 0, 1, 3] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => resizeU8(img, { width: 2, height: 2, region: { top: 1, left: 0, height: 2, width: 2 } }),
    { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => cropNormalizeU8(img, { top: 0, left: 0, height: 2, width: 2 }, { mean: [0, 0], std: [1, 1] }),
    { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => cropNormalizeU8(img, { top: 0, left: 0, height: 2, width: 2 }, { mean: [0, 0, 0], std: [1, 0, 1] }),
    { code: 'ERR_INVALID_ARGUMENT' });
  const wrong = empty('float32', [2, 3, 3, 3]);
  t.throws(() => resizeCropNormalizeU8(img, { width: 2, height: 2 }, { top: 0, left: 0, height: 2, width: 2 }, norm,
    { tensor: wrong, slot: 0 }), { code: 'ERR_SHAPE_MISMATCH' });
  const ok = empty('float32', [2, 3, 2, 2]);
  t.throws(() => resizeCropNormalizeU8(img, { width: 2, height: 2 }, { top: 0, left: 0, height: 2, width: 2 }, norm,
    { tensor: ok, slot: 2 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(resizeCropNormalizeU8Async(img, { width: 2, height: 2 }, { top: 0, left: 0, height: 2, width: 2 }, norm,
    { tensor: ok, slot: -1 }), { code: 'ERR_INVALID_ARGUMENT' });
  ok.dispose();
  await t.rejects(resizeCropNormalizeU8Async(img, { width: 2, height: 2 }, { top: 0, left: 0, height: 2, width: 2 }, norm,
    { tensor: ok, slot: 0 }), { code: 'ERR_TENSOR_DISPOSED' });
  wrong.dispose();
});
