/**
 * Typed image ops on uint8 HWC images, over the native kernels of native/ops/resample.h:
 *   - `resizeU8`: Pillow 9's Image.resize, bit for bit (all six filters, optional source box, and an
 *     optional output window so a later crop does not pay for pixels it drops);
 *   - `cropNormalizeU8`: a crop (zero padded outside the image) turned into torchvision's
 *     ToTensor + Normalize output, float32 CHW: (float32(x) / 255 - mean) / std, in float32;
 *   - `resizeCropNormalizeU8` (+ `Async`): both in one call, writing into a new Float32Array or into
 *     a slot of a float32 [N, C, H, W] batch tensor.
 * Images carry 1 to 4 channels that are processed independently (Pillow's behaviour for L, RGB and
 * CMYK; RGBA/LA would be premultiplied by Pillow, which these ops do not do).
 * Errors are SslInvError with the native codes (ERR_INVALID_ARGUMENT, ERR_SHAPE_MISMATCH, ...).
 */
import { SslInvError, callNative as call, callNativeAsync } from './errors';
import { NativeAddon, nativeOps, NativeTensor } from './native';
import { Tensor } from './tensor';

/** An image as bytes: height x width x channels, row-major. */
export interface ImageU8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** Pillow's resampling filters (Image.Resampling), by name. */
export type ResampleFilter = 'nearest' | 'lanczos' | 'bilinear' | 'bicubic' | 'box' | 'hamming';

export const RESAMPLE_FILTER_IDS: Readonly<Record<ResampleFilter, number>> = {
  nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5,
};

/** A window: rows [top, top + height), columns [left, left + width). */
export interface Window {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface ResizeSpec {
  /** Output size. */
  width: number;
  height: number;
  /** Default 'bilinear'. */
  filter?: ResampleFilter;
  /** Pillow's source box [x0, y0, x1, y1] (float32 precision, as Pillow keeps it); default the whole image. */
  box?: readonly [number, number, number, number];
}

export interface Normalization {
  /** One value per channel; rounded to float32 like torch.as_tensor(mean, dtype=float32). */
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Where to write: slot `slot` of a float32 [N, C, H, W] tensor (normalised, CHW), or of a uint8
 * [N, H, W, C] one (the crop's pixels before ToTensor + Normalize, HWC; `norm` is then checked and
 * unused, and ops.normalizeImagesU8 of the batch gives the float32 tensor's bits).
 */
export interface BatchSlot {
  tensor: Tensor;
  slot: number;
}

interface NativeResampleOptions {
  outHeight: number;
  outWidth: number;
  filter?: number;
  box?: number[];
  region?: Window;
}

interface NativeCropOptions extends Window {
  mean: number[];
  std: number[];
}

interface ImageAddon {
  resizeU8(src: Uint8Array, h: number, w: number, c: number, o: NativeResampleOptions): Uint8Array;
  cropNormalizeU8(src: Uint8Array, h: number, w: number, c: number, o: NativeCropOptions, out?: NativeTensor,
    slot?: number): Float32Array | undefined;
  resizeCropNormalizeU8(src: Uint8Array, h: number, w: number, c: number, o: NativeResampleOptions & NativeCropOptions,
    out?: NativeTensor, slot?: number): Float32Array | undefined;
  resizeCropNormalizeU8Async(src: Uint8Array, h: number, w: number, c: number,
    o: NativeResampleOptions & NativeCropOptions, out: NativeTensor, slot: number): Promise<void>;
}

function addon(): NativeAddon & ImageAddon {
  return nativeOps<ImageAddon>('image', ['resizeU8', 'resizeCropNormalizeU8Async']);
}

function int(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `${name}: expected an integer >= ${min}, got ${v}`);
  }
  return v;
}

function checkImage(img: ImageU8): void {
  int('image.width', img.width, 1);
  int('image.height', img.height, 1);
  int('image.channels', img.channels, 1);
  if (!(img.data instanceof Uint8Array)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'image.data: expected a Uint8Array');
  }
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `image.data has ${img.data.length} bytes for a ` +
      `${img.height}x${img.width}x${img.channels} image`);
  }
}

function checkWindow(name: string, w: Window, allowNegative: boolean): Window {
  const lo = allowNegative ? Number.MIN_SAFE_INTEGER : 0;
  return { top: int(`${name}.top`, w.top, lo), left: int(`${name}.left`, w.left, lo),
    height: int(`${name}.height`, w.height, 1), width: int(`${name}.width`, w.width, 1) };
}

function resampleOptions(spec: ResizeSpec): NativeResampleOptions {
  const filter = spec.filter ?? 'bilinear';
  const id = RESAMPLE_FILTER_IDS[filter];
  if (id === undefined) {
    throw new SslInvError('ERR_INVALID_ARGUMENT',
      `filter: expected one of ${Object.keys(RESAMPLE_FILTER_IDS).join(', ')}, got ${String(filter)}`);
  }
  const o: NativeResampleOptions = { outHeight: int('height', spec.height, 1), outWidth: int('width', spec.width, 1),
    filter: id };
  if (spec.box !== undefined) {
    if (spec.box.length !== 4 || spec.box.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', 'box: expected four finite numbers [x0, y0, x1, y1]');
    }
    o.box = [...spec.box];
  }
  return o;
}

