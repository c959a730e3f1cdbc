/**
 * The index splits that the original's 300W and Leeds Sports Pose readers load from `.npy` files, or
 * generate (and save) when the file is missing: `np.random.seed(0); idxs = np.arange(n);
 * np.random.shuffle(idxs)`, cut at `int(n * fraction)` boundaries. Generation is deterministic, so
 * the readers compute a missing split in memory instead of writing into the data set's directory.
 */
import { readNpy } from '../io/npy';
import { RandomState } from '../random/mt19937';
import { exists, layoutError } from './common';

/**
 * `generate_dataset_splits(n, split_sizes)`: the seed-0 shuffle of arange(n) cut into consecutive
 * parts at int(n * sum(split_sizes[:k])) (float64 sums, as Python's sum()).
 */
export function generateShuffleSplits(n: number, sizes: readonly number[]): number[][] {
  const idxs = new RandomState(0).permutation(n);
  const out: number[][] = [];
  let start = 0;
  let acc = 0;
  for (let k = 0; k < sizes.length; k++) {
    acc += sizes[k]!;
    const end = k === sizes.length - 1 ? n : Math.trunc(n * acc);
    out.push(idxs.slice(start, end));
    start = end;
  }
  return out;
}

/** Reads a split `.npy` (a 1-D integer array of indices into `n` items), checking every index. */
export async function readIndexNpy(file: string, n: number, what: string): Promise<number[]> {
  const arr = await readNpy(file);
  if (arr.dtype !== 'int64' && arr.dtype !== 'int32') {
    throw layoutError(`dtype is ${arr.dtype}; expected a 1-D integer array of indices into the ${n} ${what}`, file, 'descr');
  }
  if (arr.shape.length !== 1) {
    throw layoutError(`shape is (${arr.shape.join(', ')}); expected a 1-D integer array of indices into the ${n} ${what}`, file, 'shape');
  }
  if (arr.shape[0] === 0) throw layoutError(`is empty; expected indices into the ${n} ${what}`, file, 'shape');
  const out: number[] = new Array(arr.data.length);
  for (let i = 0; i < arr.data.length; i++) {
    const v = Number(arr.data[i]!);
    if (!(v >= 0 && v < n)) {
      throw layoutError(`index ${arr.data[i]} at position ${i} is outside 0..${n - 1} (there are ${n} ${what})`, file, `[${i}]`);
    }
    out[i] = v;
  }
  return out;
}

export interface IndexSplit {
  indices: number[];
  source: string;
}

/**
 * Each named split from its file when it exists, else from `generateShuffleSplits` (what the original
 * would write there). Indices shared by two splits are an error naming both files.
 */
export async function loadOrGenerateSplits(files: readonly string[], n: number, sizes: readonly number[], what: string):
  Promise<IndexSplit[]> {
  let generated: number[][] | undefined;
  const out: IndexSplit[] = [];
  for (let k = 0; k < files.length; k++) {
    const file = files[k]!;
    if (await exists(file)) {
      out.push({ indices: await readIndexNpy(file, n, what), source: `file ${file}` });
    } else {
      if (n === 0) throw layoutError(`no ${what} to split`, file);
      generated ??= generateShuffleSplits(n, sizes);
      out.push({ indices: generated[k]!, source: `generated (the original's generate_dataset_splits: seed 0 shuffle of ${n} ${what}); ${file} does not exist` });
    }
  }
  const owner = new Map<number, number>();
  for (let k = 0; k < out.length; k++) {
    for (const i of new Set(out[k]!.indices)) {
      const prev = owner.get(i);
      if (prev !== undefined && prev !== k) {
        throw layoutError(`index ${i} is in both ${files[prev]} and ${files[k]}; expected disjoint splits`, files[k]);
      }
      owner.set(i, k);
    }
  }
  return out;
}
