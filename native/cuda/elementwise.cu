// CUDA element-wise ops, batch-norm statistics and dtype conversions (see elementwise.cuh).
//
// The flat ops share one grid-stride skeleton (detail::RunVecSplit): 16-byte vector accesses over
// the jointly aligned middle of the range, scalar accesses for the head and tail. They are bound by
// memory bandwidth, so the per-element channel index of ScaleShift is kept incremental (one 64-bit
// modulo per 4 elements) and the batch-norm fold is staged in shared memory once per block rather
// than recomputed (a correctly rounded divide and square root per element would make the kernel
// compute-bound).
#include "cuda/elementwise.cuh"

#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

using detail::AddRn;
using detail::ChanMerge;
using detail::DivRn;
using detail::kThreads;
using detail::MulRn;
using detail::SqrtRn;
using detail::SubRn;
using detail::VecSplit;

// Channels whose folded scale and shift fit the shared-memory stage of BatchNormInferenceF32
// (2 x 4096 floats = 32 KiB, under the 48 KiB a launch gets without opting in).
constexpr int64_t kMaxStagedChannels = 4096;
// Statistics kernel: the fewest rows a thread should own (amortises the block merge), and the
// default cap on its stage-1 blocks (the finalize kernel merges one summary per row block).
constexpr int64_t kMinRowsPerThread = 16;
constexpr int kDefaultStatsGridCap = 512;

__device__ __forceinline__ float Relu(float v) { return (v > 0.f || v != v) ? v : 0.f; }

__device__ __forceinline__ float4 Load4(const float* p) {
  SSLINV_CHECK_VEC_ALIGN(p, 16);
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void Store4(float* p, float4 v) {
  SSLINV_CHECK_VEC_ALIGN(p, 16);
  *reinterpret_cast<float4*>(p) = v;
}

// ---------------------------------------------------------------------------------------------
// Flat element-wise ops (functors for RunVecSplit).

struct ReluOp {
  const float* x;
  float* y;
  __device__ void Vec(int64_t i) const {
    float4 v = Load4(x + i);
    v.x = Relu(v.x);
    v.y = Relu(v.y);
    v.z = Relu(v.z);
    v.w = Relu(v.w);
    Store4(y + i, v);
  }
  __device__ void Scalar(int64_t i) const { y[i] = Relu(x[i]); }
};

template <bool kRelu>
struct AddOp {
  const float* a;
  const float* b;
  float* y;
  __device__ static float F(float u, float v) {
    const float s = u + v;
    return kRelu ? Relu(s) : s;
  }
  __device__ void Vec(int64_t i) const {
    const float4 u = Load4(a + i), v = Load4(b + i);
    Store4(y + i, make_float4(F(u.x, v.x), F(u.y, v.y), F(u.z, v.z), F(u.w, v.w)));
  }
  __device__ void Scalar(int64_t i) const { y[i] = F(a[i], b[i]); }
};

// y = round(round(x * s) + t): no FMA, as the CPU op computes it.
__device__ __forceinline__ float ScaleShift1(float x, float s, float t) { return AddRn(MulRn(x, s), t); }

// PyTorch's CPU batch-norm fold in float32 (batch_norm_cpu_collect_linear_and_constant_terms).
__device__ __forceinline__ void FoldChannel(float gamma, float beta, float mean, float var, float eps, float& scale,
                                            float& shift) {
  const float invstd = DivRn(1.f, SqrtRn(AddRn(var, eps)));
  scale = MulRn(invstd, gamma);
  shift = SubRn(beta, MulRn(mean, scale));
}

// Per-channel affine map over [rows, c]; `scale` and `shift` may point to global or shared memory.
struct ScaleShiftOp {
  const float* x;
  const float* scale;
  const float* shift;
  float* y;
  int64_t c;
  __device__ void Vec(int64_t i) const {
    const float4 v = Load4(x + i);
    float r[4] = {v.x, v.y, v.z, v.w};
    int64_t ch = i % c;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      r[k] = ScaleShift1(r[k], scale[ch], shift[ch]);
      ch = (ch + 1 == c) ? 0 : ch + 1;  // wraps any number of times in 4 steps, c = 1 included
    }
    Store4(y + i, make_float4(r[0], r[1], r[2], r[3]));
  }
  __device__ void Scalar(int64_t i) const {
    const int64_t ch = i % c;
    y[i] = ScaleShift1(x[i], scale[ch], shift[ch]);
  }
};

