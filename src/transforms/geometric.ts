/**
 * The geometric transforms of the original's synthetic-invariance evaluation, as torchvision 0.14's
 * functional ops compute them on PIL images (Pillow 9.4), in native code (native/ops/geometric.h):
 *
 *   - `rotate(img, angle)` = F.rotate(pil, angle): Pillow's Image.rotate with NEAREST, expand=False,
 *     center=None, fill 0 (counter-clockwise degrees; Pillow's 0 / 90 / 180 / 270 shortcuts included);
 *   - `affine(img, {angle, translate, scale, shear})` = F.affine(pil, ...) with NEAREST and fill 0:
 *     torchvision's inverse matrix in double, then Pillow's nearest-neighbour affine engines (the
 *     scaling, 16.16 fixed-point and double-precision ones, chosen as Pillow chooses);
 *   - `resizedCrop(img, top, left, height, width, size)` = F.resized_crop(pil, ...): Pillow's crop of
 *     the rounded box (zero outside the image), then Pillow's resize (bilinear by default);
 *   - `hflip`, `vflip` = F.hflip / F.vflip;
 *   - `elasticDeform(img, sigma, seed)`: the original's deform, albumentations 1.0.3's
 *     ElasticTransform(sigma, alpha=1, alpha_affine=50, INTER_LINEAR, BORDER_REFLECT_101,
 *     approximate=True) on OpenCV 4.6's arithmetic, with its draws taken from numpy's legacy
 *     RandomState(seed) (albumentations seeds a RandomState with random.randint(0, 10000) per call;
 *     the original never seeds Python's `random`, so its exact views cannot be reproduced, but with
 *     the same seed these are albumentations' views).
 *
 * Images are uint8 HWC with 1 to 4 channels, processed independently (Pillow's behaviour for L and
 * RGB). Every function returns a new image and leaves its input untouched. Arguments are checked
 * here; errors are SslInvError (ERR_INVALID_ARGUMENT, ERR_SHAPE_MISMATCH, ...).
 *
 * Trigonometry runs in the C library, as Python's math module does; on glibc the matrices are the
 * ones Python computes, bit for bit.
 */
import { SslInvError, callNative as call } from '../errors';
import { ImageU8, RESAMPLE_FILTER_IDS, ResampleFilter } from '../image-ops';
import { NativeAddon, nativeOps } from '../native';
import { RandomState } from '../random/mt19937';

export type { ImageU8 } from '../image-ops';

/** torchvision's affine parameters (degrees, pixels). */
export interface AffineParams {
  /** Rotation in degrees, clockwise (torchvision's convention for affine). */
  angle: number;
  /** Post-rotation translation in pixels (x, y); fractional values are used as given. */
  translate: readonly [number, number];
  /** Overall scale, > 0. */
  scale: number;
  /**
   * Shear in degrees: a number s means [s, 0] (torchvision 0.14), [s] means [s, s], [sx, sy] as given.
   */
  shear: number | readonly [number] | readonly [number, number];
}

export interface ElasticOptions {
  /** Displacement scale (albumentations' alpha, default 1; applied in float32). */
  alpha?: number;
  /** Range of the random affine's point offsets in pixels (default 50). */
  alphaAffine?: number;
}

/** What elastic_transform draws from its RandomState, in draw order. */
export interface ElasticDraws {
  /** uniform(-alphaAffine, alphaAffine, size=(3, 2)).astype(float32), row-major. */
  affineOffsets: Float32Array;
  /** rand(h, w).astype(float32) * 2 - 1, for dx then dy. */
  noiseX: Float32Array;
  noiseY: Float32Array;
}

interface NativeAffineParams {
  angle: number;
  translate: number[];
  scale: number;
  shear: number[];
}

interface GeometricAddon {
  geomPilAffineU8(src: Uint8Array, h: number, w: number, c: number, matrix: number[], outH: number,
    outW: number): Uint8Array;
  geomRotateU8(src: Uint8Array, h: number, w: number, c: number, angle: number): Uint8Array;
  geomRotateMatrix(angle: number, width: number, height: number): number[];
  geomAffineU8(src: Uint8Array, h: number, w: number, c: number, p: NativeAffineParams): Uint8Array;
  geomAffineMatrix(p: NativeAffineParams, width: number, height: number): number[];
  geomFlipU8(src: Uint8Array, h: number, w: number, c: number, horizontal: boolean): Uint8Array;
  geomResizedCropU8(src: Uint8Array, h: number, w: number, c: number, o: {
    top: number; left: number; height: number; width: number; outHeight: number; outWidth: number; filter: number;
  }): Uint8Array;
  geomElasticU8(src: Uint8Array, h: number, w: number, c: number, o: {
    sigma: number; alpha: number; affineOffsets: Float32Array; noiseX: Float32Array; noiseY: Float32Array;
  }): Uint8Array;
  geomElasticAffineMatrix(h: number, w: number, affineOffsets: Float32Array): number[];
  geomGaussianBlur17F32(field: Float32Array, h: number, w: number, sigma: number): Float32Array;
}

