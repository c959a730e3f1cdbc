// Training primitives of the ResNet layers other than the convolution, on contiguous float32
// tensors in the CPU's NHWC layout: train-mode batch norm (forward and backward), the backward
// passes of ReLU, max pooling and global average pooling, and the column sums of bias gradients.
//
// Shapes: batch-norm tensors are viewed as [rows, C] (C the innermost, channel dimension; rows the
// product of the others); pools use Pool2dParams of ops/pool.h with x [N, H, W, C].
//
// Determinism: every reduction runs over fixed blocks of rows whose size depends on the shape alone,
// each summed in float64, and the block results are combined in block order; so results are the
// same bits whatever the thread count. Every kernel only reads its inputs and writes its outputs (no aliasing).
#pragma once
#include <cstdint>

#include "core/status.h"
#include "ops/pool.h"

namespace sslinv {

// Train-mode batch norm (torch.nn.functional.batch_norm with training = True), rows >= 2.
// Statistics in float64, by blocks of rows: each block's mean, then its sum of squared deviations
// from that mean (two passes over the block while it is in cache), the blocks merged in order by
// Chan et al.'s pairwise update (exact in exact arithmetic; no cancellation when |mean| >> std):
//   mean = sum x / rows, var = sum (x - mean)^2 / rows (biased), invstd = 1 / sqrt(var + eps)
// save_mean and save_invstd are those, rounded to float32 once. The output, in float32:
//   y = (x - save_mean) * (save_invstd * weight) + bias, + residual[i] when `residual` is not null
//   (the residual add of a ResNet block, fused: the same float32 sum as adding afterwards), then ReLU
//   (NaN kept) when `relu`
// (PyTorch's CPU kernel computes x * alpha + (bias - mean * alpha) instead, which loses the low bits
// of y when |mean| >> std; results agree within float32 rounding of y, not bit for bit.)
// Running statistics (PyTorch's update, in float64, rounded once):
//   new_running_mean = (1 - momentum) * running_mean + momentum * mean
//   new_running_var  = (1 - momentum) * running_var  + momentum * var * rows / (rows - 1)
Status BatchNormTrainF32(const float* x, int64_t rows, int64_t c, const float* weight, const float* bias,
                         const float* running_mean, const float* running_var, double eps, double momentum,
                         bool relu, const float* residual, float* y, float* save_mean, float* save_invstd,
                         float* new_running_mean, float* new_running_var);

// Gradients of train-mode batch norm, from the forward's saved mean and invstd. With relu_y (the
// output of a ReLU that followed the batch norm) dy is first masked as ReluBackwardF32 does
// (dy where relu_y > 0 or NaN, else 0), without a pass of its own; null: no ReLU.
//   sum_dy = sum dy, dot = sum (x - mean) dy                      (float64, per channel)
//   dbias = sum_dy, dweight = dot * invstd                        (rounded once)
//   dx = (dy - sum_dy / rows - (x - mean) * k) * (invstd * weight),  k = dot * invstd^2 / rows
// (PyTorch's batch_norm_backward formula; the per-channel factors are rounded to float32 and the
// element-wise part runs in float32.)
Status BatchNormBackwardF32(const float* dy, const float* relu_y, const float* x, int64_t rows, int64_t c,
                            const float* weight, const float* mean, const float* invstd, float* dx, float* dweight,
                            float* dbias);

// threshold_backward(dy, y, 0) of PyTorch: dx = y <= 0 ? 0 : dy, on the ReLU's output y (a NaN
// output passes its gradient, as PyTorch's does).
void ReluBackwardF32(const float* dy, const float* y, float* dx, int64_t n);

// Backward of MaxPool2dNHWC: dy [N, P, Q, C], x [N, H, W, C] -> dx [N, H, W, C]. Each window's
// winner is recomputed from x with the forward's rule (PyTorch's: scan rows then columns, take a
// value when it is larger than the best so far or NaN; so the first maximum wins ties and the last
// NaN of a window wins; a window of -inf only keeps its first in-bounds element). dy goes to the
// winner; windows that share a winner add their gradients in output order (P, then Q), as PyTorch's
// CPU kernel does.
Status MaxPool2dBackwardNHWC(const Pool2dParams& p, const float* dy, const float* x, float* dx);

// Backward of GlobalAvgPoolNHWC: dx[n, h, w, c] = dy[n, c] / (H * W), one float32 division as
// PyTorch's mean backward does.
Status GlobalAvgPoolBackwardNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx);

// out[j] = sum_i x[i, j] over x [m, n], in float64, rounded once (m = 0 gives zeros).
Status SumRowsF32(const float* x, int64_t m, int64_t n, float* out);

}  // namespace sslinv
