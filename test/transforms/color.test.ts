// The photometric transforms against torchvision 0.14 + Pillow 9.4 (references made by
// test/fixtures/transforms/make_color_fixtures.py): every parameter of the original's grids on three
// real photo crops and a noise image, edge cases, torch's Gaussian kernels, Pillow's GaussianBlur,
// every CPU path of the blur, and argument checking.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { decodeImageFile } from '../../src/data/decode';
import type { ImageU8 } from '../../src/image-ops';
import { packageRoot } from '../../src/native';
import { adjustBrightness, adjustContrast, adjustHue, adjustSaturation, adjustSharpness, equalize, gaussianBlur,
  gaussianKernel1d, grayscale, invert, pilGaussianBlur, posterize } from '../../src/transforms/color';
import { transformGrid } from '../../src/transforms/grid';

const FIX = path.join(__dirname, '..', 'fixtures', 'transforms', 'color');
const INPUTS = path.join(__dirname, '..', 'fixtures', 'images', 'inputs');

type Params = Record<string, unknown>;
interface Doc {
  images: { name: string; file: string; crop?: { left: number; top: number; width: number; height: number };
    width?: number; height?: number; sha: string }[];
  params: Record<string, Params[]>;
  cases: Record<string, Record<string, string[]>>;
  full: { image: string; transform: string; view: number; file: string }[];
  edge: { image: string; op: string; params: Params; sha: string; data: string | null }[];
  kernels: { k: number; sigma: number; f32: string }[];
  pilBlur: Record<string, { radii: number[]; sha: string[]; data?: string; width?: number; height?: number }>;
}
const doc = JSON.parse(fs.readFileSync(path.join(FIX, 'color.json'), 'utf8')) as Doc;

const h16 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

function crop(img: ImageU8, left: number, top: number, width: number, height: number): ImageU8 {
  const C = img.channels;
  const out = new Uint8Array(width * height * C);
  for (let y = 0; y < height; y++) {
    out.set(img.data.subarray(((top + y) * img.width + left) * C, ((top + y) * img.width + left + width) * C), y * width * C);
  }
  return { data: out, width, height, channels: C };
}

async function loadImages(): Promise<Map<string, ImageU8>> {
  const m = new Map<string, ImageU8>();
  for (const im of doc.images) {
    if (im.crop) {
      const d = await decodeImageFile(path.join(INPUTS, im.file));
      m.set(im.name, crop(d, im.crop.left, im.crop.top, im.crop.width, im.crop.height));
    } else {
      const data = new Uint8Array(zlib.gunzipSync(fs.readFileSync(path.join(FIX, im.file))));
      m.set(im.name, { data, width: im.width!, height: im.height!, channels: 3 });
    }
  }
  return m;
}

/** The view of transform `name` with the original's parameters (keyword names as in torchvision). */
function apply(name: string, img: ImageU8, p: Params): ImageU8 {
  switch (name) {
    case 'grayscale': return grayscale(img);
    case 'brightness': return adjustBrightness(img, p.brightness_factor as number);
    case 'contrast': return adjustContrast(img, p.contrast_factor as number);
    case 'saturation': return adjustSaturation(img, p.saturation_factor as number);
    case 'hue': return adjustHue(img, p.hue_factor as number);
    case 'blur': return gaussianBlur(img, p.kernel_size as number, p.sigma as number);
    case 'sharpness': return adjustSharpness(img, p.sharpness_factor as number);
    case 'invert': return invert(img);
    case 'equalize': return equalize(img);
    case 'posterize': return posterize(img, p.bits as number);
  }
  throw new Error(`unknown transform ${name}`);
}

function diff(a: Uint8Array, b: Uint8Array): { identical: number; maxDiff: number } {
  let same = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d === 0) same++;
    if (d > max) max = d;
  }
  return { identical: same / a.length, maxDiff: max };
}

let images: Map<string, ImageU8>;
t.before(async () => {
  images = await loadImages();
});

t.test('inputs decode and crop as PIL does', async (t) => {
  for (const im of doc.images) t.equal(h16(images.get(im.name)!.data), im.sha, im.name);
});

t.test("the fixtures' parameters are the original's grids (src/transforms/grid.ts)", async (t) => {
  const key: Record<string, [string, string]> = {
    brightness: ['brightness_factor', 'factor'], contrast: ['contrast_factor', 'factor'],
    saturation: ['saturation_factor', 'factor'], hue: ['hue_factor', 'hueFactor'], blur: ['sigma', 'sigma'],
    sharpness: ['sharpness_factor', 'factor'], posterize: ['bits', 'bits'],
  };
  for (const [name, [pyKey, tsKey]] of Object.entries(key)) {
    const g = transformGrid(name as never);
    t.same(g.views.map((v) => (v as unknown as Record<string, number>)[tsKey]), doc.params[name]!.map((p) => p[pyKey]), name);
  }
  const blur = transformGrid('blur');
  t.ok(blur.views.every((v) => (v as { kernelSize: number }).kernelSize === 23), 'blur kernel 23');
  t.ok(doc.params.blur!.every((p) => p.kernel_size === 23));
});

