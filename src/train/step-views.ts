/**
 * The two views of every image of pre-training's steps, in step order: each step's files read and
 * decoded (sharp, on libuv's threads) one step ahead, and its views made by applyAugmentAsync (also on
 * libuv's threads) into two host tensors [batch, 3, size, size] float32 (im_q, im_k).
 *
 * With `ahead` (training on a CUDA device), take(s) also starts the views of step s + 1 before it
 * returns, so that they are made while step s computes: MocoV2.step is synchronous on the main
 * thread, but the work applyAugmentAsync queued runs on the thread pool meanwhile. The native calls
 * are queued before take() returns (an async continuation would only run after the step). On the
 * CPU the training kernels already use every core, so views are made when their step comes
 * (`ahead` false), as before.
 *
 * With `pixels: 'uint8'` the views are kept as uint8 [batch, size, size, 3] (the pixels before ToTensor
 * + Normalize), a quarter of the bytes to copy to a GPU, where modelInput normalises them; the float32
 * views (the default) are what modelInput gives, bit for bit (normalizeImagesU8).
 *
 * Either way every view is the same pure function of (image, parameters), and the parameters are
 * drawn per image in the serial order (q then k) from per-view generators, so the bits do not
 * depend on `ahead`. A step's failures (a file that cannot be read, a batch with no readable image)
 * and its skipped-image reports surface when that step is taken, in step order, as they did without
 * the lookahead.
 */
import { SslInvError, isSslInvError } from '../errors';
import { DecodedImage, DecodeOptions, decodeImageFile } from '../data/decode';
import { SKIPPABLE } from '../data/loader';
import { AugmentParams, AugmentRng, AugmentSet, IMAGENET, applyAugmentAsync, drawAugmentParams } from '../transforms/augment';
import { deviceInput } from '../data/device-input';
import { Tensor, empty } from '../tensor';

/** A skipped image: `file` could not be read, `replacedBy` (of the same batch) took its place. */
export interface SkippedImage {
  epoch: number;
  step: number;
  file: string;
  error: SslInvError;
  /** The image of the same batch whose draws were used in its place. */
  replacedBy: string;
}

/** Which images a step takes: their indices in the listing, DistributedSampler's repeat count, files. */
export interface StepImages {
  idx: number[];
  repeat: number[];
  files: string[];
}

/** A step's views, made: the caller owns imQ and imK. */
export interface MadeViews extends StepImages {
  step: number;
  /** The images of the batch that were skipped (onError 'skip'), to report in order. */
  skips: SkippedImage[];
  imQ: Tensor;
  imK: Tensor;
}

export interface StepViewsPlan {
  epoch: number;
  steps: number;
  batch: number;
  size: number;
  set: AugmentSet;
  /** Concurrent decodes (--workers). */
  workers: number;
  onError: 'error' | 'skip';
  /** How the files are decoded (pixel limit, a DecodePool, ...). */
  decode?: DecodeOptions;
  /** The images of a step. */
  stepImages(step: number): StepImages;
  /** The generator of view v (0 = q, 1 = k) of the batch's image b. */
  viewRng(images: StepImages, b: number, v: number): AugmentRng;
  /** Make step s + 1's views while step s computes. */
  ahead: boolean;
  /** float32 [batch, 3, size, size] normalised views (default), or uint8 [batch, size, size, 3] pixels. */
  pixels?: 'float32' | 'uint8';
}

/**
 * A step's views as the model takes them, on `device`: float32 [batch, 3, size, size]. uint8 views are
 * copied there as they are and normalised there (data/device-input.ts: the float32 views' bits);
 * float32 ones are moved. `views` (a host tensor) is freed, also when this fails.
 */
export function modelInput(views: Tensor, device: string): Tensor {
  return deviceInput(views, IMAGENET, device);
}

/** Decodes files with `workers` at a time; with `skip`, a skippable failure is returned in its place. */
async function decodeAll(files: string[], workers: number, skip: boolean, decode?: DecodeOptions): Promise<(DecodedImage | SslInvError)[]> {
  const out = new Array<DecodedImage | SslInvError>(files.length);
  let next = 0;
  const run = async () => {
    while (next < files.length) {
      const i = next++;
      try {
        out[i] = await decodeImageFile(files[i]!, decode);
      } catch (e) {
        const err = isSslInvError(e) ? e : new SslInvError('ERR_IMAGE_DECODE', String(e), { file: files[i]!, cause: e });
        const withFile = err.file === undefined ? new SslInvError(err.code, err.message, { file: files[i]!, cause: err }) : err;
        if (!skip || !SKIPPABLE.has(withFile.code)) throw withFile;
        out[i] = withFile;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, files.length) }, run));
  return out;
}

/**
 * The batch's images with each skipped one (an error in `loaded`) replaced by the nearest readable
 * image of the batch (looking back first), each replacement recorded in `skips`; ERR_IMAGE_DECODE
 * when none of the batch could be read.
 */
