/**
 * Causal3DIdent as the original's datasets/causal_3d_ident.py reads it for eval_causal3dident.py,
 * root = `<data-root>/Causal3DIdent`:
 *
 *     Causal3DIdent/trainset/<class>/<image>.png ...   (torchvision ImageFolder, 7 classes)
 *     Causal3DIdent/trainset/latents_0.npy ... latents_6.npy   (one row of 10 latents per image)
 *     Causal3DIdent/testset/...                                (the same)
 *
 * Sample i is ImageFolder's i-th sample (classes sorted, files sorted within each), and its latents
 * are row i of `np.concatenate([latents_0, ..., latents_6])`. The target is the class index for
 * target 'class', else `latent[int(target)]` (eval_causal3dident's --target, 0-9: object position
 * x, y, z, object rotation x, y, z, spotlight angle, object hue, spotlight hue, background hue).
 * The evaluation uses trainset as trainval and testset as test (KernelRidge regression, R^2).
 *
 * Checked (ERR_DATASET_LAYOUT naming the file): both split folders are ImageFolders; there are 7
 * class folders and 7 latents files; each latents file is a 2-D float array with as many rows as its
 * class folder has images (the original only concatenates and would silently misalign them); every
 * latent is finite (a NaN or infinite value, field `row R, latent L`, 0-based within the file, would
 * poison the regression); the target index exists.
 */
import * as path from 'node:path';
import { listImageFolder } from '../data/image-folder';
import { readNpy, NpyArray } from '../io/npy';
import { SslInvError } from '../errors';
import { layoutError } from './common';
import { DownstreamDataset, Sample, Split } from './types';
import { firstNonFinite } from '../io/finite';

export const CAUSAL3DIDENT_NUM_CLASSES = 7;

export type Causal3DIdentTarget = 'class' | number;

export interface Causal3DIdentSample extends Sample<number> {
  classIndex: number;
  /** The image's row of latents (float64 values of the .npy's dtype). */
  latents: number[];
}

export interface Causal3DIdentDataset extends DownstreamDataset<Causal3DIdentSample> {
  targetType: Causal3DIdentTarget;
  classes: string[];
  splits: { trainval: Split<Causal3DIdentSample>; test: Split<Causal3DIdentSample> };
}

export interface Causal3DIdentReadOptions {
  /** 'class' or a latent index 0..9 (the original's --target, default '0'). */
  target?: Causal3DIdentTarget | string;
}

/** Parses the original's target_type: 'class' or int(str). */
export function parseCausal3DIdentTarget(t: Causal3DIdentTarget | string | undefined): Causal3DIdentTarget {
  if (t === undefined) return 0;
  if (t === 'class') return 'class';
  const n = typeof t === 'number' ? t : /^\s*\d+\s*$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(n) || n < 0) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `target must be 'class' or a latent index 0-9, not ${JSON.stringify(t)}`, { field: 'target' });
  }
  return n;
}

async function readLatents(file: string): Promise<NpyArray> {
  try {
    return await readNpy(file);
  } catch (e) {
    if ((e as { code?: string })?.code === 'ERR_FILE_NOT_FOUND') {
      throw layoutError('missing file; expected the latents of one class (an N x 10 float array)', file, undefined, e);
    }
    throw e;
  }
}

async function readSplit(root: string, split: 'train' | 'test', target: Causal3DIdentTarget): Promise<{ split: Split<Causal3DIdentSample>; classes: string[] }> {
  const dir = path.join(root, `${split}set`);
  const listing = await listImageFolder(dir);
  if (listing.classes.length !== CAUSAL3DIDENT_NUM_CLASSES) {
    throw layoutError(`has ${listing.classes.length} class folders (${listing.classes.join(', ')}); expected ${CAUSAL3DIDENT_NUM_CLASSES}, ` +
      'one per object, matching latents_0.npy .. latents_6.npy', dir);
  }
  const counts = new Array<number>(CAUSAL3DIDENT_NUM_CLASSES).fill(0);
  for (const s of listing.samples) counts[s.classIndex]!++;
  const rows: number[][] = [];
  let columns = -1;
  for (let c = 0; c < CAUSAL3DIDENT_NUM_CLASSES; c++) {
    const file = path.join(dir, `latents_${c}.npy`);
    const a = await readLatents(file);
    if (a.shape.length !== 2 || (a.dtype !== 'float32' && a.dtype !== 'float64')) {
      throw layoutError(`is a ${a.dtype} array of shape (${a.shape.join(', ')}); expected a 2-D float array (one row of latents per image)`, file);
    }
    if (columns >= 0 && a.shape[1] !== columns) throw layoutError(`has ${a.shape[1]} latents per row; latents_0.npy has ${columns}`, file);
    columns = a.shape[1]!;
    if (a.shape[0] !== counts[c]) {
      throw layoutError(`has ${a.shape[0]} rows but class folder ${listing.classes[c]} (index ${c}) holds ${counts[c]} images; ` +
        'expected one row per image', file);
    }
    const values = a.data as Float32Array | Float64Array;
    const i = firstNonFinite(values);
    if (i >= 0) {
      const r = Math.floor(i / columns), l = i % columns;
      throw layoutError(`holds a non-finite value (${values[i]}) at row ${r}, latent ${l}; expected finite latents`, file, `row ${r}, latent ${l}`);
    }
    for (let r = 0; r < a.shape[0]!; r++) rows.push(Array.from(values.subarray(r * columns, (r + 1) * columns)));
  }
  if (target !== 'class' && target >= columns) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `target latent ${target} does not exist: the latents have ${columns} columns (0..${columns - 1})`,
      { file: path.join(dir, 'latents_0.npy'), field: 'target' });
  }
  const samples = listing.samples.map((s, i) => ({
    path: s.path, classIndex: s.classIndex, latents: rows[i]!, target: target === 'class' ? s.classIndex : rows[i]![target]!,
  }));
  return { split: { samples, source: `${split}set (ImageFolder)` }, classes: listing.classes };
}

/** Reads Causal3DIdent from `root` (the original's `<data-root>/Causal3DIdent`). */
export async function readCausal3DIdent(root: string, opts: Causal3DIdentReadOptions = {}): Promise<Causal3DIdentDataset> {
  const target = parseCausal3DIdentTarget(opts.target);
  const train = await readSplit(root, 'train', target);
  const test = await readSplit(root, 'test', target);
  return {
    // eval_causal3dident regresses every target with KernelRidge (R^2), the class index included.
    name: 'causal3dident', root, task: 'regression',
    numClasses: CAUSAL3DIDENT_NUM_CLASSES, metric: 'r2', targetType: target, classes: train.classes,
    splits: { trainval: train.split, test: test.split },
  };
}
