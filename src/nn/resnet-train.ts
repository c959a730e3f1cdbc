/**
 * A trainable ResNet backbone (torchvision's structure and names, fc removed) on the CPU or a CUDA
 * device: train-mode forward with batch statistics, explicit backward, and the parameter update
 * through an SGD.
 *
 * forwardTrain(x [N, 3, H, W]) returns the pooled features [N, featureDim] and a tape of what the
 * backward needs; like PyTorch's train mode it also moves every batch norm's running statistics
 * (momentum 0.1, unbiased variance) and counts num_batches_tracked. backward(tape, dFeatures) returns
 * the gradient of every parameter by its state-dict name (and dL/dx on request) and frees the tape.
 *
 * Each conv + batch-norm unit saves its input x (NHWC, for the weight gradient), the convolution's
 * output z and the batch mean / invstd (for the BN gradient), and its output y when a ReLU follows
 * (the ReLU's gradient reads the output, as PyTorch's threshold_backward does). A block's output
 * after the residual add and ReLU is saved for the same reason. Weights are packed for the forward
 * convolution at each step (they change every step); the backward kernels take the raw [K, C, R, S].
 *
 * The block's bookkeeping runs inside fused ops, so that no element-wise pass over an activation is
 * spent on it (each op gives the same bits as the sequence it replaces; test/backward/fused.test.ts):
 *   forward:  the last unit's batch norm adds the identity (or the downsample's BN output) and applies
 *             the block's ReLU (batchNormTrainAddRelu);
 *   backward: a unit's ReLU mask is applied inside its batch-norm backward (batchNormReluBackward);
 *             the identity branch's gradient is added, and the previous block's ReLU mask applied,
 *             inside the block's first dgrad (conv2dBackwardDataEpilogue), so each block receives
 *             its dSum ready; step() and momentumUpdateFrom() update the owned tensors in place.
 *
 * Activations are NHWC float32 inside, as in the inference network (resnet.ts); there is no BN
 * folding here because train-mode BN normalises with the batch's own statistics.
 *
 * Device: load(..., { device }) keeps every parameter and running statistic there; the input and
 * dFeatures must then be on that device, and every activation, gradient and tape tensor stays on it
 * (each op of ../ops and ../backward runs where its tensors are). The CUDA path runs in fp32 (the
 * faithful precision); its kernels agree with the CPU's within fp32 accumulation error, not bit for
 * bit (test/models/resnet-train-device.test.ts).
 */
import { SslInvError } from '../errors';
import * as ops from '../ops';
import { Tensor, moveTo, tensor } from '../tensor';
import { conv2dBackwardData, conv2dBackwardDataEpilogue, conv2dBackwardWeight } from '../backward/conv';
import {
  batchNormBackward, batchNormReluBackward, batchNormTrain, batchNormTrainAddRelu, globalAvgPoolBackward, maxPool2dBackward,
  momentumUpdateInPlace, reluBackward,
} from '../backward/layers';
import { SGD } from '../optim/sgd';
import { TorchTensor } from '../io/torch-save';
import { DeviceSpec, resolveDevice } from '../device';
import { ParamSource } from './resnet';
import { Arch, BATCH_NORM_EPS, BlockSpec, ConvBnSpec, ResNetSpec, allConvBns, resnetSpec } from './resnet-spec';

/** PyTorch's BatchNorm2d default momentum for the running statistics. */
export const BATCH_NORM_MOMENTUM = 0.1;

const MAX_POOL: ops.PoolGeometry = { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };

/** What one conv + BN (+ ReLU) unit saved for its backward. */
interface UnitTape {
  cb: ConvBnSpec;
  x: Tensor;
  z: Tensor;
  mean: Tensor;
  invstd: Tensor;
  /** The unit's output when a ReLU follows inside the unit (else undefined). */
  y?: Tensor;
}

interface BlockTape {
  block: BlockSpec;
  units: UnitTape[];
  downsample?: UnitTape;
  /** relu(main + identity): the ReLU's output, for its gradient. */
  out: Tensor;
}

/** What forwardTrain saved; backward() consumes it. */
export class TrainTape {
  /** @internal */ constructor(
    readonly inputShape: readonly number[],
    readonly stem: UnitTape,
    readonly stemOut: Tensor,
    readonly blocks: BlockTape[],
    readonly lastShape: [number, number, number, number],
    private readonly owned: Tensor[],
  ) {}

