// CUDA train-mode batch norm and the backward passes of ReLU, pooling and biases (see
// layer_backward.cuh for the contract and ops/layer_backward.h for the arithmetic).
//
// Two kernel shapes do almost everything:
// - Per-channel row kernels (normalise, batch-norm dx, average-pool dx): block (bx, by) with x threads
//   over channel groups of VEC (1 or 4) and y threads over rows, grid (channel tiles, row blocks),
//   grid-stride over rows. A thread keeps one channel group for the whole launch, so its per-channel
//   factors stay in registers (reloaded only when its rows cross into another group) and a warp reads
//   whole contiguous rows.
// - Deterministic column reductions (batch-norm backward sums, sumRows): the same block shape; each
//   thread sums a strided subset of its group's rows in float64, a fixed tree over y merges a block's
//   threads, each row block writes its partial to the workspace, and a finalize kernel adds the
//   partials in index order (strided over 8 y threads, then a fixed tree). No atomics, so the bits are
//   the same on every run; the split depends on (rows per group, C, grid_cap) only.
// The forward's statistics come from BatchNormGroupStatsF64 (elementwise.cu: shifted float64 sums and
// Chan merges), turned into the saved statistics, the running statistics and the per-channel scale
// by a small kernel over [groups, C].
//
// Every float32 step that the CPU op rounds separately is a correctly rounded intrinsic here (AddRn,
// MulRn, ...; the float64 ones DAddRn, DMulRn), so no contraction into an FMA can change a bit even
// in a build without -fmad=false.
#include "cuda/layer_backward.cuh"

#include <initializer_list>

#include "cuda/elementwise.cuh"
#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

using detail::AddRn;
using detail::DivRn;
using detail::kThreads;
using detail::MulRn;
using detail::SubRn;

// Reductions: the fewest rows a thread should own (amortises the block tree) and the default cap on
// the row blocks of all channel tiles together (the finalize adds one partial per row block).
constexpr int64_t kMinRowsPerThread = 16;
constexpr int kDefaultReduceGridCap = 512;
// The largest grid y and z.
constexpr int64_t kMaxGridYZ = 65535;
// Workspace pieces start on 16-byte boundaries.
constexpr size_t kWsAlign = 16;

#if defined(__CUDACC__)
__device__ __forceinline__ double DAddRn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double DMulRn(double a, double b) { return __dmul_rn(a, b); }
#else
inline double DAddRn(double a, double b) { return a + b; }
inline double DMulRn(double a, double b) { return a * b; }
#endif

size_t AlignUp(size_t b) { return (b + kWsAlign - 1) / kWsAlign * kWsAlign; }

template <int VEC>
__device__ __forceinline__ void Load(const float* p, float (&v)[VEC]) {
  if constexpr (VEC == 4) {
    SSLINV_CHECK_VEC_ALIGN(p, 16);
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  } else {
    v[0] = *p;
  }
}
template <int VEC>
__device__ __forceinline__ void Store(float* p, const float (&v)[VEC]) {
  if constexpr (VEC == 4) {
    SSLINV_CHECK_VEC_ALIGN(p, 16);
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
    *p = v[0];
  }
}
// Per-channel parameters: scalar loads (their pointers need not be 16-byte aligned; they are read
// once per thread and group).
template <int VEC>
__device__ __forceinline__ void LoadScalars(const float* p, float (&v)[VEC]) {
#pragma unroll
  for (int k = 0; k < VEC; ++k) v[k] = p[k];
}

// threshold_backward's mask: dy where the ReLU's output y is > 0 or NaN, else +0.
__device__ __forceinline__ float ReluGrad(float dy, float y) { return y <= 0.f ? 0.f : dy; }
// torch.relu: NaN stays NaN, -0 becomes +0.
__device__ __forceinline__ float Relu(float v) { return (v > 0.f || v != v) ? v : 0.f; }

// ---------------------------------------------------------------------------------------------
// The block shape shared by the row kernels and the reductions.

struct RowPlan {
  int bx = 1, by = 1;
  int64_t cg = 0;  // channel groups of VEC
  unsigned gx = 1, gy = 1;
};

// rows_per_block_row: rows one block row should cover at least (1 for element-wise kernels); cap: the
// most blocks of all channel tiles together.
RowPlan PlanRows(int64_t rows, int64_t c, int vec, int64_t rows_per_thread, int cap) {
  RowPlan pl;
  pl.cg = c / vec;
  pl.bx = detail::NextPow2(pl.cg) < 32 ? detail::NextPow2(pl.cg) : 32;
  pl.by = kThreads / pl.bx;  // a power of two >= 8, as the trees need
  const int64_t gx = (pl.cg + pl.bx - 1) / pl.bx;
  int64_t gy = (rows + pl.by * rows_per_thread - 1) / (pl.by * rows_per_thread);
  const int64_t gy_cap = cap / gx > 1 ? cap / gx : 1;
  if (gy > gy_cap) gy = gy_cap;
  if (gy > kMaxGridYZ) gy = kMaxGridYZ;
  if (gy < 1) gy = 1;
  pl.gx = static_cast<unsigned>(gx);
  pl.gy = static_cast<unsigned>(gy);
  return pl;
}