/**
 * The native options object of a fused resize -> crop -> normalise (the CPU op's, and the CUDA views
 * binding's), validated.
 */
export function resizeCropNormalizeOptions(resize: ResizeSpec, crop: Window, norm: Normalization, channels: number) {
  return { ...resampleOptions(resize), ...checkWindow('crop', crop, true), ...normOptions(norm, channels) };
}

function normOptions(n: Normalization, channels: number): { mean: number[]; std: number[] } {
  for (const [k, v] of [['mean', n.mean], ['std', n.std]] as const) {
    if (!Array.isArray(v) || v.length !== channels || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `${k}: expected ${channels} finite numbers (one per channel)`);
    }
  }
  if (n.std.some((x) => Math.fround(x) === 0)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'std: a value is zero, which would divide by zero ' +
      '(torchvision refuses it too)');
  }
  return { mean: [...n.mean], std: [...n.std] };
}

function checkSlot(out: BatchSlot, channels: number, crop: Window): void {
  const s = out.tensor.shape;
  const u8 = out.tensor.dtype === 'uint8';
  const fits = s.length === 4 && (u8 ? s[1] === crop.height && s[2] === crop.width && s[3] === channels
    : out.tensor.dtype === 'float32' && s[1] === channels && s[2] === crop.height && s[3] === crop.width);
  if (!fits) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `out: expected a float32 [N, ${channels}, ${crop.height}, ` +
      `${crop.width}] or uint8 [N, ${crop.height}, ${crop.width}, ${channels}] tensor, got ${out.tensor.dtype} [${s.join(', ')}]`);
  }
  int('slot', out.slot, 0);
  if (out.slot >= s[0]) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `slot: ${out.slot} is outside the batch of ${s[0]}`);
  }
}

/**
 * Pillow's `image.resize((width, height), filter, box)`, exactly. With `region`, only that window of
 * the result is computed and returned (identical to cropping the full result).
 */
export function resizeU8(img: ImageU8, spec: ResizeSpec & { region?: Window }): ImageU8 {
  checkImage(img);
  const o = resampleOptions(spec);
  let outH = o.outHeight, outW = o.outWidth;
  if (spec.region !== undefined) {
    o.region = checkWindow('region', spec.region, false);
    outH = o.region.height;
    outW = o.region.width;
  }
  const data = call('resizeU8', () => addon().resizeU8(img.data, img.height, img.width, img.channels, o));
  return { data, width: outW, height: outH, channels: img.channels };
}

/**
 * torchvision's ToTensor + Normalize of the `crop` window of `img` (positions outside the image read
 * as 0, as CenterCrop's padding gives them): float32 [C, crop.height, crop.width]. Returns a new
 * Float32Array, or writes into `out` and returns undefined.
 */
export function cropNormalizeU8(img: ImageU8, crop: Window, norm: Normalization): Float32Array;
export function cropNormalizeU8(img: ImageU8, crop: Window, norm: Normalization, out: BatchSlot): undefined;
export function cropNormalizeU8(img: ImageU8, crop: Window, norm: Normalization,
  out?: BatchSlot): Float32Array | undefined {
  checkImage(img);
  const w = checkWindow('crop', crop, true);
  const o = { ...w, ...normOptions(norm, img.channels) };
  if (out) checkSlot(out, img.channels, w);
  return call('cropNormalizeU8', () => addon().cropNormalizeU8(img.data, img.height, img.width, img.channels, o,
    out?.tensor.handle, out?.slot));
}

/**
 * resizeU8 then cropNormalizeU8 in one call; `crop` is in the coordinates of the resized image and
 * may extend past it (zero padding). Only the pixels inside the crop are resampled.
 */
export function resizeCropNormalizeU8(img: ImageU8, resize: ResizeSpec, crop: Window,
  norm: Normalization): Float32Array;
export function resizeCropNormalizeU8(img: ImageU8, resize: ResizeSpec, crop: Window, norm: Normalization,
  out: BatchSlot): undefined;
export function resizeCropNormalizeU8(img: ImageU8, resize: ResizeSpec, crop: Window, norm: Normalization,
  out?: BatchSlot): Float32Array | undefined {
  checkImage(img);
  const w = checkWindow('crop', crop, true);
  const o = { ...resampleOptions(resize), ...w, ...normOptions(norm, img.channels) };
  if (out) checkSlot(out, img.channels, w);
  return call('resizeCropNormalizeU8', () => addon().resizeCropNormalizeU8(img.data, img.height, img.width,
    img.channels, o, out?.tensor.handle, out?.slot));
}

/**
 * The same, computed on a libuv worker thread (the pixels are copied first, so `img` may be reused
 * at once). Many calls run in parallel, one thread each.
 */
export async function resizeCropNormalizeU8Async(img: ImageU8, resize: ResizeSpec, crop: Window, norm: Normalization,
  out: BatchSlot): Promise<void> {
  checkImage(img);
  const w = checkWindow('crop', crop, true);
  const o = { ...resampleOptions(resize), ...w, ...normOptions(norm, img.channels) };
  checkSlot(out, img.channels, w);
  await callNativeAsync('resizeCropNormalizeU8Async', () => addon().resizeCropNormalizeU8Async(img.data, img.height,
    img.width, img.channels, o, out.tensor.handle, out.slot));
}
