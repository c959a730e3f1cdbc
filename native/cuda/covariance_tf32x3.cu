// The covariance's SYRK pass on tensor cores, in 3xTF32 (see covariance_syrk.cuh for what it
// computes and the numerics).
//
// Block: 256 threads (8 warps, 2 x 4 of 64 x 32) compute one 128 x 128 upper tile over one row
// sub-chunk; mma.sync m16n8k8 .tf32, three per product (a_lo b_hi, a_hi b_lo, a_hi b_hi, small terms
// first) into a per-step fp32 sum, added to the fp32 accumulators with round-to-nearest (see the
// MMA loop for why).
//
// Shared memory: 3 stages of 16 rows of x, for the A columns (bi) and the B columns (bj; a diagonal
// tile reads A for both), as [16][136] floats straight from the row-major input by 16-byte cp.async
// copies (zero-filled past the sub-chunk's rows and past d). The row stride of 136 floats puts a
// fragment load's 32 lanes (k = t in 0..3, column g in 0..7: word 136 t + g) on 32 different banks.
//
// Centring and the split happen as fragments are formed: v = x - muf[column] (the tile's centres
// sit in shared memory beside the stages; 0 for rows past the
// sub-chunk, where the zero-filled x would otherwise give -muf), hi = tf32(v), lo = tf32(v - hi).
// Per k8 step a warp forms its four B fragments first, then for each of its four A fragments runs
// the 3 x 4 MMAs, which keeps the live registers at the accumulators plus 24 fragment words.
//
// Pipeline as in conv2d_pipelined.cu: wait for tile kt (at most one group in flight), barrier, issue
// tile kt + 2 into the stage tile kt - 1 used, MMAs of tile kt.
#include <cstdint>

#include "cuda/covariance_syrk.cuh"
#include "cuda/kernel_util.cuh"
#include "cuda/mma.cuh"

namespace sslinv::cuda::cov {
namespace {

using namespace mma;  // NOLINT: the warp-level primitives

constexpr int kThreads = 256;
constexpr int kBk = 16;       // rows of x per stage
constexpr int kStages = 3;
constexpr int kStride = kTile + 8;  // floats per shared row (see above)
constexpr int kStageFloats = 2 * kBk * kStride;  // A then B
// The stages, then the float centres of the tile's A and B columns (kept in shared memory rather than
// registers, which the accumulators and fragments fill: 128 without spilling).
constexpr size_t kSmemBytes = sizeof(float) * (kStages * kStageFloats + 2 * kTile);  // 53,248 bytes: needs the opt-in

// hi = tf32(v), lo = tf32(v - hi), as fragment words. The PTX ISA leaves the unused low 13 bits of
// a tf32 register implementation-defined; they are cleared before hi is read back as an fp32 (as
// CUTLASS's tfloat32_t does), so the residual is exact whatever a card leaves there.
__device__ __forceinline__ void Split(float v, uint32_t& hi, uint32_t& lo) {
  hi = ToTf32(v) & 0xffffe000u;
  lo = ToTf32(v - __uint_as_float(hi));
}

__global__ void __launch_bounds__(kThreads, 2)
    CovSyrkTf32x3Kernel(const float* __restrict__ x, int64_t rows, int d, int nb, int split_rows,
                        const float* __restrict__ muf, float* __restrict__ partial) {
  SSLINV_DYNAMIC_SMEM(float, smem);
  const int t_idx = static_cast<int>(blockIdx.x);
  int bi, bj;
  TileCoords(t_idx, nb, bi, bj);
  const bool diag = bi == bj;
  const int64_t r_begin = static_cast<int64_t>(blockIdx.y) * split_rows;
  const int64_t r_end = r_begin + split_rows < rows ? r_begin + split_rows : rows;
  const int num_tiles = static_cast<int>((r_end - r_begin + kBk - 1) / kBk);

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = warp % 2, wn = warp / 2;
  const int col_a0 = bi * kTile, col_b0 = bj * kTile;

  // The float centres of the tile's columns, 0 past d (made visible by the first barrier below).
  float* const mu_a = smem + kStages * kStageFloats;
  float* const mu_b = mu_a + kTile;
  if (tid < kTile) {
    mu_a[tid] = col_a0 + tid < d ? muf[col_a0 + tid] : 0.f;
    mu_b[tid] = col_b0 + tid < d ? muf[col_b0 + tid] : 0.f;
  }

  // Loader: 16 rows x 32 chunks of 16 bytes per operand; thread tid copies chunks tid and tid + 256.
  auto load_tile = [&](int kt, int stage) {
    float* a_s = smem + stage * kStageFloats;
    float* b_s = a_s + kBk * kStride;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int c = tid + kThreads * i, row = c / 32, col = (c % 32) * 4;
      const int64_t r = r_begin + static_cast<int64_t>(kt) * kBk + row;
      const bool row_ok = r < r_end;
      const bool a_ok = row_ok && col_a0 + col < d;
      CpAsync16(a_s + row * kStride + col, a_ok ? x + r * d + col_a0 + col : x, a_ok);
      if (!diag) {
        const bool b_ok = row_ok && col_b0 + col < d;
        CpAsync16(b_s + row * kStride + col, b_ok ? x + r * d + col_b0 + col : x, b_ok);
      }
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < num_tiles) load_tile(st, st);
    CpAsyncCommit();
  }

