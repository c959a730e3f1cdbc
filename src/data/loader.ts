/**
 * Batches of evaluation inputs from image files: decode (sharp, on libuv threads) -> Resize ->
 * CenterCrop -> ToTensor -> Normalize (native, on libuv threads), written straight into a float32
 * [n, 3, crop, crop] batch tensor.
 *
 *   for await (const { index, batch, skipped } of loadBatches(files, imagenetEvalTransform(), { batchSize: 64 })) {
 *     ...; batch.dispose();
 *   }
 *
 * - Order is deterministic: batch i holds files[i * batchSize .. (i + 1) * batchSize) in order
 *   (`index` gives their positions), whatever order the decodes finish in.
 * - At most `concurrency` images are being read/decoded/preprocessed at once, and at most `prefetch`
 *   batches exist that the consumer has not received yet, so memory is bounded by
 *   prefetch * batch bytes + concurrency * decoded image bytes.
 * - Errors: by default the first failing file (in file order) throws its SslInvError (with `file`)
 *   when its batch is reached; earlier batches are delivered first. With onError 'skip', files that
 *   fail to read or decode (ERR_IMAGE_*, ERR_FILE_*) are left out of their batch, which is then
 *   smaller, and listed in `skipped` (and passed to `onSkip`); other errors still throw. A failed
 *   image is never replaced by a black or partial one.
 * - The consumer owns each yielded `batch` tensor and disposes it. Leaving the loop early frees the
 *   batches not yet delivered.
 * - `signal`: once aborted, the next batch is not delivered: ERR_ABORTED (src/abort.ts), and the
 *   batches prepared ahead are freed as when the loop is left early.
 */
import * as os from 'node:os';
import { throwIfAborted } from '../abort';
import { SslInvError, isSslInvError } from '../errors';
import { gatherRows } from '../ops';
import { Tensor, empty } from '../tensor';
import { DecodeOptions, decodeImageFile } from './decode';
import { EvalTransform, preprocessIntoAsync } from './preprocess';

export interface SkippedFile {
  /** Position in `files`. */
  index: number;
  file: string;
  error: SslInvError;
}

export interface Batch {
  /** Positions in `files` of the images in `batch`, in order. */
  index: number[];
  /** float32 [index.length, 3, crop, crop] (uint8 [index.length, crop, crop, 3] with pixels 'uint8'); owned by the consumer. */
  batch: Tensor;
  /** Files of this batch's range that were left out (onError 'skip' only). */
  skipped: SkippedFile[];
}

export interface LoadBatchesOptions {
  batchSize: number;
  /**
   * Images in flight at once (default: 4 x the number of CPUs, at least 4, at most 32; decodes and
   * preprocessing share libuv's thread pool, UV_THREADPOOL_SIZE: 4 threads unless set, except under
   * the `ssl-inv` command, whose bin/ssl-inv.js sets it to the number of cores (at least 4) when the
   * user has not).
   */
  concurrency?: number;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** 'error' (default): throw on the first bad file. 'skip': leave bad files out and report them. */
  onError?: 'error' | 'skip';
  /** Called for each skipped file, in completion order. */
  onSkip?: (s: SkippedFile) => void;
  /**
   * 'float32' (default): normalised batches [n, 3, crop, crop]. 'uint8': the crops' pixels before
   * ToTensor + Normalize, [n, crop, crop, 3], a quarter of the bytes to copy to a GPU, where
   * ops.normalizeImagesU8 gives the float32 batch's bits.
   */
  pixels?: 'float32' | 'uint8';
  /** Passed to the decoder (pixel limit, failOn, ...). */
  decode?: DecodeOptions;
  /**
   * Stops the loading: checked before anything starts, before each batch's files are started and
   * before each batch is delivered (decodes already running finish on their own and are dropped).
   */
  signal?: AbortSignal;
}

/** The errors of one image that onError 'skip' leaves out (also pretrain's --on-error skip). */
export const SKIPPABLE: ReadonlySet<string> = new Set(['ERR_IMAGE_DECODE', 'ERR_IMAGE_TOO_LARGE', 'ERR_IMAGE_FORMAT',
  'ERR_FILE_NOT_FOUND', 'ERR_FILE_READ']);

export function defaultConcurrency(): number {
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(4, Math.min(32, 4 * cpus));
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `${name}: expected an integer >= 1, got ${v}`);
  }
  return v;
}

interface BatchState {
  start: number;
  count: number;
  tensor: Tensor;
  finished: number;
  failed: Map<number, SslInvError>;  // position in files -> error
  done: Promise<void>;
  resolve: () => void;
}

