/**
 * Oxford Flowers-102 as the original's datasets/flowers.py reads it, root = `<data-root>/Flowers`:
 *
 *     Flowers/setid.mat        trnid, valid, tstid: 1 x N row vectors of 1-based image numbers
 *     Flowers/imagelabels.mat  labels: 1 x 8189 row vector, the class (1..102) of each image
 *     Flowers/jpg/image_00001.jpg ...
 *
 * `make_dataset(root, split)`: the split's numbers in file order, sample `jpg/image_{n:05}.jpg`;
 * `labels[n - 1]`; the targets are the positions of those labels in the sorted distinct labels OF THAT
 * SPLIT (`np.unique`), recomputed per split. On the real data every split holds all 102 classes, so
 * target = label - 1; a split missing a class shifts the targets of the classes after it (followed as
 * the original computes it). eval_downstream: trainval = train + val (eval_downstream asks for split
 * 'valid', which make_dataset does not know, and its fallback asks for 'val'), test = tstid. Metric:
 * plain accuracy — eval_downstream picks mean per-class accuracy with `isinstance(trainval, Flowers)`,
 * but Flowers' trainval is a ConcatDataset, so the test is false (Caltech101's is not concatenated and
 * gets mean per-class accuracy). Followed as the code computes it.
 *
 * Checked, each ERR_DATASET_LAYOUT (or ERR_MAT_FORMAT for a broken .mat) naming file and field:
 * each variable exists and is a numeric 1 x N row vector (the original's `.squeeze(0)`); indices are
 * integers in 1..len(labels) (the original turns 0 into -1 and silently takes the last label, or with
 * unsigned storage fails); no index appears twice in a split or in two splits; every image exists.
 * The original formats the numbers with `{n:05}`, which gives 'image_001.0.jpg' if they are stored as
 * double class: integral doubles are accepted here as the integers they evidently mean.
 */
import * as path from 'node:path';
import { getMatNumeric, matValues, readMat, MatFile, MatNumericArray } from '../io/mat';
import { checkFilesExist, layoutError } from './common';
import { DownstreamDataset, Sample, Split } from './types';

export type FlowersSplitName = 'train' | 'val' | 'test';

/** make_dataset's split names to setid.mat variables. */
export const FLOWERS_SPLIT_VARS: Readonly<Record<FlowersSplitName, string>> = { train: 'trnid', val: 'valid', test: 'tstid' };

export interface FlowersSample extends Sample<number> {
  /** The 1-based image number from setid.mat. */
  imageId: number;
  /** The label from imagelabels.mat (before the per-split re-indexing). */
  label: number;
}

export interface FlowersDataset extends DownstreamDataset<FlowersSample> {
  splits: { trainval: Split<FlowersSample>; train: Split<FlowersSample>; val: Split<FlowersSample>; test: Split<FlowersSample> };
}

export interface FlowersReadOptions {
  /** Check that every image exists (default true). */
  checkFiles?: boolean;
}

/** A numeric 1 x N variable as numbers (the original's `loadmat(f)[name].squeeze(0)`). */
function rowVector(mat: MatFile, name: string, what: string): number[] {
  const a: MatNumericArray = getMatNumeric(mat, name, `a 1 x N row vector of ${what}`);
  if (a.dims.length !== 2 || a.dims[0] !== 1) {
    throw layoutError(`has size ${a.dims.join('x')}; expected a 1 x N row vector of ${what}`, mat.file, name);
  }
  return matValues(a, mat.file);
}

/** `f'image_{n:05}.jpg'` for a non-negative integer n. */
export function flowersImageName(n: number): string {
  return `image_${String(n).padStart(5, '0')}.jpg`;
}

/**
 * The per-split target mapping of make_dataset: each label's position among the sorted distinct
 * labels of the split.
 */
export function flowersTargets(labels: readonly number[]): number[] {
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const idx = new Map(classes.map((c, i) => [c, i] as [number, number]));
  return labels.map((l) => idx.get(l)!);
}

/** make_dataset(root, split) on already-read variables (pure; validates the indices). */
export function flowersSplit(root: string, ids: readonly number[], allLabels: readonly number[], setidFile: string, varName: string): FlowersSample[] {
  const labels = ids.map((n, i) => {
    if (!Number.isInteger(n)) throw layoutError(`element ${i} is ${n}; expected an integer image number`, setidFile, varName);
    if (n < 1 || n > allLabels.length) {
      throw layoutError(`element ${i} is ${n}; expected an image number in 1..${allLabels.length} (the length of ` +
        "imagelabels.mat's labels)", setidFile, varName);
    }
    return allLabels[n - 1]!;
  });
  const targets = flowersTargets(labels);
  return ids.map((n, i) => ({ path: path.join(root, 'jpg', flowersImageName(n)), target: targets[i]!, imageId: n, label: labels[i]! }));
}

/** Reads Flowers-102 from `root` (the original's `<data-root>/Flowers`). */
export async function readFlowers(root: string, opts: FlowersReadOptions = {}): Promise<FlowersDataset> {
  const setidFile = path.join(root, 'setid.mat');
  const labelsFile = path.join(root, 'imagelabels.mat');
  const setid = await readMat(setidFile).catch((e) => { throw missing(e, setidFile, 'setid.mat with trnid, valid and tstid'); });
  const labelMat = await readMat(labelsFile).catch((e) => { throw missing(e, labelsFile, 'imagelabels.mat with labels'); });
  const allLabels = rowVector(labelMat, 'labels', 'class labels');
  for (let i = 0; i < allLabels.length; i++) {
    if (!Number.isFinite(allLabels[i]!)) throw layoutError(`element ${i} is ${allLabels[i]}; expected a class label`, labelsFile, 'labels');
  }
  const ids: Record<FlowersSplitName, number[]> = {
    train: rowVector(setid, FLOWERS_SPLIT_VARS.train, 'image numbers'),
    val: rowVector(setid, FLOWERS_SPLIT_VARS.val, 'image numbers'),
    test: rowVector(setid, FLOWERS_SPLIT_VARS.test, 'image numbers'),
  };
  const owner = new Map<number, string>();
  for (const split of ['train', 'val', 'test'] as const) {
    const v = FLOWERS_SPLIT_VARS[split];
    for (const n of ids[split]) {
      const prev = owner.get(n);
      if (prev !== undefined) {
        throw layoutError(prev === v ? `image number ${n} appears twice; expected each image once`
          : `image number ${n} is in both ${prev} and ${v}; expected disjoint splits`, setidFile, v);
      }
      owner.set(n, v);
    }
  }
  const mk = (split: FlowersSplitName): Split<FlowersSample> => ({
    samples: flowersSplit(root, ids[split], allLabels, setidFile, FLOWERS_SPLIT_VARS[split]),
    source: `setid.mat ${FLOWERS_SPLIT_VARS[split]}`,
  });
  const train = mk('train'), val = mk('val'), test = mk('test');
  if (opts.checkFiles !== false) {
    await checkFilesExist([...train.samples, ...val.samples, ...test.samples].map((s) => s.path), 'images', setidFile);
  }
  return {
    name: 'flowers', root, task: 'classification', numClasses: 102, metric: 'accuracy',
    splits: { trainval: { samples: [...train.samples, ...val.samples], source: 'train + val (ConcatDataset)' }, train, val, test },
  };
}

function missing(e: unknown, file: string, what: string): unknown {
  if ((e as { code?: string })?.code === 'ERR_FILE_NOT_FOUND') return layoutError(`missing file; expected ${what}`, file, undefined, e);
  return e;
}
