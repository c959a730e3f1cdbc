// Forward 2-D convolution on the GPU (groups = 1, dilation = 1) as an implicit GEMM, with the
// inference epilogue fused: y = relu?(conv(x, w) + bias + residual).
//
//   x: [N, H, W, C] fp32 (NHWC)            w: [K, R, S, C] fp32 (KRSC, BN already folded in)
//   bias: [K] or nullptr                   residual: [N, P, Q, K] or nullptr (may alias y)
//   y: [N, P, Q, K] fp32,  P = (H + 2*pad_h - R) / stride_h + 1 (floor), likewise Q
//   GEMM view: M = N*P*Q output pixels, GEMM-N = K, GEMM-K = R*S*C taps in (r, s, c) order,
//   so both operands are contiguous along GEMM-K (see docs/KERNELS.md section 1).
//
// Three precisions, all with fp32 tensors in memory and fp32 accumulation:
//   F32   SIMT FMA, 128 x {64,128} block tiles, 8 x {4,8} outputs per thread (the default path).
//   TF32  tensor cores (mma.sync m16n8k8 .tf32): x and w are rounded to tf32 (cvt.rna) as their
//         tiles are staged into shared memory. Error ~ 2^-11 relative to sum |x||w|.
//   BF16  tensor cores (mma.sync m16n8k16 .bf16): x and w are rounded to bf16 (round to nearest
//         even) while staging into shared memory; activations stay fp32 in memory, so the only
//         loss is the rounding of the GEMM inputs. Error ~ 2^-8 relative to sum |x||w|.
// Any C works: C % 4 == 0 with 16-byte aligned x and w uses 16-byte loads along C; anything else
// (the C = 3 stem) takes a scalar gather. K % 4 == 0 (F32) or K % 2 == 0 (TF32/BF16) with aligned
// y/bias/residual gives vector epilogue stores. Kernels use 1-D blocks of 256 threads.
//
// TF32/BF16 use mma.sync and cvt PTX that need sm_80 or newer (the project builds for sm_90).
//
// Preconditions (checked; violations return cudaErrorInvalidValue and launch nothing):
//   Conv2dShapeIsValid(shape); x, w, y non-null. All pointers are device pointers.
// Launchers return cudaGetLastError() after launching; they never synchronize.
#pragma once
#include <climits>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

struct Conv2dShape {
  int n, h, w, c;  // input
  int k, r, s;     // output channels, filter height/width
  int stride_h, stride_w, pad_h, pad_w;
  __host__ __device__ int p() const { return (h + 2 * pad_h - r) / stride_h + 1; }
  __host__ __device__ int q() const { return (w + 2 * pad_w - s) / stride_w + 1; }
};

// True when the launchers accept the shape: positive sizes and strides, non-negative padding, a
// filter no larger than the padded input, and N*P*Q, R*S*C and K small enough for 32-bit GEMM
// indices (element offsets into the tensors are 64-bit, so the tensors themselves may be larger).
inline bool Conv2dShapeIsValid(const Conv2dShape& sh) {
  if (sh.n < 1 || sh.h < 1 || sh.w < 1 || sh.c < 1 || sh.k < 1 || sh.r < 1 || sh.s < 1) return false;
  if (sh.stride_h < 1 || sh.stride_w < 1 || sh.pad_h < 0 || sh.pad_w < 0) return false;
  const int64_t padded_h = int64_t{sh.h} + 2 * int64_t{sh.pad_h};
  const int64_t padded_w = int64_t{sh.w} + 2 * int64_t{sh.pad_w};
  if (padded_h < sh.r || padded_w < sh.s || padded_h > INT_MAX || padded_w > INT_MAX) return false;
  const int64_t p = (padded_h - sh.r) / sh.stride_h + 1, q = (padded_w - sh.s) / sh.stride_w + 1;
  const int64_t gemm_k = int64_t{sh.r} * sh.s * sh.c;
  // Headroom of 256 so that tile cursors (m0 + 128, k + BK) cannot overflow.
  return int64_t{sh.n} * p * q <= INT_MAX - 256 && gemm_k <= INT_MAX - 256 && sh.k <= 65535 * 64;
}

