/**
 * MoCo v2 (facebookresearch/moco's builder.MoCo, as the original's main_moco.py uses it) on the CPU or
 * a CUDA device (config.device):
 * a query encoder trained by SGD, a key encoder that follows it by momentum, and a queue of keys.
 *
 * One step(imQ, imK, sgd), computing what the original computes in its order (the work is issued in a
 * slightly different order, which changes no value: q is read back after k's forward is queued, and
 * the keys are enqueued after the update is queued, both so that a GPU is not left idle):
 *   q = normalize(encoder_q(imQ))                               train-mode BN, saved for backward
 *   encoder_k's parameters <- p_k * m + p_q * (1 - m)           before the key forward, as builder.py
 *   k = normalize(encoder_k(imK))                               train-mode BN (running stats move), no grad
 *   loss = CE([q.k, q.queue] / T, 0), dL/dq                     ops.mocoLoss (the queue before this batch)
 *   Acc@1, Acc@5 of those logits                                 ops.mocoLoss's ranks (main_moco.py's accuracy)
 *   the same per emulated GPU (its N / G queries)                ops.mocoLoss's row losses and ranks
 *   queue[:, ptr:ptr+N] = k^T, ptr = (ptr + N) % K              requires K % N == 0, as builder.py asserts
 *   backward through normalize, the head and the backbone; sgd.step on encoder_q's parameters
 *
 * Batch norm across GPUs (config.bnSplits = G, default 1): main_moco.py runs DistributedDataParallel,
 * one process per GPU, so each batch norm sees only its GPU's N / G images, and builder.py's shuffle
 * BN gives each GPU's key encoder a random N / G of the keys. With G > 1 this class computes that on
 * one device: encoder_q's batch norms normalise each of G groups of consecutive images by the group's
 * own statistics; the key batch is permuted (the step's keyPermutation, or one drawn from the
 * model's own seeded stream), run through encoder_k in G groups, and the keys put back in batch
 * order. Running statistics follow group 0, as rank 0's do under DDP (it broadcasts its buffers at
 * every forward and writes the checkpoint). Everything else (the loss over the whole batch, the
 * gradient averaged across GPUs, the enqueue of all keys in batch order) is what one process computes.
 * With G = 1 there is no shuffle: a permutation inside one batch norm would leave k as it is.
 *
 * The key encoder runs TrainableResNet.forwardTrainNoGrad (no tape: under torch.no_grad in the
 * original), so only a few of its activations are alive at once.
 *
 * Shapes: images [N, 3, H, W] float32 (normalised); q, k [N, dim]; the queue [dim, K] (column j is
 * key j, as MoCo's buffer). normalize is F.normalize(x, dim=1): x / max(||x||, 1e-12).
 *
 * On a CUDA device the encoders, the heads, the queue, the loss (with its ranks and row losses) and
 * every gradient stay there; the images must be on that device. The small [N, dim] head outputs make
 * one round trip to the host per step for normalize and its backward (float64 arithmetic there, the
 * same code as on the CPU), and the key batch's shuffle (bnSplits > 1) goes through the host too.
 */
import { SslInvError } from '../errors';
import * as ops from '../ops';
import { Tensor, moveTo, tensor } from '../tensor';
import { TrainableResNet } from '../nn/resnet-train';
import { ParamSource } from '../nn/resnet';
import { Arch } from '../nn/resnet-spec';
import { TorchTensor } from '../io/torch-save';
import { SGD } from '../optim/sgd';
import { LinearHead, headParameterNames } from './linear-head';
import { AugmentRng } from '../transforms/augment';
import { DeviceSpec, resolveDevice } from '../device';