function addon(): NativeAddon & GeometricAddon {
  return nativeOps<GeometricAddon>('geometric', ['geomRotateU8', 'geomElasticU8']);
}

function invalid(message: string, field?: string): never {
  throw new SslInvError('ERR_INVALID_ARGUMENT', message, field !== undefined ? { field } : {});
}

function finite(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(`expected a finite number, got ${String(v)}`, name);
  return v;
}

function intIn(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    invalid(`expected an integer from ${min} to ${max}, got ${String(v)}`, name);
  }
  return v;
}

const MAX_SIDE = 1 << 24;

function checkImage(img: ImageU8): void {
  if (img === null || typeof img !== 'object') invalid('expected an image {data, width, height, channels}', 'image');
  intIn('image.width', img.width, 1, MAX_SIDE);
  intIn('image.height', img.height, 1, MAX_SIDE);
  intIn('image.channels', img.channels, 1, 4);
  if (!(img.data instanceof Uint8Array)) invalid('expected a Uint8Array', 'image.data');
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `image.data has ${img.data.length} bytes for a ` +
      `${img.height}x${img.width}x${img.channels} image`);
  }
}

function out(img: ImageU8, data: Uint8Array, width = img.width, height = img.height): ImageU8 {
  return { data, width, height, channels: img.channels };
}

/** Python's round(x) for a float: to the nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** torchvision 0.14's argument normalisation for F.affine. */
function affineArgs(p: AffineParams): NativeAffineParams {
  if (p === null || typeof p !== 'object') invalid('expected {angle, translate, scale, shear}', 'params');
  const angle = finite('angle', p.angle);
  if (!Array.isArray(p.translate) || p.translate.length !== 2) {
    invalid('expected a sequence of two numbers', 'translate');
  }
  const translate = [finite('translate[0]', p.translate[0]), finite('translate[1]', p.translate[1])];
  const scale = finite('scale', p.scale);
  if (!(scale > 0)) invalid(`should be positive, got ${scale}`, 'scale');
  let shear: number[];
  if (typeof p.shear === 'number') {
    shear = [finite('shear', p.shear), 0];
  } else if (Array.isArray(p.shear) && (p.shear.length === 1 || p.shear.length === 2)) {
    const s = p.shear.map((v, i) => finite(`shear[${i}]`, v));
    shear = s.length === 1 ? [s[0]!, s[0]!] : s;
  } else {
    invalid('expected a number or a sequence of one or two numbers', 'shear');
  }
  return { angle, translate, scale, shear };
}

/** F.rotate(img, angle) on a PIL image: counter-clockwise degrees, NEAREST, same size, fill 0. */
export function rotate(img: ImageU8, angle: number): ImageU8 {
  checkImage(img);
  const a = finite('angle', angle);
  return out(img, call('rotate', () => addon().geomRotateU8(img.data, img.height, img.width, img.channels, a)));
}

/** F.affine(img, angle, translate, scale, shear) on a PIL image (NEAREST, fill 0, centre of the image). */
export function affine(img: ImageU8, params: AffineParams): ImageU8 {
  checkImage(img);
  const p = affineArgs(params);
  return out(img, call('affine', () => addon().geomAffineU8(img.data, img.height, img.width, img.channels, p)));
}

/**
 * F.resized_crop(img, top, left, height, width, size, interpolation) on a PIL image. `size` is
 * [height, width], or a number for torchvision's shorter-side resize. Crop coordinates may be
 * fractional (rounded half to even, as Pillow does) and may reach outside the image (zero padding).
 */
