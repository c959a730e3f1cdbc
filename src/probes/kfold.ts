/**
 * scikit-learn 1.2's KFold(n_splits, shuffle=True, random_state=seed).split(X), split for split:
 * the indices 0..n-1 are shuffled by `np.random.RandomState(seed).shuffle` (reproduced in
 * src/random/mt19937.ts), the first n % k folds get n // k + 1 samples and the rest n // k, each test
 * fold is the next contiguous run of the shuffled order, and both the test and the train indices are
 * returned in increasing order (split() builds them from boolean masks).
 *
 * The original calls KFold(n_splits=k, shuffle=True) without a seed, so its splits come from numpy's
 * global generator and differ from run to run (and from one regularisation value to the next, since
 * it calls split() again for each). Ours are seeded and the same for every regularisation value, as
 * scikit-learn gives them for an integer random_state.
 */
import { SslInvError } from '../errors';
import { RandomState } from '../random/mt19937';

export interface Fold {
  /** Training rows, increasing. */
  train: Int32Array;
  /** Validation (test) rows, increasing. */
  test: Int32Array;
}

/** The folds of KFold(nSplits, shuffle, random_state=seed) over n samples. */
export function kfoldSplits(n: number, nSplits: number, opts: { shuffle?: boolean; seed?: number } = {}): Fold[] {
  if (!Number.isSafeInteger(nSplits) || nSplits < 2) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `k-fold cross-validation needs at least 2 folds, got ${nSplits}`);
  }
  if (!Number.isSafeInteger(n) || n < nSplits) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `cannot have ${nSplits} folds with only ${n} samples`);
  }
  const shuffle = opts.shuffle ?? true;
  const indices = new Int32Array(n);
  for (let i = 0; i < n; i++) indices[i] = i;
  if (shuffle) new RandomState(opts.seed ?? 0).shuffle(indices);
  const base = Math.floor(n / nSplits), extra = n % nSplits;
  const folds: Fold[] = [];
  let current = 0;
  for (let f = 0; f < nSplits; f++) {
    const size = base + (f < extra ? 1 : 0);
    const mask = new Uint8Array(n);
    for (let i = current; i < current + size; i++) mask[indices[i]!] = 1;
    current += size;
    const test = new Int32Array(size), train = new Int32Array(n - size);
    let a = 0, b = 0;
    for (let i = 0; i < n; i++) {
      if (mask[i]) test[a++] = i;
      else train[b++] = i;
    }
    folds.push({ train, test });
  }
  return folds;
}
