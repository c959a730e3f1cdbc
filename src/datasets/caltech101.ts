/**
 * Caltech-101 as the original's datasets/caltech101.py reads it, root = `<data-root>/Caltech101`:
 *
 *     Caltech101/train.txt, test.txt                  "<class>/<image> <label>" per line
 *     Caltech101/caltech101/101_ObjectCategories/<class>/<image>.jpg
 *
 * Each line gives the sample `<root>/caltech101/101_ObjectCategories/<line.split(' ')[0]>` with target
 * `int(line.split(' ')[1])`, in file order (duplicates kept: the original's split maker draws with
 * replacement). eval_downstream uses 'train' as trainval and 'test' as test; 102 classes (the 101
 * categories and BACKGROUND_Google, which the original keeps), metric mean per-class accuracy.
 *
 * The split files are made once by the original's `create_caltech101_splits` (not called by the
 * evaluation); `createCaltech101Splits` reproduces it: ImageFolder over 101_ObjectCategories,
 * `np.random.seed(0)`, per class `np.sort(np.random.choice(idxs, 30))` (with replacement), the rest as
 * test in ascending index order (CPython's iteration order of that int set on the real data).
 *
 * Checked (ERR_DATASET_LAYOUT naming file and line): the split file exists; every line has an image
 * path and an integer label >= 0 separated by one space; every listed image exists.
 */
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { listImageFolder } from '../data/image-folder';
import { RandomState } from '../random/mt19937';
import { checkFilesExist, layoutError, pyInt, pySplitlines, readTextFile } from './common';
import { DownstreamDataset, Sample, Split } from './types';

export const CALTECH101_IMAGE_DIR = path.join('caltech101', '101_ObjectCategories');

export interface Caltech101ReadOptions {
  /** Check that every listed image exists (default true). */
  checkFiles?: boolean;
}

export type Caltech101Dataset = DownstreamDataset<Sample<number>> & {
  splits: { trainval: Split<Sample<number>>; test: Split<Sample<number>> };
};

/** Parses a split file's text as the original does (one `<image> <label>` per line). */
export function parseCaltech101Split(text: string, root: string, file: string): Sample<number>[] {
  const samples: Sample<number>[] = [];
  const lines = pySplitlines(text);
  lines.forEach((line, i) => {
    const parts = line.split(' ');
    const label = parts.length >= 2 ? pyInt(parts[1]!) : null;
    if (parts.length < 2 || parts[0] === '' || label === null || label < 0) {
      throw layoutError(`expected '<class>/<image> <label>' (one space, a label >= 0), found ${JSON.stringify(line)}`, file, `line ${i + 1}`);
    }
    samples.push({ path: path.join(root, CALTECH101_IMAGE_DIR, parts[0]!), target: label });
  });
  if (samples.length === 0) throw layoutError("is empty; expected lines '<class>/<image> <label>'", file);
  return samples;
}

async function readSplit(root: string, split: 'train' | 'test', opts: Caltech101ReadOptions): Promise<Split<Sample<number>>> {
  const file = path.join(root, `${split}.txt`);
  const text = await readTextFile(file, `the Caltech-101 ${split} split ('<class>/<image> <label>' per line, ` +
    "as written by the original's create_caltech101_splits; see createCaltech101Splits)");
  const samples = parseCaltech101Split(text, root, file);
  if (opts.checkFiles !== false) await checkFilesExist(samples.map((s) => s.path), 'images', file);
  return { samples, source: `file ${split}.txt` };
}

/** Reads Caltech-101 from `root` (the original's `<data-root>/Caltech101`). */
export async function readCaltech101(root: string, opts: Caltech101ReadOptions = {}): Promise<Caltech101Dataset> {
  const trainval = await readSplit(root, 'train', opts);
  const test = await readSplit(root, 'test', opts);
  return {
    name: 'caltech101', root, task: 'classification', numClasses: 102, metric: 'mean per-class accuracy',
    splits: { trainval, test },
  };
}

/**
 * The original's `create_caltech101_splits(root, num_train_per_class)`: the lines of train.txt and
 * test.txt (`"<class>/<image> <label>"`). With `write`, writes them to `<root>/train.txt` and
 * `<root>/test.txt` (the original writes to a path relative to its working directory).
 */
export async function createCaltech101Splits(root: string, opts: { numTrainPerClass?: number; write?: boolean } = {}):
  Promise<{ train: string[]; test: string[] }> {
  const perClass = opts.numTrainPerClass ?? 30;
  const listing = await listImageFolder(path.join(root, CALTECH101_IMAGE_DIR));
  // '/'.join(image_id.split('/')[-2:]): the last two components of each path
  const ids = listing.samples.map((s) => s.path.split(path.sep).slice(-2).join('/'));
  const labels = listing.samples.map((s) => s.classIndex);
  const classIdxs: number[][] = listing.classes.map(() => []);
  labels.forEach((l, i) => classIdxs[l]!.push(i));
  const rs = new RandomState(0);
  const trainIdxs: number[] = [];
  for (const idxs of classIdxs) {
    const picks = rs.choice(idxs.length, perClass).map((j) => idxs[j]!).sort((a, b) => a - b);
    trainIdxs.push(...picks);
  }
  const inTrain = new Set(trainIdxs);
  const testIdxs = labels.map((_, i) => i).filter((i) => !inTrain.has(i));
  const line = (i: number): string => `${ids[i]} ${labels[i]}`;
  const train = trainIdxs.map(line), test = testIdxs.map(line);
  if (opts.write) {
    await fsp.writeFile(path.join(root, 'train.txt'), train.map((l) => `${l}\n`).join(''));
    await fsp.writeFile(path.join(root, 'test.txt'), test.map((l) => `${l}\n`).join(''));
  }
  return { train, test };
}
