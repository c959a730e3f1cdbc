/**
 * ResNet feature extractor for inference, on the CPU or a CUDA device.
 *
 * Built from a spec (resnet-spec.ts) and a source of torchvision-named parameters. Every batch norm
 * is folded into the conv before it (W' = W * gamma / sqrt(var + eps) per output channel, bias =
 * beta - mean * that scale, computed in float32 as PyTorch's inference BN does), and bias, residual
 * and ReLU run in the convolution's epilogue: a Bottleneck block is three or four native calls.
 *
 * forward() takes PyTorch's layout, x [N, 3, H, W] float32, and returns the pooled features
 * [N, featureDim] (the network with fc = Identity). Activations are NHWC inside; every intermediate
 * is freed as soon as the next layer has consumed it, so peak memory is about two activations.
 *
 * On a CUDA device (`load(..., { device: 'cuda:0' })`) the folding is done on the CPU exactly as for
 * the CPU path, then the folded weights are uploaded once and packed there; forward() uploads a host
 * input itself and returns features on the device (features() brings them back). `precision`
 * 'tf32' / 'bf16' uses the tensor-core convolutions (CUDA only); 'fp32' is PyTorch-faithful.
 */
import { SslInvError } from '../errors';
import { resolveDevice } from '../device';
import * as ops from '../ops';
import { Tensor, tensor } from '../tensor';
import { Arch, BATCH_NORM_EPS, ConvBnSpec, ResNetSpec, allConvBns, resnetSpec } from './resnet-spec';

/** Returns the float32 values of a torchvision-named parameter, e.g. "layer1.0.bn1.running_var". */
export type ParamSource = (key: string) => Promise<Float32Array> | Float32Array;

interface FoldedConv {
  spec: ConvBnSpec;
  packed: Tensor;
  bias: Tensor;
  geometry: ops.ConvGeometry;
}

/** Channels of a bf16 network's tensors: the bf16 convolution reads 8 channels at a time. */
const bf16Channels = (c: number): number => Math.ceil(c / 8) * 8;

async function foldConvBn(cb: ConvBnSpec, source: ParamSource, device: string, bf16: boolean): Promise<FoldedConv> {
  const w = await source(`${cb.conv}.weight`);
  const bn = await Promise.all(['weight', 'bias', 'running_mean', 'running_var'].map((p) => source(`${cb.bn}.${p}`)));
  const expectW = cb.outChannels * cb.inChannels * cb.kernel * cb.kernel;
  if (w.length !== expectW || bn.some((v) => v.length !== cb.outChannels)) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `parameters of ${cb.conv}/${cb.bn} have the wrong sizes`, { field: cb.conv });
  }
  const weight = tensor(w, [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel]);
  const [gamma, beta, mean, variance] = bn.map((v) => tensor(v, [cb.outChannels])) as [Tensor, Tensor, Tensor, Tensor];
  try {
    const { scale, shift } = ops.batchNormFold({ weight: gamma, bias: beta, runningMean: mean, runningVar: variance, eps: BATCH_NORM_EPS });
    let packed: Tensor;
    let bias = shift;
    if (device === 'cpu') {
      packed = ops.packConvWeights(weight, scale);
    } else {
      const [w, sc] = [weight.to(device), scale.to(device)];
      try {
        packed = ops.packConvWeights(w, sc);
        bias = shift.to(device);
      } finally {
        w.dispose();
        sc.dispose();
        if (bias !== shift) shift.dispose();
      }
    }
    scale.dispose();
    if (bf16) {
      // [K, R, S, C] -> bfloat16 with C padded to a multiple of 8 (the stem's 3 -> 8; zeros add nothing).
      const b = ops.toBfloat16(packed, { padLastDimTo: bf16Channels(cb.inChannels) });
      packed.dispose();
      packed = b;
    }
    return {
      spec: cb,
      packed,
      bias,
      geometry: {
        outChannels: cb.outChannels,
        kernel: [cb.kernel, cb.kernel],
        stride: [cb.stride, cb.stride],
        padding: [cb.padding, cb.padding],
      },
    };
  } finally {
    for (const t of [weight, gamma, beta, mean, variance]) t.dispose();
  }
}

