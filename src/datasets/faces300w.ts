/**
 * 300 Faces In-the-Wild (300-W) as the original's datasets/faces_in_the_wild_300w.py reads it,
 * root = `<data-root>/300W`:
 *
 *     300W/01_Indoor/indoor_001.png, indoor_001.pts, ...
 *     300W/02_Outdoor/outdoor_001.png, outdoor_001.pts, ...
 *     300W/indoor+outdoor_train.npy, indoor+outdoor_valid.npy, indoor+outdoor_test.npy  (optional)
 *
 * Listing: `glob('01_Indoor/*.png')` then `'02_Outdoor/*.png'` (for mode 'indoor+outdoor'), sorted;
 * the `.pts` files the same way, sorted separately and paired by position — so here each pair must
 * have the same name (an unpaired image or landmark file is an error; the original would silently
 * pair the wrong files). Splits: `{mode}_{split}.npy` index arrays into that list; when a file is
 * missing the original generates all three (seed 0 shuffle, 30% / 30% / 40%) and saves them; here
 * they are generated identically in memory. eval_downstream: trainval = train + valid, test = test,
 * regression (R^2).
 *
 * Per sample (`__getitem__`), computed by `faces300wTarget` exactly as the original does, in float32
 * where torch does it in float32:
 *   1. the landmarks as a float32 tensor (68 x 2);
 *   2. the box: x1, x2, y1, y2 = min/max of the x and y coordinates; side = max(ceil(x2 - x1),
 *      ceil(y2 - y1)); `FT.crop(image, top=y1, left=x1, height=side, width=side)`, which PIL turns
 *      into the integer box (round(x1), round(y1), round(x1 + side), round(y1 + side)) with Python's
 *      round (half to even); pixels outside the image are black (zero);
 *   3. the landmarks relative to (x1, y1) (float32), then with w, h the cropped size and
 *      m = min(w, h): ((x - (w - m) / 2) / m) * crop_size, the same for y (float32 each step),
 *      flattened to [x0, y0, x1, y1, ...] (136 values).
 * The image pipeline must apply `crop` (zero-filled outside the image) before Resize + CenterCrop.
 */
import * as path from 'node:path';
import { readPts } from '../io/pts';
import { endsWith, globFiles, layoutError, mapLimit, pySorted, roundHalfEven } from './common';
import { loadOrGenerateSplits } from './splits';
import { DownstreamDataset, Sample, Split } from './types';

export interface CropBox {
  /** PIL box: columns left..right-1, rows top..bottom-1 (may extend past the image). */
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface Faces300WTarget {
  /** The box FT.crop cuts (after PIL's rounding). */
  crop: CropBox;
  /** The float box before rounding: x1, y1 and the side length. */
  bbox: { x1: number; y1: number; side: number };
  /** The landmarks as torch holds them (float32), x0, y0, x1, y1, ... */
  landmarks: Float32Array;
  /** The regression target: landmarks in the crop_size x crop_size network input, float32. */
  target: Float32Array;
}

export interface Faces300WSample extends Sample<Float32Array> {
  keypointsPath: string;
  crop: CropBox;
  landmarks: Float32Array;
}

export interface Faces300WDataset extends DownstreamDataset<Faces300WSample> {
  mode: string;
  splits: { trainval: Split<Faces300WSample>; train: Split<Faces300WSample>; val: Split<Faces300WSample>; test: Split<Faces300WSample> };
}

export interface Faces300WReadOptions {
  /** 'indoor+outdoor' (default, as eval_downstream), 'indoor' or 'outdoor'. */
  mode?: string;
  /** The network input size (eval_downstream's --crop-size, default 224): scales the targets. */
  cropSize?: number;
  /** Landmarks per file (default 68). */
  expectedPoints?: number;
}

/** The original's `__getitem__` landmark computation (pure; see the module comment). */
export function faces300wTarget(points: ArrayLike<number>, cropSize: number, file = '<points>'): Faces300WTarget {
  const f = Math.fround;
  const n = points.length / 2;
  if (!Number.isInteger(n) || n < 1) throw layoutError('expected at least one (x, y) landmark', file);
  const kp = Float32Array.from(points as ArrayLike<number>);
  let x1 = Infinity, x2 = -Infinity, y1 = Infinity, y2 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = kp[2 * i]!, y = kp[2 * i + 1]!;
    if (x < x1) x1 = x;
    if (x > x2) x2 = x;
    if (y < y1) y1 = y;
    if (y > y2) y2 = y;
  }
  const side = Math.max(Math.ceil(x2 - x1), Math.ceil(y2 - y1));
  const crop: CropBox = {
    left: roundHalfEven(x1), top: roundHalfEven(y1), right: roundHalfEven(x1 + side), bottom: roundHalfEven(y1 + side),
  };
  const w = crop.right - crop.left, h = crop.bottom - crop.top;
  const m = Math.min(w, h);
  if (m <= 0) throw layoutError(`the landmarks span a ${w}x${h} box; expected a face-sized area`, file);
  const px = f((w - m) / 2), py = f((h - m) / 2);
  const target = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const rx = f(kp[2 * i]! - x1), ry = f(kp[2 * i + 1]! - y1);
    target[2 * i] = f(f(f(rx - px) / m) * cropSize);
    target[2 * i + 1] = f(f(f(ry - py) / m) * cropSize);
  }
  return { crop, bbox: { x1, y1, side }, landmarks: kp, target };
}

