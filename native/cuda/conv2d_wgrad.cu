// The convolution's weight gradient (wgrad) on the GPU: an fp32 SIMT GEMM over N*P*Q split into
// slices, and a deterministic reduction (see conv2d_backward.cuh for the maths and the split, and
// conv2d_backward_tile.cuh for the block tile and mainloop).
//
// The GEMM multiplies dy^T [K, N*P*Q] by im2col(x) [N*P*Q, R*S*C] (columns in (r, s, c) order). A
// stage of either operand is kBK output pixels by a run of its columns, both contiguous in memory
// along those columns (dy along k, x along c within a tap), so both are loaded as float4 groups
// straight into the [kBK][width] shared layout, untransposed. Which one is the tile's 128-row side
// is chosen per shape (Conv2dBackwardWeightPlan): K rows and R*S*C columns, or, when that wastes less of the
// tiles, R*S*C rows and K columns ("swapped": a 64-channel layer's K = 64 would fill half of a
// 128-row tile). Slice z writes its partial sums to workspace[z] in the GEMM's orientation;
// WgradReduceKernel adds the slices in order in fp64 and writes dw [K, C, R, S].
#include "cuda/conv2d_backward.cuh"

#include <algorithm>
#include <type_traits>

#include "cuda/conv2d_backward_tile.cuh"
#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {
namespace {

using namespace conv_bwd;  // NOLINT: the shared tile constants and mainloop

// The plan's constants (see the header comment).
constexpr int64_t kTargetBlocks = 512;     // about 2 waves of 2 blocks per SM on a 132-SM GPU
constexpr int64_t kMaxSliceRows = 16384;   // bounds each fp32 FMA chain
constexpr int64_t kMinSliceRows = 256;     // 32 stages: enough to amortise a tile's prologue
constexpr int64_t kMaxSplits = 256;
constexpr int64_t kMaxPartialFloats = int64_t{64} << 20;  // 256 MiB of partial sums
constexpr int64_t kMaxGridY = 65535;

// Output elements the block tiles cover (padding included) with `rows` on the 128-row side.
int64_t TiledArea(int64_t rows, int64_t cols) { return CeilDiv(rows, kBM) * kBM * CeilDiv(cols, kBN) * kBN; }

}  // namespace

Conv2dWgradPlan Conv2dBackwardWeightPlan(const Conv2dShape& sh) {
  Conv2dWgradPlan w;
  if (!Conv2dBackwardShapeIsValid(sh) || sh.n == 0) return w;
  const int64_t npq = int64_t{sh.n} * sh.p() * sh.q();
  const int64_t rsc = int64_t{sh.r} * sh.s * sh.c;
  // Ties keep K on the rows; R*S*C rows must also fit the grid's y extent.
  w.swap = TiledArea(rsc, sh.k) < TiledArea(sh.k, rsc) && CeilDiv(rsc, kBM) <= kMaxGridY;
  const int64_t rows = w.swap ? rsc : sh.k, cols = w.swap ? sh.k : rsc;
  const int64_t tiles = CeilDiv(rows, kBM) * CeilDiv(cols, kBN);
  int64_t splits = std::max(CeilDiv(kTargetBlocks, tiles), CeilDiv(npq, kMaxSliceRows));
  splits = std::min({splits, CeilDiv(npq, kMinSliceRows), kMaxSplits,
                     std::max<int64_t>(1, kMaxPartialFloats / (int64_t{sh.k} * rsc))});
  splits = std::max<int64_t>(splits, 1);
  const int64_t slice = CeilDiv(CeilDiv(npq, splits), kBK) * kBK;
  w.slice = static_cast<int>(slice);
  w.splits = static_cast<int>(CeilDiv(npq, slice));
  return w;
}