function fillSkipped(loaded: (DecodedImage | SslInvError)[], files: string[], epoch: number, step: number,
  skips: SkippedImage[]): DecodedImage[] {
  const ok = (v: DecodedImage | SslInvError | undefined): v is DecodedImage => v !== undefined && !(v instanceof SslInvError);
  if (!loaded.some(ok)) {
    const first = loaded[0] as SslInvError;
    throw new SslInvError('ERR_IMAGE_DECODE', `no image of epoch ${epoch}, step ${step} could be read (the first: ${first.message})`, { file: files[0]! });
  }
  return loaded.map((v, b) => {
    if (ok(v)) return v;
    let j = -1;
    for (let d = 1; j < 0; d++) {
      if (ok(loaded[b - d])) j = b - d;
      else if (ok(loaded[b + d])) j = b + d;
    }
    skips.push({ epoch, step, file: files[b]!, error: v, replacedBy: files[j]! });
    return loaded[j] as DecodedImage;
  });
}

/** A promise that is handled where it is awaited and never reported as unhandled before that. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export class StepViewMaker {
  private readonly decodes = new Map<number, Promise<(DecodedImage | SslInvError)[]>>();
  private readonly made = new Map<number, Promise<MadeViews>>();
  private readonly images = new Map<number, StepImages>();
  private nextTake = 0;

  constructor(private readonly plan: StepViewsPlan) {
    if (plan.steps > 0) this.decode(0);
  }

  private stepImages(step: number): StepImages {
    let s = this.images.get(step);
    if (!s) {
      s = this.plan.stepImages(step);
      this.images.set(step, s);
    }
    return s;
  }

  private decode(step: number): Promise<(DecodedImage | SslInvError)[]> {
    let p = this.decodes.get(step);
    if (!p) {
      p = quiet(decodeAll(this.stepImages(step).files, this.plan.workers, this.plan.onError === 'skip', this.plan.decode));
      this.decodes.set(step, p);
    }
    return p;
  }

  /**
   * Draws the parameters and queues the views of `step` from its decoded images (synchronously: the
   * native work is on the thread pool when this returns); the promise settles when they are made.
   */
  private makeViews(step: number, loaded: (DecodedImage | SslInvError)[]): Promise<MadeViews> {
    const { epoch, batch, size } = this.plan;
    const images = this.stepImages(step);
    const skips: SkippedImage[] = [];
    let imQ: Tensor | undefined, imK: Tensor | undefined;
    try {
      const decoded = fillSkipped(loaded, images.files, epoch, step, skips);
      const params: AugmentParams[][] = decoded.map((img, b) => [0, 1].map((v) =>
        drawAugmentParams(img.width, img.height, this.plan.set, this.plan.viewRng(images, b, v), size)));
      const shape = this.plan.pixels === 'uint8' ? [batch, size, size, 3] : [batch, 3, size, size];
      imQ = empty(this.plan.pixels ?? 'float32', shape);
      imK = empty(this.plan.pixels ?? 'float32', shape);
      const q = imQ, k = imK;
      const work = decoded.flatMap((img, b) => [
        applyAugmentAsync(img, params[b]![0]!, { tensor: q, slot: b }),
        applyAugmentAsync(img, params[b]![1]!, { tensor: k, slot: b }),
      ]);
      return quiet(Promise.allSettled(work).then((results) => {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) {
          q.dispose();
          k.dispose();
          throw failed.reason;
        }
        return { step, ...images, skips, imQ: q, imK: k };
      }));
    } catch (e) {
      imQ?.dispose();
      imK?.dispose();
      return quiet(Promise.reject(e));
    }
  }

  /** Step `step`'s views (steps are taken in order, each once); the caller owns the tensors. */
  async take(step: number): Promise<MadeViews> {
    if (step !== this.nextTake || step >= this.plan.steps) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `steps are taken in order: expected ${this.nextTake}, got ${step}`, { field: 'step' });
    }
    this.nextTake++;
    let made = this.made.get(step);
    if (!made) {
      const loaded = await this.decode(step);
      if (step + 1 < this.plan.steps) this.decode(step + 1);
      made = this.makeViews(step, loaded);
    }
    this.made.delete(step);
    this.decodes.delete(step);
    const views = await made;
    if (this.plan.ahead && step + 1 < this.plan.steps) {
      // Step s + 1's views, queued before returning so they are made while step s computes. Its
      // files were decoded while step s's views were made; a failure there is step s + 1's.
      const next = step + 1;
      let loaded: (DecodedImage | SslInvError)[] | undefined;
      try {
        loaded = await this.decode(next);
      } catch (e) {
        this.made.set(next, quiet(Promise.reject(e)));
      }
      if (loaded) {
        if (next + 1 < this.plan.steps) this.decode(next + 1);
        this.made.set(next, this.makeViews(next, loaded));
      }
    }
    return views;
  }

  /** Waits for the views still being made and frees them (the run ended, or failed, before their step). */
  async close(): Promise<void> {
    const pending = [...this.made.values()];
    this.made.clear();
    for (const r of await Promise.allSettled(pending)) {
      if (r.status === 'fulfilled') {
        r.value.imQ.dispose();
        r.value.imK.dispose();
      }
    }
    await Promise.allSettled([...this.decodes.values()]);
    this.decodes.clear();
  }
}
