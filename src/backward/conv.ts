/**
 * Gradients of `ops.conv2d` (groups 1, dilation 1, zero padding; the bias gradient, a sum of dy over
 * N, P, Q, is not here): typed wrappers over the kernels of native/cpu/conv2d_backward.cc (CPU; the
 * maths and design are in native/ops/conv2d_backward.h) and native/cuda/conv2d_backward.cu (CUDA,
 * fp32 SIMT implicit GEMMs; design in its .cuh).
 *
 * Layouts follow src/ops.ts: activations and their gradients are NHWC float32, x [N, H, W, C] and
 * dy [N, P, Q, K]; weights and their gradients are PyTorch's [K, C, R, S], unpacked. The results are
 * PyTorch's conv2d gradients, within fp32 accumulation error. A call runs on the device of its tensors
 * (all on one device) and returns new float32 tensors there, leaving its inputs untouched
 * (conv2dBackwardDataEpilogue: dgrad with a ResNet block's residual add and ReLU mask fused in). On
 * the CPU the bits do not depend on the thread count; on a CUDA device they are the same from run to
 * run (no atomics; wgrad's split-K partial sums are added in a fixed order), and agree with the CPU's
 * to fp32 rounding, not bit for bit.
 *
 * Errors (SslInvError codes): ERR_SHAPE_MISMATCH when dy is not [N, P, Q, K] for the geometry, the
 * weight is not [outChannels, C, kernelH, kernelW], a tensor is not rank 4, or the kernel is larger
 * than the padded input; ERR_DTYPE_MISMATCH for tensors that are not float32; ERR_INVALID_ARGUMENT
 * for non-positive sizes or strides, negative padding, a malformed inputSize, or (CUDA) sizes past
 * the kernels' 32-bit indices; ERR_DEVICE_UNAVAILABLE when the tensors are not all on the device of
 * the first one.
 */
import { SslInvError, callNative } from '../errors';
import { NativeAddon, NativeConvOptions, NativeTensor, nativeOps } from '../native';
import type { ConvGeometry } from '../ops';
import { Tensor, wrap } from '../tensor';

type ConvBackwardOptions =
  Pick<NativeConvOptions, 'outChannels' | 'kernelH' | 'kernelW' | 'strideH' | 'strideW' | 'padH' | 'padW'>;

interface ConvBackwardAddon {
  conv2dBackwardData(dy: NativeTensor, weight: NativeTensor,
    opts: ConvBackwardOptions & { inputH: number; inputW: number }, residual?: NativeTensor,
    reluOutput?: NativeTensor): NativeTensor;
  conv2dBackwardWeight(x: NativeTensor, dy: NativeTensor, opts: ConvBackwardOptions): NativeTensor;
}

function addon(): NativeAddon & ConvBackwardAddon {
  return nativeOps<ConvBackwardAddon>('convolution backward', ['conv2dBackwardData', 'conv2dBackwardWeight']);
}

function nativeGeometry(g: ConvGeometry): ConvBackwardOptions {
  return {
    outChannels: g.outChannels,
    kernelH: g.kernel[0], kernelW: g.kernel[1],
    strideH: g.stride[0], strideW: g.stride[1],
    padH: g.padding[0], padW: g.padding[1],
  };
}

/**
 * dx [N, H, W, C] = d(conv2d)/dx given dy [N, P, Q, K] and the raw (unpacked) weights [K, C, R, S],
 * PyTorch layout. inputSize [H, W] is needed because with stride 2 several H give the same P; rows
 * and columns of x that no window touches get 0.
 */
export function conv2dBackwardData(dy: Tensor, weight: Tensor, g: ConvGeometry, inputSize: [number, number]): Tensor {
  if (!Array.isArray(inputSize) || inputSize.length !== 2) {
    throw new SslInvError('ERR_INVALID_ARGUMENT',
      `conv2dBackwardData: inputSize must be [H, W], got ${JSON.stringify(inputSize)}`);
  }
  return callNative('conv2dBackwardData', () => wrap(addon().conv2dBackwardData(dy.handle, weight.handle, {
    ...nativeGeometry(g), inputH: inputSize[0], inputW: inputSize[1],
  })));
}

/**
 * A ResNet block's input gradient in one pass: dx = conv2dBackwardData(...) + ep.residual (the
 * identity branch's gradient, dx's shape), then masked by ep.reluOutput (the output of the ReLU that
 * produced x: reluBackward's rule, 0 where it is <= 0) when given. The same bits as
 * reluBackward(ops.add(conv2dBackwardData(...), residual), reluOutput), without the two passes over
 * dx and their tensors. Either field may be left out; ERR_SHAPE_MISMATCH when one is not dx's shape
 * [N, inputH, inputW, C].
 */
export function conv2dBackwardDataEpilogue(dy: Tensor, weight: Tensor, g: ConvGeometry, inputSize: [number, number],
  ep: { residual?: Tensor; reluOutput?: Tensor }): Tensor {
  if (!Array.isArray(inputSize) || inputSize.length !== 2) {
    throw new SslInvError('ERR_INVALID_ARGUMENT',
      `conv2dBackwardDataEpilogue: inputSize must be [H, W], got ${JSON.stringify(inputSize)}`);
  }
  return callNative('conv2dBackwardDataEpilogue', () => wrap(addon().conv2dBackwardData(dy.handle, weight.handle, {
    ...nativeGeometry(g), inputH: inputSize[0], inputW: inputSize[1],
  }, ep.residual?.handle, ep.reluOutput?.handle)));
}

/** dW [K, C, R, S] (PyTorch layout) = d(conv2d)/dW given x [N, H, W, C] and dy [N, P, Q, K]. */
export function conv2dBackwardWeight(x: Tensor, dy: Tensor, g: ConvGeometry): Tensor {
  return callNative('conv2dBackwardWeight',
    () => wrap(addon().conv2dBackwardWeight(x.handle, dy.handle, nativeGeometry(g))));
}
