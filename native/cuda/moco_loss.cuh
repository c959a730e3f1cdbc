// MoCo v2 contrastive loss (InfoNCE against a queue of negatives), forward and backward fused.
//
// Shapes and conventions (as facebookresearch/moco's MoCo.forward + nn.CrossEntropyLoss, labels 0):
//   q      [n, d]  fp32, row-major: the query encoder's outputs.
//   k_pos  [n, d]  fp32, row-major: the positive key of each query.
//   queue  [d, kq] fp32, row-major: MoCo's buffer layout, dim x K; column j is the key j.
//   logits_i = [q_i . k_pos_i, q_i . queue[:, 0], ..., q_i . queue[:, kq-1]] / T
//   loss     = mean_i (logsumexp(logits_i) - logits_i[0])
//   dq_i     = (sum_j p_ij key_j - k_pos_i) / (T n), p_i = softmax(logits_i), the keys including the
//              positive (the queue and k_pos are detached in MoCo, so only q gets a gradient).
//
// The n x (kq + 1) logits are never materialised. The loss and gradient are single-head attention
// with Q = q, K = V = queue^T and scale 1/T, so one split-KV FlashAttention forward ("flash decoding")
// gives both: a grid of (query block x queue chunk) CTAs each keeps an online row max m and row sum l
// over its chunk and the weighted key sum O = P . Q_c^T, and writes the partial (m, l, O) to the
// workspace; a combine kernel merges the chunks with the positive key and writes dq, the per-row loss
// and lse; a one-block kernel sums the per-row losses in a fixed order. No float atomics anywhere, so
// results are bit-identical run to run. The max is always subtracted (inputs need not be unit-norm).
//
// Arithmetic is strict fp32 (FMA products and sums; expf/logf, not the fast intrinsics); the final
// mean over rows is accumulated in fp64. Supports d <= 256 (d <= 128 is the fast path; MoCo uses 128).
//
// Expected cost at the reference size (n 256, d 128, kq 65536, H200): 8.6 GFLOP of fp32 FMA in the
// split kernel, 128 CTAs (2 query blocks x 64 chunks of 1024 keys) on 132 SMs, one CTA per SM
// (172 KB of shared memory each); the FMA floor is about 130 us, so 170-220 us at 60-75% of the
// FMA issue rate, plus about 10 us for the combine (8 MB of partials) -- about 4x PyTorch eager's
// 0.83 ms. (Estimate; not yet measured on a device.)
#pragma once
#include <cstddef>

#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

// Bytes of device workspace LaunchMocoLossForwardBackward needs for these sizes (256-byte aligned
// pieces). keys_per_chunk 0 picks the chunking automatically (about 128 CTAs); a positive value forces
// chunks of that many keys (rounded up to the 64-key tile), for tests. Pass the same value to both.
// The plan depends on the current device's shared memory per block (the query-block height), so ask
// with the device the launch will run on current.
size_t MocoLossWorkspaceBytes(int n, int d, int kq, int keys_per_chunk = 0);

// Dynamic shared memory per block the kernel needs at least for dim d (its shortest query block), and
// whether the current device allows that much (dim <= 128 runs on every card of compute capability
// 8.0 or later; dim 129..256 needs 160 KiB: sm_80, sm_90). 0 / false for d outside 1..256.
size_t MocoLossSharedMemoryNeeded(int d);
bool MocoLossFits(int d);

// Computes the loss (one float, device memory), dq [n, d] and, when lse is not null, the per-row
// logsumexp [n] (device memory); when row_loss is not null, each query's cross-entropy [n] (the values
// the loss is the mean of; main_moco.py's per-GPU meters). All pointers are device pointers; workspace
// holds at least MocoLossWorkspaceBytes(n, d, kq, keys_per_chunk) bytes and is 256-byte aligned.
// Returns cudaErrorInvalidValue for bad sizes (n, d, kq < 1, d > 256, temperature <= 0), null
// pointers, or a dim the device's shared memory cannot hold (MocoLossFits).
cudaError_t LaunchMocoLossForwardBackward(const float* q, const float* k_pos, const float* queue, int n, int d,
                                          int kq, float temperature, float* loss, float* dq, float* lse,
                                          void* workspace, cudaStream_t stream, int keys_per_chunk = 0,
                                          float* row_loss = nullptr);

}  // namespace cuda
}  // namespace sslinv
