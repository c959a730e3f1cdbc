/**
 * The MoCo v2 augmentations of the original's pre-training (pretraining/main_moco.py, with
 * moco.loader.GaussianBlur from facebookresearch/moco), seeded, on uint8 RGB images:
 *
 * | set       | torchvision Compose (main_moco.py's augs_dict)                                        |
 * |-----------|---------------------------------------------------------------------------------------|
 * | `default` | RandomResizedCrop(size, scale=(0.2, 1)), RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], |
 * |           | p=0.8), RandomGrayscale(p=0.2), RandomApply([GaussianBlur([.1, 2.])], p=0.5),            |
 * |           | RandomHorizontalFlip(), ToTensor(), Normalize(ImageNet)                                 |
 * | `ventral` | RandomResizedCrop(size, scale=(0.2, 1)), RandomHorizontalFlip(), ToTensor(), Normalize  |
 * | `dorsal`  | the colour jitter, grayscale and blur of `default`, then Resize(size), CenterCrop(size), |
 * |           | ToTensor(), Normalize (main_moco.py appends Resize(224) + CenterCrop(224) when there is  |
 * |           | no RandomResizedCrop)                                                                   |
 *
 * GaussianBlur here is Pillow's `ImageFilter.GaussianBlur(radius=sigma)` (box-blur approximation),
 * not torchvision's; ColorJitter applies brightness, contrast, saturation and hue in the random order
 * of `torch.randperm(4)` with factors uniform in [0.6, 1.4] (hue in [-0.1, 0.1]).
 *
 * Randomness comes from `AugmentRng`, our own seeded generator (see there); it does not reproduce
 * torch's or Python's generators. What is exact is the rest: given the same drawn parameters
 * (`drawAugmentParams`, replayed with `applyAugment`), the output equals torchvision 0.14 + Pillow 9.4
 * on a PIL image bit for bit (test/transforms/augment.test.ts checks it against explicit parameters).
 * The draws follow torchvision's structure: RandomResizedCrop.get_params (10 attempts with a
 * log-uniform aspect ratio, then the central-crop fallback), RandomApply's `p < rand` test,
 * RandomGrayscale's and RandomHorizontalFlip's `rand < p`, ColorJitter's factors rounded to float32
 * (torch draws them as float32 tensors) and the blur sigma as a double (Python's random.uniform).
 *
 * `applyAugmentAsync` runs `applyAugment`'s whole chain in one native call on a libuv worker thread
 * (native/ops/augment.h: the same kernels, in the same order), writing into a slot of a batch tensor,
 * so the views of a batch are made in parallel; its output is bit for bit applyAugment's.
 */
import { SslInvError, callNativeAsync } from '../errors';
import { BatchSlot, ImageU8, Normalization, resizeU8 } from '../image-ops';
import { NativeTensor, nativeOps } from '../native';
import { IMAGENET_MEAN, IMAGENET_STD, centerCrop, resizeShorterSide, toTensorNormalize } from '../data/preprocess';
import { adjustBrightness, adjustContrast, adjustHue, adjustSaturation, grayscale, pilGaussianBlur } from './color';

export type AugmentSet = 'default' | 'ventral' | 'dorsal';
export const AUGMENT_SETS: readonly AugmentSet[] = ['default', 'ventral', 'dorsal'];

/**
 * A small, fast, seeded generator: xoshiro128** (Blackman and Vigna) on four 32-bit words, seeded by
 * running SplitMix32 over the seed. `uniform()` gives doubles in [0, 1) with 53 random bits (two
 * outputs), `randint` is unbiased (rejection sampling), `randperm` is Fisher-Yates. Same seed, same
 * sequence, on every platform.
 */
export class AugmentRng {
  private s: Uint32Array;

  /** `seed`: any integer (numbers up to 2^53, or a bigint; only its low 64 bits matter). */
  constructor(seed: number | bigint = 0) {
    let x: bigint;
    if (typeof seed === 'bigint') x = seed;
    else if (Number.isSafeInteger(seed)) x = BigInt(seed);
    else throw new SslInvError('ERR_INVALID_ARGUMENT', `seed: expected an integer, got ${seed}`);
    x = BigInt.asUintN(64, x);
    let sm = (Number(x & 0xffffffffn) ^ Math.imul(Number(x >> 32n), 0x9e3779b9)) >>> 0;
    this.s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      // SplitMix32
      sm = (sm + 0x9e3779b9) >>> 0;
      let z = sm;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const s0 = s[0]!, s1 = s[1]!;
    const r = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    const s2 = (s[2]! ^ s0) >>> 0, s3 = (s[3]! ^ s1) >>> 0;
    s[1] = s1 ^ s2;
    s[0] = s0 ^ s3;
    s[2] = s2 ^ t;
    s[3] = rotl(s3, 11);
    return r;
  }

