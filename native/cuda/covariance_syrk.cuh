// Internal to the streaming covariance (covariance.cu): the tensor-core SYRK pass and what it shares
// with the SIMT one. Not part of the launcher API (see covariance.cuh).
//
// Both SYRK kernels write, for upper-triangle tile t = (bi, bj) of the d x d output and row sub-chunk
// s, the fp32 tile  partial[s][t][m][n] = sum over the sub-chunk's rows r of
// (x[r][bi*128 + m] - muf[bi*128 + m]) * (x[r][bj*128 + n] - muf[bj*128 + n]), zero outside d.
#pragma once
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv::cuda::cov {

constexpr int kTile = 128;

// Tile t of the upper triangle, row-major over (bi, bj >= bi).
__host__ __device__ __forceinline__ void TileCoords(int t, int nb, int& bi, int& bj) {
  int i = 0, len = nb;
  while (t >= len) {
    t -= len;
    ++i;
    --len;
  }
  bi = i;
  bj = i + t;
}

// The 3xTF32 SYRK (covariance_tf32x3.cu): each centred value v is split into v_hi = tf32(v) and
// v_lo = tf32(v - v_hi), and a b is summed as a_lo b_hi + a_hi b_lo + a_hi b_hi on tensor cores (the
// dropped a_lo b_lo is below 2^-22 |ab|), so the sums keep fp32-level accuracy at tensor-core speed.
// Needs d % 4 == 0 and x 16-byte aligned (16-byte cp.async copies of rows); else
// cudaErrorInvalidValue. Grid (tiles, splits) as the SIMT pass.
cudaError_t LaunchSyrkTf32x3(const float* x, int64_t rows, int d, int nb, int tiles, int splits, int split_rows,
                             const float* muf, float* partial, cudaStream_t stream);

}  // namespace sslinv::cuda::cov
