// Multinomial logistic loss and gradient, float64 (see multinomial.cuh for shapes and conventions).
#include <cstdint>

#include "cuda/kernel_util.cuh"
#include "cuda/multinomial.cuh"

namespace sslinv::cuda {
namespace {

constexpr int kRowThreads = 256;
constexpr int kColWidth = 32;  // columns per column-sum block (one warp wide)
constexpr int kColDepth = 8;   // rows summed side by side in a block
constexpr int64_t kMaxSplits = 128;
constexpr int64_t kMinRowsPerSplit = 256;

struct Plan {
  int64_t splits = 1, rows_per_split = 0;
  size_t off_rowloss = 0, off_partial = 0, bytes = 0;
};

size_t Align256(size_t b) { return (b + 255) / 256 * 256; }

Plan MakePlan(int64_t n, int64_t P, int64_t K) {
  Plan p;
  p.splits = (n + kMinRowsPerSplit - 1) / kMinRowsPerSplit;
  if (p.splits < 1) p.splits = 1;
  if (p.splits > kMaxSplits) p.splits = kMaxSplits;
  p.rows_per_split = (n + p.splits - 1) / p.splits;
  p.off_rowloss = 0;
  p.off_partial = Align256(static_cast<size_t>(n * P) * sizeof(double));
  p.bytes = p.off_partial + Align256(static_cast<size_t>(p.splits * P * K) * sizeof(double));
  return p;
}

__global__ void __launch_bounds__(1) ResetBadIndexKernel(unsigned long long* bad_index) { *bad_index = ~0ull; }

// Step 1: item t = i * P + p (problems fastest, so a warp reads consecutive K-wide pieces of z's row i).
// The arithmetic is the CPU op's, operation for operation: raw = z + b; m = max (first wins);
// s = sum_k exp(raw_k - m) in k order; loss = log(s) + m - raw_y; g_k = exp(raw_k - m) / s - [k == y].
__global__ void __launch_bounds__(kRowThreads)
    MultinomialRowsKernel(const double* __restrict__ z, const double* __restrict__ bias, const int32_t* __restrict__ y,
                          int64_t n, int64_t P, int64_t K, double* __restrict__ g, double* __restrict__ rowloss,
                          unsigned long long* bad_index) {
  const int64_t items = n * P;
  const int64_t PK = P * K;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < items; t += stride) {
    const int64_t i = t / P, p = t - i * P;
    const int32_t yi = y[p * n + i];
    const double* zk = z + i * PK + p * K;
    const double* bk = bias + p * K;
    double* gk = g + i * PK + p * K;
    if (yi < 0 || yi >= K) {
      if (yi < -1 || yi >= K) atomicMin(bad_index, static_cast<unsigned long long>(p * n + i));
      for (int64_t k = 0; k < K; ++k) gk[k] = 0.0;
      rowloss[t] = 0.0;
      continue;
    }
    double m = zk[0] + bk[0];
    for (int64_t k = 1; k < K; ++k) {
      const double r = zk[k] + bk[k];
      if (m < r) m = r;
    }
    double s = 0.0;
    for (int64_t k = 0; k < K; ++k) s += exp((zk[k] + bk[k]) - m);
    rowloss[t] = (log(s) + m) - (zk[yi] + bk[yi]);
    for (int64_t k = 0; k < K; ++k) gk[k] = exp((zk[k] + bk[k]) - m) / s - (k == yi ? 1.0 : 0.0);
  }
}

// Step 2a: partial column sums of a [rows, cols] matrix over row split blockIdx.y. Thread (tx, ty)
// adds rows ty, ty + 8, ... of the split in order; the 8 sums are then added in ty order.
__global__ void __launch_bounds__(kColWidth * kColDepth)
    ColumnPartialKernel(const double* __restrict__ a, int64_t rows, int64_t cols, int64_t rows_per_split,
                        double* __restrict__ partial) {
  __shared__ double acc_s[kColDepth][kColWidth];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColWidth + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_split;
  const int64_t r1 = r0 + rows_per_split < rows ? r0 + rows_per_split : rows;
  double acc = 0.0;
  if (c < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kColDepth) acc += a[r * cols + c];
  }
  acc_s[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && c < cols) {
    double sum = acc_s[0][tx];
    for (int j = 1; j < kColDepth; ++j) sum += acc_s[j][tx];
    partial[static_cast<int64_t>(blockIdx.y) * cols + c] = sum;
  }
}

// Step 2b: each column's partials, added in split order.
__global__ void __launch_bounds__(kRowThreads)
    ColumnFinishKernel(const double* __restrict__ partial, int64_t splits, int64_t cols, double* __restrict__ out) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double sum = partial[c];
  for (int64_t s = 1; s < splits; ++s) sum += partial[s * cols + c];
  out[c] = sum;
}

cudaError_t ColumnSums(const double* a, int64_t rows, int64_t cols, const Plan& p, double* partial, double* out,
                       cudaStream_t stream) {
  const unsigned col_blocks = static_cast<unsigned>((cols + kColWidth - 1) / kColWidth);
  SSLINV_LAUNCH(ColumnPartialKernel, dim3(col_blocks, static_cast<unsigned>(p.splits)), dim3(kColWidth, kColDepth), 0,
                stream, a, rows, cols, p.rows_per_split, partial);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(ColumnFinishKernel, dim3(static_cast<unsigned>((cols + kRowThreads - 1) / kRowThreads)),
                dim3(kRowThreads), 0, stream, partial, p.splits, cols, out);
  return cudaGetLastError();
}

}  // namespace

size_t MultinomialWorkspaceBytes(int64_t n, int64_t P, int64_t K) {
  if (n < 0 || P < 1 || K < 1) return 0;
  return MakePlan(n, P, K).bytes;
}

cudaError_t LaunchMultinomialLossGrad(const double* z, const double* bias, const int32_t* y, int64_t n, int64_t P,
                                      int64_t K, double* loss, double* g, double* gb, unsigned long long* bad_index,
                                      void* workspace, cudaStream_t stream) {
  if (n < 0 || P < 1 || K < 1) return cudaErrorInvalidValue;
  // the column-sum grids: blockIdx.x counts 32-column groups of P*K (must fit a grid's x extent)
  if ((P * K + kColWidth - 1) / kColWidth > 0x7fffffffLL) return cudaErrorInvalidValue;
  if (!bias || !loss || !gb || !bad_index || !workspace || (n > 0 && (!z || !y || !g))) return cudaErrorInvalidValue;
  const Plan p = MakePlan(n, P, K);
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  double* rowloss = reinterpret_cast<double*>(ws + p.off_rowloss);
  double* partial = reinterpret_cast<double*>(ws + p.off_partial);
  SSLINV_LAUNCH(ResetBadIndexKernel, dim3(1), dim3(1), 0, stream, bad_index);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(MultinomialRowsKernel, dim3(detail::GridFor(n * P, kRowThreads, 0)), dim3(kRowThreads), 0, stream, z,
                bias, y, n, P, K, g, rowloss, bad_index);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  err = ColumnSums(rowloss, n, P, p, partial, loss, stream);
  if (err != cudaSuccess) return err;
  // The loss partials are consumed by ColumnFinishKernel before the next partial kernel runs (same
  // stream), so the workspace's partial area is reused for g's column sums.
  return ColumnSums(g, n, P * K, p, partial, gb, stream);
}

}  // namespace sslinv::cuda
