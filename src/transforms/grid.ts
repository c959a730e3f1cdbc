/**
 * The 18 synthetic transforms of the original's eval_synthetic_invariance.py (its ManualTransform)
 * and their parameter grids: for each transform, the k views' parameters in the original's order,
 * as the float32 values the original computed (torch.linspace; see linspace.ts).
 *
 * How each view is made (as the original's code runs, quirks included; views.ts implements it):
 *  - translation, scale, shear: torchvision F.affine on the ORIGINAL image (nearest, fill 0) with
 *    the listed angle / translate / scale / shear, then Resize(resize) + CenterCrop(crop).
 *    translation and scale also carry shear = 1 degree; translation's offsets are in pixels of the
 *    original image (a * resize). (The branch meant to translate after the resize never runs.)
 *  - resized_crop: F.resized_crop of the ORIGINAL image at the listed (top, left, height, width),
 *    to crop x crop, with no Resize/CenterCrop afterwards.
 *  - the flips, grayscale, invert, equalize: view 0 is the untouched image, view 1 transformed.
 *  - deform: albumentations' ElasticTransform(sigma, approximate=True); `points` is passed to the
 *    original's deform() but unused there.
 *  - everything else: the torchvision functional op on the original image, then Resize + CenterCrop.
 * Then ToTensor-equivalent scaling and ImageNet normalisation.
 * `originalIndex` is the view the original treats as the untransformed one.
 */
import { SslInvError } from '../errors';
import { torchLinspaceF32 } from './linspace';

export const SYNTHETIC_TRANSFORMS = [
  'rotation', 'translation', 'scale', 'shear', 'resized_crop', 'h_flip', 'v_flip', 'deform', 'grayscale',
  'brightness', 'contrast', 'saturation', 'hue', 'blur', 'sharpness', 'invert', 'equalize', 'posterize',
] as const;
export type SyntheticTransform = (typeof SYNTHETIC_TRANSFORMS)[number];

export function isSyntheticTransform(s: string): s is SyntheticTransform {
  return (SYNTHETIC_TRANSFORMS as readonly string[]).includes(s);
}

/** One view's parameters, in torchvision's argument names. */
export type ViewParams =
  | { op: 'rotate'; angle: number }
  | { op: 'affine'; angle: number; translate: [number, number]; scale: number; shear: [number, number] }
  | { op: 'resized_crop'; top: number; left: number; height: number; width: number; size: [number, number] }
  | { op: 'hflip' | 'vflip' | 'grayscale' | 'invert' | 'equalize'; apply: boolean }
  | { op: 'deform'; sigma: number; points: number }
  | { op: 'adjust_brightness' | 'adjust_contrast' | 'adjust_saturation' | 'adjust_sharpness'; factor: number }
  | { op: 'adjust_hue'; hueFactor: number }
  | { op: 'gaussian_blur'; kernelSize: number; sigma: number }
  | { op: 'posterize'; bits: number };

export interface TransformGrid {
  transform: SyntheticTransform;
  k: number;
  resize: number;
  crop: number;
  originalIndex: number;
  views: ViewParams[];
  /** The transform parameter of each view, for results and plots (numbers, or pairs for 2-D grids). */
  labels: (number | number[])[];
  /** What `labels` holds, e.g. "angle (degrees)". */
  labelName: string;
}

/** The original's default k: 2 for on/off transforms, 7 for posterize, 256 otherwise. */
export function defaultK(t: SyntheticTransform): number {
  if (['h_flip', 'v_flip', 'grayscale', 'invert', 'equalize'].includes(t)) return 2;
  if (t === 'posterize') return 7;
  return 256;
}

const isqrt = (k: number) => Math.floor(Math.sqrt(k));

function usage(message: string): never {
  throw new SslInvError('ERR_INVALID_ARGUMENT', message, { field: '--k' });
}

/** Elements [0, n) of torch.linspace(start, end, n + 1) as plain numbers. */
function linspaceHead(start: number, end: number, n: number): number[] {
  return Array.from(torchLinspaceF32(start, end, n + 1).subarray(0, n));
}

function product2(a: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const x of a) for (const y of a) out.push([x, y]);
  return out;
}

