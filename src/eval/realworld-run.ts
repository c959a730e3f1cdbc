/**
 * One real-world invariance evaluation with prepared statistics: evaluates the groups of views,
 * writes {model}_{layer}_{dataset}_invariance.json / .csv and returns the result.
 */
import { throwIfAborted } from '../abort';
import type { DecodeOptions } from '../data/decode';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { Whitening } from './invariance';
import { NamedModel } from './models';
import type { ActivationStorage } from '../nn/resnet';
import { evaluateRealWorld, ViewGroup } from './realworld';
import { InvarianceResult, RESULT_FORMAT, versions, writeResult } from './results';
import { FeatureStats } from './stats';
import { ProgressSink } from './synthetic-run';

export interface RealWorldRunOptions {
  model: NamedModel;
  modelName: string;
  stats: FeatureStats;
  whitening: Whitening;
  dataset: string;
  dataRoot: string;
  groups: ViewGroup[];
  resize: number;
  crop: number;
  batchSize: number;
  featureLayer: string;
  fuseMode: string;
  resultsDir: string;
  device: string;
  precision: string;
  /** Activation storage between layers (default float32). */
  activations?: ActivationStorage;
  sink: ProgressSink;
  /** How image files are decoded (pixel limit, a DecodePool, ...). */
  decode?: DecodeOptions;
  /** Stops the evaluation between groups and batches (ERR_ABORTED; src/abort.ts); nothing is written then. */
  signal?: AbortSignal;
}

export async function runRealWorld(o: RealWorldRunOptions): Promise<{ result: InvarianceResult; files: { json: string; csv: string } }> {
  throwIfAborted(o.signal, () => `the real-world evaluation of ${o.modelName} on ${o.dataset} stopped before it started`);
  const started = Date.now();
  const p = o.sink.start(o.dataset, o.groups.length, 'groups');
  let prev = 0;
  const r = await evaluateRealWorld({
    model: o.model, whitening: o.whitening, groups: o.groups, batchSize: o.batchSize, ...(o.decode ? { decode: o.decode } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    transform: { resize: o.resize, crop: o.crop, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    onProgress: (done) => { p.tick(done - prev); prev = done; },
  });
  p.done();
  const result: InvarianceResult = {
    format: RESULT_FORMAT, kind: 'realworld', model: o.modelName,
    models: o.model.provenance,
    fuseMode: o.fuseMode, featureLayer: o.featureLayer, dataset: o.dataset,
    config: { dataRoot: o.dataRoot, resize: o.resize, crop: o.crop, batchSize: o.batchSize, groups: o.groups.length,
      views: o.groups.reduce((a, g) => a + g.files.length, 0) },
    statistics: { file: o.stats.file, key: o.stats.key, images: o.stats.count, cached: o.stats.cached },
    device: o.device, precision: o.precision, activations: o.activations ?? 'float32', versions: versions(o.device),
    rows: r.groups.map((name, i) => ({ id: name, distance: r.distance[i]!, similarity: r.similarity[i]! })),
    summary: { distance: r.meanDistance, similarity: r.meanSimilarity },
    created: new Date().toISOString(), seconds: (Date.now() - started) / 1000,
  };
  const files = await writeResult(o.resultsDir, result);
  return { result, files };
}
