/**
 * One synthetic-invariance run, as `ssl-inv eval-synthetic` (and the demo) performs it: load the
 * model(s) once, get the feature statistics of DATA/split (cached by content), then evaluate each
 * requested transform and write its results. `--transform all` runs the 18 with one statistics pass
 * and one model load.
 */
import { throwIfAborted } from '../abort';
import type { DecodeOptions } from '../data/decode';
import * as path from 'node:path';
import { ImageFolderListing, listImageFolder } from '../data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { defaultK, SyntheticTransform, transformGrid } from '../transforms/grid';
import { prepareWhitening, Whitening } from './invariance';
import { FuseMode, loadNamedModel, NamedModel } from './models';
import type { Precision } from '../ops';
import type { ActivationStorage } from '../nn/resnet';
import { InvarianceResult, RESULT_FORMAT, versions, writeResult } from './results';
import { FeatureStats, loadOrComputeStats } from './stats';
import { evaluateSynthetic } from './synthetic';

/** Where the evaluation runners report progress (a bar per stage) and notices; the CLI draws them on stderr. */
export interface ProgressSink {
  start(label: string, total: number, unit: string): { tick(n: number): void; done(): void };
  notice(message: string): void;
}

export interface SyntheticRunOptions {
  /** Per-transform number of views (overrides `k`; e.g. the demo's smaller grids). */
  kFor?: (t: SyntheticTransform) => number;
  data: string;
  dataset: string;
  split: string;
  model: string;
  transforms: SyntheticTransform[];
  k?: number;
  batchSize: number;
  numImages: number;
  resize: number;
  crop: number;
  ckptDir: string;
  resultsDir: string;
  fuseMode: FuseMode;
  featureLayer: string;
  seed: number;
  device: string;
  precision: string;
  /** Activation storage between layers (default float32). */
  activations?: ActivationStorage;
  sink: ProgressSink;
  /** How image files are decoded (pixel limit, a DecodePool, ...). */
  decode?: DecodeOptions;
  /** Called with each transform's result as soon as it is written. */
  onResult?: (r: InvarianceResult, files: { json: string; csv: string }) => void;
  /**
   * Stops the run (ERR_ABORTED; src/abort.ts): checked before the model loads, between the
   * statistics' batches, before each transform and between its groups of images. The results of
   * transforms finished before it are written and stay; no file of a stopped one is written.
   */
  signal?: AbortSignal;
}

/** What one model's evaluations share: the loaded model, the data listing, statistics and whitening. */
export interface EvaluationContext {
  model: NamedModel;
  listing: ImageFolderListing;
  stats: FeatureStats;
  whitening: Whitening;
}

/** Loads the model and the statistics of DATA/split (from the cache when they are there). */
export async function prepareContext(o: Omit<SyntheticRunOptions, 'transforms' | 'numImages' | 'seed'>): Promise<EvaluationContext> {
  const activations = o.activations ?? 'float32';
  throwIfAborted(o.signal, () => `the evaluation of ${o.model} stopped before its model was loaded`);
  const model = await loadNamedModel(o.model, {
    ckptDir: o.ckptDir, fuseMode: o.fuseMode, device: o.device, precision: o.precision as Precision, activations, onNotice: (m) => o.sink.notice(m),
  });
  try {
    const listing = await listImageFolder(path.join(o.data, o.split));
    const clean = { resize: o.resize, crop: o.crop, mean: IMAGENET_MEAN, std: IMAGENET_STD };
    let bar: { tick(n: number): void; done(): void } | undefined;
    let seen = 0;
    const stats = await loadOrComputeStats({
      model, modelName: o.model, models: model.parts.map((p) => ({ name: p.name, sha256: p.sha256 })),
      fuseMode: o.fuseMode, featureLayer: o.featureLayer, dataset: o.dataset, split: o.split, listing,
      transform: clean, batchSize: o.batchSize, resultsDir: o.resultsDir, precision: o.precision, activations,
      ...(o.decode ? { decode: o.decode } : {}), ...(o.signal ? { signal: o.signal } : {}),
      onNotice: (m) => o.sink.notice(m),
      onProgress: (done, total) => {
        bar ??= o.sink.start('statistics', total, 'img');
        bar.tick(done - seen);
        seen = done;
      },
    });
    bar?.done();
    o.sink.notice(stats.cached ? `using cached feature statistics ${stats.file}` : `feature statistics of ${stats.count} images written to ${stats.file}`);
    const whitening = prepareWhitening(stats, { ridge: o.model === 'random' });
    return { model, listing, stats, whitening };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Evaluates each transform in `o.transforms` with a prepared context and writes its results. */
export async function runSyntheticTransforms(ctx: EvaluationContext, o: SyntheticRunOptions): Promise<InvarianceResult[]> {
  const { model, listing, stats, whitening } = ctx;
  const results: InvarianceResult[] = [];
  for (const t of o.transforms) {
    throwIfAborted(o.signal, () => `the synthetic evaluation of ${o.model} stopped after ${results.length} of ${o.transforms.length} transforms, before ${t}`);
    const started = Date.now();
    const grid = transformGrid(t, o.kFor?.(t) ?? o.k ?? defaultK(t), o.resize, o.crop);
    const p = o.sink.start(t, o.numImages, 'img');
    let prev = 0;
    const r = await evaluateSynthetic({
      model, whitening, files: listing.samples.map((s) => s.path), grid, numImages: o.numImages, seed: o.seed,
      batchSize: o.batchSize, mean: IMAGENET_MEAN, std: IMAGENET_STD, device: o.device, ...(o.decode ? { decode: o.decode } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      onProgress: (done) => { p.tick(done - prev); prev = done; },
    });
    p.done();
    const result: InvarianceResult = {
      format: RESULT_FORMAT, kind: 'synthetic', model: o.model,
      models: model.provenance,
      fuseMode: o.fuseMode, featureLayer: o.featureLayer, dataset: o.dataset, transform: t,
      paramName: grid.labelName, originalIndex: grid.originalIndex,
      config: { data: o.data, split: o.split, k: grid.k, numImages: o.numImages, resize: o.resize, crop: o.crop, batchSize: o.batchSize, sampledImages: r.sampled },
      statistics: { file: stats.file, key: stats.key, images: stats.count, cached: stats.cached },
      device: o.device, precision: o.precision, activations: o.activations ?? 'float32', seed: o.seed, versions: versions(o.device),
      rows: grid.labels.map((param, j) => ({ id: j, param, distance: r.distance[j]!, similarity: r.similarity[j]! })),
      summary: { distance: r.meanDistance, similarity: r.meanSimilarity },
      created: new Date().toISOString(), seconds: (Date.now() - started) / 1000,
    };
    const files = await writeResult(o.resultsDir, result);
    o.onResult?.(result, files);
    results.push(result);
  }
  return results;
}

export async function runSyntheticEvaluation(o: SyntheticRunOptions): Promise<InvarianceResult[]> {
  const ctx = await prepareContext(o);
  try {
    return await runSyntheticTransforms(ctx, o);
  } finally {
    ctx.model.dispose();
  }
}
