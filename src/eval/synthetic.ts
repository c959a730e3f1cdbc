/**
 * Synthetic invariance (the original's eval_synthetic_invariance.py, after its statistics step).
 *
 * Images are sampled as the original samples them: np.random.seed(seed) (0), then
 * np.random.choice(np.arange(n), num_images), with replacement (src/random/mt19937.ts reproduces
 * numpy's draws). For each sampled image: its clean feature f (Resize + CenterCrop + normalise) and
 * the features f_j of its k views (src/transforms/views.ts); per view j
 *   similarity S_j = cos((mean - f) L, (mean - f_j) L),   distance D_j = mahalanobis(f, f_j, inv)
 * (see invariance.ts), stored in float32 as the original's tensors are. Per view: the NaN-mean over
 * images; the summary: the mean over views, printed by the CLI as the original prints it.
 */
import { decodeImageFile } from '../data/decode';
import { EvalTransform, preprocess } from '../data/preprocess';
import { RandomState } from '../random/mt19937';
import { tensor } from '../tensor';
import { TransformGrid } from '../transforms/grid';
import { makeViews } from '../transforms/views';
import { makeViewsOnDevice } from '../transforms/views-device';
import { FeatureExtractor } from './features';
import { cosineSimilarity, mahalanobisRows, mean, nanmeanColumns, whiten, Whitening } from './invariance';

export interface SyntheticOptions {
  model: FeatureExtractor;
  whitening: Whitening;
  files: readonly string[];
  grid: TransformGrid;
  numImages: number;
  seed: number;
  /** Views per forward pass. */
  batchSize: number;
  mean: readonly number[];
  std: readonly number[];
  /** 'cpu' (default) or the CUDA device the model runs on: the views are then built there too. */
  device?: string;
  onProgress?: (imagesDone: number, total: number) => void;
}

export interface SyntheticResult {
  /** Indices (into the listing) of the sampled images, in order. */
  sampled: number[];
  /** Per view: NaN-mean over images. */
  distance: number[];
  similarity: number[];
  meanDistance: number;
  meanSimilarity: number;
}

/** np.random.seed(seed); np.random.choice(np.arange(n), k). */
export function sampleImages(n: number, k: number, seed: number): number[] {
  return new RandomState(seed).choice(n, k);
}

/** One image's per-view similarity and distance (float32) from its clean feature and view features. */
export function imageInvariance(w: Whitening, clean: Float32Array, views: Float32Array): { similarity: Float32Array; distance: Float32Array } {
  const d = w.dim, k = views.length / d;
  const a = whiten(w, clean);
  const b = whiten(w, views);
  const similarity = new Float32Array(k);
  for (let j = 0; j < k; j++) similarity[j] = cosineSimilarity(a, 0, b, j, d);
  return { similarity, distance: Float32Array.from(mahalanobisRows(w, clean, views)) };
}

export async function evaluateSynthetic(o: SyntheticOptions): Promise<SyntheticResult> {
  const { grid, whitening: w } = o;
  const d = w.dim, k = grid.k;
  const sampled = sampleImages(o.files.length, o.numImages, o.seed);
  const clean: EvalTransform = { resize: grid.resize, crop: grid.crop, mean: o.mean, std: o.std };
  const S: Float32Array[] = [], L: Float32Array[] = [];
  for (let i = 0; i < sampled.length; i++) {
    const img = await decodeImageFile(o.files[sampled[i]!]!);
    const x = tensor(preprocess(img, clean), [1, 3, grid.crop, grid.crop]);
    let f: Float32Array;
    try {
      f = o.model.features(x);
    } finally {
      x.dispose();
    }
    const fv = new Float32Array(k * d);
    for (let j0 = 0; j0 < k; j0 += o.batchSize) {
      const j1 = Math.min(k, j0 + o.batchSize);
      // Deform views differ per image and per view, reproducibly: seed + image position * k + view.
      const vo = { mean: o.mean, std: o.std, deformSeed: (o.seed + i * k) >>> 0 };
      const views = o.device !== undefined && o.device !== 'cpu' ? makeViewsOnDevice(img, grid, j0, j1, vo, o.device) : makeViews(img, grid, j0, j1, vo);
      try {
        fv.set(o.model.features(views), j0 * d);
      } finally {
        views.dispose();
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const m = imageInvariance(w, f, fv);
    S.push(m.similarity);
    L.push(m.distance);
    o.onProgress?.(i + 1, sampled.length);
  }
  const f32 = Math.fround;
  const distance = Array.from(nanmeanColumns(L, k), f32);
  const similarity = Array.from(nanmeanColumns(S, k), f32);
  return { sampled, distance, similarity, meanDistance: f32(mean(distance)), meanSimilarity: f32(mean(similarity)) };
}
