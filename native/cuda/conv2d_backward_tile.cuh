// The block-tile machinery the convolution's backward GEMMs share (conv2d_backward.cu: dgrad,
// conv2d_wgrad.cu: wgrad): fp32 SIMT, the structure of the forward SIMT kernel (conv2d.cu).
//
//   - A block of kThreads = 256 threads (16 x 16) computes a kBM x kBN = 128 x 64 output tile;
//     thread (tx, ty) owns rows {ty*4 + i, 64 + ty*4 + i} (i < 4) and columns tx*4 + j (j < 4), so
//     its float4 shared loads are contiguous across the warp and each output is one thread's FMA
//     chain over GEMM-K in ascending order. The forward kernel's 128-wide tile (8 x 8 per thread)
//     needs more than the 128 registers that two blocks per SM allow once these loaders' gathers are
//     added (ptxas spilled); 8 x 4 per thread fits in about 95-115 with no spills, and at 32 FMAs per
//     4 shared-memory wavefronts per k step it stays bound by the FMA pipes, not shared memory.
//   - Shared memory holds both operands GEMM-K-major, A as [kBK][kAStride] and B as [kBK][kBN], two
//     buffers each (12.3 KiB: no opt-in needed), as dynamic shared memory.
//   - The operands come from loader objects (one float4 group per thread and stage at most, every
//     edge predicated to zeros); see Mainloop.
//   - Double buffering through registers: the next stage's global loads are issued before the
//     current stage's FMAs and stored to the other buffer after them; one __syncthreads per stage.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"
#include "cuda/kernel_util.cuh"

namespace sslinv::cuda::conv_bwd {

constexpr int kThreads = 256;
constexpr int kBM = 128;           // GEMM rows per block tile
constexpr int kBN = 64;            // GEMM columns per block tile
constexpr int kBK = 8;             // GEMM-K per stage
constexpr int kAStride = kBM + 4;  // padded A row: dgrad's transposing stores are conflict-free

constexpr size_t kSmemBytes = sizeof(float) * 2 * kBK * (kAStride + kBN);

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline size_t RoundUp256(size_t bytes) { return (bytes + 255) / 256 * 256; }

__device__ __forceinline__ bool InRange(int v, int n) { return static_cast<unsigned>(v) < static_cast<unsigned>(n); }

// acc[i][j] += sum over the stage's kBK of A[kk][row i] * B[kk][column j].
__device__ __forceinline__ void MultiplyStage(const float* as, const float* bs, int tx, int ty, float (&acc)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < kBK; ++kk) {
    float av[8], bv[4];
    SSLINV_CHECK_VEC_ALIGN(as + kk * kAStride + ty * 4, 16);
    const float4 a_lo = *reinterpret_cast<const float4*>(as + kk * kAStride + ty * 4);
    const float4 a_hi = *reinterpret_cast<const float4*>(as + kk * kAStride + 64 + ty * 4);
    av[0] = a_lo.x, av[1] = a_lo.y, av[2] = a_lo.z, av[3] = a_lo.w;
    av[4] = a_hi.x, av[5] = a_hi.y, av[6] = a_hi.z, av[7] = a_hi.w;
    SSLINV_CHECK_VEC_ALIGN(bs + kk * kBN + tx * 4, 16);
    const float4 b = *reinterpret_cast<const float4*>(bs + kk * kBN + tx * 4);
    bv[0] = b.x, bv[1] = b.y, bv[2] = b.z, bv[3] = b.w;
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}

// Sums GEMM-K = k_total (block-uniform; 0 leaves acc at zero) in stages of kBK. Loaders provide
// Load(args, k_left) (global -> registers for the current stage, whose GEMM-K index kBK * stage + i
// exists when i < k_left: the one predicate along GEMM-K, shared so that loaders need no cursor of
// their own for it), Next(args) (move to the next stage) and Store(buffer). `args` is the kernel's
// parameter struct: loaders keep only per-thread state and read the shape from it (kernel
// parameters sit in the constant bank, so they cost no registers).
template <class Args, class ALoader, class BLoader>
__device__ __forceinline__ void Mainloop(const Args& args, ALoader& a, BLoader& b, int k_total, float* smem,
                                         float (&acc)[8][4]) {
  float* const a_smem = smem;                       // [2][kBK][kAStride]
  float* const b_smem = smem + 2 * kBK * kAStride;  // [2][kBK][kBN]
  const int tx = static_cast<int>(threadIdx.x) % 16, ty = static_cast<int>(threadIdx.x) / 16;
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
  if (k_total <= 0) return;
  a.Load(args, k_total);
  b.Load(args, k_total);
  a.Store(a_smem);
  b.Store(b_smem);
  __syncthreads();
  int buf = 0;
  for (int k_left = k_total; k_left > 0; k_left -= kBK) {
    const bool more = k_left > kBK;
    if (more) {  // the next stage's global loads overlap this stage's FMAs
      a.Next(args);
      b.Next(args);
      a.Load(args, k_left - kBK);
      b.Load(args, k_left - kBK);
    }
    MultiplyStage(a_smem + buf * kBK * kAStride, b_smem + buf * kBK * kBN, tx, ty, acc);
    if (more) {  // the other buffer: every thread finished reading it before the last barrier
      a.Store(a_smem + (buf ^ 1) * kBK * kAStride);
      b.Store(b_smem + (buf ^ 1) * kBK * kBN);
    }
    __syncthreads();
    buf ^= 1;
  }
}

// The row of the block tile that accumulator row i of this thread holds.
__device__ __forceinline__ int AccRow(int i) {
  const int ty = static_cast<int>(threadIdx.x) / 16;
  return i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4);
}

}  // namespace sslinv::cuda::conv_bwd
