/**
 * Training primitives of the ResNet layers other than the convolution: train-mode batch norm forward
 * and backward, the backward passes of ReLU, max pooling and global average pooling, the column sums
 * of bias gradients, and MoCo's momentum (key-encoder) update. Native kernels in
 * native/cpu/layer_backward.cc and native/cpu/sgd.cc (their headers in native/ops describe the
 * arithmetic), and their CUDA counterparts in native/cuda/layer_backward.cu and native/cuda/sgd.cu.
 *
 * All tensors are float32, on the CPU or on one CUDA device: each op runs where its first tensor
 * argument lives and returns its results there; every other tensor argument must be on the same
 * device (else ERR_DEVICE_UNAVAILABLE naming it). Activations are NHWC as everywhere in the ResNet
 * path. Every function but momentumUpdateInPlace (which writes its key tensors, by design) returns new
 * tensors and leaves its inputs untouched. The fused ops (batchNormTrainAddRelu, batchNormReluBackward)
 * give the same bits as the op sequences they replace. Results are the same bits whatever the thread
 * count, and the same bits on every run on a device. Errors: ERR_SHAPE_MISMATCH (naming the argument
 * and both shapes), ERR_DTYPE_MISMATCH, ERR_INVALID_ARGUMENT for out-of-range options,
 * ERR_DEVICE_UNAVAILABLE for tensors on different devices.
 *
 * On a CUDA device: reluBackward, maxPool2dBackward, globalAvgPoolBackward and momentumUpdate(InPlace)
 * are the CPU's bits (NaN payloads aside); the batch-norm statistics and sumRows reduce in float64 in
 * another fixed order, so they (and y, dx, which the same float32 steps derive from them) agree with
 * the CPU to float32 rounding (relative 1e-5), usually bit for bit.
 *
 * Split batch norm (the `groups` option of batchNormTrain / batchNormTrainAddRelu): the batch is cut
 * into G equal groups of consecutive samples, each normalised with its own statistics, as
 * DistributedDataParallel's per-GPU BatchNorm2d does with G GPUs. The saved mean and invstd are then
 * [G, C], and the backward functions read G from their shape.
 */
import { callNative } from '../errors';
import { NativeAddon, NativeTensor, NativePoolOptions, nativeOps } from '../native';
import type { PoolGeometry } from '../ops';
import { Tensor, wrap } from '../tensor';

interface LayerBackwardAddon {
  batchNormTrain(x: NativeTensor, weight: NativeTensor, bias: NativeTensor, runningMean: NativeTensor,
    runningVar: NativeTensor,
    opts: { eps: number; momentum: number; relu: boolean; residual?: NativeTensor; groups?: number }): NativeTensor[];
  batchNormBackward(dy: NativeTensor, x: NativeTensor, weight: NativeTensor, mean: NativeTensor,
    invstd: NativeTensor, reluOutput?: NativeTensor): NativeTensor[];
  reluBackward(dy: NativeTensor, y: NativeTensor): NativeTensor;
  maxPool2dBackward(dy: NativeTensor, x: NativeTensor, opts: NativePoolOptions): NativeTensor;
  globalAvgPoolBackward(dy: NativeTensor, inputShape: number[]): NativeTensor;
  sumRows(x: NativeTensor): NativeTensor;
  momentumUpdate(k: NativeTensor, q: NativeTensor, m: number): NativeTensor;
  momentumUpdateInPlace(ks: NativeTensor[], qs: NativeTensor[], m: number): void;
}

function addon(): NativeAddon & LayerBackwardAddon {
  return nativeOps<LayerBackwardAddon>('layer backward', ['batchNormTrain', 'maxPool2dBackward']);
}

export interface BatchNormTrainParams {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
  /** PyTorch's momentum of the running statistics (0.1 in torchvision's BatchNorm2d), in [0, 1]. */
  momentum: number;
}

export interface BatchNormTrainOptions {
  /**
   * Split batch norm: the number G of groups (default 1), an integer >= 1 that divides the batch size
   * N = x.shape[0], with at least 2 values per channel in each group (else ERR_INVALID_ARGUMENT).
   * Group g is samples g * N / G .. (g + 1) * N / G - 1, normalised with its own batch statistics: its
   * y, mean and invstd are the same bits as a call on that slice alone. The running statistics are
   * updated from group 0's statistics only (n = rows / G in the unbiased-variance factor): that is
   * DistributedDataParallel's behaviour with one group per GPU, where rank 0's buffers are broadcast
   * to all ranks at every forward (broadcast_buffers) and rank 0 writes the checkpoint.
   */
  groups?: number;
}

