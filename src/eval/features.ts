/**
 * Feature extraction: run a ResNet trunk over many inputs, batch by batch, and stream the features.
 *
 * Inputs are either an already-preprocessed float32 array [N, 3, H, W] (the `--input-npy` path) or
 * an image folder decoded and preprocessed like torchvision's eval pipeline (src/data). Rows of the
 * output follow the input order. Each yielded chunk is a Float32Array of rows x featureDim; the
 * native tensors behind it are freed before the next batch starts. A `signal` is checked before each
 * batch goes through the network (ERR_ABORTED; src/abort.ts).
 */
import { throwIfAborted } from '../abort';
import { SslInvError } from '../errors';
import type { DecodeOptions } from '../data/decode';
import { loadBatches, SkippedFile } from '../data/loader';
import { EvalTransform } from '../data/preprocess';
import { deviceInput, pixelsFor } from '../data/device-input';
import { Tensor, tensor } from '../tensor';

/** A forward pass that was started and not yet read (see FeatureExtractor.startFeatures). */
export interface PendingFeatures {
  /** Waits for the pass and returns its features [N * featureDim] as a host array; frees the result. */
  collect(): Float32Array;
  /** Frees the result without reading it (error paths; a no-op after collect). */
  dispose(): void;
}

/** Anything that maps images [N, 3, H, W] to features [N, featureDim] (one network, or fused ones). */
export interface FeatureExtractor {
  readonly featureDim: number;
  /**
   * Where the network runs ('cpu' or 'cuda:N'; undefined: the CPU). Batches for a device are made as
   * uint8 pixels and normalised there (data/device-input.ts), a quarter of the bytes to copy.
   */
  readonly device?: string;
  features(x: Tensor): Float32Array;
  /**
   * Optional: starts the forward pass of x and returns before it ends, where the work runs on a
   * device (queued on its stream); x may be disposed at once. The caller does host work meanwhile
   * and collects later: the same features as features(x).
   */
  startFeatures?(x: Tensor): PendingFeatures;
}

/** startFeatures of `model`, or, for a model without it, features(x) computed now. */
export function startFeatures(model: FeatureExtractor, x: Tensor): PendingFeatures {
  if (model.startFeatures) return model.startFeatures(x);
  const f = model.features(x);
  return { collect: () => f, dispose: () => undefined };
}

export interface FeatureChunk {
  /** Positions in the input of this chunk's rows, in order. */
  index: number[];
  rows: number;
  features: Float32Array;
  /** Inputs of this chunk's range that were left out (image folders with onError 'skip'). */
  skipped: SkippedFile[];
}

/** Features of a preprocessed array x [N, 3, H, W], `batchSize` rows at a time. */
export async function* featuresOfArray(net: FeatureExtractor, data: Float32Array, shape: readonly number[],
  batchSize: number, source = 'input', opts: { signal?: AbortSignal } = {}): AsyncGenerator<FeatureChunk> {
  if (shape.length !== 4 || shape[1] !== 3) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `expected preprocessed images [N, 3, H, W], got [${shape.join(', ')}]`,
      { file: source, field: 'shape' });
  }
  const [n, c, h, w] = shape as [number, number, number, number];
  if (h < 1 || w < 1) throw new SslInvError('ERR_SHAPE_MISMATCH', 'images must be at least 1x1', { file: source, field: 'shape' });
  const per = c * h * w;
  for (let start = 0; start < n; start += batchSize) {
    throwIfAborted(opts.signal, () => `feature extraction of ${source} stopped after ${start} of ${n} rows`);
    const rows = Math.min(batchSize, n - start);
    const x = tensor(data.subarray(start * per, (start + rows) * per), [rows, c, h, w]);
    let features: Float32Array;
    try {
      features = net.features(x);
    } finally {
      x.dispose();
    }
    yield { index: Array.from({ length: rows }, (_, i) => start + i), rows, features, skipped: [] };
    // Let the event loop run (progress output, finalisers of collected wrappers).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Features of image files through an evaluation transform (torchvision's Resize -> CenterCrop ->
 * ToTensor -> Normalize, PIL-exact), decoded in parallel while the network runs.
 */
export async function* featuresOfFiles(net: FeatureExtractor, files: readonly string[], transform: EvalTransform,
  opts: { batchSize: number; onError?: 'error' | 'skip'; concurrency?: number; decode?: DecodeOptions; signal?: AbortSignal }): AsyncGenerator<FeatureChunk> {
  const pixels = pixelsFor(net.device);
  const loaderOpts = { batchSize: opts.batchSize, onError: opts.onError ?? 'error', pixels, ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(opts.decode ? { decode: opts.decode } : {}) };
  const signal = opts.signal;
  // Checked here, not handed to the loader, so that the error names this call; leaving the loop
  // below frees the batches the loader prepared ahead.
  throwIfAborted(signal, () => `feature extraction of ${files.length} images stopped before it started`);
  let done = 0;
  for await (const b of loadBatches(files, transform, loaderOpts)) {
    if (signal?.aborted) {
      b.batch.dispose();
      throwIfAborted(signal, () => `feature extraction stopped after ${done} of ${files.length} images`);
    }
    done += b.index.length + b.skipped.length;
    let features: Float32Array;
    if (b.index.length === 0) {
      b.batch.dispose();
      features = new Float32Array(0);
    } else {
      const x = pixels === 'uint8' ? deviceInput(b.batch, transform, net.device!) : b.batch;
      try {
        features = net.features(x);
      } finally {
        x.dispose();
      }
    }
    yield { index: b.index, rows: b.index.length, features, skipped: b.skipped };
  }
}
