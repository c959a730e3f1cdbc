/**
 * CIFAR-10 as eval_downstream.py reads it: `torchvision.datasets.CIFAR10(root, train=..., download=True)`
 * with root = `<data-root>/CIFAR10`, i.e. the files of `<root>/cifar-10-batches-py/`:
 *   - trainval (the original's 'train' split, used as trainval): data_batch_1 .. data_batch_5, in that
 *     order, 50,000 images;
 *   - test: test_batch, 10,000 images;
 *   - batches.meta: the 10 class names (torchvision loads it; so do we).
 * Sample i of a split is row i of the concatenated batches; its target is the label
 * (`entry['labels']`). Images are not files: each sample names its batch file and row, and the split
 * carries the batches' bytes (see `cifarImage`).
 *
 * torchvision (download=True) verifies the MD5 of every batch and of batches.meta, and otherwise
 * downloads the archive again; here a mismatch is an error (ERR_DATASET_LAYOUT naming the file and
 * both checksums) unless `verifyChecksums: false`.
 */
import * as path from 'node:path';
import { cifarImageHWC, parseCifarBatch, parseCifarMeta, CifarBatch } from '../io/cifar';
import { layoutError, md5Hex, readBinaryFile } from './common';
import { DownstreamDataset, Sample, Split } from './types';

export const CIFAR10_BASE_FOLDER = 'cifar-10-batches-py';

/** torchvision 0.14's CIFAR10 file lists and MD5s. */
export const CIFAR10_TRAIN_FILES: readonly (readonly [string, string])[] = [
  ['data_batch_1', 'c99cafc152244af753f735de768cd75f'],
  ['data_batch_2', 'd4bba439e000b95fd0a9bffe97cbabec'],
  ['data_batch_3', '54ebc095f3ab1f0389bbae665268c751'],
  ['data_batch_4', '634d18415352ddfa80567beed471001a'],
  ['data_batch_5', '482c414d41f54cd18b22e5b47cb7c3cb'],
];
export const CIFAR10_TEST_FILES: readonly (readonly [string, string])[] = [['test_batch', '40351d587109b95175f43aff81a1287e']];
export const CIFAR10_META: readonly [string, string] = ['batches.meta', '5ff9c542aee3614f3951f8cda6e48888'];

export interface CifarSample extends Sample<number> {
  /** The batch file. */
  path: string;
  /** The row in that batch. */
  index: number;
}

export interface CifarSplit extends Split<CifarSample> {
  /** The batches of the split, in order (sample i is in batch floor-by-rows). */
  batches: CifarBatch[];
}

export interface CifarDataset extends DownstreamDataset<CifarSample> {
  classes: string[];
  splits: { trainval: CifarSplit; test: CifarSplit };
}

export interface CifarReadOptions {
  /** Check torchvision's MD5s of the batch files (default true). */
  verifyChecksums?: boolean;
  /** Rows per batch (default 10000; smaller only for test fixtures). */
  expectedRows?: number;
}

async function readBatch(dir: string, name: string, md5: string, opts: CifarReadOptions): Promise<CifarBatch> {
  const file = path.join(dir, name);
  const buf = await readBinaryFile(file, `the CIFAR-10 python batch '${name}' (from cifar-10-python.tar.gz)`);
  if (opts.verifyChecksums !== false) checkMd5(buf, file, md5);
  return parseCifarBatch(buf, file, opts.expectedRows !== undefined ? { expectedRows: opts.expectedRows } : {});
}

function checkMd5(buf: Uint8Array, file: string, md5: string): void {
  const got = md5Hex(buf);
  if (got !== md5) {
    throw layoutError(`MD5 ${got} differs from torchvision's ${md5} for this file (the original would download ` +
      'the data set again); pass --no-verify-checksums (verifyChecksums: false in the API) to read it anyway', file, 'md5');
  }
}

async function readSplit(dir: string, files: readonly (readonly [string, string])[], opts: CifarReadOptions, source: string): Promise<CifarSplit> {
  const batches: CifarBatch[] = [];
  for (const [name, md5] of files) batches.push(await readBatch(dir, name, md5, opts));
  const samples: CifarSample[] = [];
  for (const b of batches) for (let i = 0; i < b.rows; i++) samples.push({ path: b.file, index: i, target: b.labels[i]! });
  return { samples, batches, source };
}

/** Reads CIFAR-10 from `root` (the original's `<data-root>/CIFAR10`). */
export async function readCifar10(root: string, opts: CifarReadOptions = {}): Promise<CifarDataset> {
  const dir = path.join(root, CIFAR10_BASE_FOLDER);
  const metaFile = path.join(dir, CIFAR10_META[0]);
  const metaBuf = await readBinaryFile(metaFile, "CIFAR-10's batches.meta (class names)");
  if (opts.verifyChecksums !== false) checkMd5(metaBuf, metaFile, CIFAR10_META[1]);
  const meta = parseCifarMeta(metaBuf, metaFile);
  const trainval = await readSplit(dir, CIFAR10_TRAIN_FILES, opts, 'data_batch_1..5 (torchvision train=True)');
  const test = await readSplit(dir, CIFAR10_TEST_FILES, opts, 'test_batch (torchvision train=False)');
  return {
    name: 'cifar10', root, task: 'classification', numClasses: 10, metric: 'accuracy', classes: meta.labelNames,
    splits: { trainval, test },
  };
}

/** Sample `i` of a split as a 32x32 HWC uint8 image (what torchvision hands to PIL). */
export function cifarImage(split: CifarSplit, i: number): { data: Uint8Array; width: 32; height: 32 } {
  let k = i;
  for (const b of split.batches) {
    if (k < b.rows) return { data: cifarImageHWC(b.data, k), width: 32, height: 32 };
    k -= b.rows;
  }
  throw new RangeError(`sample ${i} is past the split's ${split.samples.length} samples`);
}