namespace {

struct WgradArgs {
  Conv2dShape sh;
  int P, Q;
  int npq;          // N*P*Q: GEMM-K
  int rsc;          // R*S*C
  int slice;        // output pixels per split (a multiple of kBK)
  const float* x;   // [N, H, W, C]
  const float* dy;  // [N, P, Q, K]
  float* partial;   // [splits][rows][cols] of the GEMM's orientation
};

// Which float4 group of a stage (kBK rows x kWidth columns, stored as [kBK][kStride]) a thread
// owns: group t % (kWidth / 4) of row t / (kWidth / 4), for the first kBK * kWidth / 4 threads.
template <int kWidth, int kStride>
struct StageGroup {
  static constexpr int kGroupsPerRow = kWidth / 4;
  static_assert(kBK * kGroupsPerRow <= kThreads, "a stage holds at most one group per thread");
  __device__ static int Row() { return static_cast<int>(threadIdx.x) / kGroupsPerRow; }
  __device__ static int Group() { return static_cast<int>(threadIdx.x) % kGroupsPerRow; }
  __device__ static bool Active() {
    return kBK * kGroupsPerRow == kThreads || static_cast<int>(threadIdx.x) < kBK * kGroupsPerRow;
  }
  __device__ static void Store(float* s, float4 v) {
    if (!Active()) return;
    SSLINV_CHECK_VEC_ALIGN(s + Row() * kStride + 4 * Group(), 16);
    *reinterpret_cast<float4*>(s + Row() * kStride + 4 * Group()) = v;
  }
};

// dy as a GEMM operand: stage rows are output pixels, columns output channels (contiguous in dy).
template <int kWidth, int kStride, bool kVec>
struct DyLoader : StageGroup<kWidth, kStride> {
  using G = StageGroup<kWidth, kStride>;
  int npq, kc;  // this thread's output pixel and first channel
  float4 v;

  __device__ void Init(const WgradArgs&, int begin, int col0) {
    npq = begin + G::Row();
    kc = col0 + 4 * G::Group();
  }
  __device__ void Next(const WgradArgs&) { npq += kBK; }
  __device__ void Load(const WgradArgs& a, int k_left) {
    v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (!G::Active() || G::Row() >= k_left) return;  // past the slice
    const int K = a.sh.k;
    const float* src = a.dy + static_cast<int64_t>(npq) * K + kc;
    if (kVec) {  // K % 4 == 0: the group is all in range or all out
      if (kc < K) {
        SSLINV_CHECK_VEC_ALIGN(src, 16);
        v = __ldg(reinterpret_cast<const float4*>(src));
      }
    } else {
      v = make_float4(kc < K ? __ldg(src) : 0.f, kc + 1 < K ? __ldg(src + 1) : 0.f,
                      kc + 2 < K ? __ldg(src + 2) : 0.f, kc + 3 < K ? __ldg(src + 3) : 0.f);
    }
  }
  __device__ void Store(float* s) const { G::Store(s, v); }
};

// im2col(x) as a GEMM operand: stage rows are output pixels (n, p, q), columns (r, s, c). A thread's
// columns never change, so their taps are decoded once; its pixel moves by kBK per stage through an
// incremental (n, p, q) cursor.
template <int kWidth, int kStride, bool kVec>
struct XLoader : StageGroup<kWidth, kStride> {
  using G = StageGroup<kWidth, kStride>;
  static constexpr int kLanes = kVec ? 1 : 4;  // decoded columns: one group (C % 4 == 0) or 4 singles
  int n, p, q;  // this thread's output pixel
  int dr[kLanes], ds[kLanes], c[kLanes];  // ih = p*sh + dr, iw = q*sw + ds; c < 0: column past R*S*C
  float4 v;

  __device__ void Init(const WgradArgs& a, int begin, int col0) {
    const int C = a.sh.c;
    for (int l = 0; l < kLanes; ++l) {
      const int col = col0 + 4 * G::Group() + l;
      c[l] = -1, dr[l] = 0, ds[l] = 0;
      if (col < a.rsc) {
        const int rs = col / C;
        c[l] = col - rs * C;
        dr[l] = rs / a.sh.s - a.sh.pad_h;
        ds[l] = rs % a.sh.s - a.sh.pad_w;
      }
    }
    const int npq = begin + G::Row();
    n = npq / (a.P * a.Q);
    const int pq = npq - n * (a.P * a.Q);
    p = pq / a.Q;
    q = pq - p * a.Q;
  }