/** What a network's activations between layers are stored as (ResNetLoadOptions.activations). */
export type ActivationStorage = 'float32' | 'bfloat16';

export interface ResNetLoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Convolution arithmetic: 'fp32' (default); 'tf32' and 'bf16' need a CUDA device. */
  precision?: ops.Precision;
  /**
   * The CUDA convolution kernel variant for this precision (ops.ConvAlgo; the same bits). Default
   * 'auto'. With bfloat16 activations: 'auto', 'mma-pipelined' or 'wgmma' (compute capability 9.0).
   */
  convAlgo?: ops.ConvAlgo;
  /**
   * What the activations between layers are stored as: 'float32' (default) or, with precision
   * 'bf16' on a CUDA device, 'bfloat16' (as PyTorch's bf16 inference stores them: half the memory
   * traffic; each layer's output is rounded to bf16, so the features differ from the float32-storage
   * bf16 network by about 2^-8 relative per layer). The features come back float32 either way.
   */
  activations?: ActivationStorage;
}

export class ResNetFeatures {
  readonly spec: ResNetSpec;
  /** Where the weights live and the network runs: 'cpu' or 'cuda:N'. */
  readonly device: string;
  readonly precision: ops.Precision;
  readonly convAlgo: ops.ConvAlgo;
  readonly activations: ActivationStorage;
  private readonly convs: Map<string, FoldedConv>;
  private disposed = false;

  private constructor(spec: ResNetSpec, convs: Map<string, FoldedConv>, device: string, precision: ops.Precision, convAlgo: ops.ConvAlgo,
    activations: ActivationStorage) {
    this.spec = spec;
    this.convs = convs;
    this.device = device;
    this.precision = precision;
    this.convAlgo = convAlgo;
    this.activations = activations;
  }

  get arch(): Arch {
    return this.spec.arch;
  }

  get featureDim(): number {
    return this.spec.featureDim;
  }

