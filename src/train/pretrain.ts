/**
 * MoCo v2 pre-training as main_moco.py runs it, on the CPU or a CUDA device (options.device): an
 * ImageFolder of `data/split`, two augmented views per image (TwoCropsTransform with the `model`'s
 * augmentation set), shuffled batches with drop_last, torch.optim.SGD with the learning rate set per epoch (cosine, or x0.1 at each
 * milestone of `schedule`), and a checkpoint after every epoch (moco-checkpoint.ts).
 *
 * Randomness is ours and seeded (the original's is torch's and Python's, unseeded unless --seed):
 *  - the network, head and queue at the start: numpy's RandomState(seed) (moco-init.ts);
 *  - the image order of epoch e: a Fisher-Yates shuffle by AugmentRng(seed, 'order', e);
 *  - the two views of image i in epoch e: AugmentRng(seed, 'view', e, i, v), v = 0 (im_q), 1 (im_k)
 *    (an image that DistributedSampler's padding repeats, with bnSplits: (seed, 'view', e, i, v, 1));
 *  - the key order of shuffle BN at step s of epoch e (bnSplits > 1): AugmentRng(seed, 'shuffle', e, s).
 * Every draw depends on (seed, epoch, image or step) only, so a run resumed from a checkpoint sees the
 * same batches, views and key orders as the run that wrote it would have.
 *
 * One process: the original runs DistributedDataParallel, where each GPU's batch norms see its own
 * share of the batch and shuffle BN spreads the keys across GPUs. bnSplits = G computes that for G
 * GPUs (MocoV2's header), with the images of each step dealt as DistributedSampler deals them
 * (stepPositions); the default 1 is what the original computes with one GPU.
 */
import type { DecodeOptions } from '../data/decode';
import { createHash } from 'node:crypto';
import { throwIfAborted } from '../abort';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { SslInvError } from '../errors';
import { listImageFolder } from '../data/image-folder';
import { AugmentRng, AugmentSet } from '../transforms/augment';
import { SkippedImage, StepViewMaker, modelInput } from './step-views';
import { Arch } from '../nn/resnet-spec';
import { SGD } from '../optim/sgd';
import { Tensor } from '../tensor';
import { MocoGpuMeters, MocoStepResult, MocoV2 } from './moco';
import { RUN_SETTING_KEYS, RunSettings, checkpointName, loadMocoCheckpoint, restoreMoco, saveMocoCheckpoint } from './moco-checkpoint';
import { FoundCheckpoint, findLatestMocoCheckpoint } from './latest-checkpoint';
import { freshMocoInit } from './moco-init';
import { sha256File } from '../io/hash';
import { resolveDevice } from '../device';

