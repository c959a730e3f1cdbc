/**
 * Feature statistics of a data set (mean and covariance), computed once per model and cached.
 *
 * What the original computes: features of every image of DATA/split through Resize(resize) +
 * CenterCrop(crop) + normalise; their mean and np.cov (float64, divisor N-1). We accumulate the
 * covariance in float64 chunk by chunk (linalg.ts CovarianceAccumulator, as accurate as np.cov).
 *
 * The cache is keyed by content, not by name (the original reuses `{model}_{layer}_...pth` files
 * even after retraining): the key is the SHA-256 of the checkpoint hashes and fuse mode, the feature
 * layer, the data-set listing (every image's relative path, size and modification time), the
 * preprocessing and this algorithm's version. One safetensors file holds mean and covariance, with
 * the key, the inputs and a SHA-256 of the tensors in its metadata; it is written atomically and
 * verified on every read, and a corrupt, truncated or stale file is recomputed, never trusted; so is
 * one whose mean or covariance holds a NaN or an infinity, even under a matching checksum.
 */
import type { DecodeOptions } from '../data/decode';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { checkFinite, firstNonFinite } from '../io/finite';
import { ImageFolderListing } from '../data/image-folder';
import { EvalTransform } from '../data/preprocess';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import { CovarianceAccumulator } from '../linalg';
import { tensor } from '../tensor';
import { FeatureExtractor, featuresOfFiles } from './features';

export const STATS_FORMAT = 'ssl-inv-feature-stats/1';
/** Bump when the statistics' computation changes, so old caches are recomputed. */
export const STATS_ALGORITHM_VERSION = 1;

export interface StatsKeyInputs {
  models: { name: string; sha256: string }[];
  fuseMode: string;
  featureLayer: string;
  dataset: string;
  split: string;
  listingSha256: string;
  images: number;
  resize: number;
  crop: number;
  mean: readonly number[];
  std: readonly number[];
  algorithm: number;
  /** Set only for tf32 / bf16 networks (absent for fp32, so fp32 keys are those of earlier versions). */
  precision?: string;
  /** Set only for networks that store activations in bfloat16 (absent for float32, as above). */
  activations?: string;
}

export interface FeatureStats {
  key: string;
  inputs: StatsKeyInputs;
  count: number;
  dim: number;
  mean: Float64Array;
  /** Row-major [dim, dim], divisor count - 1. */
  cov: Float64Array;
  file: string;
  /** True when read from the cache. */
  cached: boolean;
}

/** SHA-256 over each image's path relative to the root, size and mtime (in listing order). */
export async function listingDigest(listing: ImageFolderListing): Promise<string> {
  const h = createHash('sha256');
  for (const s of listing.samples) {
    const st = await fsp.stat(s.path);
    h.update(`${path.relative(listing.root, s.path)}\t${st.size}\t${Math.round(st.mtimeMs)}\n`);
  }
  return h.digest('hex');
}

export function statsKey(inputs: StatsKeyInputs): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}

export function statsFileName(resultsDir: string, modelName: string, featureLayer: string, key: string): string {
  return path.join(resultsDir, `${modelName}_${featureLayer}_feature_stats_${key.slice(0, 16)}.safetensors`);
}

function payloadDigest(mean: Float64Array, cov: Float64Array): string {
  return createHash('sha256')
    .update(new Uint8Array(mean.buffer, mean.byteOffset, mean.byteLength))
    .update(new Uint8Array(cov.buffer, cov.byteOffset, cov.byteLength))
    .digest('hex');
}

/** Reads and verifies a statistics file; returns why it cannot be used instead of throwing. */
export async function readStatsFile(file: string, expectedKey?: string): Promise<FeatureStats | string> {
  let f;
  try {
    f = await readSafetensors(file);
  } catch (e) {
    return `unreadable (${(e as Error).message})`;
  }
  const m = f.metadata;
  if (m.format !== STATS_FORMAT) return `not a statistics file (format ${JSON.stringify(m.format)})`;
  if (expectedKey !== undefined && m.key !== expectedKey) return 'made from other inputs (key mismatch)';
  const mean = f.tensors.get('mean'), cov = f.tensors.get('cov');
  if (!mean || !cov || !(mean.data instanceof Float64Array) || !(cov.data instanceof Float64Array)) return 'missing tensors';
  const dim = mean.data.length;
  if (cov.shape.length !== 2 || cov.shape[0] !== dim || cov.shape[1] !== dim) return 'covariance of the wrong shape';
  if (payloadDigest(mean.data, cov.data) !== m.payload_sha256) return 'corrupt (checksum mismatch)';
  const badMean = firstNonFinite(mean.data), badCov = firstNonFinite(cov.data);
  if (badMean >= 0) return `corrupt (non-finite value ${mean.data[badMean]} in mean[${badMean}])`;
  if (badCov >= 0) {
    return `corrupt (non-finite value ${cov.data[badCov]} in cov[${Math.floor(badCov / dim)}, ${badCov % dim}])`;
  }
  let inputs: StatsKeyInputs;
  try {
    inputs = JSON.parse(m.inputs ?? '') as StatsKeyInputs;
  } catch {
    return 'corrupt metadata';
  }
  if (statsKey(inputs) !== m.key) return 'corrupt metadata (key does not match its inputs)';
  return { key: m.key!, inputs, count: Number(m.count), dim, mean: mean.data, cov: cov.data, file, cached: true };
}

