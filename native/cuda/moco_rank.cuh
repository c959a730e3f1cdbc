// The rank of each MoCo query's positive logit among its queue logits, for main_moco.py's Acc@1 and
// Acc@5 meters on the CUDA backend (the loss itself is moco_loss.cuh's fused kernel).
//
//   q [n, d], k_pos [n, d], queue [d, kq] fp32 row-major (MoCo's buffer: column j is key j)
//   rank[i] = #{ j : fl(q_i . queue[:, j]) * s > fl(q_i . k_pos_i) * s }     int32 [n]
//
// with s = float32(1 / T): both sides are float32 logits scaled as the CPU op scales them; a queue
// logit equal to the positive one is not counted (the positive, index 0, comes first among
// equals, as torch.topk keeps it). Acc@k is the share of queries with rank < k. This is the CPU
// op's contract (ops/moco_loss.h); the dot products are summed in another order there (its GEMM),
// so a queue logit within an ulp or so of the positive one may be counted on one backend and not the
// other.
#pragma once
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

// Writes rank [n] (device memory; zeroed here first, then counted). inv_t is float32(1 / T), computed
// by the caller in double as the CPU op does. d <= 256. Returns cudaErrorInvalidValue for bad sizes
// (n, d, kq < 1, d > 256), inv_t not finite and > 0, or null pointers.
cudaError_t LaunchMocoRanks(const float* q, const float* k_pos, const float* queue, int n, int d, int kq, float inv_t,
                            int32_t* rank, cudaStream_t stream);

}  // namespace cuda
}  // namespace sslinv