export interface PretrainOptions {
  /** Dataset root; images are read from `data/split` (an ImageFolder). */
  data: string;
  split: string;
  /** Augmentation set: main_moco.py's --model. */
  model: AugmentSet;
  arch: Arch;
  epochs: number;
  startEpoch: number;
  batchSize: number;
  lr: number;
  /** Epochs at which the learning rate drops 10x (without `cos`). */
  schedule: number[];
  cos: boolean;
  momentum: number;
  weightDecay: number;
  mocoDim: number;
  mocoK: number;
  mocoM: number;
  mocoT: number;
  mlp: boolean;
  /**
   * A checkpoint to continue from (ours or main_moco.py's), or 'latest': the newest readable one of
   * this run in `outDir` (latest-checkpoint.ts; none there: the run starts at `startEpoch`).
   */
  resume?: string;
  /**
   * Resume even from a checkpoint whose run had other settings (RunSettings: seed, augmentation set,
   * batch size, bnSplits, image size, training images); without it such a resume is refused
   * (ERR_CHECKPOINT_KEYS naming the setting), since the run would not continue the one it names.
   */
  resumeOverride?: boolean;
  /**
   * The sha256 this run recorded for its checkpoints (absolute path -> hex; the CLI reads them from
   * pretrain-summary.json). A checkpoint to resume whose bytes differ (replaced by another file,
   * damaged) is passed over by 'latest', and refused as `resume` FILE (ERR_CHECKPOINT_CORRUPT) unless
   * `resumeOverride`.
   */
  recordedSha256?: ReadonlyMap<string, string>;
  seed: number;
  /** Side of the square views (main_moco.py: 224). */
  imageSize: number;
  /** Where checkpoints are written. */
  outDir: string;
  /** Images decoded at once. */
  workers: number;
  /**
   * An image that cannot be read or decoded: 'error' (default) stops the run with its error (the
   * last checkpoint is the previous epoch's); 'skip' reports it (hooks.onSkip) and fills its place in
   * the batch with the nearest readable image of the same batch, augmented with the skipped slot's
   * own draws, so the batch keeps its size and the run goes on.
   */
  onError?: 'error' | 'skip';
  /** How the images are decoded (pixel limit, a DecodePool, ...); the views do not depend on it. */
  decode?: DecodeOptions;
  /** GPUs whose per-device batch norm and shuffle BN are emulated (main_moco.py on G GPUs); default 1. */
  bnSplits?: number;
  /** Stop each epoch after this many steps (smoke runs); default: the whole epoch. */
  maxStepsPerEpoch?: number;
  /**
   * Where the model trains: 'cpu' (default), 'cuda' or 'cuda:N'. The views are made on the CPU and
   * copied there once per step; on a device, each step's views are made while the step before it
   * computes (step-views.ts).
   */
  device?: string;
  /**
   * Stops the run (ERR_ABORTED; src/abort.ts): checked before anything is read and before each step.
   * The epoch in progress is dropped (no checkpoint is written for it; checkpoints are written whole,
   * io/atomic-write.ts, so none is left half-written); an epoch whose steps have all run is saved
   * before the stop is seen, at the next epoch's first step.
   */
  signal?: AbortSignal;
}

export interface StepInfo {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  /** main_moco.py's Acc@1 / Acc@5 of the step's contrastive logits, in percent. */
  acc1: number;
  acc5: number;
  /** Each emulated GPU's loss and accuracies on its share (bnSplits entries; see MocoStepResult). */
  perGpu: MocoGpuMeters[];
  lr: number;
  images: number;
}

export interface EpochRecord {
  epoch: number;
  lr: number;
  steps: number;
  meanLoss: number;
  /** Means over the epoch's steps (main_moco.py's AverageMeter at the epoch's end). */
  meanAcc1: number;
  meanAcc5: number;
  seconds: number;
  imagesPerSecond: number;
  checkpoint: string;
  /** SHA-256 of the checkpoint file (the key the evaluators' caches and results use). */
  checkpointSha256: string;
}

export type { SkippedImage };

/** A step's two views of every image, as they go into the model (see PretrainHooks.onViews). */
export interface StepViews {
  epoch: number;
  step: number;
  /** The batch's files in batch order (GPU 0's share first); a padded repeat appears twice in an epoch. */
  files: string[];
  /** im_q and im_k [batch, 3, size, size], normalised; the hook must not keep them past the call. */
  q: Float32Array;
  k: Float32Array;
}

export interface PretrainHooks {
  onSkip?(s: SkippedImage): void;
  /** Every step's views before the step runs (to inspect or save the augmentations). */
  onViews?(v: StepViews): void;
  onEpochStart?(epoch: number, steps: number, lr: number): void;
  onStep?(s: StepInfo): void;
  onEpochEnd?(r: EpochRecord): void;
  /** One line for a person (resumed from ..., etc.). */
  notice?(line: string): void;
}

export interface PretrainResult {
  images: number;
  classes: number;
  startEpoch: number;
  /** The checkpoint the run resumed from (with `resume: 'latest'`, the one found), if any. */
  resumedFrom?: string;
  epochs: EpochRecord[];
}