  /** Builds the folded network, reading each parameter once from `source`. */
  static async load(arch: Arch, source: ParamSource, opts: ResNetLoadOptions = {}): Promise<ResNetFeatures> {
    const spec = resnetSpec(arch);
    const device = resolveDevice(opts.device ?? 'cpu');
    const precision = opts.precision ?? 'fp32';
    if (precision !== 'fp32' && device === 'cpu') {
      throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `precision ${precision} needs a CUDA device; the CPU computes in fp32`);
    }
    const convAlgo = opts.convAlgo ?? 'auto';
    const activations = opts.activations ?? 'float32';
    if (activations !== 'float32' && (activations !== 'bfloat16' || precision !== 'bf16' || device === 'cpu')) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `activations '${activations}' needs precision 'bf16' on a CUDA device ('float32' otherwise)`,
        { field: 'activations' });
    }
    if (activations === 'bfloat16') {
      // The bf16-in-memory convolution's kernels; the device check for 'wgmma' comes with the first layer.
      if (convAlgo !== 'auto' && convAlgo !== 'mma-pipelined' && convAlgo !== 'wgmma') {
        throw new SslInvError('ERR_INVALID_ARGUMENT', `convAlgo '${convAlgo}' with bfloat16 activations: the bf16 convolution takes 'auto', 'mma-pipelined' or 'wgmma'`,
          { field: 'convAlgo' });
      }
    } else {
      const algoPrecision = convAlgo.startsWith('simt-') ? 'fp32' : convAlgo.startsWith('mma-') ? 'tf32' : convAlgo === 'wgmma' ? 'bf16' : precision;
      if (convAlgo === 'wgmma' || (convAlgo !== 'auto' && (device === 'cpu' || precision !== algoPrecision))) {
        const takes = convAlgo === 'wgmma' ? "; 'wgmma' needs activations 'bfloat16'" : `; ${device} ${precision} takes 'auto'`;
        throw new SslInvError('ERR_INVALID_ARGUMENT', `convAlgo '${convAlgo}' is a CUDA ${algoPrecision} kernel${takes}`, { field: 'convAlgo' });
      }
    }
    const convs = new Map<string, FoldedConv>();
    try {
      for (const cb of allConvBns(spec)) convs.set(cb.conv, await foldConvBn(cb, source, device, activations === 'bfloat16'));
    } catch (e) {
      for (const c of convs.values()) {
        c.packed.dispose();
        c.bias.dispose();
      }
      throw e;
    }
    return new ResNetFeatures(spec, convs, device, precision, convAlgo, activations);
  }

  private conv(x: Tensor, cb: ConvBnSpec, relu: boolean, residual?: Tensor): Tensor {
    const c = this.convs.get(cb.conv)!;
    const ep = { bias: c.bias, relu, precision: this.precision, algo: this.convAlgo };
    return ops.conv2d(x, c.packed, c.geometry, residual ? { ...ep, residual } : ep);
  }

  /**
   * Features [N, featureDim] of images x [N, 3, H, W] (float32, already normalised), on this
   * network's device (a host input is uploaded first).
   */
  forward(x: Tensor): Tensor {
    if (this.disposed) throw new SslInvError('ERR_TENSOR_DISPOSED', 'this network was disposed');
    if (x.dtype !== 'float32' || x.shape.length !== 4 || x.shape[1] !== 3) {
      throw new SslInvError('ERR_SHAPE_MISMATCH',
        `expected input images [N, 3, H, W] float32 but got ${x.dtype} [${x.shape.join(', ')}]`);
    }
    const input = x.device === this.device ? x : x.to(this.device);
    let nhwc: Tensor;
    try {
      nhwc = ops.nchwToNhwc(input);
    } finally {
      if (input !== x) input.dispose();
    }
    if (this.activations === 'bfloat16') {
      const b = ops.toBfloat16(nhwc, { padLastDimTo: bf16Channels(3) });
      nhwc.dispose();
      nhwc = b;
    }
    let h = this.conv(nhwc, this.spec.stem, true);
    nhwc.dispose();
    const pooled = ops.maxPool2d(h, { kernel: [3, 3], stride: [2, 2], padding: [1, 1] });
    h.dispose();
    h = pooled;
    for (const block of this.spec.blocks) {
      const next = this.block(h, block.convs, block.downsample);
      h.dispose();
      h = next;
    }
    const features = ops.globalAvgPool(h);
    h.dispose();
    return features;
  }

  /** forward() as a host array [N * featureDim], freeing the native result. */
  features(x: Tensor): Float32Array {
    return this.startFeatures(x).collect();
  }

  /**
   * forward() started: on a CUDA device its kernels are queued and this returns before they run;
   * collect() waits for them and reads the features back (see FeatureExtractor.startFeatures).
   */
  startFeatures(x: Tensor): { collect(): Float32Array; dispose(): void } {
    const f = this.forward(x);
    let done = false;
    return {
      collect: () => {
        if (done) throw new SslInvError('ERR_TENSOR_DISPOSED', 'these features were already collected or disposed');
        done = true;
        try {
          return f.toFloat32Array();
        } finally {
          f.dispose();
        }
      },
      dispose: () => {
        if (!done) f.dispose();
        done = true;
      },
    };
  }

  private block(x: Tensor, convs: ConvBnSpec[], downsample?: ConvBnSpec): Tensor {
    let h = x;
    for (let i = 0; i < convs.length - 1; i++) {
      const next = this.conv(h, convs[i]!, true);
      if (h !== x) h.dispose();
      h = next;
    }
    const identity = downsample ? this.conv(x, downsample, false) : x;
    const out = this.conv(h, convs[convs.length - 1]!, true, identity);
    if (h !== x) h.dispose();
    if (identity !== x) identity.dispose();
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const c of this.convs.values()) {
      c.packed.dispose();
      c.bias.dispose();
    }
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