export interface BatchNormTrainResult {
  y: Tensor;
  /** The batch mean, for batchNormBackward: [C], or [G, C] (row g: group g) with groups G > 1. */
  mean: Tensor;
  /** 1 / sqrt(var + eps) with the biased batch variance, for batchNormBackward: mean's shape. */
  invstd: Tensor;
  /** [C], from group 0's statistics when groups > 1. */
  runningMean: Tensor;
  /** [C], from group 0's statistics when groups > 1. */
  runningVar: Tensor;
}

/**
 * Train-mode batch norm over the last (channel) dim of x [N, ..., C] (rank >= 2; rows = the product of
 * the other dims, at least 2). Mean and biased variance from the batch, accumulated in float64 (two
 * passes over each block of rows, the blocks merged by Chan et al.'s update) and rounded to float32
 * once; y = (x - mean) * (invstd * weight) + bias, then ReLU when opts.relu.
 * Also returns the saved mean and invstd ([C]; [G, C] with opts.groups = G > 1, see
 * BatchNormTrainOptions) and the updated running statistics [C] as new tensors (PyTorch's rule,
 * n = rows, or rows / G and group 0's mean and var with groups):
 *   runningMean' = (1 - momentum) * runningMean + momentum * mean
 *   runningVar'  = (1 - momentum) * runningVar + momentum * var * n / (n - 1)
 * y agrees with PyTorch's within float32 rounding, not bit for bit (PyTorch computes
 * x * a + (bias - mean * a), which loses low bits when |mean| >> std).
 */
export function batchNormTrain(x: Tensor, p: BatchNormTrainParams, opts: { relu?: boolean } & BatchNormTrainOptions = {}):
  BatchNormTrainResult {
  return callNative('batchNormTrain', () => bnTrain(x, p, opts.relu ?? false, undefined, opts.groups));
}

function bnTrain(x: Tensor, p: BatchNormTrainParams, relu: boolean, residual?: Tensor, groups?: number): BatchNormTrainResult {
  const [y, mean, invstd, rm, rv] = addon().batchNormTrain(x.handle, p.weight.handle, p.bias.handle,
    p.runningMean.handle, p.runningVar.handle,
    { eps: p.eps, momentum: p.momentum, relu, ...(residual ? { residual: residual.handle } : {}),
      ...(groups !== undefined ? { groups } : {}) });
  return { y: wrap(y!), mean: wrap(mean!), invstd: wrap(invstd!), runningMean: wrap(rm!), runningVar: wrap(rv!) };
}

/**
 * A ResNet block's last batch norm fused with the residual add and the block's ReLU:
 * y = relu(batchNorm(x) + residual), residual shaped like x. Statistics, running statistics and the
 * rounding of every step are batchNormTrain's, then the same float32 sum and ReLU (NaN kept) as
 * ops.add(bnOut, residual, { relu: true }), so y is the same bits as that two-op sequence, without
 * writing and re-reading the intermediate. ERR_SHAPE_MISMATCH when residual's shape differs from x's.
 * opts.groups: split batch norm, as batchNormTrain's (the residual add and ReLU are element-wise).
 */
export function batchNormTrainAddRelu(x: Tensor, p: BatchNormTrainParams, residual: Tensor,
  opts: BatchNormTrainOptions = {}): BatchNormTrainResult {
  return callNative('batchNormTrainAddRelu', () => bnTrain(x, p, true, residual, opts.groups));
}

/**
 * Gradients of train-mode batch norm (without ReLU: apply reluBackward to dy first), from the saved
 * mean and invstd of batchNormTrain: dx like x, dweight and dbias [C]. Per-channel sums in float64:
 *   dbias = sum dy, dweight = sum (x - mean) dy * invstd,
 *   dx = (dy - dbias / n - (x - mean) * invstd^2 * sum((x - mean) dy) / n) * invstd * weight.
 * Split batch norm: with mean and invstd [G, C] (batchNormTrain with groups G) the batch is taken as G
 * groups of N / G samples (G must divide N = x.shape[0], else ERR_SHAPE_MISMATCH naming mean; invstd
 * must have mean's shape). Each group's dx is the formula above on its own rows (n = rows / G) with its
 * own mean and invstd, the same bits as a call on that slice alone; dbias and dweight add the groups'
 * float64 sums (sum dy, and sum (x - mean_g) dy * invstd_g) in group order and round once.
 */