/** main_moco.py's adjust_learning_rate. */
export function learningRate(o: Pick<PretrainOptions, 'lr' | 'cos' | 'epochs' | 'schedule'>, epoch: number): number {
  if (o.cos) return o.lr * 0.5 * (1 + Math.cos(Math.PI * epoch / o.epochs));
  let lr = o.lr;
  for (const m of o.schedule) lr *= epoch >= m ? 0.1 : 1;
  return lr;
}

/** The permutation of n images in epoch e. */
export function epochOrder(seed: number, epoch: number, n: number): number[] {
  return new AugmentRng(mix(seed, 0x6f72646e, epoch)).randperm(n);
}

/**
 * Steps per epoch as main_moco.py's loader gives them: one process, floor(n / batch) (drop_last);
 * on `gpus` GPUs each rank's DistributedSampler holds ceil(n / gpus) images and its loader takes
 * batches of batch / gpus with drop_last, so floor(ceil(n / gpus) / (batch / gpus)).
 */
export function stepsPerEpoch(n: number, batch: number, gpus = 1): number {
  return gpus === 1 ? Math.floor(n / batch) : Math.floor(Math.ceil(n / gpus) / (batch / gpus));
}

/**
 * The positions in the epoch's order of one step's images. One process: the next `batch` of the
 * order. On `gpus` GPUs, DistributedSampler's assignment (torch 1.13): the order is padded to a
 * multiple of gpus by repeating it from its start (position j holds order[j % n]), rank r takes
 * every gpus-th position from r, and its step is the next batch / gpus of those; the step's batch is
 * rank 0's images, then rank 1's, ... (group r of the split batch norm is rank r).
 */
export function stepPositions(step: number, batch: number, gpus = 1): number[] {
  if (gpus === 1) return Array.from({ length: batch }, (_, b) => step * batch + b);
  const per = batch / gpus;
  const out: number[] = [];
  for (let r = 0; r < gpus; r++) for (let i = step * per; i < (step + 1) * per; i++) out.push(r + i * gpus);
  return out;
}

/** The images of one step (stepPositions, read through the padded order). */
export function stepImages(order: readonly number[], step: number, batch: number, gpus = 1): number[] {
  return stepPositions(step, batch, gpus).map((j) => order[j % order.length]!);
}

/** A 64-bit seed from the run seed and a few small integers (SplitMix64-style mixing). */
function mix(...parts: number[]): bigint {
  let h = 0x9e3779b97f4a7c15n;
  for (const p of parts) {
    h = BigInt.asUintN(64, (h ^ BigInt(p >>> 0)) * 0xbf58476d1ce4e5b9n);
    h = BigInt.asUintN(64, (h ^ (h >> 31n)) * 0x94d049bb133111ebn);
  }
  return h ^ (h >> 29n);
}

/** The flag that sets each RunSettings field, for messages. */
const RUN_FLAGS: Record<keyof RunSettings, string> = {
  seed: '--seed', model: '--model', batchSize: '--batch-size', bnSplits: '--bn-splits', imageSize: '--image-size',
  images: 'the training images (count)', filesSha256: 'the training images (their paths)',
};

/**
 * Compares the settings a checkpoint's run recorded with this run's: differences are refused
 * (ERR_CHECKPOINT_KEYS, field ssl_inv_run.<setting>) unless `override`, when they are reported.
 */