RowPlan PlanReduce(int64_t rows, int64_t c, int vec, int grid_cap) {
  return PlanRows(rows, c, vec, kMinRowsPerThread, grid_cap > 0 ? grid_cap : kDefaultReduceGridCap);
}
RowPlan PlanElementwise(int64_t rows, int64_t c, int vec, int grid_cap) {
  return PlanRows(rows, c, vec, 1, grid_cap > 0 ? grid_cap : detail::kDefaultGridCap);
}

// Channel tiles fit a grid's x (2^31 - 1) for any C below 2^36; larger C is refused.
bool PlanFits(const RowPlan& pl) { return pl.cg / pl.bx < (int64_t{1} << 31) - 1; }

// ---------------------------------------------------------------------------------------------
// Column reductions.

// The per-row terms: kBn = false sums x (sumRows); kBn = true sums g = dy (masked by relu_y when not
// null) and (x - mean_g) * g (the batch-norm backward), both in float64 as the CPU op.
struct ReduceArgs {
  const float* x = nullptr;
  const float* dy = nullptr;
  const float* relu_y = nullptr;
  const float* mean = nullptr;  // [groups, c]
  int64_t group_rows = 0, c = 0, cg = 0;
  double* ws = nullptr;  // [groups][gy][nacc][c]
};

// Stage 1. Grid (gx, gy, groups of this launch, starting at group g0). Writes its block's partial of
// each accumulator to ws[((g * gy + blockIdx.y) * NACC + a) * c + channel].
// No cap on registers: capped at 64 (4 blocks of 256 per SM), the float4 batch-norm variant spills;
// it takes 70 and fits 3.
template <int VEC, bool kBn>
__global__ void __launch_bounds__(kThreads) ColumnPartialKernel(ReduceArgs a, int64_t g0) {
  constexpr int NACC = kBn ? 2 : 1;
  __shared__ double sh[NACC][kThreads * VEC];
  const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x;
  const int t = ty * bx + tx;
  const int64_t grp = g0 + blockIdx.z;
  const int64_t gch = static_cast<int64_t>(blockIdx.x) * bx + tx;
  const bool active = gch < a.cg;
  const int64_t ch0 = gch * VEC;
  double acc[NACC][VEC];
#pragma unroll
  for (int i = 0; i < NACC; ++i)
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[i][k] = 0.0;
  if (active) {
    double mean[VEC] = {};  // the group's saved mean (kBn only)
    if constexpr (kBn) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) mean[k] = static_cast<double>(a.mean[grp * a.c + ch0 + k]);
    }
    const int64_t base = grp * a.group_rows * a.c + ch0;
    const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.y;
    for (int64_t r = static_cast<int64_t>(blockIdx.y) * blockDim.y + ty; r < a.group_rows; r += step) {
      const int64_t o = base + r * a.c;
      float v[VEC];
      Load<VEC>(a.x + o, v);
      if constexpr (kBn) {
        float g[VEC];
        Load<VEC>(a.dy + o, g);
        if (a.relu_y) {
          float y[VEC];
          Load<VEC>(a.relu_y + o, y);
#pragma unroll
          for (int k = 0; k < VEC; ++k) g[k] = ReluGrad(g[k], y[k]);
        }
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          const double gd = static_cast<double>(g[k]);
          acc[0][k] = DAddRn(acc[0][k], gd);
          acc[1][k] = DAddRn(acc[1][k], DMulRn(static_cast<double>(v[k]) - mean[k], gd));
        }
      } else {
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[0][k] += static_cast<double>(v[k]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < NACC; ++i)
#pragma unroll
    for (int k = 0; k < VEC; ++k) sh[i][t * VEC + k] = acc[i][k];
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {  // fixed tree over the row threads
    if (ty < s) {
#pragma unroll
      for (int i = 0; i < NACC; ++i)
#pragma unroll
        for (int k = 0; k < VEC; ++k) sh[i][t * VEC + k] += sh[i][(t + s * bx) * VEC + k];
    }
    __syncthreads();
  }
  if (ty == 0 && active) {
    double* w = a.ws + (grp * gridDim.y + blockIdx.y) * NACC * a.c + ch0;
#pragma unroll
    for (int i = 0; i < NACC; ++i)
#pragma unroll
      for (int k = 0; k < VEC; ++k) w[i * a.c + k] = sh[i][t * VEC + k];
  }
}

