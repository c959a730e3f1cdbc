/**
 * Typed ops on Tensors: thin wrappers over the native kernels that convert errors into SslInvError.
 * Each op runs where its first tensor lives (the CPU, or a CUDA device, where every tensor argument
 * must be on the same device and the result stays there). Shapes use the conventions of native/ops/*.h:
 *   - activations inside networks are NHWC float32: [N, H, W, C];
 *   - convolution weights are PyTorch's [K, C, R, S], packed once by `packConvWeights` (on the CPU
 *     into the GEMM's panels, on CUDA into [K, R, S, C]);
 *   - linear weights are PyTorch's [out, in].
 * Every op returns a new tensor and leaves its inputs untouched.
 */
import { callNative as call, SslInvError } from './errors';
import { native, NativeTensor } from './native';
import { Tensor, wrap } from './tensor';
import type { Normalization } from './image-ops';

const h = (t: Tensor | undefined): NativeTensor | undefined => t?.handle;

export interface ConvGeometry {
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/** Arithmetic of a convolution: fp32 everywhere; tf32 and bf16 (tensor cores) on CUDA only. */
export type Precision = 'fp32' | 'tf32' | 'bf16';

/**
 * Which kernel runs a CUDA convolution: 'auto' (the default, what every network uses) or a named
 * variant, for benchmarks to time side by side: 'simt-bk8' / 'simt-bk16' for fp32, 'mma-staged' /
 * 'mma-pipelined' (cp.async pipeline; shapes it cannot take run staged) for tf32. The variants of a
 * precision give the same bits (same terms, same order). bfloat16 tensors (bf16 in memory) take
 * 'auto' = 'mma-pipelined' (mma.sync) or 'wgmma' (Hopper's warpgroup tensor cores: compute
 * capability 9.0 only, ERR_DEVICE_UNAVAILABLE elsewhere; within bf16 tolerance of the other, not
 * bit-identical on a GPU). The CPU takes 'auto' only.
 */
export type ConvAlgo = 'auto' | 'simt-bk8' | 'simt-bk16' | 'mma-staged' | 'mma-pipelined' | 'wgmma';

export interface Epilogue {
  /** [K] added per output channel. */
  bias?: Tensor;
  /** Same shape as the output, added before the ReLU. */
  residual?: Tensor;
  relu?: boolean;
}

/** Packs [K, C, R, S] weights for `conv2d`, optionally scaled per output channel (BN folding). */
export function packConvWeights(weight: Tensor, scale?: Tensor): Tensor {
  return call('packConvWeights', () => wrap(native().convPackWeights(weight.handle, h(scale))));
}

/** y [N, P, Q, K] = epilogue(conv(x [N, H, W, C], packed weights)). */
export function conv2d(x: Tensor, packedWeight: Tensor, g: ConvGeometry, ep: Epilogue & { precision?: Precision; algo?: ConvAlgo } = {}): Tensor {
  return call('conv2d', () => wrap(native().conv2d(x.handle, packedWeight.handle, {
    ...(ep.precision !== undefined && ep.precision !== 'fp32' ? { precision: ep.precision } : {}),
    ...(ep.algo !== undefined && ep.algo !== 'auto' ? { algo: ep.algo } : {}),
    outChannels: g.outChannels,
    kernelH: g.kernel[0], kernelW: g.kernel[1],
    strideH: g.stride[0], strideW: g.stride[1],
    padH: g.padding[0], padW: g.padding[1],
    bias: h(ep.bias), residual: h(ep.residual), relu: ep.relu ?? false,
  })));
}

/**
 * The convolution of a network whose activations are stored in bf16, on fp32 tensors (CUDA only):
 * x, the packed weights and the residual are rounded to bf16 (nearest even) as storing them would,
 * the bf16-in-memory tensor-core kernel (native/cuda/conv2d_pipelined.cu) computes in fp32 and rounds
 * its output to bf16 once, and the result comes back as fp32 (exactly). Needs C % 8 == 0 (pad a
 * 3-channel input with zero channels) and an even outChannels; otherwise ERR_INVALID_ARGUMENT.
 * Error against the exact sum: within 2^-8 of the value plus fp32 accumulation. `algo` picks the
 * kernel as for bfloat16 tensors in conv2d: 'auto' = 'mma-pipelined', or 'wgmma' (compute capability 9.0).
 */
export function conv2dBf16Storage(x: Tensor, packedWeight: Tensor, g: ConvGeometry, ep: Epilogue & { algo?: ConvAlgo } = {}): Tensor {
  return call('conv2dBf16Storage', () => wrap(native().conv2dBf16Storage(x.handle, packedWeight.handle, {
    outChannels: g.outChannels,
    kernelH: g.kernel[0], kernelW: g.kernel[1],
    strideH: g.stride[0], strideW: g.stride[1],
    padH: g.padding[0], padW: g.padding[1],
    bias: h(ep.bias), residual: h(ep.residual), relu: ep.relu ?? false, algo: ep.algo,
  })));
}

/**
 * x (float32) rounded to bfloat16 (nearest even; every NaN becomes 0x7FFF, as on CUDA), with the
 * last dimension zero-padded to `padLastDimTo` when given (a 3-channel NHWC input or a packed filter
 * to the 8 channels the bf16 convolution reads at a time). The same bits on the CPU and on a device;
 * the result stays on x's device.
 */
export function toBfloat16(x: Tensor, opts: { padLastDimTo?: number } = {}): Tensor {
  return call('toBfloat16', () => wrap(native().toBfloat16(x.handle, opts.padLastDimTo)));
}

/** A bfloat16 tensor widened to float32 (exact), on its device. */
export function bfloat16ToFloat32(x: Tensor): Tensor {
  return call('bfloat16ToFloat32', () => wrap(native().bfloat16ToFloat32(x.handle)));
}

export interface PoolGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/** Max pooling, PyTorch semantics with ceil_mode = false. x [N, H, W, C] -> [N, P, Q, C]. */
export function maxPool2d(x: Tensor, g: PoolGeometry): Tensor {
  return call('maxPool2d', () => wrap(native().maxPool2d(x.handle, {
    kernelH: g.kernel[0], kernelW: g.kernel[1], strideH: g.stride[0], strideW: g.stride[1],
    padH: g.padding[0], padW: g.padding[1],
  })));
}

/** adaptive_avg_pool2d to 1x1, flattened: x [N, H, W, C] -> [N, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  return call('globalAvgPool', () => wrap(native().globalAvgPool(x.handle)));
}

export function relu(x: Tensor): Tensor {
  return call('relu', () => wrap(native().relu(x.handle)));
}

export function add(a: Tensor, b: Tensor, opts: { relu?: boolean } = {}): Tensor {
  return call('add', () => wrap(native().add(a.handle, b.handle, opts.relu ?? false)));
}

/**
 * Rows of x picked by index: out[r] = x[index[r]] (torch's x[index] along dim 0), any dtype, on x's
 * device, e.g. MoCo's shuffle of the key images without a round trip through the host. Indices may
 * repeat or leave rows out; one outside [0, rows) is ERR_INVALID_ARGUMENT before anything is copied.
 * x [R, ...], index [n] -> [n, ...].
 */
export function gatherRows(x: Tensor, index: ArrayLike<number>): Tensor {
  return call('gatherRows', () => {
    const idx = index instanceof Int32Array ? index : Int32Array.from(index, (v, i) => {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
        throw new SslInvError('ERR_INVALID_ARGUMENT', `gatherRows: index[${i}] = ${v} is not a row number`, { field: 'index' });
      }
      return v;
    });
    return wrap((native() as unknown as { gatherRows(x: NativeTensor, i: Int32Array): NativeTensor }).gatherRows(x.handle, idx));
  });
}

