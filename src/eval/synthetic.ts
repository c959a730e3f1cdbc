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
import { makeViewsOfImages } from '../transforms/views-batch';
import { makeViewsOnDevice } from '../transforms/views-device';
import { FeatureExtractor } from './features';
import { cosineSimilarity, mahalanobisRows, mean, nanmeanColumns, whiten, Whitening, WhiteningTensors } from './invariance';

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
export function imageInvariance(w: Whitening, clean: Float32Array, views: Float32Array, m?: WhiteningTensors): { similarity: Float32Array; distance: Float32Array } {
  const d = w.dim, k = views.length / d;
  const a = whiten(w, clean, m);
  const b = whiten(w, views, m);
  const similarity = new Float32Array(k);
  for (let j = 0; j < k; j++) similarity[j] = cosineSimilarity(a, 0, b, j, d);
  return { similarity, distance: Float32Array.from(mahalanobisRows(w, clean, views, m)) };
}

export async function evaluateSynthetic(o: SyntheticOptions): Promise<SyntheticResult> {
  const { grid, whitening: w } = o;
  const d = w.dim, k = grid.k;
  const sampled = sampleImages(o.files.length, o.numImages, o.seed);
  const clean: EvalTransform = { resize: grid.resize, crop: grid.crop, mean: o.mean, std: o.std };
  const S: Float32Array[] = [], L: Float32Array[] = [];
  const onDevice = o.device !== undefined && o.device !== 'cpu';
  // Deform views differ per image and per view, reproducibly: seed + image position * k + view.
  const viewOpts = (i: number) => ({ mean: o.mean, std: o.std, deformSeed: (o.seed + i * k) >>> 0 });
  // Images per forward pass: with few views (k = 2 or 7) the views of many images share one batch.
  // The features of an image do not depend on what else is in its batch, so results are the same.
  const group = Math.max(1, Math.floor(o.batchSize / k));
  const plane = 3 * grid.crop * grid.crop;
  // The whitening's matrices, once for all images (on the model's device when it has one).
  const mats = new WhiteningTensors(w, o.device ?? 'cpu');
  // The next group's images decode (libuv threads) while this group runs through the network.
  const decodeGroup = (g0: number) => Promise.all(sampled.slice(g0, Math.min(sampled.length, g0 + group)).map((s) => decodeImageFile(o.files[s]!)));
  let next = sampled.length > 0 ? decodeGroup(0) : undefined;
  try {
    for (let g0 = 0; g0 < sampled.length; g0 += group) {
      const g1 = Math.min(sampled.length, g0 + group);
      const imgs = await next!;
      next = g1 < sampled.length ? decodeGroup(g1) : undefined;
      const cleanInput = new Float32Array(imgs.length * plane);
      imgs.forEach((img, q) => cleanInput.set(preprocess(img, clean), q * plane));
      const x = tensor(cleanInput, [imgs.length, 3, grid.crop, grid.crop]);
      let f: Float32Array;
      try {
        f = o.model.features(x);
      } finally {
        x.dispose();
      }
      if (imgs.length > 1) {
        const views = makeViewsOfImages(imgs, grid, 0, k, imgs.map((_, q) => viewOpts(g0 + q)), o.device ?? 'cpu');
        let fv: Float32Array;
        try {
          fv = o.model.features(views);
        } finally {
          views.dispose();
        }
        imgs.forEach((_, q) => {
          const m = imageInvariance(w, f.subarray(q * d, (q + 1) * d), fv.subarray(q * k * d, (q + 1) * k * d), mats);
          S.push(m.similarity);
          L.push(m.distance);
        });
      } else {
        const img = imgs[0]!;
        const fv = new Float32Array(k * d);
        for (let j0 = 0; j0 < k; j0 += o.batchSize) {
          const j1 = Math.min(k, j0 + o.batchSize);
          const vo = viewOpts(g0);
          const views = onDevice ? makeViewsOnDevice(img, grid, j0, j1, vo, o.device!) : makeViews(img, grid, j0, j1, vo);
          try {
            fv.set(o.model.features(views), j0 * d);
          } finally {
            views.dispose();
          }
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        const m = imageInvariance(w, f, fv, mats);
        S.push(m.similarity);
        L.push(m.distance);
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
      o.onProgress?.(g1, sampled.length);
    }
  } finally {
    // A prefetch still in flight when an error ends the loop: its own failure is not this one's.
    next?.catch(() => undefined);
    mats.dispose();
  }
  const f32 = Math.fround;
  const distance = Array.from(nanmeanColumns(L, k), f32);
  const similarity = Array.from(nanmeanColumns(S, k), f32);
  return { sampled, distance, similarity, meanDistance: f32(mean(distance)), meanSimilarity: f32(mean(similarity)) };
}
