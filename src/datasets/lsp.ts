/**
 * Leeds Sports Pose as the original's datasets/leeds_sports_pose.py reads it, root =
 * `<data-root>/LeedsSportsPose`:
 *
 *     LeedsSportsPose/images/im0001.jpg ... (glob images/*.jpg, sorted)
 *     LeedsSportsPose/joints.mat             joints: 3 x 14 x N (x, y, visibility; N = number of images)
 *     LeedsSportsPose/train.npy, test.npy    (optional; generated as the original does when missing:
 *                                             seed 0 shuffle, 60% / 40%)
 *
 * Sample i is the i-th sorted image with joints[:, :, i]. eval_downstream: trainval = train, test =
 * test, regression (R^2).
 *
 * Per sample (`__getitem__`, computed by `lspTarget`, float64 throughout as the original's numpy
 * joints are): with w, h the image's size and m = min(w, h), the centred square crop at
 * left = int((w - m) / 2), top = int((h - m) / 2); joints relative to it; then
 * ((x - 0) / m) * crop_size and ((y - 0) / m) * crop_size (the crop is square), visibility dropped,
 * flattened to [x0, y0, ..., x13, y13].
 *
 * Checked (ERR_DATASET_LAYOUT naming file and field): `joints` is a numeric 3 x 14 x N array (the
 * original indexes it as joints[coord, joint, image]; the 14 x 3 x N layout of LSP-extended would be
 * read as garbage, so it is refused with both shapes named); N equals the number of images; the values
 * are finite; the split files hold valid, disjoint indices.
 */
import * as path from 'node:path';
import { getMatNumeric, matValues, readMat } from '../io/mat';
import { endsWith, globFiles, layoutError, mapLimit, pySorted, readImageSize, ImageSize } from './common';
import { loadOrGenerateSplits } from './splits';
import { CropBox } from './faces300w';
import { DownstreamDataset, Sample, Split } from './types';

export const LSP_JOINTS = 14;

export interface LspSample extends Sample<Float64Array> {
  /** joints[:, :, i] as (x, y, visibility) x 14, float64. */
  joints: Float64Array;
  imageSize: ImageSize;
  crop: CropBox;
}

export interface LspDataset extends DownstreamDataset<LspSample> {
  splits: { trainval: Split<LspSample>; test: Split<LspSample> };
}

export interface LspReadOptions {
  /** The network input size (eval_downstream's --crop-size, default 224): scales the targets. */
  cropSize?: number;
}

/** The original's joint transform for one image (pure). `joints` is (x, y, visibility) x n. */
export function lspTarget(joints: ArrayLike<number>, width: number, height: number, cropSize: number): { crop: CropBox; target: Float64Array } {
  const m = Math.min(width, height);
  const left = width >= m ? Math.trunc((width - m) / 2) : 0;
  const top = height >= m ? Math.trunc((height - m) / 2) : 0;
  const n = Math.trunc(joints.length / 3);
  const target = new Float64Array(2 * n);
  // After the crop the image is m x m, so (w - min_side) / 2 == 0.0.
  const off = (m - m) / 2;
  for (let j = 0; j < n; j++) {
    const x = joints[3 * j]! - left, y = joints[3 * j + 1]! - top;
    target[2 * j] = ((x - off) / m) * cropSize;
    target[2 * j + 1] = ((y - off) / m) * cropSize;
  }
  return { crop: { left, top, right: left + m, bottom: top + m }, target };
}

/** Reads Leeds Sports Pose from `root` (the original's `<data-root>/LeedsSportsPose`). */
export async function readLeedsSportsPose(root: string, opts: LspReadOptions = {}): Promise<LspDataset> {
  const cropSize = opts.cropSize ?? 224;
  const images = pySorted(await globFiles(path.join(root, 'images'), endsWith('.jpg'), 'the LSP images (images/*.jpg)'));
  if (images.length === 0) throw layoutError('no .jpg image; expected the LSP images im0001.jpg ...', path.join(root, 'images'));
  const jointsFile = path.join(root, 'joints.mat');
  const mat = await readMat(jointsFile).catch((e) => {
    if ((e as { code?: string })?.code === 'ERR_FILE_NOT_FOUND') throw layoutError('missing file; expected joints.mat with joints (3 x 14 x N)', jointsFile, undefined, e);
    throw e;
  });
  const a = getMatNumeric(mat, 'joints', 'a 3 x 14 x N array of joint coordinates');
  const dims = a.dims;
  if (dims.length !== 3 || dims[0] !== 3 || dims[1] !== LSP_JOINTS) {
    const hint = dims.length === 3 && dims[0] === LSP_JOINTS && dims[1] === 3 ? ' (the LSP-extended layout, 14 x 3 x N)' : '';
    throw layoutError(`has shape ${dims.join(' x ')}${hint}; expected 3 x 14 x N (x/y/visibility x joint x image), as the original indexes it`,
      jointsFile, 'joints');
  }
  const n = dims[2]!;
  if (n !== images.length) {
    throw layoutError(`has shape 3 x 14 x ${n} but images/ holds ${images.length} .jpg files; expected one joint set per image`, jointsFile, 'joints');
  }
  const vals = matValues(a, jointsFile);
  for (let i = 0; i < vals.length; i++) {
    if (!Number.isFinite(vals[i]!)) throw layoutError(`holds a non-finite value (${vals[i]})`, jointsFile, 'joints');
  }
  // Row-major 3 x 14 x N: value (c, j, i) at (c * 14 + j) * N + i.
  const jointsOf = (i: number): Float64Array => {
    const out = new Float64Array(3 * LSP_JOINTS);
    for (let j = 0; j < LSP_JOINTS; j++) for (let c = 0; c < 3; c++) out[3 * j + c] = vals[(c * LSP_JOINTS + j) * n + i]!;
    return out;
  };
  const idx = await loadOrGenerateSplits([path.join(root, 'train.npy'), path.join(root, 'test.npy')], images.length, [0.6, 0.4], 'LSP images');
  const used = [...new Set(idx.flatMap((s) => s.indices))].sort((x, y) => x - y);
  const samples = new Map<number, LspSample>();
  await mapLimit(used, 32, async (i) => {
    const size = await readImageSize(images[i]!);
    const joints = jointsOf(i);
    const t = lspTarget(joints, size.width, size.height, cropSize);
    samples.set(i, { path: images[i]!, target: t.target, joints, imageSize: size, crop: t.crop });
  });
  const mk = (k: number): Split<LspSample> => ({ samples: idx[k]!.indices.map((i) => samples.get(i)!), source: idx[k]!.source });
  return {
    name: 'leeds_sports_pose', root, task: 'regression', numClasses: null, metric: 'r2',
    splits: { trainval: mk(0), test: mk(1) },
  };
}