  /** Uniform in [0, 1), 53 bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;  // 27 + 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [a, b) (as Python's random.uniform: a + (b - a) * u). */
  uniformIn(a: number, b: number): number {
    return a + (b - a) * this.uniform();
  }

  /** An integer uniform in [lo, hi) (torch.randint(lo, hi)); hi - lo from 1 to 2^32. */
  randint(lo: number, hi: number): number {
    const n = hi - lo;
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || n < 1 || n > 2 ** 32) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `randint: expected integers lo < hi with hi - lo <= 2^32, got ${lo}, ${hi}`);
    }
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return lo + (r % n);
    }
  }

  /** A random permutation of 0..n-1 (torch.randperm(n)). */
  randperm(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }

  /** An independent copy in the same state (to replay a sequence). */
  clone(): AugmentRng {
    const c = Object.create(AugmentRng.prototype) as AugmentRng;
    c.s = Uint32Array.from(this.s);
    return c;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** RandomResizedCrop's box (get_params' i, j, h, w) in the input image. */
export interface CropParams {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** ColorJitter's draw: `order` is torch.randperm(4) (0 brightness, 1 contrast, 2 saturation, 3 hue). */
export interface ColorJitterParams {
  order: number[];
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** Everything one augmented view depends on; the fields a set does not use are absent. */
export interface AugmentParams {
  set: AugmentSet;
  /** Output side: RandomResizedCrop's size (default, ventral) or Resize + CenterCrop's (dorsal). */
  size: number;
  /** default, ventral. */
  crop?: CropParams;
  /** default, dorsal: the jitter, or null where RandomApply(p=0.8) skipped it. */
  colorJitter?: ColorJitterParams | null;
  /** default, dorsal: RandomGrayscale(p=0.2) fired. */
  grayscale?: boolean;
  /** default, dorsal: the blur radius, or null where RandomApply(p=0.5) skipped it. */
  blurSigma?: number | null;
  /** default, ventral: RandomHorizontalFlip fired. */
  hflip?: boolean;
}

export const MOCO_V2 = {
  cropScale: [0.2, 1.0] as const,
  cropRatio: [3 / 4, 4 / 3] as const,
  jitterProbability: 0.8,
  jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
  grayscaleProbability: 0.2,
  blurProbability: 0.5,
  blurSigma: [0.1, 2.0] as const,
  flipProbability: 0.5,
} as const;

function checkSet(set: string): asserts set is AugmentSet {
  if (!(AUGMENT_SETS as readonly string[]).includes(set)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `set: expected one of ${AUGMENT_SETS.join(', ')}, got ${String(set)}`);
  }
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 1 || size > 65536) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `size: expected an integer from 1 to 65536, got ${size}`);
  }
}

