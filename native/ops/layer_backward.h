// Training primitives of the ResNet layers other than the convolution, on contiguous float32
// tensors in the CPU's NHWC layout: train-mode batch norm (forward and backward), the backward
// passes of ReLU, max pooling and global average pooling, and the column sums of bias gradients.
//
// Shapes: batch-norm tensors are viewed as [rows, C] (C the innermost, channel dimension; rows the
// product of the others), optionally split into contiguous groups of rows normalised separately; pools use Pool2dParams of ops/pool.h with x [N, H, W, C].
//
// Determinism: every reduction runs over fixed blocks of rows whose size depends on the shape alone,
// each summed in float64, and the block results are combined in block order; so results are the
// same bits whatever the thread count. Every kernel only reads its inputs and writes its outputs (no aliasing).
#pragma once
#include <cstdint>

#include "core/status.h"
#include "ops/pool.h"

namespace sslinv {

// Train-mode batch norm (torch.nn.functional.batch_norm with training = True).
//
// Groups ("split batch norm"): with groups = G > 1 the rows are G contiguous groups of rows / G
// rows each (for x [N, ..., C]: group g holds batch samples g*N/G .. (g+1)*N/G - 1), and each group
// is normalised with its own batch statistics, as DistributedDataParallel does with one group per
// GPU (plain BatchNorm2d, not SyncBatchNorm). Every per-group result (y, saved mean and invstd, dx)
// is bit for bit what a call on that group's rows alone gives. G = 1 is the ordinary batch norm.
// rows % groups must be 0 and the forward needs rows / groups >= 2 (else kInvalidArgument).
//
// Statistics in float64, by blocks of rows of one group: each block's mean, then its sum of squared
// deviations from that mean (two passes over the block while it is in cache), the blocks merged in
// order by Chan et al.'s pairwise update (exact in exact arithmetic; no cancellation when |mean| >> std):
//   mean_g = sum x / n, var_g = sum (x - mean_g)^2 / n (biased), invstd_g = 1 / sqrt(var_g + eps),
//   n = rows / groups, sums over group g's rows
// save_mean and save_invstd ([groups, c], row g for group g) are those, rounded to float32 once.
// The output, in float32:
//   y = (x - save_mean_g) * (save_invstd_g * weight) + bias, + residual[i] when `residual` is not
//   null (the residual add of a ResNet block, fused: the same float32 sum as adding afterwards), then
//   ReLU (NaN kept) when `relu`
// (PyTorch's CPU kernel computes x * alpha + (bias - mean * alpha) instead, which loses the low bits
// of y when |mean| >> std; results agree within float32 rounding of y, not bit for bit.)
// Running statistics (PyTorch's update, in float64, rounded once), from GROUP 0's statistics only:
//   new_running_mean = (1 - momentum) * running_mean + momentum * mean_0
//   new_running_var  = (1 - momentum) * running_var  + momentum * var_0 * n / (n - 1)
// That is DDP's semantics: every rank updates its own buffers from its own share of the batch, but
// with broadcast_buffers (the default) rank 0's buffers are broadcast to all ranks at every forward
// and rank 0 writes the checkpoint, so the running statistics that survive follow rank 0's share,
// the first rows / groups rows. The other groups' statistics are not averaged in.
Status BatchNormTrainF32(const float* x, int64_t rows, int64_t c, int64_t groups, const float* weight,
                         const float* bias, const float* running_mean, const float* running_var, double eps,
                         double momentum, bool relu, const float* residual, float* y, float* save_mean,
                         float* save_invstd, float* new_running_mean, float* new_running_var);

// Gradients of train-mode batch norm, from the forward's saved mean and invstd ([groups, c]; the
// groups as in BatchNormTrainF32, rows % groups == 0, rows / groups >= 1). With relu_y (the output
// of a ReLU that followed the batch norm) dy is first masked as ReluBackwardF32 does (dy where
// relu_y > 0 or NaN, else 0), without a pass of its own; null: no ReLU. Per group g, over its
// n = rows / groups rows, with mean_g and invstd_g:
//   sum_dy_g = sum dy, dot_g = sum (x - mean_g) dy                (float64, per channel)
//   dx = (dy - sum_dy_g / n - (x - mean_g) * k_g) * (invstd_g * weight),  k_g = dot_g * invstd_g^2 / n
// (PyTorch's batch_norm_backward formula; the per-channel factors are rounded to float32 and the
// element-wise part runs in float32), so each group's dx is the bits of a call on that group alone.
// The parameter gradients add the groups' float64 terms in group order, rounded once:
//   dbias = sum_g sum_dy_g, dweight = sum_g dot_g * invstd_g      (float64, rounded once)
// (the gradient of the whole output, as autograd gives for torch.cat of the per-group batch norms;
// no per-group float32 rounding before the sum).
Status BatchNormBackwardF32(const float* dy, const float* relu_y, const float* x, int64_t rows, int64_t c,
                            int64_t groups, const float* weight, const float* mean, const float* invstd, float* dx,
                            float* dweight, float* dbias);

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