struct BnParams {
  const float* x;
  const float* gamma;
  const float* beta;
  const float* mean;
  const float* var;
  float eps;
  float* y;
  int64_t c;
};

// The unstaged batch norm (c > kMaxStagedChannels): folds per element, same bits as the staged path.
struct BnRecomputeOp {
  BnParams p;
  __device__ float One(float x, int64_t ch) const {
    float s, t;
    FoldChannel(p.gamma[ch], p.beta[ch], p.mean[ch], p.var[ch], p.eps, s, t);
    return ScaleShift1(x, s, t);
  }
  __device__ void Vec(int64_t i) const {
    const float4 v = Load4(p.x + i);
    float r[4] = {v.x, v.y, v.z, v.w};
    int64_t ch = i % p.c;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      r[k] = One(r[k], ch);
      ch = (ch + 1 == p.c) ? 0 : ch + 1;
    }
    Store4(p.y + i, make_float4(r[0], r[1], r[2], r[3]));
  }
  __device__ void Scalar(int64_t i) const { p.y[i] = One(p.x[i], i % p.c); }
};

struct F32ToBf16Op {
  const float* x;
  Bf16* y;
  __device__ static unsigned long long B(float f) { return Bf16Bits(F32ToBf16Rn(f)); }
  __device__ void Vec(int64_t i) const {
    const float4 v = Load4(x + i);
    // Element i goes to the low half-word: little-endian, as the scalar stores would place it.
    SSLINV_CHECK_VEC_ALIGN(y + i, 8);
    *reinterpret_cast<unsigned long long*>(y + i) = B(v.x) | (B(v.y) << 16) | (B(v.z) << 32) | (B(v.w) << 48);
  }
  __device__ void Scalar(int64_t i) const { y[i] = F32ToBf16Rn(x[i]); }
};

struct Bf16ToF32Op {
  const Bf16* x;
  float* y;
  __device__ static float F(unsigned long long u, int k) {
    return Bf16ToF32(Bf16FromBits(static_cast<uint16_t>(u >> (16 * k))));
  }
  __device__ void Vec(int64_t i) const {
    SSLINV_CHECK_VEC_ALIGN(x + i, 8);
    const unsigned long long u = *reinterpret_cast<const unsigned long long*>(x + i);
    Store4(y + i, make_float4(F(u, 0), F(u, 1), F(u, 2), F(u, 3)));
  }
  __device__ void Scalar(int64_t i) const { y[i] = Bf16ToF32(x[i]); }
};

struct F32ToF64Op {
  const float* x;
  double* y;
  __device__ void Vec(int64_t i) const {
    const float4 v = Load4(x + i);
    double2 lo, hi;
    lo.x = v.x;
    lo.y = v.y;
    hi.x = v.z;
    hi.y = v.w;
    SSLINV_CHECK_VEC_ALIGN(y + i, 16);
    reinterpret_cast<double2*>(y + i)[0] = lo;
    reinterpret_cast<double2*>(y + i)[1] = hi;
  }
  __device__ void Scalar(int64_t i) const { y[i] = static_cast<double>(x[i]); }
};

template <typename Op>
__global__ void __launch_bounds__(kThreads) VecSplitKernel(Op op, VecSplit s) {
  detail::RunVecSplit(op, s);
}

