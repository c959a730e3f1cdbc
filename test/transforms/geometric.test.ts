// The geometric transforms against torchvision 0.14 / Pillow 9.4 and (deform) albumentations 1.0.3's
// algorithm on OpenCV 4.6: every view of the original's grids on three photos, extra cases for the
// other branches, matrices, errors and threading. Golden outputs from
// test/fixtures/transforms/make_geometric_fixtures.py (no Python at test time).
import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { decodeImageFile } from '../../src/data/decode';
import { ImageU8 } from '../../src/image-ops';
import { native } from '../../src/native';
import { RandomState } from '../../src/random/mt19937';
import { transformGrid, ViewParams, SyntheticTransform } from '../../src/transforms/grid';
import {
  AffineParams, affine, affineMatrix, elasticAffineMatrix, elasticBlurField, elasticDeform, elasticDeformWith,
  elasticDraws, hflip, pilAffineTransform, resizedCrop, rotate, rotationMatrix, vflip,
} from '../../src/transforms/geometric';

const DIR = path.join(__dirname, '..', 'fixtures', 'transforms', 'geometric');
const INPUTS = path.join(__dirname, '..', 'fixtures', 'images', 'inputs');

interface GoldenImage { name: string; file: string; crop: number[] | null; mode: 'RGB' | 'L' | 'RGBA'; width: number;
  height: number; sha: string }
interface Golden {
  versions: Record<string, string>;
  images: GoldenImage[];
  grids: { image: string; transform: SyntheticTransform; sha: string[] }[];
  extras: { image: string; op: string; args: Record<string, unknown>; width: number; height: number; sha: string }[];
  deform: { image: string; sigma: number; seed: number; sha: string }[];
  full: { image: string; transform: string; view?: number; sigma?: number; seed?: number; offset: number;
    shape: number[] }[];
  matrices: { kind: 'rotate' | 'affine'; angle: number; translate?: [number, number]; scale?: number;
    shear?: [number, number]; width: number; height: number; m: number[] }[];
  deform_steps: { height: number; width: number; seed: number; sigma: number; m: number[]; blur_sha: string }[];
}

const golden = JSON.parse(fs.readFileSync(path.join(DIR, 'golden.json'), 'utf8')) as Golden;
const blobs: Record<string, Uint8Array> = {};
function fullOutput(image: string, offset: number, n: number): Uint8Array {
  blobs[image] ??= new Uint8Array(zlib.gunzipSync(fs.readFileSync(path.join(DIR, `${image}.u8.gz`))));
  return blobs[image]!.subarray(offset, offset + n);
}

const sha16 = (d: Uint8Array) => crypto.createHash('sha256').update(d).digest('hex').slice(0, 16);

function cropImage(img: ImageU8, l: number, top: number, w: number, h: number): ImageU8 {
  const C = img.channels, d = new Uint8Array(w * h * C);
  for (let y = 0; y < h; y++) {
    const s = ((top + y) * img.width + l) * C;
    d.set(img.data.subarray(s, s + w * C), y * w * C);
  }
  return { data: d, width: w, height: h, channels: C };
}

/** The fixture images: crops of the decoded photos, and 1- / 4-channel images made from them. */
async function loadImages(): Promise<Record<string, ImageU8>> {
  const out: Record<string, ImageU8> = {};
  for (const im of golden.images) {
    const dec = await decodeImageFile(path.join(INPUTS, im.file));
    let img: ImageU8 = { data: dec.data, width: dec.width, height: dec.height, channels: 3 };
    if (im.crop) img = cropImage(img, im.crop[0]!, im.crop[1]!, im.crop[2]!, im.crop[3]!);
    const n = img.width * img.height;
    if (im.mode === 'L') {
      const d = new Uint8Array(n);
      for (let i = 0; i < n; i++) d[i] = img.data[i * 3]!;
      img = { data: d, width: img.width, height: img.height, channels: 1 };
    } else if (im.mode === 'RGBA') {
      const d = new Uint8Array(n * 4);
      for (let i = 0; i < n; i++) {
        d.set(img.data.subarray(i * 3, i * 3 + 3), i * 4);
        d[i * 4 + 3] = img.data[i * 3 + 1]! ^ 0x5a;
      }
      img = { data: d, width: img.width, height: img.height, channels: 4 };
    }
    out[im.name] = img;
  }
  return out;
}

function applyView(img: ImageU8, v: ViewParams): ImageU8 {
  switch (v.op) {
    case 'rotate': return rotate(img, v.angle);
    case 'affine': return affine(img, v);
    case 'resized_crop': return resizedCrop(img, v.top, v.left, v.height, v.width, v.size);
    case 'hflip': return v.apply ? hflip(img) : img;
    case 'vflip': return v.apply ? vflip(img) : img;
  }
  throw new Error(`not a geometric view: ${v.op}`);
}