export function resizedCrop(img: ImageU8, top: number, left: number, height: number, width: number,
  size: readonly [number, number] | number, filter: ResampleFilter = 'bilinear'): ImageU8 {
  checkImage(img);
  const t = finite('top', top), l = finite('left', left), h = finite('height', height), w = finite('width', width);
  if (typeof filter !== 'string' || !Object.prototype.hasOwnProperty.call(RESAMPLE_FILTER_IDS, filter)) {
    invalid(`expected one of ${Object.keys(RESAMPLE_FILTER_IDS).join(', ')}, got ${String(filter)}`, 'filter');
  }
  const fid = RESAMPLE_FILTER_IDS[filter];
  // The crop's size after Pillow's rounding, needed for a shorter-side `size`.
  const cw = roundHalfEven(l + w) - roundHalfEven(l), ch = roundHalfEven(t + h) - roundHalfEven(t);
  let outH: number, outW: number;
  if (typeof size === 'number') {
    const s = intIn('size', size, 1, MAX_SIDE);
    if (!(cw > 0 && ch > 0)) invalid(`the crop box is empty (${cw}x${ch})`, 'width');
    // torchvision's _compute_resized_output_size: int(size * long / short) in double.
    const [short, long] = cw <= ch ? [cw, ch] : [ch, cw];
    const newLong = Math.trunc((s * long) / short);
    [outW, outH] = cw <= ch ? [s, newLong] : [newLong, s];
    intIn('size (longer side)', newLong, 1, MAX_SIDE);
  } else if (Array.isArray(size) && size.length === 2) {
    outH = intIn('size[0]', size[0], 1, MAX_SIDE);
    outW = intIn('size[1]', size[1], 1, MAX_SIDE);
  } else {
    invalid('expected [height, width] or a number', 'size');
  }
  const o = { top: t, left: l, height: h, width: w, outHeight: outH, outWidth: outW, filter: fid };
  return out(img, call('resizedCrop', () => addon().geomResizedCropU8(img.data, img.height, img.width,
    img.channels, o)), outW, outH);
}

/** F.hflip on a PIL image. */
export function hflip(img: ImageU8): ImageU8 {
  checkImage(img);
  return out(img, call('hflip', () => addon().geomFlipU8(img.data, img.height, img.width, img.channels, true)));
}

/** F.vflip on a PIL image. */
export function vflip(img: ImageU8): ImageU8 {
  checkImage(img);
  return out(img, call('vflip', () => addon().geomFlipU8(img.data, img.height, img.width, img.channels, false)));
}

/** What elastic_transform draws from `rs` for an h x w image (advances `rs`). */
/**
 * The six affine offsets, the first draws of elasticDraws (uniform(-alphaAffine, alphaAffine) as
 * float32): what the host needs when the noise fields are drawn on a device (views-device.ts).
 */
export function elasticAffineDraws(rs: RandomState, alphaAffine = 50): Float32Array {
  const a = finite('alphaAffine', alphaAffine);
  const affineOffsets = new Float32Array(6);
  // numpy's legacy uniform(low, high): low + (high - low) * random_sample(), then astype(float32).
  for (let i = 0; i < 6; i++) affineOffsets[i] = -a + (a - -a) * rs.randomSample();
  return affineOffsets;
}

export function elasticDraws(rs: RandomState, height: number, width: number, alphaAffine = 50): ElasticDraws {
  intIn('height', height, 1, 32767);
  intIn('width', width, 1, 32767);
  const affineOffsets = elasticAffineDraws(rs, alphaAffine);
  const n = height * width;
  // rand(h, w).astype(float32) * 2 - 1: the product is exact and the float32 difference is what the
  // double difference rounds to.
  const noise = (): Float32Array => {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = Math.fround(rs.randomSample()) * 2 - 1;
    return f;
  };
  const noiseX = noise();
  const noiseY = noise();
  return { affineOffsets, noiseX, noiseY };
}

/** elasticDeform with its random draws given explicitly (see elasticDraws). */
export function elasticDeformWith(img: ImageU8, sigma: number, draws: ElasticDraws, alpha = 1): ImageU8 {
  checkImage(img);
  const s = finite('sigma', sigma);
  if (!(s > 0)) invalid(`should be positive, got ${s}`, 'sigma');
  if (img.width > 32767 || img.height > 32767) invalid('sides up to 32767 (OpenCV remap indexes with int16)', 'image');
  const n = img.width * img.height;
  for (const [k, v, len] of [['affineOffsets', draws.affineOffsets, 6], ['noiseX', draws.noiseX, n],
    ['noiseY', draws.noiseY, n]] as const) {
    if (!(v instanceof Float32Array) || v.length !== len) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `${k}: expected a Float32Array of ${len} values`);
    }
  }
  const o = { sigma: s, alpha: finite('alpha', alpha), affineOffsets: draws.affineOffsets, noiseX: draws.noiseX,
    noiseY: draws.noiseY };
  return out(img, call('elasticDeform', () => addon().geomElasticU8(img.data, img.height, img.width, img.channels,
    o)));
}