template <typename Op>
cudaError_t LaunchVecSplit(const Op& op, const VecSplit& s, cudaStream_t stream, int grid_cap) {
  if (s.n <= 0) return cudaSuccess;
  const int64_t nscalar = s.n - 4 * s.nvec;
  const unsigned grid = detail::GridFor(s.nvec > nscalar ? s.nvec : nscalar, kThreads, grid_cap);
  SSLINV_LAUNCH(VecSplitKernel<Op>, grid, kThreads, 0, stream, op, s);
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------------------------
// Batch norm, inference.

__global__ void __launch_bounds__(kThreads) BatchNormFoldKernel(BnParams p, float* scale, float* shift) {
  for (int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; ch < p.c;
       ch += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    FoldChannel(p.gamma[ch], p.beta[ch], p.mean[ch], p.var[ch], p.eps, scale[ch], shift[ch]);
  }
}

// `staged` is uniform over the grid, so the barrier inside its branch is reached by every thread.
__global__ void __launch_bounds__(kThreads) BatchNormInferenceKernel(BnParams p, VecSplit s, bool staged) {
  if (staged) {
    SSLINV_DYNAMIC_SMEM(float, folded);  // [2, c]: scale, then shift
    for (int64_t ch = threadIdx.x; ch < p.c; ch += blockDim.x) {
      FoldChannel(p.gamma[ch], p.beta[ch], p.mean[ch], p.var[ch], p.eps, folded[ch], folded[p.c + ch]);
    }
    __syncthreads();
    ScaleShiftOp op{p.x, folded, folded + p.c, p.y, p.c};
    detail::RunVecSplit(op, s);
  } else {
    BnRecomputeOp op{p};
    detail::RunVecSplit(op, s);
  }
}

// ---------------------------------------------------------------------------------------------
// Batch norm, training statistics.

struct StatsPlan {
  int vec = 1, bx = 1, by = 1;
  int64_t cg = 0;
  unsigned gx = 1, gy = 1;
};

StatsPlan PlanStats(int64_t rows, int64_t c, int vec, int grid_cap) {
  StatsPlan pl;
  pl.vec = vec;
  pl.cg = c / vec;
  pl.bx = detail::NextPow2(pl.cg) < 32 ? detail::NextPow2(pl.cg) : 32;
  pl.by = kThreads / pl.bx;  // a power of two >= 8, as the merge tree needs
  const int64_t gx = (pl.cg + pl.bx - 1) / pl.bx;
  const int64_t cap = grid_cap > 0 ? grid_cap : kDefaultStatsGridCap;
  int64_t gy = (rows + pl.by * kMinRowsPerThread - 1) / (pl.by * kMinRowsPerThread);
  const int64_t gy_cap = cap / gx > 1 ? cap / gx : 1;
  if (gy > gy_cap) gy = gy_cap;
  if (gy > 65535) gy = 65535;
  if (gy < 1) gy = 1;
  pl.gx = static_cast<unsigned>(gx);
  pl.gy = static_cast<unsigned>(gy);
  return pl;
}

size_t StatsWorkspaceDoubles(const StatsPlan& pl, int64_t c) { return 3 * static_cast<size_t>(pl.gy) * c; }

// Merges the summaries of rows ty and ty + s of a [by, bx] block (VEC channels per thread) into row
// ty, halving s each step: a fixed tree, so the result does not depend on thread timing. Ends with
// the block's summary in row 0. by must be a power of two; every thread of the block must call it.
template <int VEC>
__device__ __forceinline__ void BlockTreeMergeY(double* sn, double* smean, double* sm2) {
  const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x;
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {
    if (ty < s) {
      const int a = ty * bx + tx, b = (ty + s) * bx + tx;
      const double na = sn[a], nb = sn[b];
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        double n = na;
        ChanMerge(n, smean[a * VEC + k], sm2[a * VEC + k], nb, smean[b * VEC + k], sm2[b * VEC + k]);
      }
      sn[a] = na + nb;
    }
    __syncthreads();
  }
}