function applyExtra(img: ImageU8, op: string, a: Record<string, any>): ImageU8 { // eslint-disable-line
  switch (op) {
    case 'rotate': return rotate(img, a.angle);
    case 'affine': return affine(img, a as AffineParams);
    case 'pilAffine': return pilAffineTransform(img, a.matrix,
      a.width !== undefined ? { width: a.width, height: a.height } : undefined);
    case 'resizedCrop': return resizedCrop(img, a.top, a.left, a.height, a.width, a.size, a.filter);
    case 'hflip': return hflip(img);
    case 'vflip': return vflip(img);
  }
  throw new Error(op);
}

interface Tally { views: number; badViews: string[]; pixels: number; samePixels: number; maxDiff: number }
const tally = (): Tally => ({ views: 0, badViews: [], pixels: 0, samePixels: 0, maxDiff: 0 });

function pixelStats(a: Uint8Array, b: Uint8Array): { same: number; max: number } {
  let same = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d === 0) same++;
    else if (d > max) max = d;
  }
  return { same, max };
}

t.test('fixture inputs decode and crop as PIL made them', async (t) => {
  const imgs = await loadImages();
  for (const im of golden.images) {
    const img = imgs[im.name]!;
    t.equal(`${img.width}x${img.height}`, `${im.width}x${im.height}`, im.name);
    t.equal(sha16(img.data), im.sha, `${im.name} pixels`);
  }
});

t.test('every view of the original grids equals torchvision on PIL, byte for byte', async (t) => {
  const imgs = await loadImages();
  const per: Record<string, Tally> = {};
  for (const gr of golden.grids) {
    const grid = transformGrid(gr.transform);
    t.equal(grid.views.length, gr.sha.length, `${gr.image} ${gr.transform}: view count`);
    const s = per[gr.transform] ??= tally();
    const src = imgs[gr.image]!;
    const before = sha16(src.data);
    grid.views.forEach((v, i) => {
      const out = applyView(src, v);
      s.views++;
      if (sha16(out.data) !== gr.sha[i]) s.badViews.push(`${gr.image}#${i} ${JSON.stringify(v)}`);
    });
    t.equal(sha16(src.data), before, `${gr.image} ${gr.transform}: input untouched`);
  }
  for (const [name, s] of Object.entries(per)) {
    t.same(s.badViews.slice(0, 10), [], `${name}: ${s.views - s.badViews.length}/${s.views} views identical`);
  }
  t.same(Object.keys(per).sort(), ['h_flip', 'resized_crop', 'rotation', 'scale', 'shear', 'translation', 'v_flip']);
});

t.test('stored outputs: pixel differences (reported on failure)', async (t) => {
  const imgs = await loadImages();
  for (const f of golden.full) {
    const n = f.shape.reduce((a, b) => a * b, 1);
    const ref = fullOutput(f.image, f.offset, n);
    let out: ImageU8;
    let what: string;
    if (f.transform === 'deform') {
      out = elasticDeform(imgs[f.image]!, f.sigma!, f.seed!);
      what = `${f.image} deform sigma ${f.sigma} seed ${f.seed}`;
    } else {
      const v = transformGrid(f.transform as SyntheticTransform).views[f.view!]!;
      out = applyView(imgs[f.image]!, v);
      what = `${f.image} ${f.transform}#${f.view}`;
    }
    t.equal(out.data.length, n, `${what}: size`);
    const st = pixelStats(out.data, ref);
    const pct = (100 * st.same) / n;
    t.ok(pct >= 99 && st.max <= 2,
      `${what}: ${pct.toFixed(3)}% identical, max diff ${st.max} (acceptance: >= 99%, <= 2)`);
    t.equal(st.same, n, `${what}: every pixel identical`);
  }
});

t.test('extra cases: Pillow engines, angles, crop padding and rounding, filters, 1 and 4 channels', async (t) => {
  const imgs = await loadImages();
  const ops = new Set<string>();
  const bad: string[] = [];
  for (const e of golden.extras) {
    const out = applyExtra(imgs[e.image]!, e.op, e.args);
    ops.add(e.op);
    if (out.width !== e.width || out.height !== e.height || sha16(out.data) !== e.sha) {
      bad.push(`${e.image} ${e.op} ${JSON.stringify(e.args)}`);
    }
  }
  t.same(bad, [], `${golden.extras.length - bad.length}/${golden.extras.length} identical`);
  t.same([...ops].sort(), ['affine', 'hflip', 'pilAffine', 'resizedCrop', 'rotate', 'vflip']);
});