  __device__ void Next(const WgradArgs& a) {
    q += kBK;
    while (q >= a.Q) {  // at most kBK / Q + 1 steps
      q -= a.Q;
      if (++p == a.P) {
        p = 0;
        ++n;
      }
    }
  }

  __device__ float Element(const WgradArgs& a, int l) const {
    const int ih = p * a.sh.stride_h + dr[l], iw = q * a.sh.stride_w + ds[l];
    if (c[l] < 0 || !InRange(ih, a.sh.h) || !InRange(iw, a.sh.w)) return 0.f;
    return __ldg(a.x + ((static_cast<int64_t>(n) * a.sh.h + ih) * a.sh.w + iw) * a.sh.c + c[l]);
  }

  __device__ void Load(const WgradArgs& a, int k_left) {
    v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (!G::Active() || G::Row() >= k_left) return;  // past the slice
    if (kVec) {  // C % 4 == 0: the 4 columns are channels c..c+3 of one tap
      const int ih = p * a.sh.stride_h + dr[0], iw = q * a.sh.stride_w + ds[0];
      if (c[0] >= 0 && InRange(ih, a.sh.h) && InRange(iw, a.sh.w)) {
        const float* src = a.x + ((static_cast<int64_t>(n) * a.sh.h + ih) * a.sh.w + iw) * a.sh.c + c[0];
        SSLINV_CHECK_VEC_ALIGN(src, 16);
        v = __ldg(reinterpret_cast<const float4*>(src));
      }
    } else {
      v = make_float4(Element(a, 0), Element(a, kLanes > 1 ? 1 : 0), Element(a, kLanes > 2 ? 2 : 0),
                      Element(a, kLanes > 3 ? 3 : 0));
    }
  }
  __device__ void Store(float* s) const { G::Store(s, v); }
};

// grid (ceil(cols / 64), ceil(rows / 128), splits); block tile: 128 rows x 64 columns of the GEMM,
// summed over its split's output pixels into partial[split] ([rows][cols]).
template <bool kVec, bool kSwap>
__global__ void __launch_bounds__(kThreads, 2) ConvWgradKernel(WgradArgs a) {
  using ALoader = std::conditional_t<kSwap, XLoader<kBM, kAStride, kVec>, DyLoader<kBM, kAStride, kVec>>;
  using BLoader = std::conditional_t<kSwap, DyLoader<kBN, kBN, kVec>, XLoader<kBN, kBN, kVec>>;
  SSLINV_DYNAMIC_SMEM(float, smem);
  const int rows = kSwap ? a.rsc : a.sh.k, cols = kSwap ? a.sh.k : a.rsc;
  const int n0 = static_cast<int>(blockIdx.x) * kBN, m0 = static_cast<int>(blockIdx.y) * kBM;
  const int split = static_cast<int>(blockIdx.z);
  const int begin = split * a.slice;
  const int end = a.npq - begin < a.slice ? a.npq : begin + a.slice;

  ALoader al;
  BLoader bl;
  al.Init(a, begin, m0);
  bl.Init(a, begin, n0);
  float acc[8][4];
  Mainloop(a, al, bl, end - begin, smem, acc);

  const int n = n0 + 4 * (static_cast<int>(threadIdx.x) % 16);  // this thread's 4 columns
  // kVec (C % 4 == 0 and K % 4 == 0) implies cols % 4 == 0; the workspace is 16-byte aligned, so
  // then every row is and a group of 4 columns is all in range or all out.
  const bool vec_out = kVec || cols % 4 == 0;
  float* const out = a.partial + static_cast<int64_t>(split) * rows * cols;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + AccRow(i);
    if (m >= rows) continue;
    float* const dst = out + static_cast<int64_t>(m) * cols + n;
    if (vec_out) {
      if (n < cols) {
        SSLINV_CHECK_VEC_ALIGN(dst, 16);
        *reinterpret_cast<float4*>(dst) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (n + j < cols) dst[j] = acc[i][j];
    }
  }
}

// dw[k, c, r, s] = the sum over splits z = 0, 1, ... of partial[z] at (k, (r*S + s)*C + c) (or
// transposed when swapped), added in that order in fp64 and rounded once. One thread per element in
// the partial sums' order, so the reads (splits x the filter) are coalesced and only the single
// write is strided. splits = 0 writes zeros.
__global__ void __launch_bounds__(kThreads) WgradReduceKernel(const float* __restrict__ partial, int splits, bool swap,
                                                              int K, int C, int R, int S, float* __restrict__ dw) {
  const int64_t rsc = int64_t{R} * S * C, total = rsc * K;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    double sum = 0.0;
    for (int z = 0; z < splits; ++z) sum += static_cast<double>(__ldg(partial + z * total + e));
    const int64_t k = swap ? e % K : e / rsc, col = swap ? e / K : e % rsc;
    const int64_t rs = col / C, c = col - rs * C;
    const int64_t r = rs / S, s = rs - r * S;
    dw[((k * C + c) * R + r) * S + s] = static_cast<float>(sum);
  }
}