  private freed = false;

  get disposed(): boolean {
    return this.freed;
  }

  dispose(): void {
    if (this.freed) return;
    this.freed = true;
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * A copy of this tape with every saved tensor on `device` (the copy owns them; this tape is left
   * as it is). With it, two backends' backward passes can be compared on identical activations:
   * two correct float32 forwards may put a ReLU input within rounding of zero on either side, and
   * the gradient through that element then differs entirely.
   */
  copyTo(device: string): TrainTape {
    if (this.freed) throw new SslInvError('ERR_TENSOR_DISPOSED', 'this tape was consumed or disposed');
    const owned: Tensor[] = [];
    const copies = new Map<Tensor, Tensor>();
    const copy = (t: Tensor): Tensor => {
      let c = copies.get(t);
      if (!c) {
        c = t.to(device);
        copies.set(t, c);
        owned.push(c);
      }
      return c;
    };
    try {
      const unit = (u: UnitTape): UnitTape => ({ ...u, x: copy(u.x), z: copy(u.z), mean: copy(u.mean), invstd: copy(u.invstd), ...(u.y ? { y: copy(u.y) } : {}) });
      const blocks = this.blocks.map((b) => ({ ...b, units: b.units.map(unit), ...(b.downsample ? { downsample: unit(b.downsample) } : {}), out: copy(b.out) }));
      return new TrainTape(this.inputShape, unit(this.stem), copy(this.stemOut), blocks, this.lastShape, owned);
    } catch (e) {
      for (const t of owned) t.dispose();
      throw e;
    }
  }
}

export interface TrainForwardOptions {
  /** Batch-norm groups: G GPUs' per-device batch norm (see forwardTrain); default 1. */
  bnGroups?: number;
}

export interface BackwardResult {
  /** dL/dp by state-dict name, in parameterNames() order. */
  grads: Map<string, Tensor>;
  /** dL/dx [N, 3, H, W] when asked for. */
  dInput?: Tensor;
}

export interface TrainableLoadOptions {
  /** num_batches_tracked by BN prefix (default 0). */
  batchesTracked?: (bn: string) => bigint;
  /** Where the network lives and trains: 'cpu' (default), 'cuda', 'cuda:N' (checked by resolveDevice). */
  device?: string;
}

export class TrainableResNet {
  readonly spec: ResNetSpec;
  /** The device every tensor of this network is on ('cpu' or 'cuda:N'). */
  readonly device: DeviceSpec;
  private params: Map<string, Tensor>;
  private readonly buffers: Map<string, Tensor>;
  private readonly batchesTracked: Map<string, bigint>;
  private disposed = false;

  private constructor(spec: ResNetSpec, device: DeviceSpec, params: Map<string, Tensor>, buffers: Map<string, Tensor>,
    batchesTracked: Map<string, bigint>) {
    this.spec = spec;
    this.device = device;
    this.params = params;
    this.buffers = buffers;
    this.batchesTracked = batchesTracked;
  }

  get arch(): Arch {
    return this.spec.arch;
  }

  get featureDim(): number {
    return this.spec.featureDim;
  }

  /**
   * Reads every backbone parameter and running statistic from `source` (torchvision names) onto
   * opts.device (default the CPU); num_batches_tracked from `opts.batchesTracked` (by BN prefix;
   * default 0).
   */
  static async load(arch: Arch, source: ParamSource, opts: TrainableLoadOptions = {}): Promise<TrainableResNet> {
    const spec = resnetSpec(arch);
    const device = resolveDevice(opts.device ?? 'cpu');
    const params = new Map<string, Tensor>();
    const buffers = new Map<string, Tensor>();
    const read = async (key: string, shape: number[]): Promise<Tensor> => {
      const v = await source(key);
      const n = shape.reduce((a, b) => a * b, 1);
      if (!(v instanceof Float32Array) || v.length !== n) {
        throw new SslInvError('ERR_SHAPE_MISMATCH', `expected ${n} float32 values for [${shape.join(', ')}], got ${v.length}`, { field: key });
      }
      return moveTo(tensor(v, shape), device);
    };
    try {
      for (const cb of allConvBns(spec)) {
        params.set(`${cb.conv}.weight`, await read(`${cb.conv}.weight`, [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel]));
        for (const p of ['weight', 'bias']) params.set(`${cb.bn}.${p}`, await read(`${cb.bn}.${p}`, [cb.outChannels]));
        for (const b of ['running_mean', 'running_var']) buffers.set(`${cb.bn}.${b}`, await read(`${cb.bn}.${b}`, [cb.outChannels]));
      }
    } catch (e) {
      for (const t of [...params.values(), ...buffers.values()]) t.dispose();
      throw e;
    }
    const tracked = new Map(allConvBns(spec).map((cb) => [cb.bn, opts.batchesTracked?.(cb.bn) ?? 0n]));
    return new TrainableResNet(spec, device, params, buffers, tracked);
  }

