/**
 * Transfer (eval_downstream.py) and extrinsic (eval_causal3dident.py) evaluations: features of a
 * data set's trainval and test splits, then the original's probe search.
 *
 * Differences from the original, on purpose: features are computed in the data set's order, not in
 * a shuffled DataLoader's, and the K-fold split is seeded (the original's is unseeded, so its CV
 * folds differ run to run); Causal3DIdent's subset (the first 5 x 4096 trainval and 10 x 4096 test
 * samples of a shuffled loader in the original) is a seeded permutation's prefix; --quick keeps a
 * seeded subset of 100 batches (the original stops its shuffled loader after 100 batches).
 */
import { throwIfAborted } from '../abort';
import type { DecodeOptions } from '../data/decode';
import { EvalTransform } from '../data/preprocess';
import { ImageU8 } from '../image-ops';
import { cifarImage, CifarSplit, DownstreamDataset, Sample, Split } from '../datasets';
import { classificationProbe, FeatureMatrix, ProbeResult, regressionProbe, kernelRidgeProbe, KernelRidgeProbeResult } from '../probes/cv';
import { RandomState } from '../random/mt19937';
import { NamedModel } from './models';
import { fileImages, ImageSource, sampleFeatures } from './sample-features';
import { ProgressSink } from './synthetic-run';

/** Where a split's images come from: CIFAR batches in memory, or files (cut to crop boxes). */
export function imageSourceFor(split: Split<Sample>, decode?: DecodeOptions): ImageSource<Sample> {
  const cifar = (split as CifarSplit).batches;
  if (cifar) {
    return { load: async (_s, i): Promise<ImageU8> => ({ ...cifarImage(split as CifarSplit, i), channels: 3 }) };
  }
  return fileImages(decode) as unknown as ImageSource<Sample>;
}

/** A seeded subset: the first `count` of a numpy permutation (positions in sorted order). */
export function seededSubset(n: number, count: number, seed: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  return new RandomState(seed).permutation(n).slice(0, count).sort((a, b) => a - b);
}

export interface SplitFeatures {
  x: FeatureMatrix;
  /** Targets: class indices, or row-major [rows, T] float64 values. */
  y: Float64Array;
  targetDim: number;
  rows: number[];
}

export async function splitFeatures(model: NamedModel, split: Split<Sample>, positions: number[], transform: EvalTransform,
  batchSize: number, sink: ProgressSink, label: string, decode?: DecodeOptions, signal?: AbortSignal): Promise<SplitFeatures> {
  const samples = positions.map((p) => split.samples[p]!);
  const source = imageSourceFor(split, decode);
  const positioned: ImageSource<Sample> = { load: (s, i) => source.load(s, positions[i]!) };
  const bar = sink.start(label, samples.length, 'img');
  let prev = 0;
  const data = await sampleFeatures(model, samples, positioned, transform, batchSize, (done) => { bar.tick(done - prev); prev = done; }, signal);
  bar.done();
  const first = samples[0]?.target;
  const targetDim = typeof first === 'number' ? 1 : (first as ArrayLike<number> | undefined)?.length ?? 1;
  const y = new Float64Array(samples.length * targetDim);
  samples.forEach((s, i) => {
    if (typeof s.target === 'number') y[i] = s.target;
    else y.set(Array.from(s.target as ArrayLike<number>), i * targetDim);
  });
  return { x: { data, rows: samples.length, cols: model.featureDim }, y, targetDim, rows: positions };
}

export interface DownstreamOptions {
  model: NamedModel;
  modelName: string;
  dataset: DownstreamDataset<Sample>;
  transform: EvalTransform;
  batchSize: number;
  folds: number;
  seed: number;
  quick: boolean;
  sink: ProgressSink;
  /** Where the probe's GEMMs run (the model's device, normally). Default 'cpu'. */
  probeDevice?: string;
  /** How image files are decoded (pixel limit, a DecodePool, ...). */
  decode?: DecodeOptions;
  /**
   * Stops the run (ERR_ABORTED; src/abort.ts): checked between feature batches and between the
   * probe search's fits. The search runs synchronously, so there only an abort() made from inside it
   * (the sink's progress ticks) is seen before it ends.
   */
  signal?: AbortSignal;
}

