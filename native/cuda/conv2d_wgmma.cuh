// Forward 2-D convolution of bf16 tensors on Hopper's warpgroup tensor cores (wgmma.mma_async,
// sm_90a: H100, H200): the same operation, layouts and preconditions as LaunchConv2dForwardBf16Nhwc
// (conv2d_pipelined.cuh), groups = 1, dilation = 1:
//
//   y = bf16( relu?( conv(x, w) + bias + residual ) ), the sum in fp32
//   x [N, H, W, C] bf16 (NHWC), w [K, R, S, C] bf16 (KRSC), bias [K] fp32 or nullptr,
//   residual and y [N, P, Q, K] bf16 (residual may alias y)
//
// Preconditions (checked; violations return cudaErrorInvalidValue and launch nothing):
//   Conv2dShapeIsValid(shape); C % 8 == 0; K % 2 == 0; x, w, y non-null; x and w 16-byte aligned; y
//   and residual 4-byte aligned. The current device must be compute capability 9.0, the only one
//   sm_90a code runs on (else cudaErrorNoKernelImageForDevice). All pointers are device pointers.
//   Returns cudaGetLastError() after launching; never synchronizes.
// This file is compiled only when the CUDA toolkit can target sm_90a (12.0 or newer); CMake then
// defines SSL_INV_WITH_WGMMA for the addon, and callers check it.
#pragma once
#include "cuda/bf16_compat.h"
#include "cuda/conv2d.cuh"

namespace sslinv::cuda {

cudaError_t LaunchConv2dForwardBf16Wgmma(const Conv2dShape& shape, const Bf16* x, const Bf16* w, const float* bias,
                                         const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream);

// The block tile's width in output channels LaunchConv2dForwardBf16Wgmma picks for K: 64, 128 or 256,
// whichever pads K least (ties to the wider).
int WgmmaPickBlockN(int K);

// As above with the width given: 64, 128 or 256, or 0 for WgmmaPickBlockN; anything else is
// cudaErrorInvalidValue. Every width gives the same bits (each output's K terms are summed in the same
// order), so run-time tuning (conv_autotune.cuh) may pick it per shape: at 256 one block fills an SM,
// at 128 two share it.
cudaError_t LaunchConv2dForwardBf16WgmmaTile(const Conv2dShape& shape, const Bf16* x, const Bf16* w, const float* bias,
                                             const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream, int block_n);

}  // namespace sslinv::cuda