template <int VEC>
__device__ __forceinline__ void LoadVec(const float* p, float (&v)[VEC]) {
  if constexpr (VEC == 4) {
    const float4 q = Load4(p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = p[k];
  }
}

// Stage 1. Block (bx, by): x threads over channel groups of VEC, y threads over rows; grid (gx, gy,
// groups).
// Each thread sums d = x - K and d^2 in float64 over rows blockIdx.y * by + ty + j * gy * by (a
// float64 add is cheaper than Welford's per-element divide and, with the shift K = x[0, c], just as
// accurate: |d| is a few standard deviations, so s2 - s1^2 / n loses about one decimal digit of
// sixteen), then turns the sums into (n, mean, M2) for the Chan tree.
// Writes ws_{n,mean,m2}[(blockIdx.z * gy + blockIdx.y) * c + channel]: blockIdx.z is the group
// (BatchNormGroupStatsF64), whose rows start rows * c elements after the previous group's.
// At most 64 registers (4 blocks of 256 per SM): the float4 variant otherwise takes 72 and fits 3.
template <int VEC>
__global__ void __launch_bounds__(kThreads, 4)
    BnStatsPartialKernel(const float* x, int64_t rows, int64_t c, int64_t cg, double* ws_n, double* ws_mean,
                         double* ws_m2) {
  x += static_cast<int64_t>(blockIdx.z) * rows * c;
  {
    const int64_t z = static_cast<int64_t>(blockIdx.z) * gridDim.y * c;
    ws_n += z;
    ws_mean += z;
    ws_m2 += z;
  }
  __shared__ double sh_n[kThreads];
  __shared__ double sh_mean[kThreads * VEC];
  __shared__ double sh_m2[kThreads * VEC];
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = g < cg;
  const int64_t ch0 = g * VEC;
  double s1[VEC], s2[VEC];
  float shift[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    s1[k] = 0.0;
    s2[k] = 0.0;
    shift[k] = 0.f;
  }
  // Rows r0, r0 + step, ... below rows; the count is computed rather than kept in the loop (registers).
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.y;
  const int64_t cnt = (active && r0 < rows) ? (rows - 1 - r0) / step + 1 : 0;
  if (active) {
    LoadVec<VEC>(x + ch0, shift);
    const float* p = x + r0 * c + ch0;
    const int64_t pstep = step * c;
    for (int64_t j = 0; j < cnt; ++j, p += pstep) {
      float v[VEC];
      LoadVec<VEC>(p, v);
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const double d = static_cast<double>(v[k]) - static_cast<double>(shift[k]);
        s1[k] += d;
        s2[k] += d * d;
      }
    }
  }
  const double n = static_cast<double>(cnt);
  sh_n[t] = n;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    double mean = 0.0, m2 = 0.0;
    if (cnt > 0) {
      const double dmean = s1[k] / n;
      mean = static_cast<double>(shift[k]) + dmean;
      m2 = s2[k] - s1[k] * dmean;
      if (m2 < 0.0) m2 = 0.0;  // rounding can leave -tiny for constant data
    }
    sh_mean[t * VEC + k] = mean;
    sh_m2[t * VEC + k] = m2;
  }
  __syncthreads();
  BlockTreeMergeY<VEC>(sh_n, sh_mean, sh_m2);
  if (threadIdx.y == 0 && active) {
    const int64_t o = static_cast<int64_t>(blockIdx.y) * c + ch0;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      ws_n[o + k] = sh_n[t];
      ws_mean[o + k] = sh_mean[t * VEC + k];
      ws_m2[o + k] = sh_m2[t * VEC + k];
    }
  }
}

// The outputs of the finalize kernel, each [groups, c] (row g: group g) or null to skip it.
struct StatsOut {
  float* mean = nullptr;
  float* var_biased = nullptr;
  float* var_unbiased = nullptr;
  double* mean64 = nullptr;
  double* m2_64 = nullptr;
};