/**
 * ToTensor + Normalize of a batch of uint8 images on their device: x [N, H, W, C] (HWC pixels, 1 to
 * 4 channels) -> float32 [N, C, H, W], (v / 255 - mean[c]) / std[c] with every step a float32
 * operation, as torchvision computes it: the bits of the CPU's cropNormalizeU8, and of
 * applyAugmentAsync's float32 views for its uint8 ones. A uint8 batch is a quarter of the bytes to
 * copy to a GPU.
 */
export function normalizeImagesU8(x: Tensor, norm: Normalization): Tensor {
  return call('normalizeImagesU8', () => wrap((native() as unknown as {
    normalizeImagesU8(x: NativeTensor, n: { mean: number[]; std: number[] }): NativeTensor;
  }).normalizeImagesU8(x.handle, { mean: [...norm.mean], std: [...norm.std] })));
}

/** Inference-mode batch norm over the last (channel) dimension. */
export function batchNormInference(x: Tensor, p: BatchNormParams): Tensor {
  return call('batchNormInference', () => wrap(native().batchNormInference(x.handle, p.weight.handle, p.bias.handle,
    p.runningMean.handle, p.runningVar.handle, p.eps)));
}

export interface BatchNormParams {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
}

/** The per-channel scale and shift of an inference batch norm, computed as PyTorch does. */
export function batchNormFold(p: BatchNormParams): { scale: Tensor; shift: Tensor } {
  return call('batchNormFold', () => {
    const [scale, shift] = native().batchNormFold(p.weight.handle, p.bias.handle, p.runningMean.handle,
      p.runningVar.handle, p.eps);
    return { scale: wrap(scale), shift: wrap(shift) };
  });
}

