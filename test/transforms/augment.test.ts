// MoCo v2 augmentations: explicit parameters replayed against torchvision 0.14 + Pillow 9.4 (made by
// test/fixtures/transforms/make_color_fixtures.py), and the seeded draws (determinism, torchvision's
// structure and probabilities, RandomResizedCrop's fallback).
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeImageFile } from '../../src/data/decode';
import type { ImageU8 } from '../../src/image-ops';
import { AugmentParams, AugmentRng, applyAugment, applyAugmentU8, augment, augmentWithParams, drawAugmentParams,
  drawResizedCrop } from '../../src/transforms/augment';

const FIX = path.join(__dirname, '..', 'fixtures', 'transforms', 'color');
const INPUTS = path.join(__dirname, '..', 'fixtures', 'images', 'inputs');

interface ColorDoc { images: { name: string; file: string; crop?: { left: number; top: number; width: number; height: number } }[] }
interface AugDoc { cases: { image: string; params: AugmentParams; u8: string; f32: string }[] }
const colorDoc = JSON.parse(fs.readFileSync(path.join(FIX, 'color.json'), 'utf8')) as ColorDoc;
const augDoc = JSON.parse(fs.readFileSync(path.join(FIX, 'augment.json'), 'utf8')) as AugDoc;

const h16 = (b: Uint8Array | Float32Array) =>
  createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex').slice(0, 16);

const images = new Map<string, ImageU8>();
t.before(async () => {
  for (const im of colorDoc.images) {
    if (!im.crop) continue;
    const d = await decodeImageFile(path.join(INPUTS, im.file));
    const { left, top, width, height } = im.crop;
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      out.set(d.data.subarray(((top + y) * d.width + left) * 3, ((top + y) * d.width + left + width) * 3), y * width * 3);
    }
    images.set(im.name, { data: out, width, height, channels: 3 });
  }
});

t.test('explicit parameters: identical to torchvision + PIL, uint8 image and normalised tensor', async (t) => {
  t.ok(augDoc.cases.length >= 50);
  for (const c of augDoc.cases) {
    const img = images.get(c.image)!;
    const u8 = applyAugmentU8(img, c.params);
    t.same([u8.width, u8.height, u8.channels], [c.params.size, c.params.size, 3]);
    const label = `${c.image} ${c.params.set} ${JSON.stringify(c.params)}`;
    t.equal(h16(u8.data), c.u8, `${label}: uint8`);
    const x = applyAugment(img, c.params);
    t.equal(x.length, 3 * c.params.size * c.params.size);
    t.equal(h16(x), c.f32, `${label}: float32`);
  }
});

