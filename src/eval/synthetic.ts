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
import { throwIfAborted } from '../abort';
import { DecodeOptions, decodeImageFile } from '../data/decode';
import { RandomState } from '../random/mt19937';
import { TransformGrid } from '../transforms/grid';
import { makeViewsOfImages } from '../transforms/views-batch';
import { FeatureExtractor, PendingFeatures, startFeatures } from './features';
import { cosineSimilarity, mahalanobisOfDeltas, mean, nanmeanColumns, whiten, Whitening, WhiteningTensors } from './invariance';

export interface SyntheticOptions {
  model: FeatureExtractor;
  whitening: Whitening;
  files: readonly string[];
  grid: TransformGrid;
  numImages: number;
  seed: number;
  /** Rows per forward pass (views, and the clean inputs that ride with them; see evaluateSynthetic). */
  batchSize: number;
  mean: readonly number[];
  std: readonly number[];
  /** 'cpu' (default) or the CUDA device the model runs on: the views are then built there too. */
  device?: string;
  /** How the sampled files are decoded (pixel limit, a DecodePool, ...). */
  decode?: DecodeOptions;
  onProgress?: (imagesDone: number, total: number) => void;
  /** Checked before the first decode and before each group of images (ERR_ABORTED; src/abort.ts). */
  signal?: AbortSignal;
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
  return groupInvariance(w, clean, views, views.length / w.dim, m)[0]!;
}

/**
 * imageInvariance of n images at once: clean features f [n, dim], view features fv [n * k, dim]
 * (image-major). One whitening GEMM for all n + n k rows and one Mahalanobis GEMM for all n k
 * differences, so the dim x dim matrices are read once per group rather than once per image (with
 * k = 2 on the host that reading, not the arithmetic, is the cost). Each row's result is the same
 * whatever the other rows (test/eval/synthetic-batch.test.ts).
 */
export function groupInvariance(w: Whitening, f: Float32Array, fv: Float32Array, k: number, m?: WhiteningTensors): { similarity: Float32Array; distance: Float32Array }[] {
  const d = w.dim, n = f.length / d;
  const rows = new Float32Array(f.length + fv.length);
  rows.set(f);
  rows.set(fv, f.length);
  const z = whiten(w, rows, m);  // rows [0, n): the clean images; then image q's view j at n + q k + j
  const delta = new Float64Array(fv.length);
  for (let q = 0; q < n; q++) {
    for (let r = q * k; r < (q + 1) * k; r++) for (let j = 0; j < d; j++) delta[r * d + j] = Math.fround(f[q * d + j]! - fv[r * d + j]!);
  }
  const dist = mahalanobisOfDeltas(w, delta, m);
  return Array.from({ length: n }, (_, q) => {
    const similarity = new Float32Array(k);
    for (let j = 0; j < k; j++) similarity[j] = cosineSimilarity(z, q, z, n + q * k + j, d);
    return { similarity, distance: Float32Array.from(dist.subarray(q * k, (q + 1) * k)) };
  });
}

export async function evaluateSynthetic(o: SyntheticOptions): Promise<SyntheticResult> {
  const { grid, whitening: w } = o;
  const d = w.dim, k = grid.k;
  const device = o.device ?? 'cpu';
  const sampled = sampleImages(o.files.length, o.numImages, o.seed);
  const stopped = (done: number) => () => `synthetic evaluation of ${grid.transform} stopped after ${done} of ${sampled.length} images`;
  throwIfAborted(o.signal, stopped(0));
  const S: Float32Array[] = [], L: Float32Array[] = [];
  // Deform views differ per image and per view, reproducibly: seed + image position * k + view.
  const viewOpts = (i: number) => ({ mean: o.mean, std: o.std, deformSeed: (o.seed + i * k) >>> 0 });
  // Each image's clean input rides in the forward pass of its first views (as the original's pipeline
  // stacks them), so no pass runs a single image. Images per pass: with few views (k = 2 or 7) the
  // clean inputs and views of many images share one batch of at most batchSize rows; with k >=
  // batchSize an image's views go batchSize at a time, the first pass carrying its clean input too
  // (batchSize + 1 rows). A feature does not depend on what else is in its batch (bit for bit on the
  // CPU: test/eval/synthetic-batch.test.ts), so the grouping does not change the results.
  const group = Math.max(1, Math.floor(o.batchSize / (k + 1)));
  // The whitening's matrices, once for all images, on the host: the per-image metrics (two GEMMs and
  // the loops around them) run on the CPU while a device works on the next group (below), and give
  // the CPU path's bits for the same features.
  const mats = new WhiteningTensors(w);
  // The next group's images decode (libuv threads) while this group runs through the network.
  const decodeGroup = (g0: number) => Promise.all(sampled.slice(g0, Math.min(sampled.length, g0 + group)).map((s) => decodeImageFile(o.files[s]!, o.decode)));
  let next = sampled.length > 0 ? decodeGroup(0) : undefined;
  // A group's features, read back, whose metrics are still to compute.
  let done: { n: number; f: Float32Array; fv: Float32Array; g1: number } | undefined;
  const metrics = (r: NonNullable<typeof done>) => {
    for (const m of groupInvariance(w, r.f, r.fv, k, mats)) {
      S.push(m.similarity);
      L.push(m.distance);
    }
    o.onProgress?.(r.g1, sampled.length);
  };
  const inFlight: PendingFeatures[] = [];
  try {
    for (let g0 = 0; g0 < sampled.length; g0 += group) {
      // No pass is pending here (the previous group's were collected): the finally frees the rest.
      throwIfAborted(o.signal, stopped(g0));
      const g1 = Math.min(sampled.length, g0 + group);
      const imgs = await next!;
      next = g1 < sampled.length ? decodeGroup(g1) : undefined;
      const n = imgs.length, opts = imgs.map((_, q) => viewOpts(g0 + q));
      const per = n > 1 ? k : Math.min(k, o.batchSize);  // views of each image per pass
      // 1. Start this group's passes (on a device: queued, returning at once).
      for (let j0 = 0; j0 < k; j0 += per) {
        const x = makeViewsOfImages(imgs, grid, j0, Math.min(k, j0 + per), opts, device, j0 === 0);
        try {
          inFlight.push(startFeatures(o.model, x));
        } finally {
          x.dispose();  // on a device: safe while the pass is pending (its stream orders the reuse)
        }
      }
      // 2. Meanwhile, the previous group's metrics on the host.
      if (done) metrics(done);
      done = undefined;
      // 3. Read this group's features back: its clean features, then each image's k views.
      let f = new Float32Array(0);
      const fv = new Float32Array(n * k * d);  // image-major: image q's views at q * k * d
      for (let c = 0, j0 = 0; inFlight.length > 0; c++, j0 += per) {
        const out = inFlight.shift()!.collect();
        const clean = c === 0 ? n * d : 0;
        if (c === 0) f = out.slice(0, clean);
        fv.set(out.subarray(clean), j0 * d);  // n > 1 runs one pass; n = 1 places each chunk at its j0
      }
      done = { n, f, fv, g1 };
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (done) metrics(done);
  } finally {
    for (const p of inFlight) p.dispose();
    // A prefetch still in flight when an error ends the loop: its own failure is not this one's.
    next?.catch(() => undefined);
    mats.dispose();
  }
  const f32 = Math.fround;
  const distance = Array.from(nanmeanColumns(L, k), f32);
  const similarity = Array.from(nanmeanColumns(S, k), f32);
  return { sampled, distance, similarity, meanDistance: f32(mean(distance)), meanSimilarity: f32(mean(similarity)) };
}