// The block tile's width in output channels: 64 or 128, whichever leaves fewer padded columns of K
// (ties go to 128: fewer, larger blocks). Shared by every convolution launcher.
inline int ConvPickBlockN(int K) {
  const int waste64 = (K + 63) / 64 * 64 - K, waste128 = (K + 127) / 128 * 128 - K;
  return waste128 <= waste64 ? 128 : 64;
}

cudaError_t LaunchConv2dForwardF32(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                   const float* residual, bool relu, float* y, cudaStream_t stream);
// Kernel variants (benchmarks time them side by side; every other caller uses kAuto, which is what
// LaunchConv2dForwardF32 / TF32 run: the default kernel, which the bindings' run-time tuning may
// replace per shape by a faster variant with the same bits, see conv_autotune.cuh). The variants of one precision compute the same sums in the
// same order per output (GEMM-K ascending), so they give the same bits.
//   fp32: kSimtBk8    128 x {64,128} tiles, 8 GEMM-K per stage, two blocks per SM
//         kSimtBk16   16 GEMM-K per stage: twice the bytes in flight per stage
//   tf32: kMmaStaged     register-staged mma.sync kernel (this file)
//         kMmaPipelined  cp.async 3-stage pipeline with ldmatrix (conv2d_pipelined.cuh; C % 4 == 0
//                        and K even, else the staged kernel runs)
enum class ConvAlgo : int { kAuto = 0, kSimtBk8 = 1, kSimtBk16 = 2, kMmaStaged = 3, kMmaPipelined = 4 };

// The fp32 kernel kAuto runs without run-time tuning (and tuning's default): kSimtBk8 or kSimtBk16.
ConvAlgo F32DefaultAlgo(const Conv2dShape& shape);

// Whether the pipelined tf32 kernel takes a call itself (kMmaPipelined hands the others to the staged
// kernel): 16-byte copies need C % 4 == 0 and 16-byte aligned x and w, its float2 epilogue an even K
// and 8-byte aligned y and residual.
bool Tf32PipelinedTakes(const Conv2dShape& shape, const float* x, const float* w, const float* residual, const float* y);

// As LaunchConv2dForwardTF32 with the variant chosen; an fp32 variant or an algo outside the enum is
// cudaErrorInvalidValue.
cudaError_t LaunchConv2dForwardTF32Algo(ConvAlgo algo, const Conv2dShape& shape, const float* x, const float* w,
                                        const float* bias, const float* residual, bool relu, float* y,
                                        cudaStream_t stream);

// As LaunchConv2dForwardF32 with the variant chosen; a tf32 variant or an algo outside the enum is
// cudaErrorInvalidValue.
cudaError_t LaunchConv2dForwardF32Algo(ConvAlgo algo, const Conv2dShape& shape, const float* x, const float* w,
                                       const float* bias, const float* residual, bool relu, float* y,
                                       cudaStream_t stream);
cudaError_t LaunchConv2dForwardTF32(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                    const float* residual, bool relu, float* y, cudaStream_t stream);
cudaError_t LaunchConv2dForwardBF16(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                    const float* residual, bool relu, float* y, cudaStream_t stream);

// Repacks PyTorch [K, C, R, S] fp32 weights to [K, R, S, C], multiplying output channel k by scale[k]
// when scale is not null (folds an inference batch norm: scale = gamma / sqrt(var + eps)).
// Requires k, c, r, s >= 1 and non-null w_kcrs, w_krsc (no aliasing); else cudaErrorInvalidValue.
cudaError_t LaunchPackFilterKRSC(const float* w_kcrs, const float* scale, int k, int c, int r, int s, float* w_krsc,
                                 cudaStream_t stream);

}  // namespace sslinv::cuda