t.test('seeded: the same seed gives the same views, other seeds others', async (t) => {
  const img = images.get('flower')!;
  for (const set of ['default', 'ventral', 'dorsal'] as const) {
    const a = new AugmentRng(1234), b = new AugmentRng(1234), c = new AugmentRng(1235);
    const va = augmentWithParams(img, set, a, 32), vb = augmentWithParams(img, set, b, 32);
    t.same(va.params, vb.params, `${set}: same params`);
    t.same(va.tensor, vb.tensor, `${set}: same tensor`);
    t.same(applyAugment(img, va.params), va.tensor, `${set}: replaying the params gives the view`);
    const differs = Array.from({ length: 5 }, () => JSON.stringify(drawAugmentParams(96, 71, set, c, 32)))
      .some((p) => p !== JSON.stringify(va.params));
    t.ok(differs, `${set}: another seed draws other params`);
    t.equal(augment(img, set, new AugmentRng(7n), 40).length, 3 * 40 * 40);
  }
  const r = new AugmentRng(99), r2 = r.clone();
  t.equal(r.nextU32(), r2.nextU32(), 'clone replays');
  t.throws(() => new AugmentRng(0.5), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('the generator: xoshiro128** reference outputs, uniform, randint, randperm', async (t) => {
  const r = new AugmentRng(0);
  (r as unknown as { s: Uint32Array }).s = Uint32Array.from([1, 2, 3, 4]);
  t.same(Array.from({ length: 6 }, () => r.nextU32()), [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  const g = new AugmentRng(5);
  const counts = new Array(7).fill(0);
  let lo = 1, hi = 0;
  for (let i = 0; i < 14000; i++) {
    counts[g.randint(3, 10) - 3]++;
    const u = g.uniform();
    lo = Math.min(lo, u); hi = Math.max(hi, u);
  }
  t.ok(counts.every((c) => c > 1800 && c < 2200), `randint uniform: ${counts}`);
  t.ok(lo >= 0 && lo < 0.001 && hi < 1 && hi > 0.999, 'uniform in [0, 1)');
  t.same([...g.randperm(6)].sort(), [0, 1, 2, 3, 4, 5]);
});

t.test("the draws follow torchvision's transforms and main_moco.py's probabilities", async (t) => {
  const rng = new AugmentRng(2024);
  const n = 4000;
  let jitter = 0, gray = 0, blur = 0, flip = 0;
  const bad: string[] = [];
  const W = 500, H = 375;
  for (let i = 0; i < n; i++) {
    const p = drawAugmentParams(W, H, 'default', rng);
    const c = p.crop!;
    const area = (c.width * c.height) / (W * H), ratio = c.width / c.height;
    if (!(c.top >= 0 && c.left >= 0 && c.top + c.height <= H && c.left + c.width <= W && area >= 0.19 &&
      area <= 1.0 && ratio >= 0.73 && ratio <= 1.37)) bad.push(`crop ${JSON.stringify(c)}`);
    if (p.colorJitter) {
      jitter++;
      const j = p.colorJitter;
      if ([...j.order].sort().join() !== '0,1,2,3') bad.push(`order ${j.order}`);
      for (const f of [j.brightness, j.contrast, j.saturation, j.hue]) if (Math.fround(f) !== f) bad.push(`not float32 ${f}`);
      for (const f of [j.brightness, j.contrast, j.saturation]) if (!(f >= 0.6 && f <= 1.4)) bad.push(`factor ${f}`);
      if (!(Math.abs(j.hue) <= 0.1)) bad.push(`hue ${j.hue}`);
    }
    if (p.grayscale) gray++;
    if (p.blurSigma !== null) {
      blur++;
      if (!(p.blurSigma! >= 0.1 && p.blurSigma! < 2)) bad.push(`sigma ${p.blurSigma}`);
    }
    if (p.hflip) flip++;
  }
  t.same(bad.slice(0, 5), [], 'every draw inside its range');
  const near = (k: number, p: number) => Math.abs(k / n - p) < 4 * Math.sqrt((p * (1 - p)) / n);
  t.ok(near(jitter, 0.8), `jitter ${jitter / n}`);
  t.ok(near(gray, 0.2), `grayscale ${gray / n}`);
  t.ok(near(blur, 0.5), `blur ${blur / n}`);
  t.ok(near(flip, 0.5), `flip ${flip / n}`);
  const v = drawAugmentParams(W, H, 'ventral', rng);
  t.same(Object.keys(v).sort(), ['crop', 'hflip', 'set', 'size']);
  const d = drawAugmentParams(W, H, 'dorsal', rng);
  t.same(Object.keys(d).sort(), ['blurSigma', 'colorJitter', 'grayscale', 'set', 'size']);
});

t.test("RandomResizedCrop's central-crop fallback", async (t) => {
  const rng = new AugmentRng(1);
  t.same(drawResizedCrop(1, 50, rng), { top: 24, left: 0, height: 1, width: 1 }, 'tall: w = width, h = round(w / (3/4))');
  t.same(drawResizedCrop(60, 2, rng), { top: 0, left: 28, height: 2, width: 3 }, 'wide: h = height, w = round(h * 4/3)');
});

t.test('argument checking', async (t) => {
  const img = images.get('coffee')!;
  const bad = { code: 'ERR_INVALID_ARGUMENT' };
  const rng = new AugmentRng(3);
  t.throws(() => augment(img, 'nope' as never, rng), bad);
  t.throws(() => augment(img, 'default', rng, 0), bad);
  t.throws(() => drawAugmentParams(10, 10, 'default', {} as never), bad);
  const p = drawAugmentParams(img.width, img.height, 'ventral', rng, 16);
  t.throws(() => applyAugmentU8(img, { ...p, crop: { top: 0, left: 0, height: img.height + 1, width: 4 } }), bad);
  t.throws(() => applyAugmentU8(img, { set: 'dorsal', size: 16, grayscale: false, blurSigma: null } as AugmentParams), bad);
  t.throws(() => applyAugmentU8({ ...img, channels: 1, data: new Uint8Array(img.width * img.height) }, p), bad);
});