  for (int kt = 0; kt < num_tiles; ++kt) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();
    if (kt + kStages - 1 < num_tiles) load_tile(kt + kStages - 1, (kt + kStages - 1) % kStages);
    CpAsyncCommit();

    const float* a_s = smem + (kt % kStages) * kStageFloats;
    const float* b_s = diag ? a_s : a_s + kBk * kStride;
    const int64_t left = r_end - (r_begin + static_cast<int64_t>(kt) * kBk);
    const int k_valid = left < kBk ? static_cast<int>(left) : kBk;  // rows of this tile in the sub-chunk
    // Not unrolled: with both k8 steps interleaved the 128-register budget spilled 48 bytes (nvcc
    // 13.0, sm_90); one step at a time spills 8.
#pragma unroll 1
    for (int ks = 0; ks < kBk / 8; ++ks) {
      const int k0 = ks * 8 + t, k1 = k0 + 4;
      const bool ok0 = k0 < k_valid, ok1 = k1 < k_valid;
      uint32_t b_hi[4][2], b_lo[4][2];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int n = wn * 32 + nt * 8 + g;
        const float mu = mu_b[n];
        Split(ok0 ? b_s[k0 * kStride + n] - mu : 0.f, b_hi[nt][0], b_lo[nt][0]);
        Split(ok1 ? b_s[k1 * kStride + n] - mu : 0.f, b_hi[nt][1], b_lo[nt][1]);
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        const int m = wm * 64 + mt * 16 + g;
        const float mu0 = mu_a[m], mu1 = mu_a[m + 8];
        uint32_t a_hi[4], a_lo[4];
        // Fragment order: (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4).
        Split(ok0 ? a_s[k0 * kStride + m] - mu0 : 0.f, a_hi[0], a_lo[0]);
        Split(ok0 ? a_s[k0 * kStride + m + 8] - mu1 : 0.f, a_hi[1], a_lo[1]);
        Split(ok1 ? a_s[k1 * kStride + m] - mu0 : 0.f, a_hi[2], a_lo[2]);
        Split(ok1 ? a_s[k1 * kStride + m + 8] - mu1 : 0.f, a_hi[3], a_lo[3]);
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          // Tensor cores round each MMA's sum toward zero. Chained into acc for a whole sub-chunk
          // (512 k8 steps at 4,096 rows), the diagonal's same-signed products lose up to an ulp of
          // acc per MMA, always downward: 3e-5 relative on the emulated device with that rounding.
          // So each step's three MMAs go into fresh registers (their truncation is relative to one
          // step's sum) and the step joins acc by ordinary round-to-nearest adds.
          float step[4] = {0.f, 0.f, 0.f, 0.f};
          MmaTf32_16x8x8(step, a_lo, b_hi[nt], step);
          MmaTf32_16x8x8(step, a_hi, b_lo[nt], step);
          MmaTf32_16x8x8(step, a_hi, b_hi[nt], step);
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[mt][nt][e] += step[e];
        }
      }
    }
  }
  CpAsyncWait<0>();

  // Accumulator e of (mt, nt): row wm*64 + mt*16 + g + 8 (e / 2), column wn*32 + nt*8 + 2t + e % 2.
  float* out = partial + (static_cast<size_t>(blockIdx.y) * gridDim.x + t_idx) * (kTile * kTile);
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = wm * 64 + mt * 16 + g + 8 * h;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        float* p = out + m * kTile + wn * 32 + nt * 8 + 2 * t;
        SSLINV_CHECK_VEC_ALIGN(p, 8);
        *reinterpret_cast<float2*>(p) = make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
    }
}

}  // namespace

cudaError_t LaunchSyrkTf32x3(const float* x, int64_t rows, int d, int nb, int tiles, int splits, int split_rows,
                             const float* muf, float* partial, cudaStream_t stream) {
  if (x == nullptr || muf == nullptr || partial == nullptr || rows < 1 || d < 1 || d % 4 != 0 || !detail::IsAligned(x, 16) ||
      tiles < 1 || splits < 1 || split_rows < 1) {
    return cudaErrorInvalidValue;
  }
  const cudaError_t err =
      cudaFuncSetAttribute(CovSyrkTf32x3Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes));
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(CovSyrkTf32x3Kernel, dim3(tiles, splits), dim3(kThreads), kSmemBytes, stream, x, rows, d, nb, split_rows,
                muf, partial);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda::cov