// Stage 2 helper, in a (32, 8) block over 32 channels: the sums over the gy partials of group grp, each
// y thread adding every 8th partial in order, then a fixed tree. Returns them in threads y = 0 (other
// threads get partial values). Every thread of the block must call it.
template <int NACC>
__device__ __forceinline__ void SumPartials(const double* ws, int64_t grp, int gy, int64_t c, double (&out)[NACC]) {
  __shared__ double sh[NACC][kThreads];
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
#pragma unroll
  for (int i = 0; i < NACC; ++i) out[i] = 0.0;
  if (ch < c) {
    for (int b = threadIdx.y; b < gy; b += blockDim.y) {
      const double* w = ws + (grp * gy + b) * NACC * c + ch;
#pragma unroll
      for (int i = 0; i < NACC; ++i) out[i] += w[i * c];
    }
  }
#pragma unroll
  for (int i = 0; i < NACC; ++i) sh[i][t] = out[i];
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.y) < s) {
#pragma unroll
      for (int i = 0; i < NACC; ++i) sh[i][t] += sh[i][t + s * blockDim.x];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < NACC; ++i) out[i] = sh[i][t];
  // The next call's first stores must not overwrite sums a thread is still reading.
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads) SumRowsFinalizeKernel(const double* ws, int gy, int64_t n, float* out) {
  double s[1];
  SumPartials<1>(ws, 0, gy, n, s);
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (threadIdx.y == 0 && ch < n) out[ch] = static_cast<float>(s[0]);
}

// The batch-norm backward's per-channel results, group by group in order (the parameter gradients
// add the groups' float64 terms in that order, as the CPU op): factors [groups][3][c] = mean dy, k,
// invstd * weight (each rounded to float32 once), and dweight, dbias.
struct BnBackwardFinal {
  const double* ws;
  int gy;
  int64_t groups, c;
  double n;  // rows per group
  const float* weight;
  const float* invstd;  // [groups, c]
  float* factors;
  float* dweight;
  float* dbias;
};

__global__ void __launch_bounds__(kThreads) BnBackwardFinalizeKernel(BnBackwardFinal f) {
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool mine = threadIdx.y == 0 && ch < f.c;
  double tot_dy = 0.0, tot_dw = 0.0;
  for (int64_t g = 0; g < f.groups; ++g) {
    double s[2];
    SumPartials<2>(f.ws, g, f.gy, f.c, s);
    if (mine) {
      const double sdy = s[0], dot = s[1];
      const float isf = f.invstd[g * f.c + ch];
      const double is = static_cast<double>(isf);
      const double dw = DMulRn(dot, is);
      // Group 0 starts the sums (not 0 + v), as the CPU op.
      tot_dy = g == 0 ? sdy : DAddRn(tot_dy, sdy);
      tot_dw = g == 0 ? dw : DAddRn(tot_dw, dw);
      float* fg = f.factors + g * 3 * f.c + ch;
      fg[0] = static_cast<float>(sdy / f.n);
      fg[f.c] = static_cast<float>(DMulRn(dw, is) / f.n);  // dot * is * is / n, left to right
      fg[2 * f.c] = MulRn(isf, f.weight[ch]);
    }
  }
  if (mine) {
    f.dbias[ch] = static_cast<float>(tot_dy);
    f.dweight[ch] = static_cast<float>(tot_dw);
  }
}

// ---------------------------------------------------------------------------------------------
// Batch-norm forward.

// save_mean, save_invstd, scale = save_invstd * weight ([groups, c]) and the running statistics
// (group 0), from the float64 statistics; one thread per (group, channel), grid-stride.
struct BnTrainFinal {
  const double* mean64;
  const double* m2;
  int64_t groups, c;
  double n, eps, momentum;
  const float* weight;
  const float* running_mean;
  const float* running_var;
  float* save_mean;
  float* save_invstd;
  float* scale;
  float* new_running_mean;
  float* new_running_var;
};

__global__ void __launch_bounds__(kThreads) BnTrainFinalizeKernel(BnTrainFinal f) {
  const int64_t total = f.groups * f.c;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = i % f.c;
    const double mean = f.mean64[i], m2 = f.m2[i];
    const float si = static_cast<float>(1.0 / sqrt(DAddRn(m2 / f.n, f.eps)));
    f.save_mean[i] = static_cast<float>(mean);
    f.save_invstd[i] = si;
    f.scale[i] = MulRn(si, f.weight[ch]);
    if (i < f.c) {  // group 0: PyTorch's update, unbiased variance M2 / (n - 1)
      const double keep = 1.0 - f.momentum;
      f.new_running_mean[ch] = static_cast<float>(
          DAddRn(DMulRn(f.momentum, mean), DMulRn(keep, static_cast<double>(f.running_mean[ch]))));
      f.new_running_var[ch] = static_cast<float>(
          DAddRn(DMulRn(f.momentum, m2 / (f.n - 1.0)), DMulRn(keep, static_cast<double>(f.running_var[ch]))));
    }
  }
}

struct BnNormalizeArgs {
  const float* x;
  const float* residual;  // or null
  const float* mean;      // [groups, c]
  const float* scale;     // [groups, c]
  const float* bias;      // [c]
  float* y;
  int64_t rows, group_rows, c, cg;
  bool relu;
};