function stem(p: string): string {
  return p.slice(0, p.length - path.extname(p).length);
}

/** Reads 300-W from `root` (the original's `<data-root>/300W`). */
export async function readFaces300W(root: string, opts: Faces300WReadOptions = {}): Promise<Faces300WDataset> {
  const mode = opts.mode ?? 'indoor+outdoor';
  const cropSize = opts.cropSize ?? 224;
  const dirs: string[] = [];
  if (mode.includes('indoor')) dirs.push('01_Indoor');
  if (mode.includes('outdoor')) dirs.push('02_Outdoor');
  if (dirs.length === 0) throw layoutError(`mode '${mode}' names neither 'indoor' nor 'outdoor'`, root, 'mode');
  let images: string[] = [], keypoints: string[] = [];
  for (const d of dirs) {
    const what = `the 300-W ${d} images (*.png) and landmark files (*.pts)`;
    images.push(...await globFiles(path.join(root, d), endsWith('.png'), what));
    keypoints.push(...await globFiles(path.join(root, d), endsWith('.pts'), what));
  }
  images = pySorted(images);
  keypoints = pySorted(keypoints);
  if (images.length === 0) throw layoutError(`no .png image in ${dirs.join(' or ')}; expected <name>.png with <name>.pts`, path.join(root, dirs[0]!));
  const imageSet = new Set(images), keypointSet = new Set(keypoints);
  const unpairedImg = images.filter((p) => !keypointSet.has(`${stem(p)}.pts`));
  const unpairedPts = keypoints.filter((p) => !imageSet.has(`${stem(p)}.png`));
  if (unpairedImg.length || unpairedPts.length) {
    const list = [...unpairedImg.map((p) => `${p} (no .pts)`), ...unpairedPts.map((p) => `${p} (no .png)`)];
    throw layoutError(`every image needs its landmark file of the same name; unpaired: ${list.slice(0, 5).join(', ')}` +
      (list.length > 5 ? ` and ${list.length - 5} more` : ''), list[0]!.replace(/ \(.*$/, ''));
  }
  for (let i = 0; i < images.length; i++) {
    if (stem(images[i]!) !== stem(keypoints[i]!)) {
      throw layoutError(`the sorted .png and .pts lists pair ${images[i]} with ${keypoints[i]} (the original pairs by ` +
        'sorted position); rename the files so that both orders agree', images[i]);
    }
  }
  const splitNames = ['train', 'valid', 'test'];
  const files = splitNames.map((s) => path.join(root, `${mode}_${s}.npy`));
  const idx = await loadOrGenerateSplits(files, images.length, [0.3, 0.3, 0.4], '300-W images');
  const used = [...new Set(idx.flatMap((s) => s.indices))].sort((a, b) => a - b);
  const computed = new Map<number, Faces300WSample>();
  await mapLimit(used, 16, async (i) => {
    const pts = await readPts(keypoints[i]!, { expectedPoints: opts.expectedPoints ?? 68 });
    const t = faces300wTarget(pts.points, cropSize, keypoints[i]!);
    computed.set(i, { path: images[i]!, target: t.target, keypointsPath: keypoints[i]!, crop: t.crop, landmarks: t.landmarks });
  });
  const mk = (k: number): Split<Faces300WSample> => ({ samples: idx[k]!.indices.map((i) => computed.get(i)!), source: idx[k]!.source });
  const train = mk(0), val = mk(1), test = mk(2);
  return {
    name: '300w', root, mode, task: 'regression', numClasses: null, metric: 'r2',
    splits: { trainval: { samples: [...train.samples, ...val.samples], source: 'train + valid (ConcatDataset)' }, train, val, test },
  };
}