export interface DownstreamRun {
  probe: ProbeResult;
  trainvalRows: number;
  testRows: number;
}

export async function runDownstream(o: DownstreamOptions): Promise<DownstreamRun> {
  throwIfAborted(o.signal, () => `the downstream evaluation of ${o.modelName} on ${o.dataset.name} stopped before it started`);
  const ds = o.dataset;
  const trainval = ds.splits.trainval!, test = ds.splits.test!;
  const cap = (n: number) => (o.quick ? seededSubset(n, 100 * o.batchSize, o.seed) : Array.from({ length: n }, (_, i) => i));
  const a = await splitFeatures(o.model, trainval, cap(trainval.samples.length), o.transform, o.batchSize, o.sink, 'trainval features', o.decode, o.signal);
  const b = await splitFeatures(o.model, test, cap(test.samples.length), o.transform, o.batchSize, o.sink, 'test features', o.decode, o.signal);
  const signal = o.signal ? { signal: o.signal } : {};
  let bar: { tick(n: number): void; done(): void } | undefined;
  let last = 0;
  const onProgress = (e: { done: number; total: number }) => {
    bar ??= o.sink.start(ds.task === 'classification' ? 'logistic regression search' : 'ridge search', e.total, 'fits');
    bar.tick(e.done - last);
    last = e.done;
  };
  const probe = ds.task === 'classification'
    ? classificationProbe(a.x, a.y, b.x, b.y, {
      metric: ds.metric === 'mean per-class accuracy' ? 'mean-per-class' : 'accuracy', modelName: o.modelName,
      folds: o.folds, seed: o.seed, onProgress, device: o.probeDevice ?? 'cpu', ...signal,
    })
    : regressionProbe(a.x, a.y, b.x, b.y, { modelName: o.modelName, folds: o.folds, seed: o.seed, onProgress, device: o.probeDevice ?? 'cpu', ...signal });
  bar?.done();
  return { probe, trainvalRows: a.x.rows, testRows: b.x.rows };
}

export interface Causal3DIdentRun {
  probe: KernelRidgeProbeResult;
  trainvalRows: number;
  testRows: number;
}

/**
 * How many of a split's n samples eval_causal3dident.py computes features of: its loader stops at
 * batch max_iter = int(4096 * c / batch_size) (c = 5 for trainval, 10 for test), or at batch 100
 * with --quick, or when the (shuffled, not drop_last) loader runs out.
 */
export function causal3dIdentSampleCount(n: number, c: number, batchSize: number, quick: boolean): number {
  const maxIter = Math.floor((4096 * c) / batchSize);
  return Math.min(n, (quick ? Math.min(100, maxIter) : maxIter) * batchSize);
}

/** eval_causal3dident.py: RBF kernel ridge on the first 5 x 4096 trainval and 10 x 4096 test samples. */
export async function runCausal3DIdent(o: Omit<DownstreamOptions, 'modelName'>): Promise<Causal3DIdentRun> {
  throwIfAborted(o.signal, () => `the Causal3DIdent evaluation stopped before it started`);
  const ds = o.dataset;
  const take = (split: Split<Sample>, c: number, seed: number) =>
    seededSubset(split.samples.length, causal3dIdentSampleCount(split.samples.length, c, o.batchSize, o.quick), seed);
  const a = await splitFeatures(o.model, ds.splits.trainval!, take(ds.splits.trainval!, 5, o.seed), o.transform, o.batchSize, o.sink, 'trainval features', o.decode, o.signal);
  const b = await splitFeatures(o.model, ds.splits.test!, take(ds.splits.test!, 10, o.seed + 1), o.transform, o.batchSize, o.sink, 'test features', o.decode, o.signal);
  const probe = kernelRidgeProbe(a.x, a.y, b.x, b.y, { folds: o.folds, seed: o.seed, device: o.probeDevice ?? 'cpu', ...(o.signal ? { signal: o.signal } : {}) });
  return { probe, trainvalRows: a.x.rows, testRows: b.x.rows };
}
