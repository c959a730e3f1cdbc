// CUDA training primitives of the ResNet layers other than the convolution, on float32 NHWC tensors:
// train-mode batch norm (forward with optional residual and ReLU, and backward with an optional ReLU
// mask), the backward passes of ReLU, max pooling and global average pooling, and the column sums of
// bias gradients. The device counterparts of ops/layer_backward.h: same shapes, same semantics, same
// float32 roundings of every element-wise step (the full contract is there).
//
// Shapes: batch-norm tensors are viewed as [rows, C] (C innermost), cut into `groups` contiguous
// groups of rows / groups rows (split batch norm); save_mean, save_invstd and the backward's mean,
// invstd are [groups, C]; weight, bias and the running statistics [C]. Pools use Pool2dParams
// (ops/pool.h) with x [N, H, W, C], dy [N, P, Q, C].
//
// Arithmetic against the CPU ops:
// - Batch-norm statistics are float64, reduced in a fixed order planned from (rows / groups, C,
//   grid_cap) alone (BatchNormGroupStatsF64 of elementwise.cuh for the forward; per-thread float64
//   sums merged by fixed trees for the backward), with no atomics: the same bits on every run. The
//   order differs from the CPU's blocks, so the float64 sums may differ in their last bits, which
//   float32 rounding almost always absorbs; the per-channel results agree with the CPU op to float32
//   rounding (relative 1e-5 at worst, tests), usually bit for bit.
// - Everything derived from the float64 statistics is the CPU op's formula, operation for operation:
//   save_mean = float(mean), save_invstd = float(1 / sqrt(M2 / n + eps)), the running statistics in
//   float64 rounded once (group 0 only), the backward's per-channel factors rounded to float32 once,
//   and the element-wise float32 steps with no contraction into FMAs. So y and dx are the CPU's bits
//   whenever the per-channel statistics are.
// - ReluBackwardF32, GlobalAvgPoolBackwardNHWC and MaxPool2dBackwardNHWC are bit-identical to the CPU
//   ops (selections, one IEEE division, and the max pool's additions in the CPU's order: each dx
//   element gathers the gradients of the windows it won, in output order (P, then Q), from 0).
//
// Conventions (all launchers): device pointers; sizes validated by the caller (the launchers return
// cudaErrorInvalidValue for sizes they cannot run, without launching). No output may alias an input.
// Float4 accesses are used where C % 4 == 0 and every per-element tensor is 16-byte aligned, scalar
// accesses otherwise (same results). `workspace` (device memory, 16-byte aligned) must hold the
// matching ...WorkspaceBytes(...) bytes for the same grid_cap, else cudaErrorInvalidValue. grid_cap
// (0 = default) bounds the blocks of a launch; the tests pass small ones to exercise the stride loops;
// it changes the reduction split (so possibly the last bits of the batch-norm statistics and of
// SumRowsF32), never the element-wise results. Each launcher returns the first launch error
// (execution is asynchronous on `stream`).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"
#include "ops/pool.h"

namespace sslinv::cuda {

// Train-mode batch norm (BatchNormTrainF32 of ops/layer_backward.h): rows % groups == 0 and
// rows / groups >= 2, c >= 1, eps >= 0, 0 <= momentum <= 1. residual may be null.
size_t BatchNormTrainWorkspaceBytes(int64_t rows, int64_t c, int64_t groups, int grid_cap = 0);
cudaError_t BatchNormTrainF32(const float* x, int64_t rows, int64_t c, int64_t groups, const float* weight,
                              const float* bias, const float* running_mean, const float* running_var, double eps,
                              double momentum, bool relu, const float* residual, float* y, float* save_mean,
                              float* save_invstd, float* new_running_mean, float* new_running_var, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream, int grid_cap = 0);

// Its gradients (BatchNormBackwardF32): rows % groups == 0, rows / groups >= 1. relu_y (the ReLU's
// output, dy masked by it first) may be null.
size_t BatchNormBackwardWorkspaceBytes(int64_t rows, int64_t c, int64_t groups, int grid_cap = 0);
cudaError_t BatchNormBackwardF32(const float* dy, const float* relu_y, const float* x, int64_t rows, int64_t c,
                                 int64_t groups, const float* weight, const float* mean, const float* invstd,
                                 float* dx, float* dweight, float* dbias, void* workspace, size_t workspace_bytes,
                                 cudaStream_t stream, int grid_cap = 0);

// dx = y <= 0 ? +0 : dy over n >= 0 elements (a NaN y passes dy).
cudaError_t ReluBackwardF32(const float* dy, const float* y, float* dx, int64_t n, cudaStream_t stream,
                            int grid_cap = 0);

// dx [N, H, W, C] of max pooling (MaxPool2dBackwardNHWC). The winners of the windows are recomputed
// from x with the forward's rule into the workspace (int32 positions, int64 when H * W >= 2^31),
// then each dx element sums the gradients of the windows it won. p must pass ValidatePool2dParams.
size_t MaxPool2dBackwardWorkspaceBytes(const Pool2dParams& p);
cudaError_t MaxPool2dBackwardNHWC(const Pool2dParams& p, const float* dy, const float* x, float* dx, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream, int grid_cap = 0);

// dx [n, h, w, c] = dy [n, c] / float(h * w), one float32 division per element (n >= 0; h, w, c >= 1).
cudaError_t GlobalAvgPoolBackwardNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx,
                                      cudaStream_t stream, int grid_cap = 0);

// out [n] = the column sums of x [m, n] in float64, rounded once (m = 0 gives zeros; n = 0 does nothing).
size_t SumRowsWorkspaceBytes(int64_t m, int64_t n, int grid_cap = 0);
cudaError_t SumRowsF32(const float* x, int64_t m, int64_t n, float* out, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream, int grid_cap = 0);

}  // namespace sslinv::cuda