/** y [N, out] = x [N, in] W^T + b, with W [out, in] as in PyTorch. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return call('linear', () => wrap(native().linear(x.handle, weight.handle, h(bias))));
}

export interface GemmOptions extends Epilogue {
  transA?: boolean;
  transB?: boolean;
}

/** C = op(A) op(B) (+ bias + residual, ReLU) for 2-D float32 tensors. */
export function matmul(a: Tensor, b: Tensor, opts: GemmOptions = {}): Tensor {
  return call('matmul', () => wrap(native().gemm(a.handle, b.handle, {
    transA: opts.transA ?? false, transB: opts.transB ?? false,
    bias: h(opts.bias), residual: h(opts.residual), relu: opts.relu ?? false,
  })));
}

export function nchwToNhwc(x: Tensor): Tensor {
  return call('nchwToNhwc', () => wrap(native().nchwToNhwc(x.handle)));
}

export function nhwcToNchw(x: Tensor): Tensor {
  return call('nhwcToNchw', () => wrap(native().nhwcToNchw(x.handle)));
}

/** ops.mocoLoss's extra outputs (see there); the result holds those asked for. */
export interface MocoLossOptions {
  ranks?: boolean;
  rowLosses?: boolean;
}
export interface MocoLossResult {
  loss: Tensor;
  dq: Tensor;
  rank?: Tensor;
  rowLoss?: Tensor;
}

/**
 * The MoCo v2 loss and its gradient with respect to q, fused: q, kPos [N, D], queue [D, K] (MoCo's
 * buffer, one key per column), temperature T. loss = mean cross-entropy of [q.k+, q.queue] / T
 * against index 0; dq [N, D]. The N x (K+1) logits are never materialised.
 *
 * With `ranks: true`, also rank int32 [N]: for each query, how many queue logits are strictly above
 * its positive logit (both as float32 logits / T). main_moco.py's Acc@k is 100 * mean(rank < k) (see
 * mocoAccuracy); a queue logit equal to the positive one does not count against it. The CPU and a
 * CUDA device sum the dot products in different orders, so a queue logit within an ulp or so of the
 * positive one may count on one and not the other.
 *
 * With `rowLosses: true`, also rowLoss float32 [N]: each query's own cross-entropy, whose mean is
 * loss. A GPU of main_moco.py under DistributedDataParallel reports the mean over its rows.
 * Outputs are on q's device.
 */
export function mocoLoss(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number): { loss: Tensor; dq: Tensor };
export function mocoLoss(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number, opts: { ranks: true; rowLosses: true }):
  { loss: Tensor; dq: Tensor; rank: Tensor; rowLoss: Tensor };
export function mocoLoss(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number, opts: { ranks: true; rowLosses?: false }):
  { loss: Tensor; dq: Tensor; rank: Tensor };
export function mocoLoss(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number, opts: { ranks?: false; rowLosses: true }):
  { loss: Tensor; dq: Tensor; rowLoss: Tensor };
export function mocoLoss(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number, opts?: MocoLossOptions): MocoLossResult;
export function mocoLoss(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number, opts: MocoLossOptions = {}): MocoLossResult {
  return call('mocoLoss', () => {
    const ranks = opts.ranks ?? false, rowLosses = opts.rowLosses ?? false;
    const out = (native() as unknown as {
      mocoLoss(q: NativeTensor, k: NativeTensor, queue: NativeTensor, t: number, ranks: boolean, rowLosses: boolean): NativeTensor[];
    }).mocoLoss(q.handle, kPos.handle, queue.handle, temperature, ranks, rowLosses);
    const r: MocoLossResult = { loss: wrap(out[0]!), dq: wrap(out[1]!) };
    let next = 2;
    if (ranks) r.rank = wrap(out[next++]!);
    if (rowLosses) r.rowLoss = wrap(out[next++]!);
    return r;
  });
}

/** main_moco.py's accuracy(output, target, topk): 100 * the share of queries whose rank is below each k. */
export function mocoAccuracy(rank: ArrayLike<number>, topk: readonly number[] = [1, 5]): number[] {
  const n = rank.length;
  return topk.map((k) => {
    let hit = 0;
    for (let i = 0; i < n; i++) hit += rank[i]! < k ? 1 : 0;
    return n > 0 ? (100 * hit) / n : 0;
  });
}

export function setNumThreads(n: number): void {
  call('setNumThreads', () => native().setNumThreads(n));
}