// y = (x - mean_g) * scale_g + bias (+ residual), then ReLU: the CPU op's float32 steps.
template <int VEC>
__global__ void __launch_bounds__(kThreads) BnNormalizeKernel(BnNormalizeArgs a) {
  const int64_t gch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gch >= a.cg) return;  // no barriers below
  const int64_t ch0 = gch * VEC;
  float bias[VEC], mean[VEC] = {}, scale[VEC] = {};  // mean, scale: loaded with the first row's group
  LoadScalars<VEC>(a.bias + ch0, bias);
  int64_t cur = -1;
  const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < a.rows; r += step) {
    const int64_t g = r / a.group_rows;
    if (g != cur) {
      LoadScalars<VEC>(a.mean + g * a.c + ch0, mean);
      LoadScalars<VEC>(a.scale + g * a.c + ch0, scale);
      cur = g;
    }
    const int64_t o = r * a.c + ch0;
    float v[VEC];
    Load<VEC>(a.x + o, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = AddRn(MulRn(SubRn(v[k], mean[k]), scale[k]), bias[k]);
    if (a.residual) {
      float res[VEC];
      Load<VEC>(a.residual + o, res);
#pragma unroll
      for (int k = 0; k < VEC; ++k) v[k] = AddRn(v[k], res[k]);
    }
    if (a.relu) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) v[k] = Relu(v[k]);
    }
    Store<VEC>(a.y + o, v);
  }
}

// ---------------------------------------------------------------------------------------------
// Batch-norm backward, element-wise part.

struct BnDxArgs {
  const float* dy;
  const float* relu_y;   // or null
  const float* x;
  const float* mean;     // [groups, c]
  const float* factors;  // [groups][3][c]: mean dy, k, invstd * weight
  float* dx;
  int64_t rows, group_rows, c, cg;
};

// dx = ((g - mean dy) - (x - mean) * k) * a, g = dy masked by the ReLU output: the CPU op's steps.
template <int VEC>
__global__ void __launch_bounds__(kThreads) BnDxKernel(BnDxArgs a) {
  const int64_t gch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gch >= a.cg) return;  // no barriers below
  const int64_t ch0 = gch * VEC;
  float mean[VEC] = {}, mdy[VEC] = {}, kf[VEC] = {}, af[VEC] = {};  // loaded with the first row's group
  int64_t cur = -1;
  const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < a.rows; r += step) {
    const int64_t g = r / a.group_rows;
    if (g != cur) {
      const float* fg = a.factors + g * 3 * a.c + ch0;
      LoadScalars<VEC>(a.mean + g * a.c + ch0, mean);
      LoadScalars<VEC>(fg, mdy);
      LoadScalars<VEC>(fg + a.c, kf);
      LoadScalars<VEC>(fg + 2 * a.c, af);
      cur = g;
    }
    const int64_t o = r * a.c + ch0;
    float gv[VEC], xv[VEC];
    Load<VEC>(a.dy + o, gv);
    Load<VEC>(a.x + o, xv);
    if (a.relu_y) {
      float y[VEC];
      Load<VEC>(a.relu_y + o, y);
#pragma unroll
      for (int k = 0; k < VEC; ++k) gv[k] = ReluGrad(gv[k], y[k]);
    }
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      gv[k] = MulRn(SubRn(SubRn(gv[k], mdy[k]), MulRn(SubRn(xv[k], mean[k]), kf[k])), af[k]);
    }
    Store<VEC>(a.dx + o, gv);
  }
}

// ---------------------------------------------------------------------------------------------
// Flat and pooling backward kernels.

struct ReluBackwardOp {
  const float* dy;
  const float* y;
  float* dx;
  __device__ void Vec(int64_t i) const {
    float g[4], v[4];
    Load<4>(dy + i, g);
    Load<4>(y + i, v);
#pragma unroll
    for (int k = 0; k < 4; ++k) g[k] = ReluGrad(g[k], v[k]);
    Store<4>(dx + i, g);
  }
  __device__ void Scalar(int64_t i) const { dx[i] = ReluGrad(dy[i], y[i]); }
};

template <typename Op>
__global__ void __launch_bounds__(kThreads) VecSplitKernel(Op op, detail::VecSplit s) {
  detail::RunVecSplit(op, s);
}

// dx [n*h*w, c] = dy [n, c] / count: rows of one image share dy's row.
struct AvgPoolDxArgs {
  const float* dy;
  float* dx;
  int64_t rows, hw, c, cg;
  float count;
};

template <int VEC>
__global__ void __launch_bounds__(kThreads) AvgPoolDxKernel(AvgPoolDxArgs a) {
  const int64_t gch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gch >= a.cg) return;
  const int64_t ch0 = gch * VEC;
  const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < a.rows; r += step) {
    float g[VEC];
    LoadScalars<VEC>(a.dy + (r / a.hw) * a.c + ch0, g);
#pragma unroll
    for (int k = 0; k < VEC; ++k) g[k] = DivRn(g[k], a.count);
    Store<VEC>(a.dx + r * a.c + ch0, g);
  }
}