// Stage 2. Block (32, 8): x threads over channels, y threads over row blocks (each merging a strided
// subset in order), then the fixed tree. Grid: (ceil(c / 32), groups); blockIdx.y is the group, whose
// gy summaries follow the previous group's in the workspace.
__global__ void __launch_bounds__(kThreads)
    BnStatsFinalizeKernel(const double* ws_n, const double* ws_mean, const double* ws_m2, int64_t c, int gy,
                          StatsOut out) {
  __shared__ double sh_n[kThreads];
  __shared__ double sh_mean[kThreads];
  __shared__ double sh_m2[kThreads];
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t grp = blockIdx.y;
  const bool active = ch < c;
  double n = 0.0, mean = 0.0, m2 = 0.0;
  if (active) {
    for (int b = threadIdx.y; b < gy; b += blockDim.y) {
      const int64_t o = (grp * gy + b) * c + ch;
      ChanMerge(n, mean, m2, ws_n[o], ws_mean[o], ws_m2[o]);
    }
  }
  sh_n[t] = n;
  sh_mean[t] = mean;
  sh_m2[t] = m2;
  __syncthreads();
  BlockTreeMergeY<1>(sh_n, sh_mean, sh_m2);
  if (threadIdx.y == 0 && active) {
    const double nt = sh_n[t], m2t = sh_m2[t];
    const int64_t o = grp * c + ch;
    if (out.mean) out.mean[o] = static_cast<float>(sh_mean[t]);
    if (out.var_biased) out.var_biased[o] = static_cast<float>(m2t / nt);
    if (out.var_unbiased) out.var_unbiased[o] = static_cast<float>(m2t / (nt - 1.0));  // 0 / 0 = NaN for one row
    if (out.mean64) out.mean64[o] = sh_mean[t];
    if (out.m2_64) out.m2_64[o] = m2t;
  }
}

