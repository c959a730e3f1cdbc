/**
 * The photometric transforms of the original's synthetic-invariance evaluation, as torchvision 0.14's
 * functional ops compute them on PIL images (Pillow 9.4), bit for bit; native kernels in
 * native/cpu/color.cc (the arithmetic of each is described in native/ops/color.h).
 *
 * Every function takes an RGB uint8 HWC image (`ImageU8` with 3 channels; `invert`, `equalize`,
 * `posterize` and `gaussianBlur` also take 1-channel L images) and returns a new image of the same
 * size; inputs are never modified.
 *
 * | function            | torchvision (PIL input)                 | what runs                                   |
 * |---------------------|-----------------------------------------|---------------------------------------------|
 * | grayscale           | F.rgb_to_grayscale(img, 3)              | convert('L'), replicated to R, G, B          |
 * | adjustBrightness    | F.adjust_brightness(img, f)             | ImageEnhance.Brightness: blend(black, img)   |
 * | adjustContrast      | F.adjust_contrast(img, f)               | ImageEnhance.Contrast: blend(mean gray, img) |
 * | adjustSaturation    | F.adjust_saturation(img, f)             | ImageEnhance.Color: blend(L image, img)      |
 * | adjustHue           | F.adjust_hue(img, h)                    | HSV, H += uint8(h * 255) mod 256, back to RGB |
 * | gaussianBlur        | F.gaussian_blur(img, k, sigma)          | torch's float32 kernel and conv2d, rounded   |
 * | adjustSharpness     | F.adjust_sharpness(img, f)              | ImageEnhance.Sharpness: blend(SMOOTH, img)   |
 * | invert / equalize / posterize | F.invert / F.equalize / F.posterize | ImageOps' lookup tables              |
 * | pilGaussianBlur     | img.filter(ImageFilter.GaussianBlur(r)) | Pillow's 3-pass extended box blur (MoCo v2)  |
 *
 * Factors are passed on as Pillow receives them (a C float for the blend factor and the blur radius).
 * Errors: ERR_INVALID_ARGUMENT for bad parameters or channel counts, ERR_SHAPE_MISMATCH when the data
 * length does not match the image size.
 */
import { SslInvError, callNative } from '../errors';
import type { ImageU8 } from '../image-ops';
import { NativeAddon, nativeOps } from '../native';

export type { ImageU8 } from '../image-ops';

interface ColorAddon {
  rgbToGrayscaleU8(src: Uint8Array, h: number, w: number, c: number): Uint8Array;
  enhanceU8(src: Uint8Array, h: number, w: number, c: number, kind: number, factor: number): Uint8Array;
  adjustHueU8(src: Uint8Array, h: number, w: number, c: number, hueFactor: number): Uint8Array;
  gaussianBlurU8(src: Uint8Array, h: number, w: number, c: number, kw: number, kh: number, sx: number,
    sy: number): Uint8Array;
  gaussianKernel1d(kernelSize: number, sigma: number): Float32Array;
  invertU8(src: Uint8Array, h: number, w: number, c: number): Uint8Array;
  equalizeU8(src: Uint8Array, h: number, w: number, c: number): Uint8Array;
  posterizeU8(src: Uint8Array, h: number, w: number, c: number, bits: number): Uint8Array;
  pilGaussianBlurU8(src: Uint8Array, h: number, w: number, c: number, radius: number): Uint8Array;
}

function addon(): NativeAddon & ColorAddon {
  return nativeOps<ColorAddon>('colour', ['enhanceU8', 'pilGaussianBlurU8']);
}

function invalid(message: string, field?: string): never {
  throw new SslInvError('ERR_INVALID_ARGUMENT', message, field !== undefined ? { field } : {});
}