  /** Trainable parameters' names in PyTorch's named_parameters() order. */
  parameterNames(): string[] {
    return [...this.params.keys()];
  }

  /**
   * The current value of a parameter or running statistic, owned by the network: do not dispose it,
   * and copy it (clone()) to keep it, since step() and momentumUpdateFrom() overwrite parameters in
   * place and forwardTrain() replaces the running statistics.
   */
  get(key: string): Tensor {
    const t = this.params.get(key) ?? this.buffers.get(key);
    if (!t) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no such parameter or buffer', { field: key });
    return t;
  }

  /** The backbone's state dict as torchvision names it (num_batches_tracked included), copied to the host. */
  stateDict(): Map<string, TorchTensor> {
    this.checkLive();
    const sd = new Map<string, TorchTensor>();
    for (const cb of allConvBns(this.spec)) {
      const put = (key: string) => {
        const t = this.get(key);
        sd.set(key, new TorchTensor('float32', [...t.shape], t.toFloat32Array()));
      };
      put(`${cb.conv}.weight`);
      for (const p of ['weight', 'bias', 'running_mean', 'running_var']) put(`${cb.bn}.${p}`);
      sd.set(`${cb.bn}.num_batches_tracked`, new TorchTensor('int64', [], BigInt64Array.from([this.batchesTracked.get(cb.bn)!])));
    }
    return sd;
  }

  /**
   * Train-mode forward of x [N, 3, H, W] (float32, on the network's device): the features
   * [N, featureDim] (on that device) and the tape for backward(). Updates the running statistics.
   *
   * opts.bnGroups = G (default 1) splits the batch into G equal groups of consecutive images, each
   * normalised by its own batch statistics, as G GPUs under DistributedDataParallel each normalise
   * their share (the running statistics follow group 0, rank 0's share; see batchNormTrain). N must
   * be a multiple of G with at least 2 images per group.
   */
  forwardTrain(x: Tensor, opts: TrainForwardOptions = {}): { features: Tensor; tape: TrainTape } {
    this.checkLive();
    const groups = this.checkTrainInput(x, opts);
    const owned: Tensor[] = [];
    const keep = (t: Tensor): Tensor => {
      owned.push(t);
      return t;
    };
    try {
      const input = keep(ops.nchwToNhwc(x));
      const stem = this.unitForward(input, this.spec.stem, 'relu', keep, groups).tape;
      const stemOut = keep(ops.maxPool2d(stem.y!, MAX_POOL));
      let h = stemOut;
      const blocks: BlockTape[] = [];
      for (const block of this.spec.blocks) {
        // The downsample first: its BN output is the residual that the last unit's batch norm adds
        // before the block's ReLU (one fused pass). It is not needed by backward (the ReLU's
        // gradient reads `out`), so it goes once the block's output exists.
        const ds = block.downsample ? this.unitForward(h, block.downsample, 'none', keep, groups) : undefined;
        const units: UnitTape[] = [];
        let m = h;
        let out: Tensor | undefined;
        try {
          block.convs.forEach((cb, i) => {
            const last = i === block.convs.length - 1;
            const u = this.unitForward(m, cb, last ? { residual: ds ? ds.bnOut! : h } : 'relu', keep, groups);
            units.push(u.tape);
            if (last) out = keep(u.bnOut!);
            else m = u.tape.y!;
          });
        } finally {
          ds?.bnOut!.dispose();
        }
        blocks.push({ block, units, ...(ds ? { downsample: ds.tape } : {}), out: out! });
        h = out!;
      }
      const features = ops.globalAvgPool(h);
      const lastShape = h.shape as [number, number, number, number];
      return { features, tape: new TrainTape([...x.shape], stem, stemOut, blocks, lastShape, owned) };
    } catch (e) {
      for (const t of owned) t.dispose();
      throw e;
    }
  }