export interface MocoConfig {
  arch: Arch;
  /** Output width of the head (--moco-dim, 128). */
  dim: number;
  /** Queue length (--moco-k, 65536). */
  K: number;
  /** Key-encoder momentum (--moco-m, 0.999). */
  m: number;
  /** Softmax temperature (--moco-t, 0.07 for v2). */
  T: number;
  /** Two-layer MLP head (--mlp, MoCo v2). */
  mlp: boolean;
  /** GPUs whose per-device batch norm and shuffle BN are emulated (see the header); default 1. */
  bnSplits?: number;
  /** Seed of the key permutations drawn when step() is given none (bnSplits > 1); default 0. */
  shuffleSeed?: number;
  /** Where the model lives and trains: 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
}

export interface MocoStepOptions {
  /**
   * The key batch's order for shuffle BN (bnSplits > 1): a permutation p of 0..N-1; key image p[r] goes
   * to row r of the shuffled batch (torch's x[idx_shuffle]). Default: the next one of the model's stream.
   */
  keyPermutation?: readonly number[];
}

/** Where a MoCo's initial values come from, by torchvision / fc.* names (no encoder prefix). */
export interface MocoInit {
  /** encoder_q's parameters and running statistics. */
  encoderQ: ParamSource;
  /** encoder_k's (a resumed run's own); default: a copy of encoder_q, as builder.py's constructor makes. */
  encoderK?: ParamSource;
  /** num_batches_tracked of each batch norm ('q' or 'k' encoder, BN prefix); default 0. */
  batchesTracked?: (encoder: 'q' | 'k', bn: string) => bigint;
  /** The queue [dim, K], already normalised along dim. */
  queue: Float32Array;
  queuePtr?: number;
}

export interface MocoStepResult {
  /** The batch's contrastive loss (mean over the batch). */
  loss: number;
  /**
   * main_moco.py's Acc@1 and Acc@5 of the batch, in percent: the share of queries whose positive
   * logit is among the top 1 / top 5 of its K + 1 logits (ops.mocoLoss's ranks).
   */
  acc1: number;
  acc5: number;
  /**
   * The same three for each emulated GPU's N / G queries (bnSplits entries, in rank order): what each
   * of main_moco.py's processes computes on its share and prints. With one GPU, the batch's.
   */
  perGpu: MocoGpuMeters[];
}

/** One GPU's share of a step's loss and accuracies (see MocoStepResult.perGpu). */
export interface MocoGpuMeters {
  loss: number;
  acc1: number;
  acc5: number;
}

interface Encoder {
  backbone: TrainableResNet;
  head: LinearHead;
}

const NORM_EPS = 1e-12;

/** Row-wise F.normalize of x [n, d] (float64 arithmetic, rounded once), with the norms it divided by. */
export function normalizeRows(x: Float32Array, n: number, d: number): { y: Float32Array; norms: Float64Array } {
  const y = new Float32Array(n * d);
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j]! * x[i * d + j]!;
    const nrm = Math.max(Math.fround(Math.sqrt(s)), NORM_EPS);
    norms[i] = nrm;
    for (let j = 0; j < d; j++) y[i * d + j] = x[i * d + j]! / nrm;
  }
  return { y, norms };
}

/** dL/dx of y = normalize(x) given dL/dy: (dy - y (y . dy)) / ||x|| per row (norms above the eps). */
export function normalizeRowsBackward(dy: Float32Array, y: Float32Array, norms: Float64Array, n: number, d: number): Float32Array {
  const dx = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const nrm = norms[i]!;
    if (nrm <= NORM_EPS) {
      // Clamped: y = x / eps, a linear map.
      for (let j = 0; j < d; j++) dx[i * d + j] = dy[i * d + j]! / nrm;
      continue;
    }
    let dot = 0;
    for (let j = 0; j < d; j++) dot += y[i * d + j]! * dy[i * d + j]!;
    for (let j = 0; j < d; j++) dx[i * d + j] = (dy[i * d + j]! - y[i * d + j]! * dot) / nrm;
  }
  return dx;
}

export class MocoV2 {
  readonly config: MocoConfig;
  private readonly q: Encoder;
  private readonly k: Encoder;
  private queue: Tensor;
  private ptr: number;
  private readonly shuffleRng: AugmentRng;
  private disposed = false;

  private constructor(config: MocoConfig, q: Encoder, k: Encoder, queue: Float32Array, ptr: number) {
    this.config = config;
    this.q = q;
    this.k = k;
    this.queue = onDevice(queue, [config.dim, config.K], q.backbone.device);
    this.ptr = ptr;
    this.shuffleRng = new AugmentRng(config.shuffleSeed ?? 0);
  }

