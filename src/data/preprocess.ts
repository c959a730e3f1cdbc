/**
 * torchvision 0.14's evaluation transform on PIL images, reproduced exactly:
 *
 *     Resize(resize) -> CenterCrop(crop) -> ToTensor() -> Normalize(mean, std)
 *
 *   - Resize(int) (transforms.functional._compute_resized_output_size): the shorter side becomes
 *     `resize`, the longer `int(resize * long / short)` (float division, truncated); for a square
 *     image both. When the image already has that size it is returned unchanged (no resampling).
 *     Otherwise Pillow's resize with BILINEAR (the default; antialiased on downscale), which the
 *     native kernel reproduces bit for bit.
 *   - CenterCrop(int): when the crop is larger than the image in a dimension, torchvision first pads
 *     with zeros, (crop - size) // 2 before and the rest after; then
 *     top = int(round((height - crop) / 2.0)) with Python's round-half-to-even (and the same for
 *     left).
 *   - ToTensor + Normalize: (float32(x) / 255 - mean) / std in float32 per channel, CHW.
 * Only the crop window is resampled (identical to resampling everything and cropping).
 */
import { SslInvError } from '../errors';
import { ImageU8, Normalization, ResampleFilter, Window, cropNormalizeU8, resizeCropNormalizeU8,
  resizeCropNormalizeU8Async, resizeU8 } from '../image-ops';
import { Tensor, empty } from '../tensor';

export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

export interface EvalTransform {
  /** Resize(int): the length of the shorter side after resizing. */
  resize: number;
  /** CenterCrop(int): the side of the square crop. */
  crop: number;
  mean: readonly number[];
  std: readonly number[];
  /** Resize's interpolation; torchvision's default is bilinear. */
  interpolation?: 'bilinear' | 'bicubic' | 'nearest';
}

/** The standard ImageNet evaluation transform: Resize(256), CenterCrop(224), ImageNet statistics. */
export function imagenetEvalTransform(resize = 256, crop = 224): EvalTransform {
  return { resize, crop, mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

function checkTransform(t: EvalTransform): void {
  for (const k of ['resize', 'crop'] as const) {
    if (!Number.isSafeInteger(t[k]) || t[k] < 1) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `transform.${k}: expected an integer >= 1, got ${t[k]}`);
    }
  }
  const interp = t.interpolation ?? 'bilinear';
  if (!['bilinear', 'bicubic', 'nearest'].includes(interp)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `transform.interpolation: expected bilinear, bicubic or nearest`);
  }
}

/** torchvision's output size of Resize(size) (an int) for a width x height image. */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  const wShort = width <= height;
  const short = wShort ? width : height, long = wShort ? height : width;
  const newShort = size, newLong = Math.trunc((size * long) / short);  // Python: int(size * long / short)
  return wShort ? { width: newShort, height: newLong } : { width: newLong, height: newShort };
}

/** Python's round() of n / 2 for an integer n: half-way cases go to the even neighbour. */
export function roundHalfEvenHalf(n: number): number {
  const q = Math.floor(n / 2);
  if (n % 2 === 0) return q;
  return q % 2 === 0 ? q : q + 1;  // n / 2 = q + 0.5
}

/** CenterCrop's offset along one dimension, negative where torchvision pads with zeros first. */
export function centerCropOffset(size: number, crop: number): number {
  if (crop > size) return -Math.floor((crop - size) / 2);
  return roundHalfEvenHalf(size - crop);
}

/** The window CenterCrop(crop) takes from a width x height image (may extend past it: padding). */
export function centerCropWindow(width: number, height: number,
  crop: number | { width: number; height: number }): Window {
  const cw = typeof crop === 'number' ? crop : crop.width, ch = typeof crop === 'number' ? crop : crop.height;
  return { top: centerCropOffset(height, ch), left: centerCropOffset(width, cw), height: ch, width: cw };
}