template <bool kVec, bool kSwap>
void LaunchGemm(dim3 grid, cudaStream_t stream, const WgradArgs& a) {
  auto kernel = ConvWgradKernel<kVec, kSwap>;
  SSLINV_LAUNCH(kernel, grid, kThreads, kSmemBytes, stream, a);
}

}  // namespace

size_t Conv2dBackwardWeightWorkspaceBytes(const Conv2dShape& sh) {
  const Conv2dWgradPlan plan = Conv2dBackwardWeightPlan(sh);
  return RoundUp256(sizeof(float) * static_cast<size_t>(plan.splits) * sh.k * sh.r * sh.s * sh.c);
}

cudaError_t LaunchConv2dBackwardWeight(const Conv2dShape& sh, const float* x, const float* dy, float* dw,
                                       void* workspace, cudaStream_t stream) {
  if (!Conv2dBackwardShapeIsValid(sh) || dw == nullptr) return cudaErrorInvalidValue;
  const Conv2dWgradPlan plan = Conv2dBackwardWeightPlan(sh);
  if (plan.splits > 0) {
    if (x == nullptr || dy == nullptr || workspace == nullptr || !detail::IsAligned(workspace, 16)) {
      return cudaErrorInvalidValue;
    }
    WgradArgs a;
    a.sh = sh;
    a.P = sh.p();
    a.Q = sh.q();
    a.npq = sh.n * a.P * a.Q;
    a.rsc = sh.r * sh.s * sh.c;
    a.slice = plan.slice;
    a.x = x;
    a.dy = dy;
    a.partial = static_cast<float*>(workspace);
    const bool vec = sh.k % 4 == 0 && sh.c % 4 == 0 && detail::IsAligned(x, 16) && detail::IsAligned(dy, 16);
    const int64_t rows = plan.swap ? a.rsc : sh.k, cols = plan.swap ? sh.k : a.rsc;
    const dim3 grid(static_cast<unsigned>(CeilDiv(cols, kBN)), static_cast<unsigned>(CeilDiv(rows, kBM)),
                    static_cast<unsigned>(plan.splits));
    if (vec) {
      if (plan.swap) LaunchGemm<true, true>(grid, stream, a);
      else LaunchGemm<true, false>(grid, stream, a);
    } else {
      if (plan.swap) LaunchGemm<false, true>(grid, stream, a);
      else LaunchGemm<false, false>(grid, stream, a);
    }
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  const int64_t total = int64_t{sh.k} * sh.c * sh.r * sh.s;
  SSLINV_LAUNCH(WgradReduceKernel, detail::GridFor(total, kThreads, 0), kThreads, 0, stream,
                static_cast<const float*>(workspace), plan.splits, plan.swap, sh.k, sh.c, sh.r, sh.s, dw);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