/**
 * The original's deform: albumentations 1.0.3 ElasticTransform(sigma=sigma, alpha=1, alpha_affine=50,
 * approximate=True) applied with np.random.RandomState(seed) (seed an integer 0 to 2^32 - 1; the
 * original's albumentations picks random.randint(0, 10000)), or with draws continuing from `rs`.
 */
export function elasticDeform(img: ImageU8, sigma: number, seed: number | RandomState,
  opts: ElasticOptions = {}): ImageU8 {
  checkImage(img);
  finite('sigma', sigma);
  let rs: RandomState;
  if (seed instanceof RandomState) {
    rs = seed;
  } else {
    intIn('seed', seed, 0, 0xffffffff);
    rs = new RandomState(seed);
  }
  const draws = elasticDraws(rs, img.height, img.width, opts.alphaAffine ?? 50);
  return elasticDeformWith(img, sigma, draws, opts.alpha ?? 1);
}

/**
 * Pillow's Image.transform(size, AFFINE, matrix, NEAREST) with a zero fill: output pixel (x, y)
 * samples the input at (a0 x + a1 y + a2, a3 x + a4 y + a5) (pixel centres). Default size: the input's.
 */
export function pilAffineTransform(img: ImageU8, matrix: readonly number[],
  size: { width: number; height: number } = { width: img.width, height: img.height }): ImageU8 {
  checkImage(img);
  if (!Array.isArray(matrix) || matrix.length !== 6) invalid('expected 6 numbers', 'matrix');
  const m = matrix.map((v, i) => finite(`matrix[${i}]`, v));
  const w = intIn('size.width', size.width, 1, MAX_SIDE), h = intIn('size.height', size.height, 1, MAX_SIDE);
  return out(img, call('pilAffineTransform', () => addon().geomPilAffineU8(img.data, img.height, img.width,
    img.channels, m, h, w)), w, h);
}

/**
 * The matrix Pillow's Image.rotate(angle) hands to Image.transform for a width x height image (angle
 * reduced mod 360 first; the 0 / 90 / 180 / 270 shortcuts of rotate do not use it).
 */
export function rotationMatrix(angle: number, width: number, height: number): number[] {
  return call('rotationMatrix', () => addon().geomRotateMatrix(finite('angle', angle),
    intIn('width', width, 1, MAX_SIDE), intIn('height', height, 1, MAX_SIDE)));
}

/** torchvision's _get_inverse_affine_matrix for F.affine on a width x height PIL image. */
export function affineMatrix(params: AffineParams, width: number, height: number): number[] {
  const p = affineArgs(params);
  return call('affineMatrix', () => addon().geomAffineMatrix(p, intIn('width', width, 1, MAX_SIDE),
    intIn('height', height, 1, MAX_SIDE)));
}

/**
 * Step 1 of elasticDeform alone: the random affine, cv::getAffineTransform(pts1, pts1 + offsets) as a
 * 2x3 row-major matrix, for a height x width image (for tests and diagnostics).
 */
export function elasticAffineMatrix(height: number, width: number, affineOffsets: Float32Array): number[] {
  intIn('height', height, 1, 32767);
  intIn('width', width, 1, 32767);
  if (!(affineOffsets instanceof Float32Array) || affineOffsets.length !== 6) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', 'affineOffsets: expected a Float32Array of 6 values');
  }
  return call('elasticAffineMatrix', () => addon().geomElasticAffineMatrix(height, width, affineOffsets));
}

/**
 * Step 3 of elasticDeform alone: cv::GaussianBlur(field, (17, 17), sigma) of a float32 height x width
 * field (BORDER_REFLECT_101), as OpenCV 4.6's AVX2 build computes it (for tests and diagnostics).
 */
export function elasticBlurField(field: Float32Array, height: number, width: number, sigma: number): Float32Array {
  intIn('height', height, 1, MAX_SIDE);
  intIn('width', width, 1, MAX_SIDE);
  const s = finite('sigma', sigma);
  if (!(s > 0)) invalid(`should be positive, got ${s}`, 'sigma');
  if (!(field instanceof Float32Array) || field.length !== height * width) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `field: expected a Float32Array of ${height} x ${width} values`);
  }
  return call('elasticBlurField', () => addon().geomGaussianBlur17F32(field, height, width, s));
}
