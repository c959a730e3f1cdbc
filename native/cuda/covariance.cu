// Streaming covariance: column means, centred SYRK with split-K over rows, fp64 reduction and Chan's
// merge. See covariance.cuh for the contract and the numerics.
//
// SYRK kernel (grid: upper-triangle tiles x row sub-chunks, 256 threads as 16 x 16, two CTAs per SM):
//   classic 128 x 128 x 8 SIMT tiling (x 16 in the simt-bk16 variant). Both operands are column
//   slices of the same rows of x, so shared memory holds them as [k][128] straight from the row-major
//   input (no transpose); the loader subtracts the float mean in registers and zero-fills rows past the
//   sub-chunk and columns past d. Each thread owns an 8 x 8 block split 4 + 4 at offsets 0 and 64 in
//   both dimensions, so its shared-memory reads are broadcasts or conflict-free float4s. Shared memory
//   is double-buffered with a register prefetch of the next k-slice: one barrier per 8 (16) rows.
//   Diagonal tiles load one operand. ptxas (sm_90): 127-128 registers, no spills, in all three
//   instantiations.
#include "cuda/covariance.cuh"

#include "cuda/covariance_syrk.cuh"

#include <cstdint>

namespace sslinv {
namespace cuda {
namespace {

using cov::kTile;
using cov::TileCoords;
constexpr int kSyrkThreads = 256;
constexpr int kDefaultSplitRows = 4096;
constexpr int kMeanThreads = 256;
constexpr int kMeanTargetBlocks = 512;  // row splits x column blocks for the mean pass
constexpr int kReduceSub = 32;          // the reduction works on 32 x 32 pieces of a tile

struct Plan {
  int nb = 0;          // column blocks of 128
  int tiles = 0;       // upper-triangle tiles
  int splits = 0;      // row sub-chunks of the SYRK
  int split_rows = 0;  // rows per sub-chunk (the last may be shorter)
  int mean_blocks = 0; // column blocks of kMeanThreads for the mean pass
  int mean_splits = 0; // row splits of the mean pass
  size_t off_colsum = 0, off_muf = 0, off_e = 0, off_delta = 0, off_partial = 0, bytes = 0;
};

size_t AlignUp(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

Plan MakePlan(int64_t rows, int d, int split_rows) {
  Plan p;
  p.nb = (d + kTile - 1) / kTile;
  p.tiles = p.nb * (p.nb + 1) / 2;
  const int64_t max_split = split_rows > 0 ? split_rows : kDefaultSplitRows;
  const int64_t want = rows > 0 ? (rows + max_split - 1) / max_split : 1;
  // Equal sub-chunks rather than full ones and a short remainder (same fp32 error bound, better
  // balance); per <= max_split, and recounting keeps every sub-chunk non-empty.
  const int64_t per = rows > 0 ? (rows + want - 1) / want : 1;
  const int64_t splits = rows > 0 ? (rows + per - 1) / per : 1;
  p.split_rows = static_cast<int>(per);
  p.splits = static_cast<int>(splits < 0x7fffffff ? splits : 0x7fffffff);
  p.mean_blocks = (d + kMeanThreads - 1) / kMeanThreads;
  int64_t ms = kMeanTargetBlocks / p.mean_blocks;
  const int64_t by_rows = (rows + 255) / 256;  // at least 256 rows per mean block
  if (ms > by_rows) ms = by_rows;
  p.mean_splits = static_cast<int>(ms < 1 ? 1 : ms);
  const size_t dd = static_cast<size_t>(d);
  p.off_colsum = 0;
  p.off_muf = p.off_colsum + AlignUp(sizeof(double) * dd * p.mean_splits);
  p.off_e = p.off_muf + AlignUp(sizeof(float) * dd);
  p.off_delta = p.off_e + AlignUp(sizeof(double) * dd);
  p.off_partial = p.off_delta + AlignUp(sizeof(double) * dd);
  p.bytes = p.off_partial + AlignUp(sizeof(float) * kTile * kTile * static_cast<size_t>(p.tiles) * p.splits);
  return p;
}

// Pass 1a: per (column block, row split) fp64 column sums.
__global__ void __launch_bounds__(kMeanThreads)
    CovColumnSumKernel(const float* __restrict__ x, int64_t rows, int d, int mean_splits, double* __restrict__ colsum) {
  const int c = blockIdx.x * kMeanThreads + threadIdx.x;
  const int split = blockIdx.y;
  const int64_t per = (rows + mean_splits - 1) / mean_splits;
  const int64_t r0 = per * split;
  const int64_t r1 = r0 + per < rows ? r0 + per : rows;
  if (c >= d) return;
  double acc = 0.0;
  const float* p = x + c;
  int64_t r = r0;
  // Four loads in flight per step; one accumulator keeps the order fixed.
  for (; r + 4 <= r1; r += 4) {
    const float v0 = __ldg(p + r * d), v1 = __ldg(p + (r + 1) * d), v2 = __ldg(p + (r + 2) * d),
                v3 = __ldg(p + (r + 3) * d);
    acc += static_cast<double>(v0);
    acc += static_cast<double>(v1);
    acc += static_cast<double>(v2);
    acc += static_cast<double>(v3);
  }
  for (; r < r1; ++r) acc += static_cast<double>(__ldg(p + r * d));
  colsum[static_cast<size_t>(split) * d + c] = acc;
}

// Pass 1b: chunk mean, the float centre, and the running mean's update.
__global__ void __launch_bounds__(kMeanThreads)
    CovMeanFinishKernel(const double* __restrict__ colsum, int64_t rows, int d, int mean_splits, int64_t count,
                        double* __restrict__ mean, float* __restrict__ muf, double* __restrict__ e,
                        double* __restrict__ delta) {
  const int c = blockIdx.x * kMeanThreads + threadIdx.x;
  if (c >= d) return;
  double s = 0.0;
  for (int k = 0; k < mean_splits; ++k) s += colsum[static_cast<size_t>(k) * d + c];
  const double nb = static_cast<double>(rows);
  const double mb = s / nb;
  const float mf = static_cast<float>(mb);
  muf[c] = mf;
  e[c] = mb - static_cast<double>(mf);
  if (count == 0) {
    delta[c] = 0.0;
    mean[c] = mb;
  } else {
    const double dl = mb - mean[c];
    delta[c] = dl;
    mean[c] += dl * (nb / (static_cast<double>(count) + nb));
  }
}

// Loads this thread's four columns of one row of the chunk, centred, into v (zeros outside).
template <bool kVec>
__device__ __forceinline__ float4 LoadCentred(const float* __restrict__ x, int64_t r, int64_t r_end, int d, int col,
                                              const float (&mu)[4]) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (r < r_end) {
    const float* src = x + r * d + col;
    if (kVec) {
      // d % 4 == 0, so the four columns are all in or all out.
      if (col < d) {
        v = __ldg(reinterpret_cast<const float4*>(src));
        v.x -= mu[0];
        v.y -= mu[1];
        v.z -= mu[2];
        v.w -= mu[3];
      }
    } else {
      if (col + 0 < d) v.x = __ldg(src + 0) - mu[0];
      if (col + 1 < d) v.y = __ldg(src + 1) - mu[1];
      if (col + 2 < d) v.z = __ldg(src + 2) - mu[2];
      if (col + 3 < d) v.w = __ldg(src + 3) - mu[3];
    }
  }
  return v;
}

// Pass 2: fp32 partial scatter of one upper tile over one row sub-chunk, kBk rows per k-slice (8, or
// 16 for the simt-bk16 variant: half the barriers per row, two float4 loads per operand in flight per
// thread). Each output's products are summed over the rows in the same order either way (the rows
// past the sub-chunk add exact zeros), so both give the same bits.
template <bool kVec, int kBk>
__global__ void __launch_bounds__(kSyrkThreads, 2)
    CovSyrkKernel(const float* __restrict__ x, int64_t rows, int d, int nb, int split_rows,
                  const float* __restrict__ muf, float* __restrict__ partial) {
  static_assert(kBk % 8 == 0, "the loader fills 8 rows of a slice per float4 per thread");
  constexpr int kLoads = kBk / 8;  // float4 loads per operand per thread per slice
  SSLINV_DYNAMIC_SMEM(float, smem);
  float* as = smem;                     // [2][kBk][kTile]
  float* bs = smem + 2 * kBk * kTile;   // [2][kBk][kTile]
  const int t = blockIdx.x;
  int bi, bj;
  TileCoords(t, nb, bi, bj);
  const bool diag = bi == bj;
  const int64_t r_begin = static_cast<int64_t>(blockIdx.y) * split_rows;
  const int64_t r_end = r_begin + split_rows < rows ? r_begin + split_rows : rows;
  const int nk = static_cast<int>((r_end - r_begin + kBk - 1) / kBk);

  const int tid = threadIdx.x;
  const int tx = tid & 15, ty = tid >> 4;
  // Loader: kLoads float4 per operand per k-slice: rows lk, lk + 8, .. of the slice, columns
  // lc..lc+3 of the tile.
  const int lk = tid >> 5, lc = (tid & 31) * 4;
  const int col_a = bi * kTile + lc, col_b = bj * kTile + lc;
  float mu_a[4], mu_b[4];
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    mu_a[u] = col_a + u < d ? muf[col_a + u] : 0.f;
    mu_b[u] = col_b + u < d ? muf[col_b + u] : 0.f;
  }

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