  static async create(config: MocoConfig, init: MocoInit): Promise<MocoV2> {
    const { dim, K } = config;
    if (!Number.isSafeInteger(dim) || dim < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected an integer >= 1, got ${dim}`, { field: 'dim' });
    if (!Number.isSafeInteger(K) || K < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected an integer >= 1, got ${K}`, { field: 'K' });
    if (!(config.m >= 0 && config.m <= 1)) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected a number in [0, 1], got ${config.m}`, { field: 'm' });
    if (!(config.T > 0)) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected a positive number, got ${config.T}`, { field: 'T' });
    const splits = config.bnSplits ?? 1;
    if (!Number.isSafeInteger(splits) || splits < 1) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected an integer >= 1, got ${splits}`, { field: 'bnSplits' });
    if (init.queue.length !== dim * K) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `expected [${dim}, ${K}] (${dim * K} values), got ${init.queue.length}`, { field: 'queue' });
    }
    const ptr = init.queuePtr ?? 0;
    if (!Number.isSafeInteger(ptr) || ptr < 0 || ptr >= K) throw new SslInvError('ERR_INVALID_ARGUMENT', `${ptr} is outside [0, ${K})`, { field: 'queue_ptr' });
    const made: { dispose(): void }[] = [];
    const device = resolveDevice(config.device ?? 'cpu');
    const tracked = (enc: 'q' | 'k') => ({
      device, ...(init.batchesTracked ? { batchesTracked: (bn: string) => init.batchesTracked!(enc, bn) } : {}),
    });
    try {
      const qb = await TrainableResNet.load(config.arch, init.encoderQ, tracked('q'));
      made.push(qb);
      const qh = await makeHead(config, qb.featureDim, init.encoderQ, device);
      made.push(qh);
      const kSource = init.encoderK ?? init.encoderQ;
      const kb = await TrainableResNet.load(config.arch, kSource, tracked('k'));
      made.push(kb);
      const kh = await makeHead(config, qb.featureDim, kSource, device);
      made.push(kh);
      return new MocoV2(config, { backbone: qb, head: qh }, { backbone: kb, head: kh }, init.queue, ptr);
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  }

  /** The device the model is on ('cpu' or 'cuda:N'). */
  get device(): DeviceSpec {
    return this.q.backbone.device;
  }

  get queuePtr(): number {
    return this.ptr;
  }

  /** A copy of the queue [dim, K], read from the tensor the loss uses (on a device: copied back). */
  queueValues(): Float32Array {
    return this.queue.toFloat32Array();
  }

  /** A parameter or buffer of encoder_q / encoder_k by its MoCo name (e.g. 'encoder_k.fc.0.bias'). */
  get(key: string): Tensor {
    const m = /^encoder_([qk])\.(.*)$/.exec(key);
    if (!m) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no such MoCo parameter', { field: key });
    const enc = m[1] === 'q' ? this.q : this.k;
    const name = m[2]!;
    if (name.startsWith('fc.')) {
      const t = enc.head.params.get(name);
      if (!t) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no such MoCo parameter', { field: key });
      return t;
    }
    return enc.backbone.get(name);
  }

  /** encoder_q's trainable parameters in named_parameters() order (without the encoder_q. prefix). */
  parameterNames(): string[] {
    return [...this.q.backbone.parameterNames(), ...headParameterNames(this.config.mlp)];
  }

  /** One training step (see the header); returns the loss and accuracies. The caller owns imQ and imK. */
  step(imQ: Tensor, imK: Tensor, sgd: SGD, opts: MocoStepOptions = {}): MocoStepResult {
    if (this.disposed) throw new SslInvError('ERR_TENSOR_DISPOSED', 'this MoCo model was disposed');
    const n = imQ.shape[0]!;
    if (imK.shape.length !== imQ.shape.length || imK.shape.some((s, i) => s !== imQ.shape[i])) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `[${imK.shape.join(', ')}] must have im_q's shape [${imQ.shape.join(', ')}]`, { field: 'im_k' });
    }
    for (const [x, field] of [[imQ, 'im_q'], [imK, 'im_k']] as const) {
      if (x.device !== this.device) {
        throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `the images are on ${x.device}, the model on ${this.device}`, { field });
      }
    }
    if (this.config.K % n !== 0) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `the queue length ${this.config.K} must be a multiple of the batch size ${n} (MoCo's enqueue)`, { field: 'K' });
    }
    const { dim, m, T } = this.config;
    const groups = this.config.bnSplits ?? 1;
    if (n % groups !== 0 || n / groups < 2) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `a batch of ${n} cannot be split into ${groups} groups of 2 or more images (one per emulated GPU)`, { field: 'bnSplits' });
    }
    const perm = groups > 1 ? this.keyPermutation(n, opts.keyPermutation) : undefined;
    const fq = this.q.backbone.forwardTrain(imQ, { bnGroups: groups });
    let headQ: ReturnType<LinearHead['forward']> | undefined;
    const temps: Tensor[] = [fq.features];
    try {
      headQ = this.q.head.forward(fq.features);
      temps.push(headQ.out);

      // The key encoder's update and forward are queued before q is read back: on a device the
      // read waits for the GPU, which then has k's work in hand instead of idling while the host
      // normalises q (q's normalisation feeds nothing of k's).
      this.k.backbone.momentumUpdateFrom(this.q.backbone, m);
      this.k.head.momentumUpdateFrom(this.q.head, m);
      const imKs = perm ? ops.gatherRows(imK, perm) : imK;  // torch's im_k[idx_shuffle], on imK's device
      if (perm) temps.push(imKs);
      const fk = this.k.backbone.forwardTrainNoGrad(imKs, { bnGroups: groups });
      temps.push(fk);
      const headK = this.k.head.forward(fk);
      for (const t of headK.tape.owned) t.dispose();
      temps.push(headK.out);
      const qn = normalizeRows(headQ.out.toFloat32Array(), n, dim);
      const kShuffled = normalizeRows(headK.out.toFloat32Array(), n, dim).y;
      const kn = perm ? unpermuteRows(kShuffled, perm, dim) : kShuffled;

      const qT = onDevice(qn.y, [n, dim], this.device);
      const kT = onDevice(kn, [n, dim], this.device);
      temps.push(qT, kT);
      const { loss, dq, rank, rowLoss } = ops.mocoLoss(qT, kT, this.queue, T, { ranks: true, rowLosses: true });
      temps.push(loss, dq, rank, rowLoss);
      const lossValue = loss.toFloat32Array()[0]!;
      const ranks = rank.toArray() as Int32Array;
      const [acc1, acc5] = ops.mocoAccuracy(ranks, [1, 5]) as [number, number];
      const perGpu = groups === 1 ? [{ loss: lossValue, acc1, acc5 }] : gpuMeters(rowLoss.toFloat32Array(), ranks, groups);

      const dz = onDevice(normalizeRowsBackward(dq.toFloat32Array(), qn.y, qn.norms, n, dim), [n, dim], this.device);
      temps.push(dz);
      const hb = this.q.head.backward(headQ.tape, dz);
      headQ = undefined;
      temps.push(hb.dx);
      const bb = this.q.backbone.backward(fq.tape, hb.dx);
      try {
        this.q.backbone.step(sgd, bb.grads);
        this.q.head.step(sgd, hb.grads);
      } finally {
        for (const g of [...bb.grads.values(), ...hb.grads.values()]) g.dispose();
      }
      // The keys join the queue after the loss used it (stream order on a device), and after the
      // backward and the update are queued, so the queue's upload overlaps them there.
      this.enqueue(kn, n);
      return { loss: lossValue, acc1, acc5, perGpu };
    } finally {
      if (headQ) for (const t of headQ.tape.owned) t.dispose();
      fq.tape.dispose();
      for (const t of temps) t.dispose();
    }
  }

  private keyPermutation(n: number, given?: readonly number[]): readonly number[] {
    if (!given) return this.shuffleRng.randperm(n);
    const seen = new Uint8Array(n);
    let ok = given.length === n;
    for (const v of given) {
      ok &&= Number.isInteger(v) && v >= 0 && v < n && seen[v] === 0;
      if (ok) seen[v] = 1;
    }
    if (!ok) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected a permutation of 0..${n - 1}`, { field: 'keyPermutation' });
    return given;
  }

  /**
   * queue[:, ptr:ptr+n] = keys^T. Only that [dim, n] block of columns is copied to the queue tensor
   * (dim rows of n values, K apart): 128 KiB at N=256, dim=128, where the whole queue is 32 MiB. The
   * tensor is the one copy of the queue; checkpoints read it back.
   */
  private enqueue(keys: Float32Array, n: number): void {
    const { dim, K } = this.config;
    const block = new Float32Array(dim * n);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < dim; c++) block[c * n + i] = keys[i * dim + c]!;
    }
    this.queue.writeRows(block, { offset: this.ptr, rows: dim, stride: K });
    this.ptr = (this.ptr + n) % K;
  }

  /**
   * The model's state dict as main_moco.py saves it from DistributedDataParallel, in nn.Module's
   * order (a module's own buffers before its children's): module.queue, module.queue_ptr,
   * module.encoder_q.* (backbone with num_batches_tracked, then fc.*), module.encoder_k.*.
   */
  stateDict(): Map<string, TorchTensor> {
    const sd = new Map<string, TorchTensor>();
    sd.set('module.queue', new TorchTensor('float32', [this.config.dim, this.config.K], this.queueValues()));
    sd.set('module.queue_ptr', new TorchTensor('int64', [1], BigInt64Array.from([BigInt(this.ptr)])));
    for (const [prefix, enc] of [['module.encoder_q.', this.q], ['module.encoder_k.', this.k]] as const) {
      for (const [k, v] of enc.backbone.stateDict()) sd.set(prefix + k, v);
      for (const [k, t] of enc.head.params) sd.set(prefix + k, new TorchTensor('float32', [...t.shape], t.toFloat32Array()));
    }
    return sd;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const e of [this.q, this.k]) {
      e.backbone.dispose();
      e.head.dispose();
    }
    this.queue.dispose();
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Each GPU's meters from the batch's per-query losses and ranks: GPU r holds queries r * N/G up to
 * (r + 1) * N/G (its share of the batch, whose keys came back to it from the shuffle), and its loss
 * is their mean (float64 sum, rounded to float32 as PyTorch's scalar loss is).
 */
function gpuMeters(rowLoss: Float32Array, ranks: Int32Array, groups: number): MocoGpuMeters[] {
  const per = rowLoss.length / groups;
  return Array.from({ length: groups }, (_, r) => {
    let s = 0;
    for (let i = r * per; i < (r + 1) * per; i++) s += rowLoss[i]!;
    const [acc1, acc5] = ops.mocoAccuracy(ranks.subarray(r * per, (r + 1) * per), [1, 5]) as [number, number];
    return { loss: Math.fround(s / per), acc1, acc5 };
  });
}

/** A tensor of these values on `device` (made on the host, then copied there). */
function onDevice(values: Float32Array, shape: readonly number[], device: string): Tensor {
  return moveTo(tensor(values, shape), device);
}

/** The inverse of the key shuffle (gatherRows by perm) on rows of `width` values: out[perm[r]] = x[r]. */
function unpermuteRows(x: Float32Array, perm: readonly number[], width: number): Float32Array {
  const out = new Float32Array(x.length);
  perm.forEach((p, r) => out.set(x.subarray(r * width, (r + 1) * width), p * width));
  return out;
}

async function makeHead(config: MocoConfig, inDim: number, source: ParamSource, device: DeviceSpec): Promise<LinearHead> {
  const values = new Map<string, Float32Array>();
  for (const k of headParameterNames(config.mlp)) values.set(k, await source(k));
  return new LinearHead(config.mlp, inDim, config.dim, (k) => values.get(k)!, device);
}