export interface ComputeStatsOptions {
  model: FeatureExtractor;
  modelName: string;
  models: { name: string; sha256: string }[];
  fuseMode: string;
  featureLayer: string;
  dataset: string;
  split: string;
  listing: ImageFolderListing;
  transform: EvalTransform;
  batchSize: number;
  resultsDir: string;
  /** The networks' convolution precision; tf32 / bf16 statistics are cached apart from fp32 ones. */
  precision?: string;
  /** The networks' activation storage; bfloat16 statistics are cached apart from float32 ones. */
  activations?: string;
  /** How the images are decoded (pixel limit, a DecodePool, ...); the pixels, and so the key, do not depend on it. */
  decode?: DecodeOptions;
  onProgress?: (done: number, total: number) => void;
  onNotice?: (message: string) => void;
  /**
   * Stops a computation between batches (ERR_ABORTED; src/abort.ts); the file is written only once
   * every image is in, so a stopped one leaves none. Cached statistics are returned whatever it says.
   */
  signal?: AbortSignal;
}

/** Returns the cached statistics for these inputs, or computes, caches and returns them. */
export async function loadOrComputeStats(o: ComputeStatsOptions): Promise<FeatureStats> {
  const inputs: StatsKeyInputs = {
    models: o.models, fuseMode: o.fuseMode, featureLayer: o.featureLayer, dataset: o.dataset, split: o.split,
    listingSha256: await listingDigest(o.listing), images: o.listing.samples.length,
    resize: o.transform.resize, crop: o.transform.crop, mean: o.transform.mean, std: o.transform.std,
    algorithm: STATS_ALGORITHM_VERSION,
    ...(o.precision !== undefined && o.precision !== 'fp32' ? { precision: o.precision } : {}),
    ...(o.activations !== undefined && o.activations !== 'float32' ? { activations: o.activations } : {}),
  };
  const key = statsKey(inputs);
  const file = statsFileName(o.resultsDir, o.modelName, o.featureLayer, key);
  if (fs.existsSync(file)) {
    const got = await readStatsFile(file, key);
    if (typeof got !== 'string') return got;
    o.onNotice?.(`feature statistics in ${file} are ${got}: recomputing them`);
  }
  const n = o.listing.samples.length;
  if (n < 2) throw new SslInvError('ERR_DATASET_LAYOUT', `a covariance needs at least 2 images, found ${n}`, { file: o.listing.root });
  const acc = new CovarianceAccumulator(o.model.featureDim);
  try {
    let done = 0;
    for await (const c of featuresOfFiles(o.model, o.listing.samples.map((s) => s.path), o.transform, {
      batchSize: o.batchSize, ...(o.decode ? { decode: o.decode } : {}), ...(o.signal ? { signal: o.signal } : {}),
    })) {
      const x = tensor(c.features, [c.rows, o.model.featureDim]);
      try {
        acc.add(x);
      } finally {
        x.dispose();
      }
      done += c.rows;
      o.onProgress?.(done, n);
    }
    const mean = acc.mean(), cov = acc.covariance(1);
    // Non-finite features (an overflow in the network) would make every distance NaN, which the
    // original's nanmean then hides; and such a file would be refused and recomputed at every read.
    const what = `the features of ${o.listing.root} are not all finite, so their statistics cannot be used (is the model sound?)`;
    checkFinite(mean, { field: 'mean', file, what });
    checkFinite(cov, { field: 'cov', file, what });
    fs.mkdirSync(o.resultsDir, { recursive: true });
    await writeSafetensors(file, new Map([['mean', { shape: [mean.length], data: mean }], ['cov', { shape: [mean.length, mean.length], data: cov }]]), {
      format: STATS_FORMAT, key, inputs: JSON.stringify(inputs), count: String(acc.rows),
      payload_sha256: payloadDigest(mean, cov), created: new Date().toISOString(),
    });
    return { key, inputs, count: acc.rows, dim: mean.length, mean, cov, file, cached: false };
  } finally {
    acc.dispose();
  }
}

/** Statistics files in a results folder made for these checkpoints and layer (for eval-realworld). */
export async function findStatsFiles(resultsDir: string, models: { sha256: string }[], featureLayer: string): Promise<FeatureStats[]> {
  let names: string[];
  try {
    names = await fsp.readdir(resultsDir);
  } catch {
    return [];
  }
  const out: FeatureStats[] = [];
  for (const name of names.filter((n) => n.endsWith('.safetensors') && n.includes('_feature_stats_')).sort()) {
    const got = await readStatsFile(path.join(resultsDir, name));
    if (typeof got === 'string') continue;
    const same = got.inputs.featureLayer === featureLayer && got.inputs.models.length === models.length &&
      got.inputs.models.every((m, i) => m.sha256 === models[i]!.sha256);
    if (same) out.push(got);
  }
  return out;
}
