// The MoCo v2 contrastive loss (InfoNCE against a queue of negatives) with its gradient, on the CPU.
// Same contract as the CUDA kernel (native/cuda/moco_loss.cuh), which is tested against it:
//
//   q [N, D], k_pos [N, D], queue [D, K] (MoCo's buffer: column j is key j), temperature T
//   logits_i = [q_i . k_pos_i, q_i . queue[:, j] ...] / T
//   loss = mean_i (logsumexp(logits_i) - logits_i[0])      (cross-entropy against index 0)
//   dq_i = (sum_j p_ij key_j - k_pos_i) / (T N), p_i = softmax(logits_i), keys include the positive
//
// The N x (K+1) logits are never held at once: the queue is walked once, in column blocks, with an
// online soft-max (each row's running maximum, its sum of exponentials in float64, and the
// exponential-weighted sum of keys in float32, rescaled when the maximum grows). Dot products run in
// the float32 GEMM, as PyTorch's einsum does; the soft-max statistics are float64.
//
// rank (nullable, [N]): for each query, how many queue logits are strictly greater than its positive
// logit, both as float32 logits / T (the values PyTorch's logits tensor holds). main_moco.py's
// Acc@k is the share of queries with rank < k; a queue logit equal to the positive one is not
// counted (the positive, index 0, comes first among equals). Counted in the first pass, so free.
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

Status MocoLossForwardBackward(const float* q, const float* k_pos, const float* queue, int64_t n, int64_t d, int64_t k,
                               double temperature, float* loss, float* dq, int32_t* rank = nullptr,
                               float* row_loss = nullptr);

}  // namespace sslinv