function checkImage(op: string, img: ImageU8, channels: readonly number[]): void {
  if (img === null || typeof img !== 'object') invalid(`${op}: expected an image {data, width, height, channels}`);
  for (const k of ['width', 'height', 'channels'] as const) {
    if (!Number.isSafeInteger(img[k]) || img[k] < 1) invalid(`${op}: image.${k} must be an integer >= 1, got ${img[k]}`);
  }
  if (!channels.includes(img.channels)) {
    invalid(`${op}: expected an image with ${channels.join(' or ')} channels, got ${img.channels}`);
  }
  if (!(img.data instanceof Uint8Array)) invalid(`${op}: image.data must be a Uint8Array`);
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `${op}: image.data has ${img.data.length} bytes for a ` +
      `${img.height}x${img.width}x${img.channels} image`);
  }
}

function finite(op: string, name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(`${op}: ${name} must be a finite number, got ${String(v)}`);
  // Pillow receives blend factors and radii as C floats: a value beyond float32's range is an error there.
  if (!Number.isFinite(Math.fround(v))) invalid(`${op}: ${name} is outside the range of a float32`);
  return v;
}

function run(op: string, img: ImageU8, fn: (a: ColorAddon) => Uint8Array): ImageU8 {
  const data = callNative(op, () => fn(addon()));
  return { data, width: img.width, height: img.height, channels: img.channels };
}

const RGB = [3] as const;
const L_OR_RGB = [1, 3] as const;

/** F.rgb_to_grayscale(img, num_output_channels=3): Pillow's L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, three times. */
export function grayscale(img: ImageU8): ImageU8 {
  checkImage('grayscale', img, RGB);
  return run('grayscale', img, (a) => a.rgbToGrayscaleU8(img.data, img.height, img.width, 3));
}

const ENHANCE = { brightness: 0, contrast: 1, saturation: 2, sharpness: 3 } as const;

function enhance(op: string, kind: keyof typeof ENHANCE, img: ImageU8, factor: number): ImageU8 {
  checkImage(op, img, RGB);
  finite(op, 'factor', factor);
  return run(op, img, (a) => a.enhanceU8(img.data, img.height, img.width, 3, ENHANCE[kind], factor));
}

/** F.adjust_brightness: ImageEnhance.Brightness(img).enhance(factor) (any finite factor; > 1 clips). */
export function adjustBrightness(img: ImageU8, factor: number): ImageU8 {
  return enhance('adjustBrightness', 'brightness', img, factor);
}

/** F.adjust_contrast: ImageEnhance.Contrast, blending with the gray int(mean(L) + 0.5). */
export function adjustContrast(img: ImageU8, factor: number): ImageU8 {
  return enhance('adjustContrast', 'contrast', img, factor);
}

/** F.adjust_saturation: ImageEnhance.Color, blending with the image's L conversion. */
export function adjustSaturation(img: ImageU8, factor: number): ImageU8 {
  return enhance('adjustSaturation', 'saturation', img, factor);
}

/** F.adjust_sharpness: ImageEnhance.Sharpness, blending with ImageFilter.SMOOTH (border pixels unfiltered). */
export function adjustSharpness(img: ImageU8, factor: number): ImageU8 {
  return enhance('adjustSharpness', 'sharpness', img, factor);
}

/** F.adjust_hue on a PIL RGB image; hueFactor in [-0.5, 0.5] (torchvision's ValueError otherwise). */
export function adjustHue(img: ImageU8, hueFactor: number): ImageU8 {
  checkImage('adjustHue', img, RGB);
  if (typeof hueFactor !== 'number' || !(hueFactor >= -0.5 && hueFactor <= 0.5)) {
    invalid(`adjustHue: hueFactor (${String(hueFactor)}) is not in [-0.5, 0.5]`, 'hueFactor');
  }
  return run('adjustHue', img, (a) => a.adjustHueU8(img.data, img.height, img.width, 3, hueFactor));
}

function pair(op: string, name: string, v: number | readonly number[]): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return [v[0], v[0]];
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number') return [v[0], v[1]];
  return invalid(`${op}: ${name} must be a number or a sequence of 1 or 2 numbers`, name);
}