function checkResumedRun(file: string, recorded: RunSettings | undefined, now: RunSettings, override: boolean, notice: (line: string) => void): void {
  if (recorded === undefined) {
    notice(`${file} does not record its run's seed, batch size and views (main_moco.py's checkpoints do not): going on with this command line's`);
    return;
  }
  const changed = (Object.keys(RUN_FLAGS) as (keyof RunSettings)[]).filter((k) => recorded[k] !== now[k]);
  if (changed.length === 0) return;
  const what = changed.map((k) => k === 'filesSha256' ? `${RUN_FLAGS[k]} differ` : `${RUN_FLAGS[k]} was ${recorded[k]}, now ${now[k]}`).join('; ');
  if (override) {
    notice(`--resume-override: resuming ${file} with other settings than its run's (${what}); the batches and views differ from that run's`);
    return;
  }
  throw new SslInvError('ERR_CHECKPOINT_KEYS', `the checkpoint's run had other settings (${what}): resumed so, the run would not be the one it continues. ` +
    'Use the same flags and data, or --resume-override to go on anyway', { file, field: `ssl_inv_run.${RUN_SETTING_KEYS[changed[0]!]}` });
}

function check(cond: boolean, message: string, field: string): void {
  if (!cond) throw new SslInvError('ERR_INVALID_ARGUMENT', message, { field });
}