struct PoolGeom {
  int64_t n, h, w, c, p, q, kh, kw, sh, sw, ph, pw;
};

PoolGeom GeomOf(const Pool2dParams& p) {
  return {p.n, p.h, p.w, p.c, p.out_h(), p.out_w(), p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w};
}

// Each window's winner (its flat position ih * W + iw in the input plane), by the forward's rule:
// scan rows then columns from -inf, take v when v > best or v is NaN (so ties keep the first maximum
// and the last NaN wins); the index starts at the window's first in-bounds element, which keeps a
// window of -inf there. One thread per (n, p, q, channel group), grid-stride; win: [N, P, Q, C].
template <int VEC, class Idx>
__global__ void __launch_bounds__(kThreads) MaxPoolWinnersKernel(PoolGeom g, const float* x, Idx* win) {
  const int64_t cg = g.c / VEC;
  const int64_t items = g.n * g.p * g.q * cg;
  for (int64_t it = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; it < items;
       it += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t cgi = it % cg;
    int64_t rest = it / cg;
    const int64_t oq = rest % g.q;
    rest /= g.q;
    const int64_t op = rest % g.p;
    const int64_t img = rest / g.p;
    const int64_t h0 = op * g.sh - g.ph, w0 = oq * g.sw - g.pw;
    const int64_t hs = h0 > 0 ? h0 : 0, ws = w0 > 0 ? w0 : 0;
    const int64_t he = h0 + g.kh < g.h ? h0 + g.kh : g.h;
    const int64_t we = w0 + g.kw < g.w ? w0 + g.kw : g.w;
    const float* xn = x + img * g.h * g.w * g.c + cgi * VEC;
    float best[VEC];
    Idx at[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      best[k] = -INFINITY;
      at[k] = static_cast<Idx>(hs * g.w + ws);
    }
    for (int64_t ih = hs; ih < he; ++ih) {
      for (int64_t iw = ws; iw < we; ++iw) {
        const int64_t pos = ih * g.w + iw;
        float v[VEC];
        Load<VEC>(xn + pos * g.c, v);
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          if (v[k] > best[k] || v[k] != v[k]) {
            best[k] = v[k];
            at[k] = static_cast<Idx>(pos);
          }
        }
      }
    }
    Idx* o = win + it * VEC;  // [n, p, q, c] with the channel group fastest: the item order
#pragma unroll
    for (int k = 0; k < VEC; ++k) o[k] = at[k];
  }
}

// The first output index whose window (start o * s - pad, length k) can contain position i >= 0.
__device__ __forceinline__ int64_t FirstWindow(int64_t i, int64_t k, int64_t s, int64_t pad) {
  const int64_t v = i + pad - k + 1;
  return v <= 0 ? 0 : (v + s - 1) / s;
}

// dx at each input element: the sum, from +0 in float32, of dy over the windows that it won, in
// output order (P, then Q): the CPU op's additions in its order. One thread per (n, h, w, channel
// group), grid-stride; every dx element is written (zeros included).
template <int VEC, class Idx>
__global__ void __launch_bounds__(kThreads) MaxPoolGatherKernel(PoolGeom g, const float* dy, const Idx* win, float* dx) {
  const int64_t cg = g.c / VEC;
  const int64_t items = g.n * g.h * g.w * cg;
  for (int64_t it = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; it < items;
       it += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t cgi = it % cg;
    int64_t rest = it / cg;
    const int64_t iw = rest % g.w;
    rest /= g.w;
    const int64_t ih = rest % g.h;
    const int64_t img = rest / g.h;
    const int64_t pos = ih * g.w + iw;
    const int64_t op0 = FirstWindow(ih, g.kh, g.sh, g.ph), oq0 = FirstWindow(iw, g.kw, g.sw, g.pw);
    const int64_t op1 = (ih + g.ph) / g.sh < g.p - 1 ? (ih + g.ph) / g.sh : g.p - 1;
    const int64_t oq1 = (iw + g.pw) / g.sw < g.q - 1 ? (iw + g.pw) / g.sw : g.q - 1;
    float sum[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) sum[k] = 0.f;
    for (int64_t op = op0; op <= op1; ++op) {
      for (int64_t oq = oq0; oq <= oq1; ++oq) {
        const int64_t o = ((img * g.p + op) * g.q + oq) * g.c + cgi * VEC;
        float d[VEC];
        Load<VEC>(dy + o, d);
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          if (static_cast<int64_t>(win[o + k]) == pos) sum[k] = AddRn(sum[k], d[k]);
        }
      }
    }
    Store<VEC>(dx + it * VEC, sum);
  }
}

// ---------------------------------------------------------------------------------------------
// Launch helpers.

