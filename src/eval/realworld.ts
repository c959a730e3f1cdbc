/**
 * Real-world invariance (the original's eval_realworld_invariance.py): for every class (object,
 * scene, ...) of a data set, the features of all its views through Resize(224) + CenterCrop(224) +
 * normalise, whitened z = (mean - f) L with the statistics of the same checkpoint, then
 *   similarity = mean of the full v x v cosine matrix of the z's, diagonal included (as the original)
 *   distance   = mean Euclidean distance over pairs i < j (torch.pdist(z).mean())
 * stored in float32; the summary is the mean over classes.
 */
import { throwIfAborted } from '../abort';
import type { DecodeOptions } from '../data/decode';
import { EvalTransform } from '../data/preprocess';
import { FeatureExtractor, featuresOfFiles } from './features';
import { cosineSimilarity, mean, whiten, Whitening } from './invariance';

export interface ViewGroup {
  name: string;
  files: string[];
}

export interface RealWorldOptions {
  model: FeatureExtractor;
  whitening: Whitening;
  groups: readonly ViewGroup[];
  transform: EvalTransform;
  batchSize: number;
  /** How the views' files are decoded (pixel limit, a DecodePool, ...). */
  decode?: DecodeOptions;
  onProgress?: (groupsDone: number, total: number) => void;
  /** Checked before each group and, within one, before each batch (ERR_ABORTED; src/abort.ts). */
  signal?: AbortSignal;
}

export interface RealWorldResult {
  groups: string[];
  distance: number[];
  similarity: number[];
  meanDistance: number;
  meanSimilarity: number;
}

/** One class's similarity and distance (float32) from the features of its views [v, dim]. */
export function groupInvariance(w: Whitening, feats: Float32Array): { similarity: number; distance: number } {
  const f32 = Math.fround;
  const d = w.dim, v = feats.length / d;
  const z = whiten(w, feats);
  let cs = 0;
  for (let a = 0; a < v; a++) for (let b = 0; b < v; b++) cs += cosineSimilarity(z, a, z, b, d);
  let ds = 0, pairs = 0;
  for (let a = 0; a < v; a++) {
    for (let b = a + 1; b < v; b++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (z[a * d + j]! - z[b * d + j]!) ** 2;
      ds += f32(Math.sqrt(s));
      pairs++;
    }
  }
  return { similarity: f32(cs / (v * v)), distance: pairs ? f32(ds / pairs) : NaN };
}

export async function evaluateRealWorld(o: RealWorldOptions): Promise<RealWorldResult> {
  const f32 = Math.fround;
  const d = o.whitening.dim;
  const distance: number[] = [], similarity: number[] = [];
  for (let g = 0; g < o.groups.length; g++) {
    throwIfAborted(o.signal, () => `real-world evaluation stopped after ${g} of ${o.groups.length} groups`);
    const files = o.groups[g]!.files;
    const v = files.length;
    const feats = new Float32Array(v * d);
    // Decoded and preprocessed in parallel while the network runs (uint8 batches for a device).
    for await (const c of featuresOfFiles(o.model, files, o.transform, {
      batchSize: o.batchSize, ...(o.decode ? { decode: o.decode } : {}), ...(o.signal ? { signal: o.signal } : {}),
    })) {
      c.index.forEach((j, k) => feats.set(c.features.subarray(k * d, (k + 1) * d), j * d));
    }
    const m = groupInvariance(o.whitening, feats);
    similarity.push(m.similarity);
    distance.push(m.distance);
    o.onProgress?.(g + 1, o.groups.length);
  }
  return {
    groups: o.groups.map((g) => g.name), distance, similarity,
    meanDistance: f32(mean(distance)), meanSimilarity: f32(mean(similarity)),
  };
}