t.test('every parameter of every grid, on every image: identical to torchvision + PIL', async (t) => {
  const summary: string[] = [];
  for (const [imgName, byTransform] of Object.entries(doc.cases)) {
    const img = images.get(imgName)!;
    const before = h16(img.data);
    for (const [name, hashes] of Object.entries(byTransform)) {
      const params = doc.params[name]!;
      const bad: number[] = [];
      for (let v = 0; v < params.length; v++) {
        const out = apply(name, img, params[v]!);
        t.equal(out.data.length, img.data.length);
        if (h16(out.data) !== hashes[v]) bad.push(v);
      }
      summary.push(`${imgName}/${name}: ${params.length - bad.length}/${params.length}`);
      t.equal(bad.length, 0, `${imgName} ${name}: ${params.length - bad.length}/${params.length} views identical` +
        (bad.length ? `; differing views ${bad.slice(0, 10).join(', ')} (${JSON.stringify(params[bad[0]!])})` : ''));
    }
    t.equal(h16(img.data), before, `${imgName}: input untouched`);
  }
  t.comment(summary.join('  '));
});

t.test('complete outputs: pixel statistics', async (t) => {
  for (const f of doc.full) {
    const ref = new Uint8Array(zlib.gunzipSync(fs.readFileSync(path.join(FIX, f.file))));
    const ours = apply(f.transform, images.get(f.image)!, doc.params[f.transform]![f.view]!);
    const s = diff(ours.data, ref);
    t.same(s, { identical: 1, maxDiff: 0 }, `${f.image} ${f.transform} view ${f.view}: ` +
      `${(100 * s.identical).toFixed(3)}% identical, max diff ${s.maxDiff}`);
  }
});

function edgeImage(c: Doc['edge'][number]): ImageU8 {
  if (c.data === null) return images.get(c.image)!;
  const data = new Uint8Array(zlib.gunzipSync(Buffer.from(c.data, 'base64')));
  const m = /(\d+)x(\d+)$/.exec(c.image)!;
  const width = Number(m[1]), height = Number(m[2]);
  return { data, width, height, channels: data.length / (width * height) };
}

t.test('edge cases: tiny images, boundary and extreme factors, L images, asymmetric kernels', async (t) => {
  for (const c of doc.edge) {
    const img = edgeImage(c);
    const p = c.params;
    let out: ImageU8;
    switch (c.op) {
      case 'brightness': out = adjustBrightness(img, p.factor as number); break;
      case 'contrast': out = adjustContrast(img, p.factor as number); break;
      case 'saturation': out = adjustSaturation(img, p.factor as number); break;
      case 'sharpness': out = adjustSharpness(img, p.factor as number); break;
      case 'hue': out = adjustHue(img, p.hueFactor as number); break;
      case 'equalize': out = equalize(img); break;
      case 'invert': out = invert(img); break;
      case 'posterize': out = posterize(img, p.bits as number); break;
      case 'blur': out = gaussianBlur(img, p.kernelSize as number | number[], p.sigma as number | number[]); break;
      default: throw new Error(c.op);
    }
    t.equal(h16(out.data), c.sha, `${c.image} ${c.op} ${JSON.stringify(p)}`);
  }
});

t.test("torch's float32 Gaussian kernels, bit for bit", async (t) => {
  let bad = 0;
  for (const k of doc.kernels) {
    const ref = new Float32Array(new Uint8Array(Buffer.from(k.f32, 'base64')).buffer);
    const ours = gaussianKernel1d(k.k, k.sigma);
    const same = ours.length === ref.length && ours.every((v, i) => Object.is(v, ref[i]));
    if (!same) bad++;
    t.ok(same, `k=${k.k} sigma=${k.sigma}`);
  }
  t.equal(bad, 0);
});

t.test("Pillow's ImageFilter.GaussianBlur (MoCo v2's blur), many radii", async (t) => {
  for (const [name, c] of Object.entries(doc.pilBlur)) {
    const img = c.data !== undefined
      ? { data: new Uint8Array(Buffer.from(c.data, 'base64')), width: c.width!, height: c.height!, channels: 3 }
      : images.get(name)!;
    c.radii.forEach((r, i) => t.equal(h16(pilGaussianBlur(img, r).data), c.sha[i], `${name} radius ${r}`));
  }
});