// Rows of c float32 values -> rows of c_pad bf16, zeros after column c. One thread per output,
// grid-stride (this runs once per network input and once per packed filter: not worth vectorising).
__global__ void __launch_bounds__(kThreads)
    F32ToBf16PaddedRowsKernel(const float* x, int64_t rows, int64_t c, int64_t c_pad, Bf16* y) {
  const int64_t total = rows * c_pad;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = o / c_pad, j = o - r * c_pad;
    y[o] = j < c ? F32ToBf16Rn(x[r * c + j]) : Bf16FromBits(0);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launchers.

cudaError_t ReluF32(const float* x, float* y, int64_t n, cudaStream_t stream, int grid_cap) {
  const int64_t head = detail::AlignHead(x, 4, 16, n);
  const bool ok = detail::IsAligned(y + head, 16);
  return LaunchVecSplit(ReluOp{x, y}, detail::MakeVecSplit(n, head, ok), stream, grid_cap);
}

cudaError_t AddF32(const float* a, const float* b, float* y, int64_t n, bool relu, cudaStream_t stream, int grid_cap) {
  const int64_t head = detail::AlignHead(a, 4, 16, n);
  const bool ok = detail::IsAligned(b + head, 16) && detail::IsAligned(y + head, 16);
  const VecSplit s = detail::MakeVecSplit(n, head, ok);
  return relu ? LaunchVecSplit(AddOp<true>{a, b, y}, s, stream, grid_cap)
              : LaunchVecSplit(AddOp<false>{a, b, y}, s, stream, grid_cap);
}

cudaError_t ScaleShiftF32(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c,
                          cudaStream_t stream, int grid_cap) {
  const int64_t n = rows * c;
  const int64_t head = detail::AlignHead(x, 4, 16, n);
  const bool ok = detail::IsAligned(y + head, 16);
  return LaunchVecSplit(ScaleShiftOp{x, scale, shift, y, c}, detail::MakeVecSplit(n, head, ok), stream, grid_cap);
}

cudaError_t BatchNormFoldF32(const float* gamma, const float* beta, const float* mean, const float* var, double eps,
                             float* scale, float* shift, int64_t c, cudaStream_t stream) {
  if (c <= 0) return cudaSuccess;
  const BnParams p{nullptr, gamma, beta, mean, var, static_cast<float>(eps), nullptr, c};
  SSLINV_LAUNCH(BatchNormFoldKernel, detail::GridFor(c, kThreads, 0), kThreads, 0, stream, p, scale, shift);
  return cudaGetLastError();
}

cudaError_t BatchNormInferenceF32(const float* x, const float* gamma, const float* beta, const float* mean,
                                  const float* var, double eps, float* y, int64_t rows, int64_t c,
                                  cudaStream_t stream, int grid_cap) {
  const int64_t n = rows * c;
  if (n <= 0) return cudaSuccess;
  const int64_t head = detail::AlignHead(x, 4, 16, n);
  const bool ok = detail::IsAligned(y + head, 16);
  const VecSplit s = detail::MakeVecSplit(n, head, ok);
  // float(eps) as the CPU op: PyTorch passes eps as double and rounds it when adding it to a float var.
  const BnParams p{x, gamma, beta, mean, var, static_cast<float>(eps), y, c};
  const bool staged = c <= kMaxStagedChannels;
  const size_t smem = staged ? 2 * sizeof(float) * static_cast<size_t>(c) : 0;
  const int64_t nscalar = n - 4 * s.nvec;
  const unsigned grid = detail::GridFor(s.nvec > nscalar ? s.nvec : nscalar, kThreads, grid_cap);
  SSLINV_LAUNCH(BatchNormInferenceKernel, grid, kThreads, smem, stream, p, s, staged);
  return cudaGetLastError();
}

namespace {

// The most groups one launch pair covers (the grid's y and z limit).
constexpr int64_t kMaxGroupsPerLaunch = 65535;

// Statistics of `groups` contiguous groups of `rows` rows each (groups = 1: the plain batch). The grid
// is planned from (rows, c, grid_cap) alone, one z layer (partials) or y row (finalize) per group, so
// every group gets the bits of a call on its rows alone. Groups past the 65535 limit of a grid's y
// and z go in further launch pairs over later slices of x and the outputs, reusing the workspace.
cudaError_t LaunchGroupStats(const float* x, int64_t groups, int64_t rows, int64_t c, StatsOut out, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream, int grid_cap) {
  if (groups <= 0 || rows <= 0 || c <= 0 || workspace == nullptr || !detail::IsAligned(workspace, sizeof(double))) {
    return cudaErrorInvalidValue;
  }
  const int vec = (c % 4 == 0 && detail::IsAligned(x, 16)) ? 4 : 1;
  const StatsPlan pl = PlanStats(rows, c, vec, grid_cap);
  const int64_t chunk = groups < kMaxGroupsPerLaunch ? groups : kMaxGroupsPerLaunch;
  if (workspace_bytes / sizeof(double) < StatsWorkspaceDoubles(pl, c) * static_cast<size_t>(chunk)) {
    return cudaErrorInvalidValue;
  }
  // [chunk groups][gy row blocks][c] each; a later chunk reuses the workspace (same stream: in order).
  double* ws_n = static_cast<double*>(workspace);
  double* ws_mean = ws_n + static_cast<size_t>(chunk) * pl.gy * c;
  double* ws_m2 = ws_mean + static_cast<size_t>(chunk) * pl.gy * c;
  for (int64_t g0 = 0; g0 < groups; g0 += chunk) {
    const int64_t ng = groups - g0 < chunk ? groups - g0 : chunk;
    const float* xg = x + g0 * rows * c;
    const dim3 grid1(pl.gx, pl.gy, static_cast<unsigned>(ng)), block1(pl.bx, pl.by);
    if (vec == 4) {
      SSLINV_LAUNCH(BnStatsPartialKernel<4>, grid1, block1, 0, stream, xg, rows, c, pl.cg, ws_n, ws_mean, ws_m2);
    } else {
      SSLINV_LAUNCH(BnStatsPartialKernel<1>, grid1, block1, 0, stream, xg, rows, c, pl.cg, ws_n, ws_mean, ws_m2);
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    StatsOut o = out;  // this chunk's rows of the [groups, c] outputs
    const int64_t skip = g0 * c;
    if (o.mean) o.mean += skip;
    if (o.var_biased) o.var_biased += skip;
    if (o.var_unbiased) o.var_unbiased += skip;
    if (o.mean64) o.mean64 += skip;
    if (o.m2_64) o.m2_64 += skip;
    const dim3 grid2(static_cast<unsigned>((c + 31) / 32), static_cast<unsigned>(ng)), block2(32, kThreads / 32);
    SSLINV_LAUNCH(BnStatsFinalizeKernel, grid2, block2, 0, stream, ws_n, ws_mean, ws_m2, c, static_cast<int>(pl.gy), o);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace

size_t BatchNormStatsWorkspaceBytes(int64_t rows, int64_t c, int grid_cap) {
  return BatchNormGroupStatsWorkspaceBytes(1, rows, c, grid_cap);
}

size_t BatchNormGroupStatsWorkspaceBytes(int64_t groups, int64_t group_rows, int64_t c, int grid_cap) {
  // The launcher picks 4-channel vectors when c % 4 == 0 and x is 16-byte aligned, and the two
  // plans can split rows differently: size for the larger.
  size_t d = StatsWorkspaceDoubles(PlanStats(group_rows, c, 1, grid_cap), c);
  if (c % 4 == 0) {
    const size_t d4 = StatsWorkspaceDoubles(PlanStats(group_rows, c, 4, grid_cap), c);
    if (d4 > d) d = d4;
  }
  const int64_t chunk = groups < 1 ? 1 : groups < kMaxGroupsPerLaunch ? groups : kMaxGroupsPerLaunch;
  return d * static_cast<size_t>(chunk) * sizeof(double);
}

cudaError_t BatchNormStatsF32(const float* x, int64_t rows, int64_t c, float* mean, float* var_biased,
                              float* var_unbiased, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                              int grid_cap) {
  StatsOut out;
  out.mean = mean;
  out.var_biased = var_biased;
  out.var_unbiased = var_unbiased;
  return LaunchGroupStats(x, 1, rows, c, out, workspace, workspace_bytes, stream, grid_cap);
}

cudaError_t BatchNormGroupStatsF64(const float* x, int64_t groups, int64_t group_rows, int64_t c, double* mean,
                                   double* m2, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                   int grid_cap) {
  StatsOut out;
  out.mean64 = mean;
  out.m2_64 = m2;
  return LaunchGroupStats(x, groups, group_rows, c, out, workspace, workspace_bytes, stream, grid_cap);
}

cudaError_t F32ToBf16(const float* x, Bf16* y, int64_t n, cudaStream_t stream, int grid_cap) {
  const int64_t head = detail::AlignHead(x, 4, 16, n);
  const bool ok = detail::IsAligned(y + head, 8);
  return LaunchVecSplit(F32ToBf16Op{x, y}, detail::MakeVecSplit(n, head, ok), stream, grid_cap);
}

cudaError_t F32ToBf16PaddedRows(const float* x, int64_t rows, int64_t c, int64_t c_pad, Bf16* y, cudaStream_t stream,
                                int grid_cap) {
  if (rows < 0 || c < 1 || c_pad < c || (rows > 0 && (x == nullptr || y == nullptr))) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const unsigned grid = detail::GridFor(rows * c_pad, kThreads, grid_cap);
  SSLINV_LAUNCH(F32ToBf16PaddedRowsKernel, grid, kThreads, 0, stream, x, rows, c, c_pad, y);
  return cudaGetLastError();
}

cudaError_t Bf16ToF32(const Bf16* x, float* y, int64_t n, cudaStream_t stream, int grid_cap) {
  const int64_t head = detail::AlignHead(y, 4, 16, n);
  const bool ok = detail::IsAligned(x + head, 8);
  return LaunchVecSplit(Bf16ToF32Op{x, y}, detail::MakeVecSplit(n, head, ok), stream, grid_cap);
}

cudaError_t F32ToF64(const float* x, double* y, int64_t n, cudaStream_t stream, int grid_cap) {
  const int64_t head = detail::AlignHead(x, 4, 16, n);
  const bool ok = detail::IsAligned(y + head, 16);
  return LaunchVecSplit(F32ToF64Op{x, y}, detail::MakeVecSplit(n, head, ok), stream, grid_cap);
}

}  // namespace sslinv::cuda