/**
 * F.gaussian_blur(img, kernelSize, sigma) on a PIL image: torchvision's float32 kernel, reflect
 * padding, float32 convolution (computed as torch's oneDNN kernel does), rounded half to even.
 * `kernelSize` and `sigma` are one value or [x, y], as in torchvision; kernel sizes odd and positive,
 * sigmas > 0; each side of the image must exceed half its kernel size (torch's reflect padding).
 */
export function gaussianBlur(img: ImageU8, kernelSize: number | readonly number[], sigma: number | readonly number[]): ImageU8 {
  const op = 'gaussianBlur';
  checkImage(op, img, L_OR_RGB);
  const [kx, ky] = pair(op, 'kernelSize', kernelSize);
  for (const k of [kx, ky]) {
    if (!Number.isSafeInteger(k) || k < 1 || k % 2 === 0) invalid(`${op}: kernel sizes must be odd positive integers, got ${k}`, 'kernelSize');
  }
  const [sx, sy] = pair(op, 'sigma', sigma);
  for (const s of [sx, sy]) {
    if (typeof s !== 'number' || !Number.isFinite(s) || !(s > 0)) invalid(`${op}: sigma must be positive and finite, got ${s}`, 'sigma');
  }
  if (Math.floor(kx / 2) >= img.width || Math.floor(ky / 2) >= img.height) {
    invalid(`${op}: a ${kx}x${ky} kernel needs an image larger than ${Math.floor(kx / 2)}x${Math.floor(ky / 2)} ` +
      `(reflect padding), got ${img.width}x${img.height}`, 'kernelSize');
  }
  return run(op, img, (a) => a.gaussianBlurU8(img.data, img.height, img.width, img.channels, kx, ky, sx, sy));
}

/** torchvision's _get_gaussian_kernel1d(kernelSize, sigma) in float32 (what gaussianBlur convolves with). */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float32Array {
  if (!Number.isSafeInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0 || kernelSize > 2 ** 20) {
    invalid(`gaussianKernel1d: kernelSize must be an odd integer from 1 to 2^20, got ${kernelSize}`);
  }
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || !(sigma > 0)) {
    invalid(`gaussianKernel1d: sigma must be positive and finite, got ${sigma}`);
  }
  return callNative('gaussianKernel1d', () => addon().gaussianKernel1d(kernelSize, sigma));
}

/** F.invert: ImageOps.invert (255 - v). */
export function invert(img: ImageU8): ImageU8 {
  checkImage('invert', img, L_OR_RGB);
  return run('invert', img, (a) => a.invertU8(img.data, img.height, img.width, img.channels));
}

/** F.equalize: ImageOps.equalize, per channel, with Pillow's integer histogram arithmetic. */
export function equalize(img: ImageU8): ImageU8 {
  checkImage('equalize', img, L_OR_RGB);
  return run('equalize', img, (a) => a.equalizeU8(img.data, img.height, img.width, img.channels));
}

/** F.posterize: ImageOps.posterize, keeping the top `bits` bits (0 to 8) of every channel. */
export function posterize(img: ImageU8, bits: number): ImageU8 {
  checkImage('posterize', img, L_OR_RGB);
  if (!Number.isSafeInteger(bits) || bits < 0 || bits > 8) invalid(`posterize: bits must be an integer from 0 to 8, got ${bits}`, 'bits');
  return run('posterize', img, (a) => a.posterizeU8(img.data, img.height, img.width, img.channels, bits));
}

/**
 * `img.filter(ImageFilter.GaussianBlur(radius))`: Pillow's approximation by three extended box blurs
 * per direction (ImagingGaussianBlur), in its 8.24 fixed point; MoCo v2's blur augmentation.
 */
export function pilGaussianBlur(img: ImageU8, radius: number): ImageU8 {
  checkImage('pilGaussianBlur', img, L_OR_RGB);
  finite('pilGaussianBlur', 'radius', radius);
  if (radius < 0 || radius > 1e6) invalid(`pilGaussianBlur: radius must be from 0 to 1e6, got ${radius}`, 'radius');
  return run('pilGaussianBlur', img, (a) => a.pilGaussianBlurU8(img.data, img.height, img.width, img.channels, radius));
}
