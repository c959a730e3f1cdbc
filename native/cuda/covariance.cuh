// Streaming feature covariance on the GPU: merges a chunk of rows into running fp64 statistics with
// Chan et al.'s parallel update, the device twin of sslinv::CovarianceAccumulate (ops/linalg.h).
//
// Shapes and conventions:
//   x     [rows, d] fp32, row-major (device): the chunk.
//   count int64 on the HOST: rows merged so far (the caller knows the rows of every chunk, so it
//         keeps the count and adds `rows` after the call; nothing is read back from the device).
//   mean  [d] fp64 (device): running mean, updated in place.
//   m2    [d, d] fp64 row-major (device): running sum of centred outer products, updated in place;
//         the full symmetric matrix is written. When count is 0, mean and m2 are only written (their
//         old contents are ignored); otherwise m2 must be symmetric, as this function leaves it.
//   covariance = m2 / (count - ddof) afterwards, as on the CPU.
//
// Steps (each a kernel, all deterministic: no atomics, fixed reduction orders):
//   1. chunk column means in fp64 (row-split partial sums, then summed in order); the same kernel
//      that finishes them records delta = mean_chunk - mean_old and updates mean in place;
//   2. SYRK of the centred chunk, upper-triangle 128 x 128 tiles only: the loader subtracts
//      mu_f = float(mean_chunk) in registers (no centred copy is written), products and sums are
//      fp32 over sub-chunks of at most 4096 rows (split-K over rows); each sub-chunk's fp32 tile
//      goes to the workspace;
//   3. the sub-chunk tiles are summed in fp64, corrected for centring on mu_f instead of the exact
//      mean (sum (x - mu_f)(y - mu_f') = scatter + rows e e', e = mean_chunk - mu_f, exactly, since
//      the centred columns sum to zero), merged by Chan's rule
//        m2 += scatter + delta delta^T * count * rows / (count + rows)
//      and mirrored into the lower triangle.
//
// Accuracy: centring first makes the fp32 products well conditioned (the uncentred X^T X - n mu mu^T
// fails in fp32 for data like N(3, 1)); fp32 accumulation over at most 4096 rows then fp64 gives a
// relative Frobenius error around 1e-6.
//
// Expected cost at 50,000 x 2,048 on an H200 (estimate, not measured): 136 upper tiles x 13 row
// splits = 1768 CTAs of 256 threads, two per SM; 223 GFLOP of fp32 FMA, about 3.5 ms at the FMA peak,
// 4.5-5.3 ms at 65-75% of it, plus about 0.1 ms for the means and 0.05 ms for the fp64 reduction:
// about 1.6-1.8x faster than PyTorch's centred fp32 covariance (0.42 ms centring + 7.93 ms X^T X).
// Workspace at that size: 13 x 136 x 64 KB = 116 MB of fp32 tiles (scales with rows / split_rows).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

// Bytes of device workspace LaunchCovarianceAccumulate needs (pieces 256-byte aligned). split_rows 0
// means sub-chunks of at most 4096 rows; a positive value sets the maximum (for tests). Pass the same
// value to both.
size_t CovarianceWorkspaceBytes(int64_t rows, int d, int split_rows = 0);

// Which kernel runs step 2 (the SYRK). kAuto is what every caller gets: the SIMT kernel, the one
// measured (H200, 2026-12-04). kSimtBk16 is the same kernel with 16 rows per k-slice instead of 8
// (half the barriers, twice the loads in flight): the same bits as kSimt; it takes d % 4 == 0 with x
// 16-byte aligned, and other inputs run kSimt. kTf32x3 (covariance_tf32x3.cu) sums the same centred
// products on tensor cores with each value split into two tf32 parts: fp32-level accuracy (relative
// Frobenius error around 1e-6 either way), not the same bits; it needs d % 4 == 0 and x 16-byte
// aligned.
enum class CovarianceSyrk : int { kAuto = 0, kSimt = 1, kTf32x3 = 2, kSimtBk16 = 3 };

// Merges x [rows, d] into (count, mean, m2); see the header comment. Returns cudaErrorInvalidValue
// for bad sizes (rows < 0, d < 1, count < 0, too many row splits, d > 46,208: more merge tiles than a
// grid's y extent), null pointers, a workspace not 16-byte aligned (any cudaMalloc'd one is), an
// unknown syrk or kTf32x3 on input it cannot take, always before anything is written. rows == 0 is a no-op. x may have any alignment otherwise (16-byte
// aligned rows with d % 4 == 0 take the vector loads).
cudaError_t LaunchCovarianceAccumulate(const float* x, int64_t rows, int d, int64_t count, double* mean, double* m2,
                                       void* workspace, cudaStream_t stream, int split_rows = 0,
                                       CovarianceSyrk syrk = CovarianceSyrk::kAuto);

}  // namespace cuda
}  // namespace sslinv