t.test('every CPU path (generic, AVX2, AVX-512) gives the same outputs', async (t) => {
  const addonPath = process.env.SSL_INV_ADDON ?? path.join(packageRoot, 'build', 'Release', 'ssl_inv.node');
  const img = images.get('flower')!;
  // [transform, view] -> the raw addon call the child makes.
  const views: [string, number][] = [['blur', 0], ['blur', 3], ['blur', 9], ['blur', 40], ['blur', 128], ['blur', 255],
    ['sharpness', 0], ['sharpness', 1], ['sharpness', 100], ['sharpness', 255], ['saturation', 0], ['saturation', 255],
    ['brightness', 255], ['contrast', 3], ['hue', 0], ['hue', 200], ['grayscale', 0], ['equalize', 0], ['posterize', 2]];
  const calls = views.map(([name, v]) => {
    const p = doc.params[name]![v]!;
    switch (name) {
      case 'blur': return ['gaussianBlurU8', 23, 23, p.sigma, p.sigma];
      case 'sharpness': return ['enhanceU8', 3, p.sharpness_factor];
      case 'saturation': return ['enhanceU8', 2, p.saturation_factor];
      case 'brightness': return ['enhanceU8', 0, p.brightness_factor];
      case 'contrast': return ['enhanceU8', 1, p.contrast_factor];
      case 'hue': return ['adjustHueU8', p.hue_factor];
      case 'grayscale': return ['rgbToGrayscaleU8'];
      case 'equalize': return ['equalizeU8'];
      default: return ['posterizeU8', p.bits];
    }
  });
  const expect = views.map(([name, v]) => doc.cases.flower![name]![v]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-color-'));
  const tmp = path.join(dir, 'img.u8');
  fs.writeFileSync(tmp, img.data);
  const script = `
    const a = require(${JSON.stringify(addonPath)});
    const crypto = require('node:crypto');
    const data = new Uint8Array(require('node:fs').readFileSync(${JSON.stringify(tmp)}));
    const out = ${JSON.stringify(calls)}.map(([fn, ...args]) => crypto.createHash('sha256')
      .update(a[fn](data, ${img.height}, ${img.width}, 3, ...args)).digest('hex').slice(0, 16));
    process.stdout.write(JSON.stringify({ isa: a.info().isa, out }));`;
  try {
    for (const isa of ['generic', 'avx2', 'avx512']) {
      const r = JSON.parse(execFileSync(process.execPath, ['-e', script], {
        env: { ...process.env, SSL_INV_ISA: isa, SSL_INV_NUM_THREADS: '2' }, encoding: 'utf8' })) as { isa: string; out: string[] };
      const bad = views.filter((_, i) => r.out[i] !== expect[i]);
      t.same(bad, [], `SSL_INV_ISA=${isa} (ran ${r.isa}): ${views.length - bad.length}/${views.length} identical`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

t.test('argument checking', async (t) => {
  const img = images.get('noise')!;
  const gray: ImageU8 = { data: new Uint8Array(12), width: 4, height: 3, channels: 1 };
  const bad = { code: 'ERR_INVALID_ARGUMENT' };
  t.throws(() => adjustHue(img, 0.51), bad, 'hue > 0.5');
  t.throws(() => adjustHue(img, -0.6), bad);
  t.throws(() => adjustHue(img, NaN), bad);
  t.throws(() => adjustBrightness(img, Infinity), bad);
  t.throws(() => adjustContrast(img, 1e39), bad, 'beyond float32');
  t.throws(() => adjustSaturation(gray, 1.2), bad, 'L image');
  t.throws(() => grayscale(gray), bad);
  t.throws(() => gaussianBlur(img, 4, 1), bad, 'even kernel');
  t.throws(() => gaussianBlur(img, 23, 0), bad, 'sigma 0');
  t.throws(() => gaussianBlur(img, 23, -1), bad);
  t.throws(() => gaussianBlur(img, [3, 5, 7] as never, 1), bad);
  t.throws(() => gaussianBlur(img, 61, 1), bad, 'padding >= image side');
  t.throws(() => posterize(img, 9), bad);
  t.throws(() => posterize(img, 2.5), bad);
  t.throws(() => pilGaussianBlur(img, -1), bad);
  t.throws(() => gaussianKernel1d(4, 1), bad);
  t.throws(() => invert({ data: new Uint8Array(10), width: 2, height: 2, channels: 3 }), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => invert({ data: new Uint8Array(16), width: 2, height: 2, channels: 4 }), bad, 'RGBA');
  t.same(invert(gray).data, new Uint8Array(12).fill(255), 'L image');
  t.same(posterize(img, 8).data, img.data, 'posterize 8 is the identity');
  t.same(gaussianBlur(img, [1, 1], [1e-5]).data, img.data, '1x1 kernel is the identity');
  t.same(adjustBrightness(img, 1).data, img.data, 'factor 1 is the identity');
});