  float4 pa[kLoads], pb[kLoads];
#pragma unroll
  for (int u = 0; u < kLoads; ++u) {
    pa[u] = LoadCentred<kVec>(x, r_begin + lk + 8 * u, r_end, d, col_a, mu_a);
    pb[u] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (!diag) pb[u] = LoadCentred<kVec>(x, r_begin + lk + 8 * u, r_end, d, col_b, mu_b);
    *reinterpret_cast<float4*>(as + (lk + 8 * u) * kTile + lc) = pa[u];
    if (!diag) *reinterpret_cast<float4*>(bs + (lk + 8 * u) * kTile + lc) = pb[u];
  }
  __syncthreads();

  for (int kt = 0; kt < nk; ++kt) {
    const int buf = kt & 1;
    // Fetch the next slice into registers; it lands in the other buffer after this slice's math.
    if (kt + 1 < nk) {
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {
        const int64_t r = r_begin + static_cast<int64_t>(kt + 1) * kBk + lk + 8 * u;
        pa[u] = LoadCentred<kVec>(x, r, r_end, d, col_a, mu_a);
        if (!diag) pb[u] = LoadCentred<kVec>(x, r, r_end, d, col_b, mu_b);
      }
    }
    const float* a_s = as + buf * kBk * kTile;
    const float* b_s = (diag ? as : bs) + buf * kBk * kTile;
#pragma unroll
    for (int k = 0; k < kBk; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(a_s + k * kTile + ty * 4);
      const float4 a1 = *reinterpret_cast<const float4*>(a_s + k * kTile + 64 + ty * 4);
      const float4 b0 = *reinterpret_cast<const float4*>(b_s + k * kTile + tx * 4);
      const float4 b1 = *reinterpret_cast<const float4*>(b_s + k * kTile + 64 + tx * 4);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (kt + 1 < nk) {
      // The other buffer was last read in the previous slice, which every thread finished before
      // the barrier below it.
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {
        *reinterpret_cast<float4*>(as + (buf ^ 1) * kBk * kTile + (lk + 8 * u) * kTile + lc) = pa[u];
        if (!diag) *reinterpret_cast<float4*>(bs + (buf ^ 1) * kBk * kTile + (lk + 8 * u) * kTile + lc) = pb[u];
      }
    }
    __syncthreads();
  }

  // Thread rows ty*4 + i (+64), columns tx*4 + j (+64) of this sub-chunk's tile.
  float* out = partial + (static_cast<size_t>(blockIdx.y) * gridDim.x + t) * (kTile * kTile);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = (i < 4 ? 0 : 64) + ty * 4 + (i & 3);
    *reinterpret_cast<float4*>(out + m * kTile + tx * 4) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
    *reinterpret_cast<float4*>(out + m * kTile + 64 + tx * 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
  }
}

// Pass 3: sums the sub-chunk tiles in fp64 (fixed order), corrects for the float centre, merges by
// Chan's rule and writes the upper element and its mirror (through shared memory, so both writes are
// coalesced). Block (32, 8) over a 32 x 32 piece of a tile; pieces wholly below a diagonal tile's
// diagonal are skipped (their mirror writes them).
__global__ void __launch_bounds__(kReduceSub * 8)
    CovReduceMergeKernel(const float* __restrict__ partial, int splits, int tiles, int nb, int d, double rows,
                         double w, bool first, const double* __restrict__ e, const double* __restrict__ delta,
                         double* __restrict__ m2) {
  SSLINV_DYNAMIC_SMEM(double, buf);  // [32][33]
  const int t = blockIdx.y;
  int bi, bj;
  TileCoords(t, nb, bi, bj);
  const int mm0 = (blockIdx.x / (kTile / kReduceSub)) * kReduceSub;
  const int nn0 = (blockIdx.x % (kTile / kReduceSub)) * kReduceSub;
  const bool diag = bi == bj;
  if (bi * kTile + mm0 >= d || bj * kTile + nn0 >= d || (diag && mm0 > nn0)) return;  // uniform per block
  const int tx = threadIdx.x, ty = threadIdx.y;
  const size_t split_stride = static_cast<size_t>(tiles) * kTile * kTile;
  const float* pt = partial + static_cast<size_t>(t) * kTile * kTile;
  for (int r = 0; r < kReduceSub / 8; ++r) {
    const int m = mm0 + ty + 8 * r, n = nn0 + tx;
    const int i = bi * kTile + m, j = bj * kTile + n;
    double v = 0.0;
    if (i < d && j < d) {
      double acc = 0.0;
      for (int s = 0; s < splits; ++s) acc += static_cast<double>(pt[s * split_stride + m * kTile + n]);
      const double chunk_m2 = acc - rows * e[i] * e[j];
      v = first ? chunk_m2 : m2[static_cast<size_t>(i) * d + j] + (chunk_m2 + delta[i] * delta[j] * w);
      if (!diag || i <= j) m2[static_cast<size_t>(i) * d + j] = v;
    }
    buf[(ty + 8 * r) * (kReduceSub + 1) + tx] = v;
  }
  __syncthreads();
  for (int r = 0; r < kReduceSub / 8; ++r) {
    // Element (m, n) = (mm0 + tx, nn0 + ty + 8r) goes to m2[j][i]: consecutive tx, consecutive i.
    const int i = bi * kTile + mm0 + tx, j = bj * kTile + nn0 + ty + 8 * r;
    if (i < d && j < d && i < j) m2[static_cast<size_t>(j) * d + i] = buf[tx * (kReduceSub + 1) + ty + 8 * r];
  }
}

}  // namespace

size_t CovarianceWorkspaceBytes(int64_t rows, int d, int split_rows) {
  if (rows < 0 || d < 1) return 0;
  return MakePlan(rows, d, split_rows).bytes;
}

cudaError_t LaunchCovarianceAccumulate(const float* x, int64_t rows, int d, int64_t count, double* mean, double* m2,
                                       void* workspace, cudaStream_t stream, int split_rows, CovarianceSyrk syrk) {
  if (rows < 0 || d < 1 || count < 0 || split_rows < 0) return cudaErrorInvalidValue;
  if (syrk != CovarianceSyrk::kAuto && syrk != CovarianceSyrk::kSimt && syrk != CovarianceSyrk::kTf32x3 &&
      syrk != CovarianceSyrk::kSimtBk16) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  if (!x || !mean || !m2 || !workspace) return cudaErrorInvalidValue;
  // Checked before any kernel runs, so a refusal leaves the statistics untouched.
  if (syrk == CovarianceSyrk::kTf32x3 && (d % 4 != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0)) {
    return cudaErrorInvalidValue;
  }
  // The kernels use 16-byte vector stores into the workspace's partial tiles and doubles elsewhere.
  if (reinterpret_cast<uintptr_t>(workspace) % 16 != 0) return cudaErrorInvalidValue;
  const Plan p = MakePlan(rows, d, split_rows);
  // Grid y limits: the sub-chunks (SYRK), the mean's splits, and the merge's tiles (d > 46,208).
  if (p.splits > 65535 || p.mean_splits > 65535 || p.tiles > 65535) return cudaErrorInvalidValue;
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  double* colsum = reinterpret_cast<double*>(ws + p.off_colsum);
  float* muf = reinterpret_cast<float*>(ws + p.off_muf);
  double* e = reinterpret_cast<double*>(ws + p.off_e);
  double* delta = reinterpret_cast<double*>(ws + p.off_delta);
  float* partial = reinterpret_cast<float*>(ws + p.off_partial);

  SSLINV_LAUNCH(CovColumnSumKernel, dim3(p.mean_blocks, p.mean_splits), dim3(kMeanThreads), 0, stream, x, rows, d,
                p.mean_splits, colsum);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(CovMeanFinishKernel, dim3(p.mean_blocks), dim3(kMeanThreads), 0, stream, colsum, rows, d,
                p.mean_splits, count, mean, muf, e, delta);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;

  const bool vec = d % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  // Shared memory: two buffers of a kBk x 128 slice per operand, 16 KiB (BK 8) or 32 KiB (BK 16).
  const dim3 grid(p.tiles, p.splits);
  if (syrk == CovarianceSyrk::kTf32x3) {
    err = cov::LaunchSyrkTf32x3(x, rows, d, p.nb, p.tiles, p.splits, p.split_rows, muf, partial, stream);
  } else if (syrk == CovarianceSyrk::kSimtBk16 && vec) {
    SSLINV_LAUNCH((CovSyrkKernel<true, 16>), grid, dim3(kSyrkThreads), sizeof(float) * 4 * 16 * kTile, stream, x, rows, d, p.nb,
                  p.split_rows, muf, partial);
  } else if (vec) {  // simt-bk16 takes only the vector path; elsewhere BK 8 runs (the same bits)
    SSLINV_LAUNCH((CovSyrkKernel<true, 8>), grid, dim3(kSyrkThreads), sizeof(float) * 4 * 8 * kTile, stream, x, rows, d, p.nb,
                  p.split_rows, muf, partial);
  } else {
    SSLINV_LAUNCH((CovSyrkKernel<false, 8>), grid, dim3(kSyrkThreads), sizeof(float) * 4 * 8 * kTile, stream, x, rows, d, p.nb,
                  p.split_rows, muf, partial);
  }
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err != cudaSuccess) return err;

  const double nb = static_cast<double>(rows), na = static_cast<double>(count);
  const double w = na * nb / (na + nb);
  SSLINV_LAUNCH(CovReduceMergeKernel, dim3((kTile / kReduceSub) * (kTile / kReduceSub), p.tiles),
                dim3(kReduceSub, 8), sizeof(double) * kReduceSub * (kReduceSub + 1), stream, partial, p.splits, p.tiles,
                p.nb, d, nb, w, count == 0, e, delta, m2);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace sslinv
