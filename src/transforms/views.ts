/**
 * The k views of one image for a synthetic transform, as the original's ManualTransform makes them
 * (see grid.ts for the order of operations and its quirks):
 *   transform the ORIGINAL image (torchvision functional op on a PIL image, reproduced bit for bit in
 *   geometric.ts / color.ts) -> Resize(resize) -> CenterCrop(crop) -> /255 -> Normalize,
 * except resized_crop, whose op already outputs crop x crop and is only normalised; and the on/off
 * transforms, whose view 0 is the untouched image.
 *
 * deform is random: the original draws albumentations' state from Python's unseeded `random`, so its
 * deform views cannot be reproduced; ours use np.random.RandomState(seed + view index), so the same
 * seed gives the same views.
 */
import { SslInvError } from '../errors';
import { cropNormalizeU8, ImageU8 } from '../image-ops';
import { EvalTransform, preprocessInto } from '../data/preprocess';
import { empty, Tensor } from '../tensor';
import * as color from './color';
import * as geo from './geometric';
import { TransformGrid, ViewParams } from './grid';

export interface ViewOptions {
  mean: readonly number[];
  std: readonly number[];
  /** Base seed of the deform views (view j uses seed + j). Default 0. */
  deformSeed?: number;
}

/** The transformed image of one view, before Resize/CenterCrop/normalisation. */
export function applyView(img: ImageU8, v: ViewParams, seed: number): ImageU8 {
  switch (v.op) {
    case 'rotate': return geo.rotate(img, v.angle);
    case 'affine': return geo.affine(img, { angle: v.angle, translate: v.translate, scale: v.scale, shear: v.shear });
    case 'resized_crop': return geo.resizedCrop(img, v.top, v.left, v.height, v.width, v.size);
    case 'hflip': return v.apply ? geo.hflip(img) : img;
    case 'vflip': return v.apply ? geo.vflip(img) : img;
    case 'grayscale': return v.apply ? color.grayscale(img) : img;
    case 'invert': return v.apply ? color.invert(img) : img;
    case 'equalize': return v.apply ? color.equalize(img) : img;
    case 'deform': return geo.elasticDeform(img, v.sigma, seed >>> 0);
    case 'adjust_brightness': return color.adjustBrightness(img, v.factor);
    case 'adjust_contrast': return color.adjustContrast(img, v.factor);
    case 'adjust_saturation': return color.adjustSaturation(img, v.factor);
    case 'adjust_sharpness': return color.adjustSharpness(img, v.factor);
    case 'adjust_hue': return color.adjustHue(img, v.hueFactor);
    case 'gaussian_blur': return color.gaussianBlur(img, v.kernelSize, v.sigma);
    case 'posterize': return color.posterize(img, v.bits);
  }
}

/**
 * Where a call writes its views: rows [slot, slot + j1 - j0) of a float32 [rows, 3, crop, crop] tensor;
 * with `cleanSlot`, also the image's clean input (the evaluation transform of the image itself: the
 * grid's Resize -> CenterCrop, the options' normalisation, as preprocess() gives it) into that row.
 */
export interface ViewsInto {
  tensor: Tensor;
  slot: number;
  cleanSlot?: number;
}

/** Checks a view range and, when given, the tensor the views go into. */
export function checkViewRange(grid: TransformGrid, j0: number, j1: number, into?: ViewsInto): void {
  if (!(Number.isInteger(j0) && Number.isInteger(j1) && 0 <= j0 && j0 <= j1 && j1 <= grid.k)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `views [${j0}, ${j1}) are outside 0..${grid.k}`);
  }
  if (!into) return;
  const [rows, c, h, w] = into.tensor.shape;
  if (into.tensor.dtype !== 'float32' || into.tensor.shape.length !== 4 || c !== 3 || h !== grid.crop || w !== grid.crop ||
    !(Number.isInteger(into.slot) && into.slot >= 0 && into.slot + (j1 - j0) <= rows!)) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `views [${j0}, ${j1}) do not fit rows ${into.slot}.. of a ${into.tensor.dtype} [${into.tensor.shape.join(', ')}] tensor ` +
      `(expected float32 [rows, 3, ${grid.crop}, ${grid.crop}])`);
  }
  const cs = into.cleanSlot;
  if (cs !== undefined && !(Number.isInteger(cs) && cs >= 0 && cs < rows!)) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `the clean input's row ${cs} is not a row of a [${into.tensor.shape.join(', ')}] tensor`);
  }
}

/**
 * Writes views [j0, j1) of `img` into a new float32 tensor [j1 - j0, 3, crop, crop], or, with
 * `into`, into rows slot.. of an existing one (and returns it; see ViewsInto for its clean row).
 */
export function makeViews(img: ImageU8, grid: TransformGrid, j0: number, j1: number, o: ViewOptions, into?: ViewsInto): Tensor {
  checkViewRange(grid, j0, j1, into);
  const base = into?.slot ?? 0;
  const out = into?.tensor ?? empty('float32', [j1 - j0, 3, grid.crop, grid.crop]);
  const t: EvalTransform = { resize: grid.resize, crop: grid.crop, mean: o.mean, std: o.std };
  try {
    if (into?.cleanSlot !== undefined) preprocessInto(img, t, out, into.cleanSlot);
    for (let j = j0; j < j1; j++) {
      const v = grid.views[j]!;
      const view = applyView(img, v, (o.deformSeed ?? 0) + j);
      if (v.op === 'resized_crop') {
        cropNormalizeU8(view, { top: 0, left: 0, height: grid.crop, width: grid.crop }, { mean: o.mean, std: o.std },
          { tensor: out, slot: base + j - j0 });
      } else {
        preprocessInto(view, t, out, base + j - j0);
      }
    }
  } catch (e) {
    if (!into) out.dispose();
    throw e;
  }
  return out;
}