t.test('deform: albumentations 1.0.3 elastic_transform on OpenCV 4.6 with RandomState(seed)', async (t) => {
  const imgs = await loadImages();
  const bad: string[] = [];
  for (const d of golden.deform) {
    const out = elasticDeform(imgs[d.image]!, d.sigma, d.seed);
    if (sha16(out.data) !== d.sha) bad.push(`${d.image} sigma ${d.sigma} seed ${d.seed}`);
  }
  t.same(bad, [], `${golden.deform.length - bad.length}/${golden.deform.length} identical`);
  // The draws come from the RandomState in albumentations' order: a state passed in continues.
  const img = imgs['china96x71']!;
  const rs = new RandomState(1234);
  const a = elasticDeform(img, 27, rs);
  t.same(sha16(a.data), sha16(elasticDeform(img, 27, 1234).data), 'seed == fresh RandomState(seed)');
  const b = elasticDeform(img, 27, rs);
  t.not(sha16(b.data), sha16(a.data), 'a second call continues the stream');
  const draws = elasticDraws(new RandomState(1234), img.height, img.width);
  t.same(sha16(elasticDeformWith(img, 27, draws).data), sha16(a.data), 'explicit draws');
  t.ok(draws.affineOffsets.every((v) => v >= -50 && v < 50), 'affine offsets in [-50, 50)');
  t.ok(draws.noiseX.every((v) => v >= -1 && v < 1), 'noise in [-1, 1)');
});

t.test('deform steps alone: cv2.getAffineTransform bit for bit, cv2.GaussianBlur float32 bytes', async (t) => {
  const badM: string[] = [], badBlur: string[] = [];
  for (const c of golden.deform_steps) {
    const d = elasticDraws(new RandomState(c.seed), c.height, c.width);
    const m = elasticAffineMatrix(c.height, c.width, d.affineOffsets);
    if (m.some((v, i) => !Object.is(v, c.m[i]))) badM.push(`${JSON.stringify(c)} -> ${m.join(',')}`);
    const b = elasticBlurField(d.noiseX, c.height, c.width, c.sigma);
    if (sha16(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) !== c.blur_sha) {
      badBlur.push(`${c.height}x${c.width} sigma ${c.sigma} seed ${c.seed}`);
    }
  }
  const n = golden.deform_steps.length;
  t.same(badM.slice(0, 5), [], `${n - badM.length}/${n} affine matrices`);
  t.same(badBlur, [], `${n - badBlur.length}/${n} blurred fields`);
});

t.test('matrices equal the ones Python computes (Pillow rotate, torchvision inverse affine)', async (t) => {
  const bad: string[] = [];
  for (const m of golden.matrices) {
    const ours = m.kind === 'rotate' ? rotationMatrix(m.angle, m.width, m.height)
      : affineMatrix({ angle: m.angle, translate: m.translate!, scale: m.scale!, shear: m.shear! }, m.width, m.height);
    if (ours.some((v, i) => !Object.is(v, m.m[i]))) bad.push(`${m.kind} ${JSON.stringify(m)} -> ${ours.join(',')}`);
  }
  const n = golden.matrices.length;
  t.same(bad.slice(0, 5), [], `${n - bad.length}/${n} matrices bit-identical`);
});

t.test('flips, 180 degrees and shortcuts are the plain permutations', async (t) => {
  const img: ImageU8 = { data: Uint8Array.from({ length: 2 * 3 * 2 }, (_, i) => i), width: 3, height: 2, channels: 2 };
  const px = (o: ImageU8, x: number, y: number) => [o.data[(y * o.width + x) * 2], o.data[(y * o.width + x) * 2 + 1]];
  const h = hflip(img), v = vflip(img), r = rotate(img, 180), z = rotate(img, 360);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 3; x++) {
      t.same(px(h, x, y), px(img, 2 - x, y));
      t.same(px(v, x, y), px(img, x, 1 - y));
      t.same(px(r, x, y), px(img, 2 - x, 1 - y));
      t.same(px(z, x, y), px(img, x, y));
    }
  }
  t.not(z.data, img.data, 'a new buffer even for the identity');
  // Square: 90 degrees counter-clockwise, as Pillow's transpose.
  const sq: ImageU8 = { data: Uint8Array.from([1, 2, 3, 4]), width: 2, height: 2, channels: 1 };
  t.same(Array.from(rotate(sq, 90).data), [2, 4, 1, 3]);
  t.same(Array.from(rotate(sq, -90).data), [3, 1, 4, 2]);
});