/** Python's round() of a double to an integer: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** RandomResizedCrop.get_params(img, scale, ratio) for a width x height image. */
export function drawResizedCrop(width: number, height: number, rng: AugmentRng,
  scale: readonly [number, number] = MOCO_V2.cropScale, ratio: readonly [number, number] = MOCO_V2.cropRatio): CropParams {
  const area = height * width;
  // torch.log(torch.tensor(ratio)) and the draws are float32 in torchvision.
  const lr0 = Math.fround(Math.log(Math.fround(ratio[0]))), lr1 = Math.fround(Math.log(Math.fround(ratio[1])));
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * Math.fround(rng.uniformIn(scale[0], scale[1]));
    const aspectRatio = Math.fround(Math.exp(Math.fround(rng.uniformIn(lr0, lr1))));
    const w = roundHalfEven(Math.sqrt(targetArea * aspectRatio));
    const h = roundHalfEven(Math.sqrt(targetArea / aspectRatio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.randint(0, height - h + 1);
      const left = rng.randint(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  // Fallback to the central crop.
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** ColorJitter(0.4, 0.4, 0.4, 0.1).get_params: the order, then b, c, s, h (float32 values). */
export function drawColorJitter(rng: AugmentRng, j: { brightness: number; contrast: number; saturation: number;
  hue: number } = MOCO_V2.jitter): ColorJitterParams {
  const order = rng.randperm(4);
  const f = (lo: number, hi: number) => Math.fround(rng.uniformIn(Math.fround(lo), Math.fround(hi)));
  return {
    order,
    brightness: f(Math.max(0, 1 - j.brightness), 1 + j.brightness),
    contrast: f(Math.max(0, 1 - j.contrast), 1 + j.contrast),
    saturation: f(Math.max(0, 1 - j.saturation), 1 + j.saturation),
    hue: f(-j.hue, j.hue),
  };
}

/** The parameters of one view of `set` for a width x height image, drawn in torchvision's order. */
export function drawAugmentParams(width: number, height: number, set: AugmentSet, rng: AugmentRng,
  size = 224): AugmentParams {
  checkSet(set);
  checkSize(size);
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `image size: expected positive integers, got ${width}x${height}`);
  }
  if (!(rng instanceof AugmentRng)) throw new SslInvError('ERR_INVALID_ARGUMENT', 'rng: expected an AugmentRng');
  const p: AugmentParams = { set, size };
  if (set !== 'dorsal') p.crop = drawResizedCrop(width, height, rng);
  if (set !== 'ventral') {
    // RandomApply: skipped when p < rand.
    p.colorJitter = MOCO_V2.jitterProbability < rng.uniform() ? null : drawColorJitter(rng);
    p.grayscale = rng.uniform() < MOCO_V2.grayscaleProbability;
    p.blurSigma = MOCO_V2.blurProbability < rng.uniform() ? null
      : rng.uniformIn(MOCO_V2.blurSigma[0], MOCO_V2.blurSigma[1]);
  }
  if (set !== 'dorsal') p.hflip = rng.uniform() < MOCO_V2.flipProbability;
  return p;
}

function cropU8(img: ImageU8, c: CropParams): ImageU8 {
  const C = img.channels;
  const out = new Uint8Array(c.width * c.height * C);
  for (let y = 0; y < c.height; y++) {
    const row = ((c.top + y) * img.width + c.left) * C;
    out.set(img.data.subarray(row, row + c.width * C), y * c.width * C);
  }
  return { data: out, width: c.width, height: c.height, channels: C };
}

function hflipU8(img: ImageU8): ImageU8 {
  const C = img.channels, W = img.width;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < img.height; y++) {
    const row = y * W * C;
    for (let x = 0; x < W; x++) {
      const s = row + (W - 1 - x) * C, d = row + x * C;
      for (let c = 0; c < C; c++) out[d + c] = img.data[s + c]!;
    }
  }
  return { data: out, width: W, height: img.height, channels: C };
}

function checkParams(img: ImageU8, p: AugmentParams): void {
  const bad = (m: string): never => { throw new SslInvError('ERR_INVALID_ARGUMENT', `params: ${m}`); };
  checkSet(p.set);
  checkSize(p.size);
  if (img.channels !== 3 || !(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * 3) {
    bad('expected an RGB uint8 image (3 channels, width * height * 3 bytes)');
  }
  if (p.set !== 'dorsal') {
    const c = p.crop;
    if (!c || ![c.top, c.left, c.height, c.width].every(Number.isSafeInteger) || c.top < 0 || c.left < 0 ||
      c.height < 1 || c.width < 1 || c.top + c.height > img.height || c.left + c.width > img.width) {
      bad(`crop must be a box inside the ${img.width}x${img.height} image, got ${JSON.stringify(c)}`);
    }
    if (typeof p.hflip !== 'boolean') bad('hflip must be a boolean');
  }
  if (p.set !== 'ventral') {
    const j = p.colorJitter;
    if (j === undefined) bad('colorJitter must be the jitter parameters or null');
    if (j) {
      if (!Array.isArray(j.order) || j.order.length !== 4 || [...j.order].sort().join() !== '0,1,2,3') {
        bad('colorJitter.order must be a permutation of 0..3');
      }
    }
    if (typeof p.grayscale !== 'boolean') bad('grayscale must be a boolean');
    if (p.blurSigma === undefined) bad('blurSigma must be a number or null');
  }
}

/**
 * One view as torchvision + PIL make it from drawn (or given) parameters, before ToTensor: the uint8
 * RGB image of size x size.
 */
export function applyAugmentU8(img: ImageU8, p: AugmentParams): ImageU8 {
  checkParams(img, p);
  let x = img;
  if (p.set !== 'dorsal') {
    // F.resized_crop on PIL: img.crop(box) then img.resize((size, size), BILINEAR).
    x = resizeU8(cropU8(x, p.crop!), { width: p.size, height: p.size, filter: 'bilinear' });
  }
  if (p.set !== 'ventral') {
    const j = p.colorJitter;
    if (j) {
      for (const id of j.order) {
        if (id === 0) x = adjustBrightness(x, j.brightness);
        else if (id === 1) x = adjustContrast(x, j.contrast);
        else if (id === 2) x = adjustSaturation(x, j.saturation);
        else x = adjustHue(x, j.hue);
      }
    }
    if (p.grayscale) x = grayscale(x);
    if (p.blurSigma !== null && p.blurSigma !== undefined) x = pilGaussianBlur(x, p.blurSigma);
  }
  if (p.set !== 'dorsal') {
    if (p.hflip) x = hflipU8(x);
  } else {
    x = centerCrop(resizeShorterSide(x, p.size), p.size);
  }
  return x;
}

/** The normalisation of MoCo's views (and the default of applyAugment / applyAugmentAsync). */
export const IMAGENET: Normalization = { mean: IMAGENET_MEAN, std: IMAGENET_STD };

/** applyAugmentU8 then ToTensor + Normalize: float32 [3, size, size] (CHW). */
export function applyAugment(img: ImageU8, p: AugmentParams, norm: Normalization = IMAGENET): Float32Array {
  return toTensorNormalize(applyAugmentU8(img, p), norm);
}

interface AugmentAddon {
  applyAugmentU8Async(src: Uint8Array, h: number, w: number, c: number, params: AugmentParams,
    norm: { mean: number[]; std: number[] }, out: NativeTensor, slot: number): Promise<void>;
}

/**
 * applyAugment computed on a libuv worker thread into slot `out.slot` of the float32
 * [N, 3, size, size] tensor `out.tensor`, bit for bit the same values; or, when `out.tensor` is a
 * uint8 [N, size, size, 3] tensor, the view before ToTensor + Normalize (applyAugmentU8's pixels,
 * HWC), whose ops.normalizeImagesU8 is that float32 view bit for bit (`norm` is then unused). The pixels are copied before
 * this returns (the image may be reused at once); bad parameters reject before any work is queued
 * (ERR_INVALID_ARGUMENT naming the field, as applyAugment's checks do). Many calls run at once, one
 * thread each (UV_THREADPOOL_SIZE threads).
 */
export async function applyAugmentAsync(img: ImageU8, p: AugmentParams, out: BatchSlot,
  norm: Normalization = IMAGENET): Promise<void> {
  if (img === null || typeof img !== 'object') throw new SslInvError('ERR_INVALID_ARGUMENT', 'img: expected an RGB image');
  if (p === null || typeof p !== 'object') throw new SslInvError('ERR_INVALID_ARGUMENT', 'params: expected an object');
  if (out === null || typeof out !== 'object' || !out.tensor) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'out: expected { tensor, slot }');
  }
  checkParams(img, p);
  await callNativeAsync('applyAugmentAsync', () => nativeOps<AugmentAddon>('augmentation', ['applyAugmentU8Async'])
    .applyAugmentU8Async(img.data, img.height, img.width, img.channels, p, { mean: [...norm.mean], std: [...norm.std] },
      out.tensor.handle, out.slot));
}

/** One augmented view and the parameters it was made with. */
export function augmentWithParams(img: ImageU8, set: AugmentSet, rng: AugmentRng,
  size = 224): { params: AugmentParams; tensor: Float32Array } {
  const params = drawAugmentParams(img.width, img.height, set, rng, size);
  return { params, tensor: applyAugment(img, params) };
}

/** One augmented view of `img` (RGB uint8 HWC): the normalised float32 [3, size, size] tensor. */
export function augment(img: ImageU8, set: AugmentSet, rng: AugmentRng, size = 224): Float32Array {
  return augmentWithParams(img, set, rng, size).tensor;
}