export async function* loadBatches(files: readonly string[], t: EvalTransform,
  opts: LoadBatchesOptions): AsyncGenerator<Batch> {
  const batchSize = positiveInt('batchSize', opts.batchSize);
  const concurrency = positiveInt('concurrency', opts.concurrency ?? defaultConcurrency());
  const prefetch = positiveInt('prefetch', opts.prefetch ?? 2);
  const policy = opts.onError ?? 'error';
  if (policy !== 'error' && policy !== 'skip') {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `onError: expected 'error' or 'skip', got ${String(policy)}`);
  }
  if (opts.pixels !== undefined && opts.pixels !== 'float32' && opts.pixels !== 'uint8') {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `pixels: expected 'float32' or 'uint8', got ${String(opts.pixels)}`);
  }
  if (!Number.isSafeInteger(t.crop) || t.crop < 1) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `transform.crop: expected an integer >= 1, got ${t.crop}`);
  }
  const n = files.length;
  const numBatches = Math.ceil(n / batchSize);
  const signal = opts.signal;
  const stopped = (b: number) => () => `image loading stopped after ${b} of ${numBatches} batches`;
  throwIfAborted(signal, stopped(0));
  const batches = new Map<number, BatchState>();
  let nextItem = 0;     // next file to start
  let inFlight = 0;
  let nextYield = 0;    // next batch the consumer gets
  let stopAt = n;       // no file at or after this position is started (set by a fatal error)
  let closed = false;

  const batchOf = (b: number): BatchState => {
    let st = batches.get(b);
    if (!st) {
      const start = b * batchSize, count = Math.min(batchSize, n - start);
      let resolve!: () => void;
      const done = new Promise<void>((r) => { resolve = r; });
      const shape = opts.pixels === 'uint8' ? [count, t.crop, t.crop, 3] : [count, 3, t.crop, t.crop];
      st = { start, count, tensor: empty(opts.pixels ?? 'float32', shape), finished: 0, failed: new Map(), done, resolve };
      batches.set(b, st);
    }
    return st;
  };

  const finish = (st: BatchState): void => {
    st.finished++;
    if (st.finished === st.count) st.resolve();
  };

  const runOne = async (i: number, st: BatchState): Promise<void> => {
    const img = await decodeImageFile(files[i], opts.decode);
    await preprocessIntoAsync(img, t, st.tensor, i - st.start);
  };

  const pump = (): void => {
    while (!closed && inFlight < concurrency && nextItem < stopAt) {
      const b = Math.floor(nextItem / batchSize);
      if (b >= nextYield + prefetch) break;
      const st = batchOf(b);
      const i = nextItem++;
      inFlight++;
      runOne(i, st).then(
        () => finish(st),
        (e: unknown) => {
          const err = isSslInvError(e) ? e
            : new SslInvError('ERR_NATIVE_INTERNAL', String(e), { file: files[i], cause: e });
          const withFile = err.file === undefined
            ? new SslInvError(err.code, err.message, { file: files[i], cause: err }) : err;
          st.failed.set(i, withFile);
          if (policy === 'skip' && SKIPPABLE.has(withFile.code)) {
            opts.onSkip?.({ index: i, file: files[i], error: withFile });
          } else {
            // Fatal: finish this file's batch (all earlier files have started already), start nothing after it.
            stopAt = Math.min(stopAt, (Math.floor(i / batchSize) + 1) * batchSize);
          }
          finish(st);
        },
      ).finally(() => {
        inFlight--;
        pump();
      });
    }
  };

  try {
    for (let b = 0; b < numBatches; b++) {
      throwIfAborted(signal, stopped(b));
      pump();
      const st = batchOf(b);
      await st.done;
      // Aborted while this batch was decoding: it stays in `batches`, which the finally frees.
      throwIfAborted(signal, stopped(b));
      batches.delete(b);
      nextYield = b + 1;
      const failedHere = [...st.failed.entries()].sort((x, y) => x[0] - y[0]);
      const fatal = failedHere.find(([, e]) => !(policy === 'skip' && SKIPPABLE.has(e.code)));
      if (fatal) {
        st.tensor.dispose();
        throw fatal[1];
      }
      const skipped: SkippedFile[] = failedHere.map(([i, error]) => ({ index: i, file: files[i], error }));
      const index: number[] = [];
      for (let i = st.start; i < st.start + st.count; i++) if (!st.failed.has(i)) index.push(i);
      let out = st.tensor;
      if (skipped.length > 0) {
        // Compact the good slots into a smaller batch.
        try {
          out = gatherRows(st.tensor, index.map((i) => i - st.start));
        } finally {
          st.tensor.dispose();
        }
      }
      yield { index, batch: out, skipped };
    }
  } finally {
    closed = true;
    // Batches prepared but never delivered. Work still in flight holds its own reference to the
    // memory it writes, so disposing here is safe.
    for (const st of batches.values()) st.tensor.dispose();
    batches.clear();
  }
}
