// 2-D convolution on NHWC activations (groups = 1, dilation = 1), as implicit GEMM on the CPU.
//
//   x: [N, H, W, C]   y: [N, P, Q, K]   P = (H + 2*pad_h - R) / stride_h + 1 (floor), likewise Q
//   GEMM view: M = N*P*Q output pixels, GEMM-N = K output channels, GEMM-K = R*S*C taps (r, s, c order)
//
// Weights come in PyTorch's [K, C, R, S] layout and are packed once by Conv2dPackWeights (optionally
// scaled per output channel, which folds an inference-mode batch norm into the convolution). The
// im2col rows are gathered straight from x into the GEMM's packed A panels; 1x1/stride-1 convolutions
// are plain GEMMs over x viewed as [N*H*W, C]. Bias, residual and ReLU run in the GEMM epilogue.
// With AVX-512 both packings go through 16 x 16 register transpositions (cpu/pack_avx512.h): the
// im2col rows 16 rows x 16 floats at a time (any C; windows cut by the border read through masks),
// the weights one panel of output channels at a time (a training step repacks every filter, so this
// must run at memory speed).
// The backward kernels (ops/conv2d_backward.h) run on the same GEMM driver.
#pragma once
#include <cstdint>

#include "core/status.h"
#include "ops/gemm.h"

namespace sslinv {

struct Conv2dParams {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // output channels, kernel height/width
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h() const { return (h + 2 * pad_h - r) / stride_h + 1; }
  int64_t out_w() const { return (w + 2 * pad_w - s) / stride_w + 1; }
};

Status ValidateConv2dParams(const Conv2dParams& p);

// Floats needed for the packed weights of a [K, C, R, S] filter.
int64_t Conv2dPackedWeightFloats(int64_t k, int64_t c, int64_t r, int64_t s);

// Packs w[K, C, R, S] (scaled by scale[k] when scale is not null) for Conv2dForwardNHWC.
Status Conv2dPackWeights(const float* w, int64_t k, int64_t c, int64_t r, int64_t s, const float* scale,
                         float* packed);

// Checks that `packed` (at least 16 floats) was packed for p's filter shape by this CPU's kernel.
Status CheckConv2dPackedWeights(const float* packed, const Conv2dParams& p);

// y = epilogue(conv(x, w)); ep.residual, when set, is [N, P, Q, K] with ld_residual = K.
Status Conv2dForwardNHWC(const Conv2dParams& p, const float* x, const float* packed_w, const GemmEpilogue& ep,
                         float* y);

}  // namespace sslinv