t.test('threads: 1 and 2 threads give the same bytes', async (t) => {
  const imgs = await loadImages();
  const img = imgs['coffee199x131']!;
  const run = () => [rotate(img, 33.3), affine(img, { angle: 10, translate: [2.5, -1], scale: 0.9, shear: [4, 3] }),
    affine(img, { angle: 0, translate: [3, 2], scale: 1.3, shear: 0 }), resizedCrop(img, -5, 3, 120, 150, [224, 224]),
    pilAffineTransform(img, [0.5, 0.2, 2.0, 0.1, 0.9, 1.0], { width: 70000, height: 2 }), hflip(img), vflip(img),
    elasticDeform(img, 21, 77)].map((o) => sha16(o.data));
  const n = native().info().threads;
  try {
    native().setNumThreads(1);
    const one = run();
    native().setNumThreads(2);
    t.same(run(), one);
  } finally {
    native().setNumThreads(n);
  }
});

t.test('argument errors carry stable codes', async (t) => {
  const img: ImageU8 = { data: new Uint8Array(5 * 4 * 3), width: 5, height: 4, channels: 3 };
  const inv = { code: 'ERR_INVALID_ARGUMENT' };
  t.throws(() => rotate(img, NaN), inv);
  t.throws(() => rotate(img, Infinity), inv);
  t.throws(() => rotate({ ...img, data: new Uint8Array(7) }, 3), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => rotate({ ...img, channels: 5, data: new Uint8Array(100) }, 3), inv);
  t.throws(() => rotate({ ...img, width: 0 }, 3), inv);
  const p: AffineParams = { angle: 0, translate: [0, 0], scale: 1, shear: 0 };
  t.throws(() => affine(img, { ...p, scale: 0 }), inv);
  t.throws(() => affine(img, { ...p, scale: -1 }), inv);
  t.throws(() => affine(img, { ...p, translate: [1] as unknown as [number, number] }), inv);
  t.throws(() => affine(img, { ...p, shear: [1, 2, 3] as unknown as [number, number] }), inv);
  t.throws(() => affine(img, { ...p, angle: NaN }), inv);
  t.throws(() => resizedCrop(img, 0, 0, 2, -1, [4, 4]), inv, 'negative width (Pillow: right < left)');
  t.throws(() => resizedCrop(img, 0, 0, 0.4, 2, [4, 4]), inv, 'rounds to an empty crop');
  t.throws(() => resizedCrop(img, 0, 0, 2, 2, [0, 4]), inv);
  t.throws(() => resizedCrop(img, 0, 0, 2, 2, [4, 4], 'sinc' as never), inv);
  t.throws(() => resizedCrop(img, 0, 0, 2, 2, 2.5), inv);
  t.throws(() => elasticDeform(img, 0, 1), inv);
  t.throws(() => elasticDeform(img, 10, -1), inv);
  t.throws(() => elasticDeform(img, 10, 2 ** 32), inv);
  t.throws(() => elasticDeformWith(img, 10, { affineOffsets: new Float32Array(6), noiseX: new Float32Array(3),
    noiseY: new Float32Array(20) }), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => pilAffineTransform(img, [1, 0, 0, 0, 1]), inv);
  t.throws(() => pilAffineTransform(img, [1, 0, 0, 0, 1, NaN]), inv);
  t.throws(() => pilAffineTransform(img, [1, 0, 0, 0, 1, 0], { width: 0, height: 3 }), inv);
  // The native layer checks too.
  const a = native() as unknown as Record<string, (...args: unknown[]) => unknown>;
  t.throws(() => a['geomRotateU8']!(new Float32Array(60), 4, 5, 3, 1), { code: 'ERR_DTYPE_MISMATCH' });
  t.throws(() => a['geomRotateU8']!(new Uint8Array(59), 4, 5, 3, 1), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => a['geomAffineU8']!(img.data, 4, 5, 3, { angle: 0, translate: [0, 0], scale: 0, shear: [0, 0] }), inv);
  t.throws(() => a['geomElasticU8']!(img.data, 4, 5, 3, { sigma: 5, alpha: 1, affineOffsets: [0, 0, 0, 0, 0, 0],
    noiseX: new Float32Array(20), noiseY: new Float64Array(20) }), { code: 'ERR_DTYPE_MISMATCH' });
});

t.test('resized crop: shorter-side size and 1x1 images', async (t) => {
  const img: ImageU8 = { data: Uint8Array.from({ length: 10 * 8 * 3 }, (_, i) => (i * 7) & 255), width: 10, height: 8,
    channels: 3 };
  const o = resizedCrop(img, 1, 1, 4, 6, 3);
  t.same([o.width, o.height], [4, 3], 'int size: the shorter side (torchvision: int(3 * 6 / 4) = 4)');
  const one: ImageU8 = { data: Uint8Array.from([9, 8, 7]), width: 1, height: 1, channels: 3 };
  t.same(Array.from(rotate(one, 37).data), [9, 8, 7]);
  t.same(Array.from(elasticDeform(one, 10, 3).data), [9, 8, 7]);
  t.same(Array.from(resizedCrop(one, -1, -1, 3, 3, [3, 3]).data), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 8, 7, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0]);
});
