// CUDA element-wise float32 ops, batch-norm statistics and dtype conversions; the device
// counterparts of ops/elementwise.h (same semantics, same rounding), for contiguous tensors viewed
// as [rows, C] with C innermost (NHWC activations, [N, C] features).
//
// Conventions (all launchers):
// - Pointers are device pointers unless stated; callers validate shapes (n, rows, C >= 1 where a
//   launcher needs them; n = 0 is allowed for the flat ops and launches nothing).
// - Every pointer must be aligned to its element size. Pointers need not be 16-byte aligned: each
//   launcher uses 16-byte vector accesses over the part of the range where all its tensors are
//   aligned together and scalar accesses for the head and tail, or scalar accesses throughout when
//   the tensors' alignments differ.
// - Outputs may alias inputs exactly (in place, y == x); partial overlap is not allowed.
// - grid_cap (0 = default 1024) bounds the number of blocks of the grid-stride kernels; tests pass
//   small caps to exercise the stride loops. Results of every op here are independent of it except
//   BatchNormStatsF32, where it fixes the reduction split (see there).
// - Each launcher returns cudaGetLastError() after its launches (launch errors only; execution is
//   asynchronous on `stream`).
//
// Rounding matches the CPU ops exactly: ScaleShiftF32 computes round(round(x * scale) + shift)
// with no FMA (the CPU build has no FMA contraction), and the batch-norm fold is PyTorch's CPU
// float32 formula (invstd = 1 / sqrt(var + float(eps)), scale = invstd * gamma,
// shift = beta - mean * scale), so BatchNormInferenceF32 equals the CPU op bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/bf16_compat.h"
#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

// y = relu(x); NaN stays NaN and -0 becomes +0, as torch.relu and the CPU op.
cudaError_t ReluF32(const float* x, float* y, int64_t n, cudaStream_t stream, int grid_cap = 0);
// y = a + b, then relu when `relu` (the residual join of a bottleneck block).
cudaError_t AddF32(const float* a, const float* b, float* y, int64_t n, bool relu, cudaStream_t stream,
                   int grid_cap = 0);
// y[i, c] = x[i, c] * scale[c] + shift[c] over x, y: [rows, c]; scale, shift: [c].
cudaError_t ScaleShiftF32(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c,
                          cudaStream_t stream, int grid_cap = 0);
// Inference batch norm over x, y: [rows, c] with per-channel gamma, beta, mean, var: [c]. The
// per-channel scale and shift are computed once per block into shared memory when c <= 4096, else
// per element (same function, same bits).
cudaError_t BatchNormInferenceF32(const float* x, const float* gamma, const float* beta, const float* mean,
                                  const float* var, double eps, float* y, int64_t rows, int64_t c,
                                  cudaStream_t stream, int grid_cap = 0);
// scale, shift: [c], the folded batch norm (for conv epilogues).
cudaError_t BatchNormFoldF32(const float* gamma, const float* beta, const float* mean, const float* var, double eps,
                             float* scale, float* shift, int64_t c, cudaStream_t stream);

// Training-mode batch-norm statistics of x: [rows, c] (rows >= 1, c >= 1), per channel:
//   mean[c], var_biased[c] = M2 / rows (what normalises the batch), var_unbiased[c] = M2 / (rows - 1)
//   (what PyTorch blends into running_var; NaN when rows == 1, where PyTorch refuses to train).
// Any output pointer may be null to skip it. Two kernels, no atomics: (1) a grid of (channel tile,
// row block) blocks, each thread accumulating float64 sums of (x - K) and (x - K)^2 over a strided
// set of rows (K = x[0, c], a per-channel shift that removes the cancellation of a large mean),
// converted to a (count, mean, M2) summary and Chan-merged across the block's threads in a fixed tree;
// (2) a finalize kernel that Chan-merges the row blocks' summaries in a fixed order. The result is
// bit-identical from run to run for the same (x, rows, c, grid_cap) and the same alignment of x; the
// float64 accumulation makes it accurate to a few float32 ulps regardless of rows.
// `workspace` (device memory, 8-byte aligned) must hold BatchNormStatsWorkspaceBytes(rows, c,
// grid_cap) bytes; a smaller one returns cudaErrorInvalidValue without launching.
size_t BatchNormStatsWorkspaceBytes(int64_t rows, int64_t c, int grid_cap = 0);
cudaError_t BatchNormStatsF32(const float* x, int64_t rows, int64_t c, float* mean, float* var_biased,
                              float* var_unbiased, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                              int grid_cap = 0);

// The same statistics in float64, for each of `groups` contiguous groups of group_rows rows (x:
// [groups * group_rows, c]; groups, group_rows, c >= 1): mean[groups, c] and m2[groups, c], the sum of
// squared deviations from the mean (row g: group g), for train-mode batch norm (cuda/layer_backward.cu),
// which rounds them itself. Each group is reduced with the grid that a call on its rows alone would
// get, so its results are those bits (for the same alignment of x: float4 channels need c % 4 == 0
// and x 16-byte aligned). The workspace: BatchNormGroupStatsWorkspaceBytes(groups, group_rows, c,
// grid_cap) bytes, 8-byte aligned, else cudaErrorInvalidValue without launching.
size_t BatchNormGroupStatsWorkspaceBytes(int64_t groups, int64_t group_rows, int64_t c, int grid_cap = 0);
cudaError_t BatchNormGroupStatsF64(const float* x, int64_t groups, int64_t group_rows, int64_t c, double* mean,
                                   double* m2, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                   int grid_cap = 0);

// dtype conversions over n elements. float32 -> bf16 rounds to nearest even (NaN -> 0x7FFF, see
// bf16_compat.h); bf16 -> float32 and float32 -> float64 are exact.
cudaError_t F32ToBf16(const float* x, Bf16* y, int64_t n, cudaStream_t stream, int grid_cap = 0);
cudaError_t Bf16ToF32(const Bf16* x, float* y, int64_t n, cudaStream_t stream, int grid_cap = 0);
// x [rows, c] float32 -> y [rows, c_pad] bf16 (nearest even), zero-filled past column c: a network
// input or a packed filter with its channels padded for the bf16-in-memory convolution (C % 8 == 0).
// c >= 1 and c_pad >= c, else cudaErrorInvalidValue.
cudaError_t F32ToBf16PaddedRows(const float* x, int64_t rows, int64_t c, int64_t c_pad, Bf16* y, cudaStream_t stream,
                                int grid_cap = 0);
cudaError_t F32ToF64(const float* x, double* y, int64_t n, cudaStream_t stream, int grid_cap = 0);

}  // namespace sslinv::cuda
