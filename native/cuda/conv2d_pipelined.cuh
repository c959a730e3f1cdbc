// Forward 2-D convolution on tensor cores with a cp.async pipeline (groups = 1, dilation = 1): the
// tier after conv2d.cuh's register-staged kernels. Same implicit GEMM, fused epilogue included:
//
//   y = relu?( conv(x, w) + bias + residual ), the sum in fp32
//
// Two element types, the same kernel (conv2d_pipelined.cu):
//   bf16 in memory   x [N, H, W, C] bf16 (NHWC), w [K, R, S, C] bf16 (KRSC), residual and y
//                    [N, P, Q, K] bf16: the sum is rounded once to bf16 (nearest even). Keeps a bf16
//                    network's traffic at 2 bytes per value, as PyTorch's bf16 channels-last does.
//                    mma.sync m16n8k16 .bf16. C % 8 == 0 (a network's C = 3 stem pads its input and
//                    filter to 8 zero channels: the same sums).
//   tf32             x, w, residual and y fp32 as in conv2d.cuh; the MMA inputs are rounded to tf32
//                    (cvt.rna) as fragments are formed, as LaunchConv2dForwardTF32 rounds them while
//                    staging, so the products are the same. mma.sync m16n8k8 .tf32. C % 4 == 0.
// bias: [K] fp32 or nullptr (both). residual may alias y (each element is read before it is written).
//
// How: 128 x {64,128} block tiles, 64 bytes of GEMM-K per tile row (32 bf16 or 16 fp32), 8 warps; a
// 3-stage cp.async pipeline fills shared memory straight from global memory (16-byte copies: 8 or 4
// channels of one filter tap, zero-filled for padding and tile edges), XOR-swizzled so that ldmatrix
// reads are conflict-free.
//
// Preconditions (checked; violations return cudaErrorInvalidValue and launch nothing):
//   Conv2dShapeIsValid(shape); C % 8 == 0 (bf16) or C % 4 == 0 (tf32); K % 2 == 0; x, w, y non-null;
//   x and w 16-byte aligned; y and residual aligned to two elements. All pointers are device
//   pointers. Launchers return cudaGetLastError() after launching; never synchronize. sm_80 or newer.
#pragma once
#include "cuda/bf16_compat.h"
#include "cuda/conv2d.cuh"

namespace sslinv::cuda {

cudaError_t LaunchConv2dForwardBf16Nhwc(const Conv2dShape& shape, const Bf16* x, const Bf16* w, const float* bias,
                                        const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream);

cudaError_t LaunchConv2dForwardTF32Pipelined(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                             const float* residual, bool relu, float* y, cudaStream_t stream);

// The same two with the block tile's width in output channels given: 64 or 128, or 0 for the
// launchers' own pick (ConvPickBlockN); anything else is cudaErrorInvalidValue. Every width gives the
// same bits (one thread sums each output's K terms in the same order), so run-time tuning
// (conv_autotune.cuh) may pick it per shape: narrower tiles make more blocks, which fills the GPU
// better where the output has few pixels.
cudaError_t LaunchConv2dForwardBf16NhwcTile(const Conv2dShape& shape, const Bf16* x, const Bf16* w, const float* bias,
                                            const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream, int block_n);
cudaError_t LaunchConv2dForwardTF32PipelinedTile(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                                 const float* residual, bool relu, float* y, cudaStream_t stream, int block_n);

}  // namespace sslinv::cuda