  /**
   * forwardTrain without a tape, for a forward under no_grad in train mode (MoCo's key encoder): the
   * same features and running-statistic updates, bit for bit, but every activation is freed as soon
   * as the next layer has read it, so memory holds a block's few activations instead of the whole
   * network's. Returns the features [N, featureDim].
   */
  forwardTrainNoGrad(x: Tensor, opts: TrainForwardOptions = {}): Tensor {
    this.checkLive();
    const groups = this.checkTrainInput(x, opts);
    let h: Tensor;
    const input = ops.nchwToNhwc(x);
    try {
      const stem = this.unitNoGrad(input, this.spec.stem, 'relu', groups);
      try {
        h = ops.maxPool2d(stem, MAX_POOL);
      } finally {
        stem.dispose();
      }
    } finally {
      input.dispose();
    }
    try {
      for (const block of this.spec.blocks) {
        const ds = block.downsample ? this.unitNoGrad(h, block.downsample, 'none', groups) : undefined;
        let m = h;
        try {
          block.convs.forEach((cb, i) => {
            const last = i === block.convs.length - 1;
            const next = this.unitNoGrad(m, cb, last ? { residual: ds ?? h } : 'relu', groups);
            if (m !== h) m.dispose();
            m = next;
          });
        } catch (e) {
          if (m !== h) m.dispose();
          throw e;
        } finally {
          ds?.dispose();
        }
        h.dispose();
        h = m;
      }
      return ops.globalAvgPool(h);
    } finally {
      h.dispose();
    }
  }

  /**
   * Gradients of a scalar loss given dL/dfeatures [N, featureDim]; consumes (disposes) the tape.
   * With `inputGrad`, also dL/dx in the input's NCHW layout.
   */
  backward(tape: TrainTape, dFeatures: Tensor, opts: { inputGrad?: boolean } = {}): BackwardResult {
    this.checkLive();
    if (tape.disposed) throw new SslInvError('ERR_TENSOR_DISPOSED', 'this tape was already used by backward() or disposed');
    const [n, , , c] = tape.lastShape;
    if (dFeatures.dtype !== 'float32' || dFeatures.shape.length !== 2 || dFeatures.shape[0] !== n || dFeatures.shape[1] !== c) {
      throw new SslInvError('ERR_SHAPE_MISMATCH',
        `expected float32 [${n}, ${c}] but got ${dFeatures.dtype} [${dFeatures.shape.join(', ')}]`, { field: 'dFeatures' });
    }
    if (dFeatures.device !== this.device) {
      throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `dFeatures is on ${dFeatures.device}, the network on ${this.device}`, { field: 'dFeatures' });
    }
    const grads = new Map<string, Tensor>();
    let d: Tensor | undefined;
    try {
      // d is the gradient at a block's ReLU input (after the mask): each block's backward returns
      // the next one's already masked by that block's output (fused into its input-gradient pass).
      const dPool = globalAvgPoolBackward(dFeatures, tape.lastShape);
      try {
        d = reluBackward(dPool, tape.blocks[tape.blocks.length - 1]!.out);
      } finally {
        dPool.dispose();
      }
      for (let b = tape.blocks.length - 1; b >= 0; b--) {
        const next = this.blockBackward(tape.blocks[b]!, d, grads, b > 0 ? tape.blocks[b - 1]!.out : undefined);
        d.dispose();
        d = next;
      }
      const dStem = maxPool2dBackward(d, tape.stem.y!, MAX_POOL);
      d.dispose();
      d = dStem;
      const dx = this.unitBackward(tape.stem, d, grads, opts.inputGrad ?? false);
      d.dispose();
      d = undefined;
      let dInput: Tensor | undefined;
      if (dx) {
        dInput = ops.nhwcToNchw(dx);
        dx.dispose();
      }
      // PyTorch's order, so optimisers and state dicts see the usual sequence.
      const ordered = new Map(this.parameterNames().map((k) => [k, grads.get(k)!]));
      return dInput ? { grads: ordered, dInput } : { grads: ordered };
    } catch (e) {
      d?.dispose();
      for (const g of grads.values()) g.dispose();
      throw e;
    } finally {
      tape.dispose();
    }
  }