export async function runPretraining(o: PretrainOptions, hooks: PretrainHooks = {}): Promise<PretrainResult> {
  check(Number.isSafeInteger(o.epochs) && o.epochs >= 1, `expected an integer >= 1, got ${o.epochs}`, 'epochs');
  check(Number.isSafeInteger(o.batchSize) && o.batchSize >= 2, `train-mode batch norm needs a batch of 2 or more, got ${o.batchSize}`, 'batchSize');
  const bnSplits = o.bnSplits ?? 1;
  const onError = o.onError ?? 'error';
  check(onError === 'error' || onError === 'skip', `expected 'error' or 'skip', got ${String(onError)}`, 'onError');
  check(Number.isSafeInteger(bnSplits) && bnSplits >= 1 && o.batchSize % bnSplits === 0 && o.batchSize / bnSplits >= 2,
    `the batch of ${o.batchSize} must split into ${bnSplits} equal groups of 2 or more images (one per emulated GPU)`, 'bnSplits');
  check(o.mocoK % o.batchSize === 0, `${o.mocoK} must be a multiple of the batch size ${o.batchSize} (MoCo's enqueue)`, 'mocoK');
  check(Number.isFinite(o.lr) && o.lr >= 0, `expected a number >= 0, got ${o.lr}`, 'lr');
  check(Number.isSafeInteger(o.imageSize) && o.imageSize >= 32, `expected an integer >= 32, got ${o.imageSize}`, 'imageSize');
  throwIfAborted(o.signal, () => 'pretraining stopped before it started');
  const root = path.join(o.data, o.split);
  const listing = await listImageFolder(root);
  const n = listing.samples.length;
  const steps = stepsPerEpoch(n, o.batchSize, bnSplits);
  if (steps < 1) {
    throw new SslInvError('ERR_DATASET_LAYOUT', `${root} has ${n} image(s), fewer than one batch of ${o.batchSize} (batches drop the remainder, as main_moco.py's loader does)`, { file: root });
  }
  const stepsThisEpoch = Math.min(steps, o.maxStepsPerEpoch ?? Infinity);
  const files = createHash('sha256');
  // Relative paths with '/' on every platform, so a folder copied elsewhere gives the same digest.
  for (const sample of listing.samples) files.update(`${path.relative(root, sample.path).split(path.sep).join('/')}\n`);
  const run: RunSettings = {
    seed: o.seed, model: o.model, batchSize: o.batchSize, bnSplits, imageSize: o.imageSize, images: n, filesSha256: files.digest('hex'),
  };
  const sgd = new SGD({ lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
  const device = resolveDevice(o.device ?? 'cpu');
  const config = { m: o.mocoM, T: o.mocoT, bnSplits, device };
  let moco: MocoV2;
  let startEpoch = o.startEpoch;
  let resumedFrom: string | undefined;
  try {
    let found: FoundCheckpoint | undefined;
    const recorded = o.recordedSha256;
    const checkRecorded = async (file: string): Promise<void> => {
      const want = recorded?.get(path.resolve(file));
      if (want === undefined) return;
      const got = await sha256File(file);
      if (got !== want) {
        throw new SslInvError('ERR_CHECKPOINT_CORRUPT', `the file changed since this run wrote it: sha256 ${got}, ` +
          `pretrain-summary.json records ${want} (replaced or damaged)`, { file });
      }
    };
    if (o.resume === 'latest') {
      found = await findLatestMocoCheckpoint(o.outDir, o.model, o.arch, (line) => hooks.notice?.(line), checkRecorded);
      if (found === undefined) {
        hooks.notice?.(`--resume latest: no checkpoint of this run (${checkpointName(o.model, o.arch, 0).replace('0000', 'NNNN')}) in ${o.outDir}; ` +
          `starting at epoch ${o.startEpoch}`);
      }
    } else if (o.resume !== undefined) {
      try {
        await checkRecorded(o.resume);
      } catch (e) {
        if (!(o.resumeOverride && e instanceof SslInvError && e.code === 'ERR_CHECKPOINT_CORRUPT')) throw e;
        hooks.notice?.(`--resume-override: ${e.message}; resuming from it anyway`);
      }
      found = { file: o.resume, checkpoint: await loadMocoCheckpoint(o.resume) };
    }
    if (found !== undefined) {
      const { file, checkpoint: c } = found;
      if (c.arch !== o.arch) throw new SslInvError('ERR_CHECKPOINT_ARCH', `the checkpoint is a ${c.arch}, but --arch is ${o.arch}`, { file, field: 'arch' });
      if (c.dim !== o.mocoDim || c.K !== o.mocoK || c.mlp !== o.mlp) {
        throw new SslInvError('ERR_CHECKPOINT_KEYS', `the checkpoint's MoCo has dim ${c.dim}, K ${c.K}, ${c.mlp ? 'an MLP head' : 'a linear head'}; ` +
          `the flags ask for --moco-dim ${o.mocoDim} --moco-k ${o.mocoK}${o.mlp ? ' --mlp' : ''}`, { file });
      }
      checkResumedRun(file, c.run, run, o.resumeOverride ?? false, (line) => hooks.notice?.(line));
      moco = await restoreMoco(c, config, sgd);
      startEpoch = c.epoch;
      resumedFrom = file;
      hooks.notice?.(`resumed from ${file} (epoch ${c.epoch}, ${c.momentum.size ? 'with' : 'without'} the optimizer's momentum)`);
    } else {
      moco = await MocoV2.create({ arch: o.arch, dim: o.mocoDim, K: o.mocoK, mlp: o.mlp, ...config },
        freshMocoInit(o.arch, o.mocoDim, o.mocoK, o.mlp, o.seed));
    }
  } catch (e) {
    sgd.dispose();
    throw e;
  }
  const records: EpochRecord[] = [];
  try {
    // Reading a checkpoint or initialising a ResNet-50 takes a while: seen before the folder is made.
    throwIfAborted(o.signal, () => 'pretraining stopped before its first step');
    await fsp.mkdir(o.outDir, { recursive: true });
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      sgd.lr = learningRate(o, epoch);
      hooks.onEpochStart?.(epoch, stepsThisEpoch, sgd.lr);
      const order = epochOrder(o.seed, epoch, n);
      const started = Date.now();
      let lossSum = 0, acc1Sum = 0, acc5Sum = 0;
      // A step's images, from their positions in the (padded) order: the image order[j % n], and
      // for a position DistributedSampler's padding added, its repeat j / n (whose views get draws
      // of their own).
      const views = new StepViewMaker({
        epoch, steps: stepsThisEpoch, batch: o.batchSize, size: o.imageSize, set: o.model, workers: o.workers, onError, ...(o.decode ? { decode: o.decode } : {}),
        stepImages: (step) => {
          const positions = stepPositions(step, o.batchSize, bnSplits);
          const idx = positions.map((j) => order[j % n]!);
          return { idx, repeat: positions.map((j) => Math.floor(j / n)), files: idx.map((i) => listing.samples[i]!.path) };
        },
        viewRng: ({ idx, repeat }, b, v) => new AugmentRng(repeat[b]! === 0
          ? mix(o.seed, 0x76696577, epoch, idx[b]!, v) : mix(o.seed, 0x76696577, epoch, idx[b]!, v, repeat[b]!)),
        // On a device the next step's views are made while this step computes, and copied there as
        // uint8 pixels, normalised there (step-views.ts).
        ahead: device !== 'cpu',
        pixels: device !== 'cpu' ? 'uint8' : 'float32',
      });
      try {
        for (let step = 0; step < stepsThisEpoch; step++) {
          // Between steps nothing of a step is held: the finallys below close the views and free the model.
          throwIfAborted(o.signal, () => `pretraining stopped at epoch ${epoch}, step ${step} of ${stepsThisEpoch}; ` +
            (records.length > 0 ? `the last checkpoint is ${records[records.length - 1]!.checkpoint}` : 'this run wrote no checkpoint'));
          const made = await views.take(step);
          let imQ: Tensor = made.imQ, imK: Tensor = made.imK;
          let r: MocoStepResult;
          try {
            for (const skipped of made.skips) hooks.onSkip?.(skipped);
            if (hooks.onViews) {
              imQ = modelInput(imQ, 'cpu');
              imK = modelInput(imK, 'cpu');
              const q = imQ.toFloat32Array(), k = imK.toFloat32Array();
              hooks.onViews({ epoch, step, files: made.files, q, k });
              // What the hook holds is what the model gets (it may have edited the arrays).
              imQ.write(q);
              imK.write(k);
            }
            // modelInput frees each host tensor as it moves; the finally below frees what is left.
            imQ = modelInput(imQ, device);
            imK = modelInput(imK, device);
            r = moco.step(imQ, imK, sgd, bnSplits > 1
              ? { keyPermutation: new AugmentRng(mix(o.seed, 0x73687566, epoch, step)).randperm(o.batchSize) } : {});
          } finally {
            imQ.dispose();
            imK.dispose();
          }
          const loss = r.loss;
          if (!Number.isFinite(loss)) {
            throw new SslInvError('ERR_NON_FINITE', `the loss became ${loss} at epoch ${epoch}, step ${step}: lower the learning rate (no checkpoint is written for this epoch)`, { field: 'loss' });
          }
          lossSum += loss;
          acc1Sum += r.acc1;
          acc5Sum += r.acc5;
          hooks.onStep?.({ epoch, step, steps: stepsThisEpoch, loss, acc1: r.acc1, acc5: r.acc5, perGpu: r.perGpu, lr: sgd.lr, images: o.batchSize });
        }
      } finally {
        await views.close();
      }
      const file = path.join(o.outDir, checkpointName(o.model, o.arch, epoch));
      await saveMocoCheckpoint(file, moco, sgd, epoch + 1, run);
      const seconds = (Date.now() - started) / 1000;
      const r: EpochRecord = {
        epoch, lr: sgd.lr, steps: stepsThisEpoch, meanLoss: lossSum / stepsThisEpoch,
        meanAcc1: acc1Sum / stepsThisEpoch, meanAcc5: acc5Sum / stepsThisEpoch, seconds,
        imagesPerSecond: (stepsThisEpoch * o.batchSize) / Math.max(seconds, 1e-9), checkpoint: file,
        checkpointSha256: await sha256File(file),
      };
      records.push(r);
      hooks.onEpochEnd?.(r);
    }
  } finally {
    moco.dispose();
    sgd.dispose();
  }
  return { images: n, classes: listing.classes.length, startEpoch, ...(resumedFrom !== undefined ? { resumedFrom } : {}), epochs: records };
}