function filterOf(t: EvalTransform): ResampleFilter {
  return t.interpolation ?? 'bilinear';
}

function checkRgb(image: ImageU8, what = 'image'): void {
  if (image.channels !== 3) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `${what}: expected an RGB image (3 channels), got ${image.channels}`);
  }
}

/** Resize(size) alone, as torchvision applies it to a PIL image (returns the input when no resize is needed). */
export function resizeShorterSide(image: ImageU8, size: number, filter: ResampleFilter = 'bilinear'): ImageU8 {
  const s = resizedSize(image.width, image.height, size);
  if (s.width === image.width && s.height === image.height) return image;
  return resizeU8(image, { width: s.width, height: s.height, filter });
}

/** CenterCrop(crop) alone, with torchvision's zero padding, as uint8 HWC. */
export function centerCrop(image: ImageU8, crop: number): ImageU8 {
  const w = centerCropWindow(image.width, image.height, crop);
  const C = image.channels;
  const out = new Uint8Array(crop * crop * C);
  for (let y = 0; y < crop; y++) {
    const sy = w.top + y;
    if (sy < 0 || sy >= image.height) continue;
    const x0 = Math.max(0, -w.left), x1 = Math.min(crop, image.width - w.left);
    if (x1 <= x0) continue;
    out.set(image.data.subarray((sy * image.width + w.left + x0) * C, (sy * image.width + w.left + x1) * C),
      (y * crop + x0) * C);
  }
  return { data: out, width: crop, height: crop, channels: C };
}

/** ToTensor + Normalize of a whole uint8 HWC image: float32 [C, H, W]. */
export function toTensorNormalize(image: ImageU8, norm: Normalization): Float32Array {
  return cropNormalizeU8(image, { top: 0, left: 0, height: image.height, width: image.width }, norm);
}

/** The resize, crop window and normalisation the evaluation transform applies to one RGB image. */
export function evalTransformPlan(image: ImageU8, t: EvalTransform) {
  return plan(image, t);
}

function plan(image: ImageU8, t: EvalTransform) {
  checkTransform(t);
  checkRgb(image);
  const s = resizedSize(image.width, image.height, t.resize);
  const crop = centerCropWindow(s.width, s.height, t.crop);
  return {
    resize: { width: s.width, height: s.height, filter: filterOf(t) },
    crop,
    norm: { mean: t.mean, std: t.std },
  };
}

/** The whole evaluation transform for one RGB image: float32 [3, crop, crop] (CHW). */
export function preprocess(image: ImageU8, t: EvalTransform): Float32Array {
  const p = plan(image, t);
  return resizeCropNormalizeU8(image, p.resize, p.crop, p.norm);
}

/**
 * The evaluation transform written into slot `slot` of a float32 [N, 3, crop, crop] tensor, or of a
 * uint8 [N, crop, crop, 3] one: the crop's pixels before ToTensor + Normalize (see BatchSlot).
 */
export function preprocessInto(image: ImageU8, t: EvalTransform, out: Tensor, slot: number): void {
  const p = plan(image, t);
  resizeCropNormalizeU8(image, p.resize, p.crop, p.norm, { tensor: out, slot });
}

/** preprocessInto on a libuv worker thread (for many images in parallel). */
export async function preprocessIntoAsync(image: ImageU8, t: EvalTransform, out: Tensor, slot: number): Promise<void> {
  const p = plan(image, t);
  await resizeCropNormalizeU8Async(image, p.resize, p.crop, p.norm, { tensor: out, slot });
}

/** A batch tensor [N, 3, crop, crop] of the evaluation transform of each image, in order. */
export function preprocessBatch(images: readonly ImageU8[], t: EvalTransform): Tensor {
  checkTransform(t);
  const out = empty('float32', [images.length, 3, t.crop, t.crop]);
  try {
    images.forEach((im, i) => preprocessInto(im, t, out, i));
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