  /**
   * One optimiser step with these gradients (as backward() returned them), written into the
   * network's own parameter tensors (SGD.stepInPlace: the network owns them, so no new tensors are
   * made; a tensor obtained from get() sees the new value). The gradients stay the caller's.
   */
  step(optimizer: SGD, grads: Map<string, Tensor>): void {
    this.checkLive();
    for (const k of this.params.keys()) {
      if (!grads.has(k)) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no gradient for this parameter', { field: k });
    }
    optimizer.stepInPlace(this.params, grads);
  }

  /**
   * MoCo's key-encoder update from the query encoder `q` (same architecture): every parameter
   * p <- p * m + p_q * (1 - m); running statistics are buffers, not parameters, and stay this network's.
   */
  momentumUpdateFrom(q: TrainableResNet, m: number): void {
    this.checkLive();
    if (q.arch !== this.arch) throw new SslInvError('ERR_INVALID_ARGUMENT', `momentum update from a ${q.arch} into a ${this.arch}`);
    if (q.device !== this.device) throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `momentum update from a network on ${q.device} into one on ${this.device}`);
    // In place, all parameters in one call: the network owns its tensors.
    const names = [...this.params.keys()];
    momentumUpdateInPlace(names.map((k) => this.params.get(k)!), names.map((k) => q.get(k)), m);
  }

  /** Overwrites every parameter with `q`'s (MoCo's initial copy of encoder_q into encoder_k). */
  copyParametersFrom(q: TrainableResNet): void {
    this.checkLive();
    if (q.device !== this.device) throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `parameters from a network on ${q.device} into one on ${this.device}`);
    for (const [k, t] of this.params) {
      this.params.set(k, q.get(k).clone());
      t.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.params.values(), ...this.buffers.values()]) t.dispose();
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }

  private checkLive(): void {
    if (this.disposed) throw new SslInvError('ERR_TENSOR_DISPOSED', 'this network was disposed');
  }

  private geometry(cb: ConvBnSpec): ops.ConvGeometry {
    return { outChannels: cb.outChannels, kernel: [cb.kernel, cb.kernel], stride: [cb.stride, cb.stride], padding: [cb.padding, cb.padding] };
  }

  /**
   * conv -> train-mode BN, then by `after`: 'relu' (the output is saved in the tape as y), 'none'
   * (the BN output is returned beside the tape as bnOut, for the caller to free) or a residual to
   * add before a ReLU (a block's last unit: bnOut = relu(BN + residual) is the block's output; the
   * tape has no y since the ReLU belongs to the block, whose backward masks by its output).
   */
  private unitForward(x: Tensor, cb: ConvBnSpec, after: 'relu' | 'none' | { residual: Tensor },
    keep: (t: Tensor) => Tensor, groups: number): { tape: UnitTape; bnOut?: Tensor } {
    const packed = ops.packConvWeights(this.get(`${cb.conv}.weight`));
    let z: Tensor;
    try {
      z = keep(ops.conv2d(x, packed, this.geometry(cb)));
    } finally {
      packed.dispose();
    }
    const p = {
      weight: this.get(`${cb.bn}.weight`), bias: this.get(`${cb.bn}.bias`),
      runningMean: this.get(`${cb.bn}.running_mean`), runningVar: this.get(`${cb.bn}.running_var`),
      eps: BATCH_NORM_EPS, momentum: BATCH_NORM_MOMENTUM,
    };
    const bn = typeof after === 'object'
      ? batchNormTrainAddRelu(z, p, after.residual, { groups })
      : batchNormTrain(z, p, { relu: after === 'relu', groups });
    keep(bn.mean);
    keep(bn.invstd);
    this.replaceBuffer(`${cb.bn}.running_mean`, bn.runningMean);
    this.replaceBuffer(`${cb.bn}.running_var`, bn.runningVar);
    this.batchesTracked.set(cb.bn, this.batchesTracked.get(cb.bn)! + 1n);
    const tape: UnitTape = { cb, x, z, mean: bn.mean, invstd: bn.invstd };
    if (after !== 'relu') return { tape, bnOut: bn.y };
    tape.y = keep(bn.y);
    return { tape };
  }

  /** unitForward with nothing kept: returns the unit's output (y or bnOut) and frees the rest at once. */
  private unitNoGrad(x: Tensor, cb: ConvBnSpec, after: 'relu' | 'none' | { residual: Tensor }, groups: number): Tensor {
    const made: Tensor[] = [];
    let out: Tensor | undefined;
    try {
      const u = this.unitForward(x, cb, after, (t) => { made.push(t); return t; }, groups);
      out = after === 'relu' ? u.tape.y! : u.bnOut!;
      return out;
    } finally {
      for (const t of made) if (t !== out) t.dispose();
    }
  }

  /** Checks forwardTrain's input and options; returns the number of batch-norm groups. */
  private checkTrainInput(x: Tensor, opts: TrainForwardOptions): number {
    if (x.dtype !== 'float32' || x.shape.length !== 4 || x.shape[1] !== 3) {
      throw new SslInvError('ERR_SHAPE_MISMATCH',
        `expected input images [N, 3, H, W] float32 but got ${x.dtype} [${x.shape.join(', ')}]`, { field: 'x' });
    }
    if (x.device !== this.device) {
      throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `the input images are on ${x.device}, the network on ${this.device}`, { field: 'x' });
    }
    const n = x.shape[0]!, groups = opts.bnGroups ?? 1;
    if (!Number.isSafeInteger(groups) || groups < 1 || n % groups !== 0) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `the batch of ${n} cannot be split into ${groups} equal batch-norm groups`, { field: 'bnGroups' });
    }
    if (n / groups < 2) {
      // PyTorch refuses too: a batch statistic over one value per channel has no variance.
      throw new SslInvError('ERR_INVALID_ARGUMENT', groups === 1
        ? 'train-mode batch norm needs more than one value per channel: use a batch of 2 or more'
        : `train-mode batch norm needs 2 or more images per group: ${n} images in ${groups} groups`, { field: groups === 1 ? 'x' : 'bnGroups' });
    }
    return groups;
  }

  private replaceBuffer(key: string, t: Tensor): void {
    this.buffers.get(key)!.dispose();
    this.buffers.set(key, t);
  }

  /**
   * Gradients of one unit given dL/d(its output); returns dL/dx when wanted (else undefined), through
   * the dgrad epilogue `ep` when given (a block's residual gradient and ReLU mask).
   */
  private unitBackward(u: UnitTape, dy: Tensor, grads: Map<string, Tensor>, wantDx: boolean,
    ep?: { residual?: Tensor; reluOutput?: Tensor }): Tensor | undefined {
    // A unit with its own ReLU masks dy by the ReLU's output inside the batch-norm backward.
    const w = this.get(`${u.cb.bn}.weight`);
    const bn = u.y ? batchNormReluBackward(dy, u.y, u.z, w, u.mean, u.invstd) : batchNormBackward(dy, u.z, w, u.mean, u.invstd);
    grads.set(`${u.cb.bn}.weight`, bn.dweight);
    grads.set(`${u.cb.bn}.bias`, bn.dbias);
    try {
      const g = this.geometry(u.cb);
      grads.set(`${u.cb.conv}.weight`, conv2dBackwardWeight(u.x, bn.dx, g));
      if (!wantDx) return undefined;
      const w = this.get(`${u.cb.conv}.weight`), size: [number, number] = [u.x.shape[1]!, u.x.shape[2]!];
      return ep ? conv2dBackwardDataEpilogue(bn.dx, w, g, size, ep) : conv2dBackwardData(bn.dx, w, g, size);
    } finally {
      bn.dx.dispose();
    }
  }

  /**
   * dL/d(block input) from dSum, the gradient at the block's ReLU input (its output gradient already
   * masked). The identity branch's gradient is added inside the first unit's dgrad, which also masks
   * the result by `inputReluOutput` (the previous block's output) when given, so the returned
   * gradient is the previous block's dSum.
   */
  private blockBackward(t: BlockTape, dSum: Tensor, grads: Map<string, Tensor>, inputReluOutput?: Tensor): Tensor {
    const dIdentity = t.downsample ? this.unitBackward(t.downsample, dSum, grads, true)! : dSum;
    try {
      let d = dSum;
      for (let i = t.units.length - 1; i >= 1; i--) {
        const next = this.unitBackward(t.units[i]!, d, grads, true)!;
        if (d !== dSum) d.dispose();
        d = next;
      }
      try {
        return this.unitBackward(t.units[0]!, d, grads, true,
          { residual: dIdentity, ...(inputReluOutput ? { reluOutput: inputReluOutput } : {}) })!;
      } finally {
        if (d !== dSum) d.dispose();
      }
    } finally {
      if (dIdentity !== dSum) dIdentity.dispose();
    }
  }
}
