// MoCo positive-logit ranks (see moco_rank.cuh for the contract).
//
// Grid (ceil(n / kRows), ceil(kq / kKeysPerBlock)), 256 threads. A block stages its kRows query rows
// in shared memory ([kRows][d]) and computes their positive logits once (thread r, a sequential FMA
// chain over d, so every block of a row gets the same value). Each thread then walks keys j = start +
// tid, + 256, ... of the block's key range: one coalesced load of queue[c][j] per dim c serves the
// kRows dot products (the query values are shared-memory broadcasts), and each logit is compared with
// its row's positive one. A row's count is summed over the block (warp shuffles, then one value per
// warp in shared memory) and added to rank[row] with one integer atomicAdd per block: integer sums do
// not depend on the order, so the result is deterministic.
//
// Cost at MoCo's reference size (n 256, d 128, kq 65,536): 2.1 G FMAs, as many as the loss's own
// logits, over 32 x 32 = 1,024 blocks. (Not yet run on a GPU; checked on the emulated device against
// the CPU op's ranks, test/cuda-emu/moco_rank_emu_test.cc.)
#include "cuda/moco_rank.cuh"

#include <cmath>
#include <cstdint>

namespace sslinv {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRows = 8;              // query rows per block
constexpr int kKeysPerBlock = 2048;   // 8 keys per thread
constexpr int kMaxDim = 256;

__global__ void __launch_bounds__(kThreads)
    MocoRankKernel(const float* __restrict__ q, const float* __restrict__ k_pos, const float* __restrict__ queue, int n,
                   int d, int kq, float inv_t, int32_t* __restrict__ rank) {
  __shared__ float qs[kRows][kMaxDim];
  __shared__ float pos[kRows];
  __shared__ int warp_counts[kThreads / 32][kRows];
  const int tid = static_cast<int>(threadIdx.x);
  const int row0 = static_cast<int>(blockIdx.x) * kRows;
  for (int e = tid; e < kRows * d; e += kThreads) {
    const int r = e / d, c = e % d;
    qs[r][c] = row0 + r < n ? q[static_cast<int64_t>(row0 + r) * d + c] : 0.f;
  }
  if (tid < kRows) {
    float dot = 0.f;
    if (row0 + tid < n) {
      const float* qr = q + static_cast<int64_t>(row0 + tid) * d;
      const float* kr = k_pos + static_cast<int64_t>(row0 + tid) * d;
      for (int c = 0; c < d; ++c) dot = fmaf(qr[c], kr[c], dot);
    }
    pos[tid] = dot * inv_t;
  }
  __syncthreads();

  int count[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) count[r] = 0;
  const int64_t start = static_cast<int64_t>(blockIdx.y) * kKeysPerBlock;
  const int64_t end = start + kKeysPerBlock < kq ? start + kKeysPerBlock : kq;
  for (int64_t j = start + tid; j < end; j += kThreads) {
    float acc[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = 0.f;
    for (int c = 0; c < d; ++c) {
      const float v = __ldg(queue + static_cast<int64_t>(c) * kq + j);
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] = fmaf(qs[r][c], v, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) count[r] += acc[r] * inv_t > pos[r] ? 1 : 0;
  }

  const int lane = tid % 32, warp = tid / 32;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    int v = count[r];
    for (int off = 16; off >= 1; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) warp_counts[warp][r] = v;
  }
  __syncthreads();
  if (tid < kRows && row0 + tid < n) {
    int total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += warp_counts[w][tid];
    if (total != 0) atomicAdd(rank + row0 + tid, total);
  }
}

}  // namespace

cudaError_t LaunchMocoRanks(const float* q, const float* k_pos, const float* queue, int n, int d, int kq, float inv_t,
                            int32_t* rank, cudaStream_t stream) {
  if (n < 1 || d < 1 || d > kMaxDim || kq < 1 || !(inv_t > 0.f) || !(inv_t < INFINITY)) return cudaErrorInvalidValue;
  if (!q || !k_pos || !queue || !rank) return cudaErrorInvalidValue;
  if (n > 0x7fffffff - kRows) return cudaErrorInvalidValue;  // row0 + r stays an int
  const int64_t row_blocks = (static_cast<int64_t>(n) + kRows - 1) / kRows;
  const int64_t key_blocks = (static_cast<int64_t>(kq) + kKeysPerBlock - 1) / kKeysPerBlock;
  if (row_blocks > 0x7fffffff || key_blocks > 65535) return cudaErrorInvalidValue;
  cudaError_t err = cudaMemsetAsync(rank, 0, static_cast<size_t>(n) * sizeof(int32_t), stream);
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(MocoRankKernel, dim3(static_cast<unsigned>(row_blocks), static_cast<unsigned>(key_blocks)),
                dim3(kThreads), 0, stream, q, k_pos, queue, n, d, kq, inv_t, rank);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace sslinv
