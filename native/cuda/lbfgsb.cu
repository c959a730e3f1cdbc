// L-BFGS-B vector kernels and the logistic weight packing (see lbfgsb.cuh).
#include <cmath>
#include <cstdint>

#include "cuda/kernel_util.cuh"
#include "cuda/lbfgsb.cuh"

namespace sslinv::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kReduceThreads = 256;  // one block per reduction; a power of two

__global__ void __launch_bounds__(kThreads)
    VecOpKernel(int op, int64_t n, double* dst, const double* a, const double* b, double s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    double v;
    switch (op) {
      case 0: v = a[i]; break;
      case 1: v = -a[i]; break;
      case 2: v = a[i] - b[i]; break;
      case 3: v = s * a[i]; break;
      default: v = a[i] + s * b[i]; break;
    }
    dst[i] = v;
  }
}

// Block k computes dot k: thread t adds x[i] * y[i] for i = t, t + 256, ... in order, then the 256
// partial sums are added pairwise in a fixed tree.
__global__ void __launch_bounds__(kReduceThreads)
    DotsKernel(int64_t n, const double* __restrict__ x, LbfgsbDotArgs ys, double* __restrict__ out) {
  __shared__ double part[kReduceThreads];
  const double* y = ys.y[blockIdx.x];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads) s = s + x[i] * y[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kReduceThreads / 2; w > 0; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) part[threadIdx.x] = part[threadIdx.x] + part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

// One block: max |a| with a NaN flag, and whether a and b differ (max and "any" are exact in any order).
__global__ void __launch_bounds__(kReduceThreads)
    MaxAbsDiffersKernel(int64_t n, const double* __restrict__ a, const double* __restrict__ b, double* __restrict__ out) {
  __shared__ double mx[kReduceThreads];
  __shared__ int flags[kReduceThreads];  // bit 0: a NaN seen; bit 1: a != b somewhere
  double m = 0.0;
  int f = 0;
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads) {
    const double v = a[i];
    if (v != v) f |= 1;
    else m = fmax(m, fabs(v));
    if (b != nullptr && !(v == b[i])) f |= 2;
  }
  mx[threadIdx.x] = m;
  flags[threadIdx.x] = f;
  __syncthreads();
  for (int w = kReduceThreads / 2; w > 0; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) {
      mx[threadIdx.x] = fmax(mx[threadIdx.x], mx[threadIdx.x + w]);
      flags[threadIdx.x] |= flags[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out[0] = (flags[0] & 1) ? NAN : mx[0];
    out[1] = (flags[0] & 2) ? 1.0 : 0.0;
  }
}

__global__ void __launch_bounds__(kThreads) SubsmKernel(int64_t n, double* d, double* z, LbfgsbSubsmArgs s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const double inv_theta = 1.0 / s.theta;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    double v = d[i];
    for (int j = 0; j < s.col; ++j) v = v + (s.wy[j][i] * s.a[j]) / s.theta + s.ws[j][i] * s.b[j];
    v = inv_theta * v;
    d[i] = v;
    z[i] = z[i] + v;
  }
}

__global__ void __launch_bounds__(kThreads)
    PackKernel(int64_t dim, int64_t K, int64_t PK, int64_t p, const double* __restrict__ x, double* __restrict__ m,
               double* __restrict__ bias) {
  const int64_t total = (dim + 1) * K;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t j = e / K, k = e - j * K;
    if (j < dim) m[j * PK + p * K + k] = x[e];
    else bias[p * K + k] = x[e];
  }
}

__global__ void __launch_bounds__(kThreads)
    UnpackKernel(int64_t dim, int64_t K, int64_t PK, int64_t p, const double* __restrict__ gx,
                 const double* __restrict__ gb, const double* __restrict__ x, double l2, double* __restrict__ g) {
  const int64_t total = (dim + 1) * K;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t j = e / K, k = e - j * K;
    g[e] = j < dim ? gx[j * PK + p * K + k] + l2 * x[e] : gb[p * K + k];
  }
}

unsigned Grid(int64_t n) { return detail::GridFor(n, kThreads, 0); }

}  // namespace

cudaError_t LaunchLbfgsbVecOp(LbfgsbVecOp op, int64_t n, double* dst, const double* a, const double* b, double s,
                              cudaStream_t stream) {
  const int o = static_cast<int>(op);
  if (n < 0 || o < 0 || o > 4) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!dst || !a || ((op == LbfgsbVecOp::kSub || op == LbfgsbVecOp::kAxpy) && !b)) return cudaErrorInvalidValue;
  SSLINV_LAUNCH(VecOpKernel, dim3(Grid(n)), dim3(kThreads), 0, stream, o, n, dst, a, b, s);
  return cudaGetLastError();
}

cudaError_t LaunchLbfgsbDots(int64_t n, const double* x, const LbfgsbDotArgs& ys, int count, double* out,
                             cudaStream_t stream) {
  if (n < 0 || count < 1 || count > kLbfgsbMaxDots || !x || !out) return cudaErrorInvalidValue;
  for (int k = 0; k < count; ++k) {
    if (!ys.y[k]) return cudaErrorInvalidValue;
  }
  SSLINV_LAUNCH(DotsKernel, dim3(static_cast<unsigned>(count)), dim3(kReduceThreads), 0, stream, n, x, ys, out);
  return cudaGetLastError();
}

cudaError_t LaunchLbfgsbMaxAbsDiffers(int64_t n, const double* a, const double* b, double* out, cudaStream_t stream) {
  if (n < 0 || !a || !out) return cudaErrorInvalidValue;
  SSLINV_LAUNCH(MaxAbsDiffersKernel, dim3(1), dim3(kReduceThreads), 0, stream, n, a, b, out);
  return cudaGetLastError();
}

cudaError_t LaunchLbfgsbSubsm(int64_t n, double* d, double* z, const LbfgsbSubsmArgs& args, cudaStream_t stream) {
  if (n < 0 || !d || !z || args.col < 0 || args.col > kLbfgsbMaxMemory) return cudaErrorInvalidValue;
  for (int j = 0; j < args.col; ++j) {
    if (!args.wy[j] || !args.ws[j]) return cudaErrorInvalidValue;
  }
  if (n == 0) return cudaSuccess;
  SSLINV_LAUNCH(SubsmKernel, dim3(Grid(n)), dim3(kThreads), 0, stream, n, d, z, args);
  return cudaGetLastError();
}

cudaError_t LaunchLogisticPack(int64_t dim, int64_t K, int64_t PK, int64_t p, const double* x, double* m, double* bias,
                               cudaStream_t stream) {
  if (dim < 0 || K < 1 || p < 0 || (p + 1) * K > PK || !x || !bias || (dim > 0 && !m)) return cudaErrorInvalidValue;
  SSLINV_LAUNCH(PackKernel, dim3(Grid((dim + 1) * K)), dim3(kThreads), 0, stream, dim, K, PK, p, x, m, bias);
  return cudaGetLastError();
}

cudaError_t LaunchLogisticUnpack(int64_t dim, int64_t K, int64_t PK, int64_t p, const double* gx, const double* gb,
                                 const double* x, double l2, double* g, cudaStream_t stream) {
  if (dim < 0 || K < 1 || p < 0 || (p + 1) * K > PK || !gb || !x || !g || (dim > 0 && !gx)) return cudaErrorInvalidValue;
  SSLINV_LAUNCH(UnpackKernel, dim3(Grid((dim + 1) * K)), dim3(kThreads), 0, stream, dim, K, PK, p, gx, gb, x, l2, g);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