/** The k views of `transform` as the original builds them (ManualTransform(name, k, resize, crop)). */
export function transformGrid(transform: SyntheticTransform, k = defaultK(transform), resize = 256, crop = 224): TransformGrid {
  if (!Number.isSafeInteger(k) || k < 1) usage(`k must be an integer >= 1, got ${k}`);
  const g = (views: ViewParams[], labels: (number | number[])[], labelName: string, originalIndex: number): TransformGrid => {
    if (views.length !== k) usage(`${transform} cannot make ${k} views (the original's grid has ${views.length})`);
    return { transform, k, resize, crop, originalIndex, views, labels, labelName };
  };
  // A grid of fixed values (the on/off transforms, posterize, deform): ManualTransform's loop takes
  // views 0..k-1 of it, so a smaller k is its first k views; a larger one indexes past its end, where
  // the original stops with an IndexError.
  const fixed = (views: ViewParams[], labels: (number | number[])[], labelName: string): TransformGrid => {
    if (k > views.length) {
      usage(`${transform} has a fixed grid of ${views.length} views; k = ${k} would go past its end (the original stops there with an IndexError)`);
    }
    return g(views.slice(0, k), labels.slice(0, k), labelName, 0);
  };
  const f32 = Math.fround;
  switch (transform) {
    case 'rotation': {
      const a = linspaceHead(0, 360, k);
      return g(a.map((angle) => ({ op: 'rotate', angle })), a, 'angle (degrees)', 0);
    }
    case 'translation': {
      const n = isqrt(k);
      if (n * n !== k) usage(`translation takes a square k (an n x n grid of offsets), got ${k}`);
      const space = (1 - crop / resize) / 2; // float64 in Python, then float32 inside torch.linspace
      const a = linspaceHead(-space, space, n).map((v) => f32(v * resize));
      const pairs = product2(a);
      const i0 = pairs.findIndex(([x, y]) => x === 0 && y === 0);
      return g(pairs.map(([x, y]) => ({ op: 'affine', angle: 0, translate: [x, y], scale: 1, shear: [1, 0] })), pairs,
        'translation (pixels of the original image)', i0);
    }
    case 'scale': {
      const s = Array.from(torchLinspaceF32(0.25, 2, k));
      return g(s.map((scale) => ({ op: 'affine', angle: 0, translate: [0, 0], scale, shear: [1, 0] })), s, 'scale', 0);
    }
    case 'shear': {
      const n = isqrt(k);
      if (n * n !== k) usage(`shear takes a square k (an n x n grid of angles), got ${k}`);
      const pairs = product2(linspaceHead(-160, 160, n));
      const i0 = pairs.findIndex(([x, y]) => x === 0 && y === 0);
      return g(pairs.map(([x, y]) => ({ op: 'affine', angle: 0, translate: [0, 0], scale: 1, shear: [x, y] })), pairs,
        'shear (degrees, x and y)', i0);
    }
    case 'resized_crop': {
      const n = Math.floor(Math.sqrt(Math.sqrt(k)));
      if (n ** 4 !== k) usage(`resized_crop takes k = n^4 (a 4-D grid), got ${k}`);
      const a = Array.from(torchLinspaceF32(0, 0.25, n), (v) => f32(v * resize));
      const b = Array.from(torchLinspaceF32(0.75, 0.25, n), (v) => f32(v * resize));
      const views: ViewParams[] = [];
      const labels: number[][] = [];
      for (const top of a) for (const left of a) for (const height of b) for (const width of b) {
        views.push({ op: 'resized_crop', top, left, height, width, size: [crop, crop] });
        labels.push([top, left, height, width]);
      }
      return g(views, labels, 'crop box (top, left, height, width)', 0);
    }
    case 'h_flip': case 'v_flip': case 'grayscale': case 'invert': case 'equalize': {
      const op = ({ h_flip: 'hflip', v_flip: 'vflip', grayscale: 'grayscale', invert: 'invert', equalize: 'equalize' } as const)[transform];
      return fixed([false, true].map((apply) => ({ op, apply })), [0, 1], 'applied');
    }
    case 'deform': {
      const sigmas = Array.from(torchLinspaceF32(10, 50, 8), (v) => Math.trunc(v));
      const views: ViewParams[] = Array.from({ length: 256 }, (_, j) => ({ op: 'deform', sigma: sigmas[j % 8]!, points: 2 + Math.floor(j / 32) }));
      return fixed(views, views.map((v) => (v as { sigma: number }).sigma), 'sigma');
    }
    case 'brightness': case 'contrast': case 'saturation': {
      const op = `adjust_${transform}` as const;
      const f = Array.from(torchLinspaceF32(0.25, 5, k));
      return g(f.map((factor) => ({ op, factor })), f, `${transform} factor`, Math.floor(k / 2));
    }
    case 'hue': {
      const h = Array.from(torchLinspaceF32(-0.5, 0.5, k));
      return g(h.map((hueFactor) => ({ op: 'adjust_hue', hueFactor })), h, 'hue factor', Math.floor(k / 2));
    }
    case 'blur': {
      const s = Array.from(torchLinspaceF32(1e-5, 20, k));
      const kernelSize = Math.floor(crop / 20) * 2 + 1;
      return g(s.map((sigma) => ({ op: 'gaussian_blur', kernelSize, sigma })), s, 'sigma', 0);
    }
    case 'sharpness': {
      const f = Array.from(torchLinspaceF32(1, 30, k));
      return g(f.map((factor) => ({ op: 'adjust_sharpness', factor })), f, 'sharpness factor', 0);
    }
    case 'posterize': {
      const bits = [1, 2, 3, 4, 5, 6, 7];
      return fixed(bits.map((b) => ({ op: 'posterize', bits: b })), bits, 'bits');
    }
  }
}