// VEC = 4 when c % 4 == 0 and every per-element pointer (nulls aside) is 16-byte aligned.
int PickVec(int64_t c, std::initializer_list<const void*> ptrs) {
  if (c % 4 != 0) return 1;
  for (const void* p : ptrs) {
    if (p != nullptr && !detail::IsAligned(p, 16)) return 1;
  }
  return 4;
}

template <typename Args>
cudaError_t LaunchRows(void (*k1)(Args), void (*k4)(Args), int vec, const RowPlan& pl, const Args& a,
                       cudaStream_t stream) {
  const dim3 grid(pl.gx, pl.gy), block(pl.bx, pl.by);
  if (vec == 4) {
    SSLINV_LAUNCH(k4, grid, block, 0, stream, a);
  } else {
    SSLINV_LAUNCH(k1, grid, block, 0, stream, a);
  }
  return cudaGetLastError();
}

// The partial sums of every group: grid z covers up to 65535 groups per launch.
cudaError_t LaunchColumnPartials(bool bn, int vec, const RowPlan& pl, const ReduceArgs& a, int64_t groups,
                                 cudaStream_t stream) {
  for (int64_t g0 = 0; g0 < groups; g0 += kMaxGridYZ) {
    const int64_t ng = groups - g0 < kMaxGridYZ ? groups - g0 : kMaxGridYZ;
    const dim3 grid(pl.gx, pl.gy, static_cast<unsigned>(ng)), block(pl.bx, pl.by);
    if (bn) {
      if (vec == 4) {
        SSLINV_LAUNCH((ColumnPartialKernel<4, true>), grid, block, 0, stream, a, g0);
      } else {
        SSLINV_LAUNCH((ColumnPartialKernel<1, true>), grid, block, 0, stream, a, g0);
      }
    } else {
      if (vec == 4) {
        SSLINV_LAUNCH((ColumnPartialKernel<4, false>), grid, block, 0, stream, a, g0);
      } else {
        SSLINV_LAUNCH((ColumnPartialKernel<1, false>), grid, block, 0, stream, a, g0);
      }
    }
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

// Bytes of the column partials for both possible vector widths (the launcher picks one from the
// pointers' alignment).
size_t ColumnPartialBytes(int64_t group_rows, int64_t c, int64_t groups, int nacc, int grid_cap) {
  int64_t gy = PlanReduce(group_rows, c, 1, grid_cap).gy;
  if (c % 4 == 0) {
    const int64_t gy4 = PlanReduce(group_rows, c, 4, grid_cap).gy;
    if (gy4 > gy) gy = gy4;
  }
  return AlignUp(static_cast<size_t>(groups) * gy * nacc * c * sizeof(double));
}

bool WorkspaceOk(const void* ws, size_t have, size_t need) {
  return ws != nullptr && detail::IsAligned(ws, kWsAlign) && have >= need;
}

// The batch-norm forward's workspace: [statistics' workspace | mean64 | m2 ([groups, c] float64 each)
// | scale ([groups, c] float32)].
struct BnTrainLayout {
  size_t stats, mean64, m2, scale, total;
};
BnTrainLayout TrainLayout(int64_t rows, int64_t c, int64_t groups, int grid_cap) {
  BnTrainLayout l;
  const size_t gc = static_cast<size_t>(groups) * c;
  l.stats = 0;
  l.mean64 = AlignUp(BatchNormGroupStatsWorkspaceBytes(groups, rows / groups, c, grid_cap));
  l.m2 = l.mean64 + AlignUp(gc * sizeof(double));
  l.scale = l.m2 + AlignUp(gc * sizeof(double));
  l.total = l.scale + AlignUp(gc * sizeof(float));
  return l;
}

bool GroupsOk(int64_t rows, int64_t c, int64_t groups, int64_t min_rows) {
  return c >= 1 && groups >= 1 && rows % groups == 0 && rows / groups >= min_rows;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launchers.

size_t BatchNormTrainWorkspaceBytes(int64_t rows, int64_t c, int64_t groups, int grid_cap) {
  if (!GroupsOk(rows, c, groups, 1)) return 0;
  return TrainLayout(rows, c, groups, grid_cap).total;
}

cudaError_t BatchNormTrainF32(const float* x, int64_t rows, int64_t c, int64_t groups, const float* weight,
                              const float* bias, const float* running_mean, const float* running_var, double eps,
                              double momentum, bool relu, const float* residual, float* y, float* save_mean,
                              float* save_invstd, float* new_running_mean, float* new_running_var, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream, int grid_cap) {
  if (!GroupsOk(rows, c, groups, 2) || !(eps >= 0) || !(momentum >= 0 && momentum <= 1)) return cudaErrorInvalidValue;
  const BnTrainLayout l = TrainLayout(rows, c, groups, grid_cap);
  if (!WorkspaceOk(workspace, workspace_bytes, l.total)) return cudaErrorInvalidValue;
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  double* mean64 = reinterpret_cast<double*>(ws + l.mean64);
  double* m2 = reinterpret_cast<double*>(ws + l.m2);
  float* scale = reinterpret_cast<float*>(ws + l.scale);
  const int64_t gr = rows / groups;
  cudaError_t e = BatchNormGroupStatsF64(x, groups, gr, c, mean64, m2, ws + l.stats, l.mean64, stream, grid_cap);
  if (e != cudaSuccess) return e;
  const BnTrainFinal f{mean64, m2, groups, c, static_cast<double>(gr), eps, momentum, weight, running_mean,
                       running_var, save_mean, save_invstd, scale, new_running_mean, new_running_var};
  SSLINV_LAUNCH(BnTrainFinalizeKernel, detail::GridFor(groups * c, kThreads, grid_cap), kThreads, 0, stream, f);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const int vec = PickVec(c, {x, residual, y});
  const RowPlan pl = PlanElementwise(rows, c, vec, grid_cap);
  if (!PlanFits(pl)) return cudaErrorInvalidValue;
  const BnNormalizeArgs a{x, residual, save_mean, scale, bias, y, rows, gr, c, pl.cg, relu};
  return LaunchRows(BnNormalizeKernel<1>, BnNormalizeKernel<4>, vec, pl, a, stream);
}

size_t BatchNormBackwardWorkspaceBytes(int64_t rows, int64_t c, int64_t groups, int grid_cap) {
  if (!GroupsOk(rows, c, groups, 1)) return 0;
  return ColumnPartialBytes(rows / groups, c, groups, 2, grid_cap) +
         AlignUp(static_cast<size_t>(groups) * 3 * c * sizeof(float));
}

cudaError_t BatchNormBackwardF32(const float* dy, const float* relu_y, const float* x, int64_t rows, int64_t c,
                                 int64_t groups, const float* weight, const float* mean, const float* invstd,
                                 float* dx, float* dweight, float* dbias, void* workspace, size_t workspace_bytes,
                                 cudaStream_t stream, int grid_cap) {
  if (!GroupsOk(rows, c, groups, 1)) return cudaErrorInvalidValue;
  if (!WorkspaceOk(workspace, workspace_bytes, BatchNormBackwardWorkspaceBytes(rows, c, groups, grid_cap))) {
    return cudaErrorInvalidValue;
  }
  const int64_t gr = rows / groups;
  // One vector width for both passes (the reduction's is the one its workspace was sized for).
  const int vec = PickVec(c, {dy, relu_y, x, dx});
  const RowPlan rp = PlanReduce(gr, c, vec, grid_cap);
  if (!PlanFits(rp)) return cudaErrorInvalidValue;
  double* partials = static_cast<double*>(workspace);
  float* factors = reinterpret_cast<float*>(static_cast<unsigned char*>(workspace) +
                                            ColumnPartialBytes(gr, c, groups, 2, grid_cap));
  ReduceArgs ra;
  ra.x = x;
  ra.dy = dy;
  ra.relu_y = relu_y;
  ra.mean = mean;
  ra.group_rows = gr;
  ra.c = c;
  ra.cg = rp.cg;
  ra.ws = partials;
  cudaError_t e = LaunchColumnPartials(true, vec, rp, ra, groups, stream);
  if (e != cudaSuccess) return e;
  const BnBackwardFinal f{partials, static_cast<int>(rp.gy), groups, c, static_cast<double>(gr), weight, invstd,
                          factors, dweight, dbias};
  SSLINV_LAUNCH(BnBackwardFinalizeKernel, dim3(static_cast<unsigned>((c + 31) / 32)), dim3(32, kThreads / 32), 0,
                stream, f);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const RowPlan pl = PlanElementwise(rows, c, vec, grid_cap);
  const BnDxArgs a{dy, relu_y, x, mean, factors, dx, rows, gr, c, pl.cg};
  return LaunchRows(BnDxKernel<1>, BnDxKernel<4>, vec, pl, a, stream);
}

cudaError_t ReluBackwardF32(const float* dy, const float* y, float* dx, int64_t n, cudaStream_t stream, int grid_cap) {
  if (n <= 0) return n == 0 ? cudaSuccess : cudaErrorInvalidValue;
  const int64_t head = detail::AlignHead(dx, 4, 16, n);
  const bool ok = detail::IsAligned(dy + head, 16) && detail::IsAligned(y + head, 16);
  const detail::VecSplit s = detail::MakeVecSplit(n, head, ok);
  const int64_t nscalar = n - 4 * s.nvec;
  const unsigned grid = detail::GridFor(s.nvec > nscalar ? s.nvec : nscalar, kThreads, grid_cap);
  SSLINV_LAUNCH(VecSplitKernel<ReluBackwardOp>, grid, kThreads, 0, stream, ReluBackwardOp{dy, y, dx}, s);
  return cudaGetLastError();
}

namespace {
bool WideIndex(const Pool2dParams& p) { return p.h * p.w >= (int64_t{1} << 31); }
}  // namespace

size_t MaxPool2dBackwardWorkspaceBytes(const Pool2dParams& p) {
  const size_t outs = static_cast<size_t>(p.n * p.out_h() * p.out_w() * p.c);
  return outs * (WideIndex(p) ? sizeof(int64_t) : sizeof(int32_t));
}

cudaError_t MaxPool2dBackwardNHWC(const Pool2dParams& p, const float* dy, const float* x, float* dx, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream, int grid_cap) {
  const PoolGeom g = GeomOf(p);
  if (g.n < 0 || g.h < 1 || g.w < 1 || g.c < 1 || g.p < 1 || g.q < 1 || g.sh < 1 || g.sw < 1) {
    return cudaErrorInvalidValue;
  }
  if (g.n == 0) return cudaSuccess;
  if (!WorkspaceOk(workspace, workspace_bytes, MaxPool2dBackwardWorkspaceBytes(p))) return cudaErrorInvalidValue;
  const int vec = PickVec(g.c, {dy, x, dx});
  const int64_t cg = g.c / vec;
  const unsigned grid1 = detail::GridFor(g.n * g.p * g.q * cg, kThreads, grid_cap);
  const unsigned grid2 = detail::GridFor(g.n * g.h * g.w * cg, kThreads, grid_cap);
  if (WideIndex(p)) {
    int64_t* win = static_cast<int64_t*>(workspace);
    if (vec == 4) {
      SSLINV_LAUNCH((MaxPoolWinnersKernel<4, int64_t>), grid1, kThreads, 0, stream, g, x, win);
      SSLINV_LAUNCH((MaxPoolGatherKernel<4, int64_t>), grid2, kThreads, 0, stream, g, dy, win, dx);
    } else {
      SSLINV_LAUNCH((MaxPoolWinnersKernel<1, int64_t>), grid1, kThreads, 0, stream, g, x, win);
      SSLINV_LAUNCH((MaxPoolGatherKernel<1, int64_t>), grid2, kThreads, 0, stream, g, dy, win, dx);
    }
  } else {
    int32_t* win = static_cast<int32_t*>(workspace);
    if (vec == 4) {
      SSLINV_LAUNCH((MaxPoolWinnersKernel<4, int32_t>), grid1, kThreads, 0, stream, g, x, win);
      SSLINV_LAUNCH((MaxPoolGatherKernel<4, int32_t>), grid2, kThreads, 0, stream, g, dy, win, dx);
    } else {
      SSLINV_LAUNCH((MaxPoolWinnersKernel<1, int32_t>), grid1, kThreads, 0, stream, g, x, win);
      SSLINV_LAUNCH((MaxPoolGatherKernel<1, int32_t>), grid2, kThreads, 0, stream, g, dy, win, dx);
    }
  }
  return cudaGetLastError();
}

cudaError_t GlobalAvgPoolBackwardNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx,
                                      cudaStream_t stream, int grid_cap) {
  if (n < 0 || h < 1 || w < 1 || c < 1) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  const int vec = PickVec(c, {dx});
  const int64_t rows = n * h * w;
  const RowPlan pl = PlanElementwise(rows, c, vec, grid_cap);
  if (!PlanFits(pl)) return cudaErrorInvalidValue;
  // PyTorch's mean backward divides by the element count, float(h * w) (not a reciprocal multiply).
  const AvgPoolDxArgs a{dy, dx, rows, h * w, c, pl.cg, static_cast<float>(h * w)};
  return LaunchRows(AvgPoolDxKernel<1>, AvgPoolDxKernel<4>, vec, pl, a, stream);
}

size_t SumRowsWorkspaceBytes(int64_t m, int64_t n, int grid_cap) {
  if (m < 0 || n < 1) return 0;
  return ColumnPartialBytes(m, n, 1, 1, grid_cap);
}

cudaError_t SumRowsF32(const float* x, int64_t m, int64_t n, float* out, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream, int grid_cap) {
  if (m < 0 || n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!WorkspaceOk(workspace, workspace_bytes, SumRowsWorkspaceBytes(m, n, grid_cap))) return cudaErrorInvalidValue;
  const int vec = PickVec(n, {x});
  const RowPlan rp = PlanReduce(m, n, vec, grid_cap);
  if (!PlanFits(rp)) return cudaErrorInvalidValue;
  ReduceArgs ra;
  ra.x = x;
  ra.group_rows = m;
  ra.c = n;
  ra.cg = rp.cg;
  ra.ws = static_cast<double*>(workspace);
  cudaError_t e = LaunchColumnPartials(false, vec, rp, ra, 1, stream);
  if (e != cudaSuccess) return e;
  SSLINV_LAUNCH(SumRowsFinalizeKernel, dim3(static_cast<unsigned>((n + 31) / 32)), dim3(32, kThreads / 32), 0, stream,
                static_cast<const double*>(workspace), static_cast<int>(rp.gy), n, out);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
