// Forward 2-D convolution with bf16 activations and weights in memory (groups = 1, dilation = 1):
// the tensor-core tier that keeps a bf16 network's traffic at 2 bytes per value, as PyTorch's bf16
// channels-last inference does. Same implicit GEMM as conv2d.cuh, fused epilogue included:
//
//   y = bf16( relu?( conv(x, w) + bias + residual ) ), the sum in fp32, rounded once (nearest even)
//
//   x: [N, H, W, C] bf16 (NHWC), C % 8 == 0     w: [K, R, S, C] bf16 (KRSC, BN already folded in)
//   bias: [K] fp32 or nullptr                    residual: [N, P, Q, K] bf16 or nullptr (may alias y)
//   y: [N, P, Q, K] bf16, K % 2 == 0             P, Q as in conv2d.cuh
//
// How (conv2d_bf16.cu): 128 x {64,128} x 32 block tiles, 8 warps, mma.sync m16n8k16; a 3-stage
// cp.async pipeline fills shared memory straight from global memory (16 bytes = 8 channels of one
// filter tap per copy, zero-filled for padding and tile edges), XOR-swizzled so that ldmatrix reads
// are conflict-free. C % 8 == 0 keeps every 16-byte copy inside one tap; a network's C = 3 stem pads
// its input and filter to C = 8 with zeros (the same sums).
//
// Preconditions (checked; violations return cudaErrorInvalidValue and launch nothing):
//   Conv2dShapeIsValid(shape); C % 8 == 0; K % 2 == 0; x, w, y non-null; x and w 16-byte aligned;
//   y and residual 4-byte aligned. All pointers are device pointers. Returns cudaGetLastError()
//   after launching; never synchronizes. Needs sm_80 or newer.
#pragma once
#include "cuda/bf16_compat.h"
#include "cuda/conv2d.cuh"

namespace sslinv::cuda {

cudaError_t LaunchConv2dForwardBf16Nhwc(const Conv2dShape& shape, const Bf16* x, const Bf16* w, const float* bias,
                                        const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream);

}  // namespace sslinv::cuda
