/**
 * What the data-set readers return: plain descriptions (paths, targets, the per-sample values the
 * original computes from the files), never decoded images.
 */

/** One sample: an image file and its target. Readers extend it with what the original uses. */
export interface Sample<T = unknown> {
  /** The image file (the data set's root joined with the original's relative path). */
  path: string;
  /** Class index (classification) or regression target, as the original's `__getitem__` returns it. */
  target: T;
}

export interface Split<S extends Sample = Sample> {
  samples: S[];
  /** Where the split came from (e.g. 'file train.npy', 'generated: seed 0 shuffle of 600 images'). */
  source: string;
}

export type SplitName = 'trainval' | 'train' | 'val' | 'test';

export type Task = 'classification' | 'regression';

export type Metric = 'accuracy' | 'mean per-class accuracy' | 'r2';

/**
 * A downstream (or extrinsic) data set. `trainval` and `test` are what eval_downstream.py fits and
 * scores on (trainval = train + val where the original concatenates them); `train` and `val` are
 * given where the original reads them separately.
 */
export interface DownstreamDataset<S extends Sample = Sample> {
  /** The original's name (eval_downstream's `--dataset`, lower case). */
  name: string;
  /** The directory that was read. */
  root: string;
  task: Task;
  /** The original's num_classes (null for regression). */
  numClasses: number | null;
  metric: Metric;
  splits: Partial<Record<SplitName, Split<S>>>;
}

/** The views of one class/object/scene that a real-world invariance evaluation compares. */
export interface ViewGroup {
  name: string;
  files: string[];
}

export interface RealWorldDataset {
  /** The original's name (eval_realworld_invariance's `--dataset`). */
  name: string;
  root: string;
  /** The original's nominal number of views per group (DATA_INFO k; informational, the original does not use it). */
  k: number;
  /** One group per class_idx 0..num_classes-1, in that order. */
  groups: ViewGroup[];
}
