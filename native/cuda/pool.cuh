// CUDA pooling on NHWC float32 or bfloat16 activations; the device counterparts of ops/pool.h.
// bf16: the float32 algorithms on the exactly widened values (the max is stored back exactly; the
// average pool's output is float32), scalar channel loads.
//
// MaxPool2dNHWC: PyTorch's max_pool2d (floor mode, dilation 1) with sslinv::Pool2dParams:
//   x: [N, H, W, C] -> y: [N, P, Q, C], P = (H + 2*pad_h - kernel_h) / stride_h + 1 (Q likewise).
//   Each window is scanned row by row from -inf, taking v when v > acc or v is NaN (PyTorch's rule,
//   so a NaN wins and the last NaN of the scan is the one kept); padded positions are never read,
//   so they never win. Bit-identical to the CPU op, NaN payloads included.
//   `indices` (optional, may be null): [N, P, Q, C] int64, the winner's flat position ih * W + iw in
//   its input plane, as max_pool2d_with_indices returns (for the backward pass).
//   Preconditions (ValidatePool2dParams): sizes >= 1, 0 <= pad <= kernel / 2, P, Q >= 1, so every
//   window holds at least one real element.
//
// GlobalAvgPoolNHWC: x: [N, H, W, C] -> y: [N, C], the mean over (h, w). Summation order differs from
//   the CPU op: the CPU adds the H*W values in float32 in row-major order and divides by float(H*W);
//   here each thread adds a strided subset of the positions in float64, the threads' partial sums are
//   combined in a fixed tree, and the float64 total divided by H*W is rounded once to float32. The
//   result is deterministic (no atomics) and within about one float32 ulp of the exact mean (scaled by
//   mean |x| when values cancel), while the CPU op's sequential float32 sum can be off by up to
//   (H*W - 1) * 2^-24 * mean |x|. The two therefore agree to rel ~H*W * 6e-8 of mean |x| (3e-6 for
//   ResNet-50's 7x7), not bit for bit; tests compare both to a float64 reference at rel 1e-5.
//
// Pointers are device pointers; the launchers use float4 channel vectors when C % 4 == 0 and the
// tensors are 16-byte aligned, scalar channels otherwise. grid_cap (0 = default) bounds the blocks of
// the grid-stride max pool and the images per launch row of the average pool; results do not depend on
// it. Both return cudaGetLastError() after launching on `stream`.
#pragma once
#include <cstdint>

#include "cuda/bf16_compat.h"
#include "cuda/cuda_compat.h"
#include "ops/pool.h"

namespace sslinv::cuda {

cudaError_t MaxPool2dNHWC(const Pool2dParams& p, const float* x, float* y, int64_t* indices, cudaStream_t stream,
                          int grid_cap = 0);
cudaError_t MaxPool2dNHWC(const Pool2dParams& p, const Bf16* x, Bf16* y, int64_t* indices, cudaStream_t stream,
                          int grid_cap = 0);
cudaError_t GlobalAvgPoolNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y,
                              cudaStream_t stream, int grid_cap = 0);
cudaError_t GlobalAvgPoolNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const Bf16* x, float* y,
                              cudaStream_t stream, int grid_cap = 0);

}  // namespace sslinv::cuda