export function batchNormBackward(dy: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor):
  { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  return callNative('batchNormBackward', () => {
    const [dx, dweight, dbias] = addon().batchNormBackward(dy.handle, x.handle, weight.handle, mean.handle, invstd.handle);
    return { dx: wrap(dx!), dweight: wrap(dweight!), dbias: wrap(dbias!) };
  });
}

/**
 * Gradients of relu(batchNorm(x)) given dy with respect to the ReLU's output y (batchNormTrain's y with
 * relu: true): batchNormBackward(reluBackward(dy, y), x, ...) in one call, the same bits, without the
 * masked gradient's own pass and tensor. dy, y and x share one shape (else ERR_SHAPE_MISMATCH).
 * mean and invstd [G, C]: split batch norm, as in batchNormBackward.
 */
export function batchNormReluBackward(dy: Tensor, y: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor):
  { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  return callNative('batchNormReluBackward', () => {
    const [dx, dweight, dbias] = addon().batchNormBackward(dy.handle, x.handle, weight.handle, mean.handle,
      invstd.handle, y.handle);
    return { dx: wrap(dx!), dweight: wrap(dweight!), dbias: wrap(dbias!) };
  });
}

/**
 * PyTorch's threshold_backward on the ReLU's OUTPUT y: dx = y <= 0 ? 0 : dy (dy where y > 0; a NaN
 * output passes its gradient, as in PyTorch).
 */
export function reluBackward(dy: Tensor, y: Tensor): Tensor {
  return callNative('reluBackward', () => wrap(addon().reluBackward(dy.handle, y.handle)));
}

/**
 * dx [N, H, W, C] of maxPool2d: each dy element goes to the input element that won its window in the
 * forward, recomputed from x with exactly the forward's rule (PyTorch's: scan order rows then
 * columns; the first maximum wins ties; a NaN always takes over, so the last NaN of a window wins).
 * Windows that share a winner add their gradients.
 */
export function maxPool2dBackward(dy: Tensor, x: Tensor, g: PoolGeometry): Tensor {
  return callNative('maxPool2dBackward', () => wrap(addon().maxPool2dBackward(dy.handle, x.handle, {
    kernelH: g.kernel[0], kernelW: g.kernel[1], strideH: g.stride[0], strideW: g.stride[1],
    padH: g.padding[0], padW: g.padding[1],
  })));
}

/** dx [N, H, W, C] = dy[n, c] / (H * W) for every (h, w) (one float32 division, as PyTorch's). */
export function globalAvgPoolBackward(dy: Tensor, inputShape: [number, number, number, number]): Tensor {
  return callNative('globalAvgPoolBackward', () => wrap(addon().globalAvgPoolBackward(dy.handle, [...inputShape])));
}

/** [N] column sums of x [M, N] (bias gradients), accumulated in float64 and rounded once. */
export function sumRows(x: Tensor): Tensor {
  return callNative('sumRows', () => wrap(addon().sumRows(x.handle)));
}

/**
 * MoCo's key-encoder update, as the original computes it in float32 (param_k * m + param_q * (1 - m)):
 * two float32 products (m and 1 - m rounded to float32) then their sum, no FMA. m in [0, 1].
 */
export function momentumUpdate(k: Tensor, q: Tensor, m: number): Tensor {
  return callNative('momentumUpdate', () => wrap(addon().momentumUpdate(k.handle, q.handle, m)));
}

/**
 * momentumUpdate written into the key tensors themselves, for many at once (a whole encoder in one
 * native call and one pass over each tensor): every ks[i] = ks[i] * m + qs[i] * (1 - m), the same
 * bits as momentumUpdate. For owners of the key tensors (TrainableResNet.momentumUpdateFrom); anyone
 * else holding one sees the new value. All arguments are checked before anything is written:
 * ERR_SHAPE_MISMATCH (qs[i] unlike ks[i]), ERR_DTYPE_MISMATCH, ERR_INVALID_ARGUMENT (arrays of
 * different lengths, m outside [0, 1], a k sharing its storage with another k or with another k's q;
 * a k may be its own q).
 */
export function momentumUpdateInPlace(ks: readonly Tensor[], qs: readonly Tensor[], m: number): void {
  callNative('momentumUpdateInPlace',
    () => addon().momentumUpdateInPlace(ks.map((t) => t.handle), qs.map((t) => t.handle), m));
}
