// The convolution's input gradient (dgrad) on the GPU: fp32 SIMT implicit GEMMs, one per stride
// phase, all in one launch (see conv2d_backward.cuh for the maths and the phase split, and
// conv2d_backward_tile.cuh for the block tile and mainloop).
//
// Operands of phase (a_h, a_w):
//   A [rows = the phase's N*Hp*Wp pixels, GEMM-K = T*U*K]: dy gathered at the windows that reach
//     each pixel, taps (t, u) outer and channels k inner, so a float4 group is 4 consecutive k of
//     one dy pixel (K % 4 == 0); taps outside dy load zeros. Stored transposed into shared memory.
//   B [GEMM-K, C]: the phase's block of the reordered filter w_t, a plain row-major matrix.
// Each dx element is written once, by the thread that summed it, through the fused epilogue.
#include "cuda/conv2d_backward.cuh"

#include <algorithm>

#include "cuda/conv2d_backward_tile.cuh"
#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {
namespace {

using namespace conv_bwd;  // NOLINT: the shared tile constants and mainloop

// One stride phase: the dx pixels ih = i*sh + a_h (i < hp), iw = j*sw + a_w (j < wp), reached by
// the taps r = r0 + t*sh (t < taps_h), s = s0 + u*sw (u < taps_w) from p = i + base_h - t,
// q = j + base_w - u. GEMM-K = taps_h * taps_w * K in (t, u, k) order; its B operand is rows
// wt_row.. of w_t (see TapPhaseRow).
struct DgradPhase {
  int a_h, a_w, hp, wp, r0, s0, taps_h, taps_w, base_h, base_w;
  int64_t wt_row;
};

// Taps of a kernel axis of n taps in residue class rho of the stride (r % stride == rho), and in
// the classes before rho.
__host__ __device__ __forceinline__ int TapsInClass(int n, int stride, int rho) {
  return rho < n ? (n - rho + stride - 1) / stride : 0;
}
__host__ __device__ __forceinline__ int TapsBeforeClass(int n, int stride, int rho) {
  return n / stride * rho + (n % stride < rho ? n % stride : rho);
}

// w_t's row of tap (r, s), channel k: the taps are grouped by stride phase (r % sh, s % sw), the
// groups in row-major order, so that each phase's taps form one contiguous [T*U*K, C] block ordered
// (t = r / sh, u = s / sw, k), the phase GEMM's K order. With stride 1 this is [R, S, K, C]; a 1x1
// filter's w_t is w itself.
__host__ __device__ __forceinline__ int64_t TapPhaseRow(const Conv2dShape& sh, int r, int s, int k) {
  const int rho_h = r % sh.stride_h, rho_w = s % sh.stride_w;
  const int taps_h = TapsInClass(sh.r, sh.stride_h, rho_h), taps_w = TapsInClass(sh.s, sh.stride_w, rho_w);
  const int64_t group = int64_t{TapsBeforeClass(sh.r, sh.stride_h, rho_h)} * sh.s +
                        int64_t{taps_h} * TapsBeforeClass(sh.s, sh.stride_w, rho_w);
  return (group + int64_t{r / sh.stride_h} * taps_w + s / sh.stride_w) * sh.k + k;
}

__device__ __forceinline__ DgradPhase MakeDgradPhase(const Conv2dShape& sh, int a_h, int a_w) {
  DgradPhase ph;
  ph.a_h = a_h;
  ph.a_w = a_w;
  ph.hp = (sh.h - a_h + sh.stride_h - 1) / sh.stride_h;  // a_h < H: at least one row
  ph.wp = (sh.w - a_w + sh.stride_w - 1) / sh.stride_w;
  ph.r0 = (a_h + sh.pad_h) % sh.stride_h;
  ph.s0 = (a_w + sh.pad_w) % sh.stride_w;
  ph.taps_h = TapsInClass(sh.r, sh.stride_h, ph.r0);
  ph.taps_w = TapsInClass(sh.s, sh.stride_w, ph.s0);
  ph.base_h = (a_h + sh.pad_h) / sh.stride_h;
  ph.base_w = (a_w + sh.pad_w) / sh.stride_w;
  // The phase's first row; an empty phase reads none (and may sit past the end).
  ph.wt_row = (int64_t{TapsBeforeClass(sh.r, sh.stride_h, ph.r0)} * sh.s +
               int64_t{ph.taps_h} * TapsBeforeClass(sh.s, sh.stride_w, ph.s0)) * sh.k;
  return ph;
}

struct DgradArgs {
  Conv2dShape sh;
  int P, Q;
  int phases_w;        // phases along W: min(stride_w, W)
  int row_blocks;      // row blocks per phase (sized for the largest phase)
  const float* dy;     // [N, P, Q, K]
  const float* wt;     // [R*S*K, C]: row TapPhaseRow(r, s, k) holds the C weights of tap (r, s), channel k
  const float* residual;
  const float* relu_y;
  float* dx;           // [N, H, W, C]
  bool vec_out;        // C % 4 == 0 and dx / residual / relu_y 16-byte aligned: float4 epilogue
};

// A operand: dy gathered at the phase's windows. kBM x kBK = 256 float4 groups, one per thread:
// row tid / 2, GEMM-K offset 4 * (tid % 2) within the stage.
template <bool kVec>
struct DgradALoader {
  const float* img = nullptr;  // dy + n*P*Q*K of this thread's row; null past the phase's rows
  int pb = 0, qb = 0;          // p = pb - t, q = qb - u
  int kk, t, u, k;             // this group's GEMM-K index and its (t, u, k)
  int U;                       // the phase's taps along W
  float4 v;

  __device__ static int Row() { return static_cast<int>(threadIdx.x) / 2; }
  __device__ static int Offset() { return 4 * (static_cast<int>(threadIdx.x) % 2); }

  __device__ void Init(const DgradArgs& a, const DgradPhase& ph, int m0, int rows) {
    const int K = a.sh.k;
    U = ph.taps_w;
    const int m = m0 + Row();
    if (m < rows) {
      const int per_img = ph.hp * ph.wp;
      const int n = m / per_img, rest = m - n * per_img;
      const int i = rest / ph.wp, j = rest - i * ph.wp;
      img = a.dy + static_cast<int64_t>(n) * a.P * a.Q * K;
      pb = i + ph.base_h;
      qb = j + ph.base_w;
    }
    kk = Offset();
    t = u = k = 0;
    if (U > 0) {  // an empty phase has no taps (and no stages)
      k = kk % K;
      const int tap = kk / K;
      t = tap / U;
      u = tap - t * U;
    }
  }

  __device__ void Next(const DgradArgs& a) {
    kk += kBK;
    if (kVec) {  // K % 4 == 0: a group never straddles two taps
      k += kBK;
      while (k >= a.sh.k) {
        k -= a.sh.k;
        if (++u == U) {
          u = 0;
          ++t;
        }
      }
    }
  }

  // Scalar path: element kk + j of GEMM-K.
  __device__ float Tap(const DgradArgs& a, int j, int k_left) const {
    if (Offset() + j >= k_left) return 0.f;
    const int K = a.sh.k, kj = kk + j;
    const int kq = kj % K, tap = kj / K;
    const int tt = tap / U, uu = tap - tt * U;
    const int p = pb - tt, q = qb - uu;
    if (!InRange(p, a.P) || !InRange(q, a.Q)) return 0.f;
    return __ldg(img + (static_cast<int64_t>(p) * a.Q + q) * K + kq);
  }

  __device__ void Load(const DgradArgs& a, int k_left) {
    v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (img == nullptr) return;
    if (kVec) {
      const int p = pb - t, q = qb - u;
      if (Offset() < k_left && InRange(p, a.P) && InRange(q, a.Q)) {
        const float* src = img + (static_cast<int64_t>(p) * a.Q + q) * a.sh.k + k;
        SSLINV_CHECK_VEC_ALIGN(src, 16);
        v = __ldg(reinterpret_cast<const float4*>(src));
      }
    } else {
      v = make_float4(Tap(a, 0, k_left), Tap(a, 1, k_left), Tap(a, 2, k_left), Tap(a, 3, k_left));
    }
  }

  __device__ void Store(float* as) const {  // transposed: A[kk][row]
    const int row = Row(), o = Offset();
    as[(o + 0) * kAStride + row] = v.x;
    as[(o + 1) * kAStride + row] = v.y;
    as[(o + 2) * kAStride + row] = v.z;
    as[(o + 3) * kAStride + row] = v.w;
  }
};

// B operand: the phase's block of w_t, a plain [gemm_k, C] matrix. kBK x kBN = 128 float4 groups:
// row tid / (kBN / 4), channels c = n0 + 4 * (tid % (kBN / 4)); the upper half of the block owns
// none.
template <bool kVec>
struct DgradBLoader {
  static constexpr int kGroupsPerRow = kBN / 4;
  const float* src;  // this thread's element in its GEMM-K row of the current stage
  bool active;
  int c;
  float4 v;

  __device__ static int Row() { return static_cast<int>(threadIdx.x) / kGroupsPerRow; }
  __device__ static int Group() { return static_cast<int>(threadIdx.x) % kGroupsPerRow; }

  __device__ void Init(const DgradArgs& a, const DgradPhase& ph, int n0) {
    active = static_cast<int>(threadIdx.x) < kBK * kGroupsPerRow;
    c = n0 + 4 * Group();
    src = a.wt + (ph.wt_row + Row()) * a.sh.c + c;
  }

  __device__ void Next(const DgradArgs& a) { src += static_cast<int64_t>(kBK) * a.sh.c; }

  __device__ void Load(const DgradArgs& a, int k_left) {
    v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (!active || Row() >= k_left) return;
    const int C = a.sh.c;
    if (kVec) {  // C % 4 == 0: the group is all in range or all out
      if (c < C) {
        SSLINV_CHECK_VEC_ALIGN(src, 16);
        v = __ldg(reinterpret_cast<const float4*>(src));
      }
    } else {
      v = make_float4(c < C ? __ldg(src) : 0.f, c + 1 < C ? __ldg(src + 1) : 0.f, c + 2 < C ? __ldg(src + 2) : 0.f,
                      c + 3 < C ? __ldg(src + 3) : 0.f);
    }
  }

  __device__ void Store(float* bs) const {
    if (!active) return;
    SSLINV_CHECK_VEC_ALIGN(bs + Row() * kBN + 4 * Group(), 16);
    *reinterpret_cast<float4*>(bs + Row() * kBN + 4 * Group()) = v;
  }
};

// The fused epilogue of one dx element: + residual, then the ReLU mask (keep where relu_y > 0 or NaN).
__device__ __forceinline__ float DgradOut(float v, const DgradArgs& a, int64_t i) {
  if (a.residual) v += __ldg(a.residual + i);
  if (a.relu_y) {
    const float y = __ldg(a.relu_y + i);
    if (!(y > 0.f || y != y)) v = 0.f;
  }
  return v;
}

// grid (phases x row_blocks, ceil(C / kBN)); block tile: 128 phase pixels x 64 channels.
template <bool kVec>
__global__ void __launch_bounds__(kThreads, 2) ConvDgradKernel(DgradArgs a) {
  SSLINV_DYNAMIC_SMEM(float, smem);
  const int phase = static_cast<int>(blockIdx.x) / a.row_blocks;
  const int m0 = (static_cast<int>(blockIdx.x) - phase * a.row_blocks) * kBM;
  const DgradPhase ph = MakeDgradPhase(a.sh, phase / a.phases_w, phase % a.phases_w);
  const int rows = a.sh.n * ph.hp * ph.wp;
  if (m0 >= rows) return;  // a smaller phase: the whole block leaves before any barrier
  const int n0 = static_cast<int>(blockIdx.y) * kBN;
  const int gemm_k = ph.taps_h * ph.taps_w * a.sh.k;

  DgradALoader<kVec> al;
  DgradBLoader<kVec> bl;
  al.Init(a, ph, m0, rows);
  bl.Init(a, ph, n0);
  float acc[8][4];
  Mainloop(a, al, bl, gemm_k, smem, acc);

  const int C = a.sh.c, per_img = ph.hp * ph.wp;
  const int c = n0 + 4 * (static_cast<int>(threadIdx.x) % 16);  // this thread's 4 channels
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + AccRow(i);
    if (m >= rows) continue;
    const int n = m / per_img, rest = m - n * per_img;
    const int pi = rest / ph.wp, pj = rest - pi * ph.wp;
    const int ih = pi * a.sh.stride_h + ph.a_h, iw = pj * a.sh.stride_w + ph.a_w;
    const int64_t pixel = (static_cast<int64_t>(n) * a.sh.h + ih) * a.sh.w + iw;
    const int64_t off = pixel * C + c;
    if (a.vec_out) {
      if (c < C) {  // C % 4 == 0: all four channels are in range
        float4 v = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        if (a.residual || a.relu_y) {
          v.x = DgradOut(v.x, a, off), v.y = DgradOut(v.y, a, off + 1);
          v.z = DgradOut(v.z, a, off + 2), v.w = DgradOut(v.w, a, off + 3);
        }
        SSLINV_CHECK_VEC_ALIGN(a.dx + off, 16);
        *reinterpret_cast<float4*>(a.dx + off) = v;
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (c + j < C) a.dx[off + j] = DgradOut(acc[i][j], a, off + j);
    }
  }
}

// w[K, C, R, S] -> w_t[R*S*K, C] in stride-phase order (TapPhaseRow). One pass over a filter of at
// most a few million floats: one thread per element in (r, s, k, c) order, so the writes run along
// channels (coalesced) and the strided reads hit cached lines.
__global__ void __launch_bounds__(kThreads) FilterToPhaseRowsKernel(const float* __restrict__ w, Conv2dShape sh,
                                                                     float* __restrict__ wt) {
  const int64_t total = int64_t{sh.k} * sh.c * sh.r * sh.s;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    int64_t rest = o;
    const int c = static_cast<int>(rest % sh.c);
    rest /= sh.c;
    const int k = static_cast<int>(rest % sh.k);
    rest /= sh.k;
    const int s = static_cast<int>(rest % sh.s);
    const int r = static_cast<int>(rest / sh.s);
    wt[TapPhaseRow(sh, r, s, k) * sh.c + c] = __ldg(w + ((int64_t{k} * sh.c + c) * sh.r + r) * sh.s + s);
  }
}

// ---------------------------------------------------------------------------------------------
// Launch.

template <bool kVec>
void LaunchDgrad(dim3 grid, cudaStream_t stream, const DgradArgs& a) {
  auto kernel = ConvDgradKernel<kVec>;
  SSLINV_LAUNCH(kernel, grid, kThreads, kSmemBytes, stream, a);
}

}  // namespace

size_t Conv2dBackwardDataWorkspaceBytes(const Conv2dShape& sh) {
  if (!Conv2dBackwardShapeIsValid(sh) || (sh.r == 1 && sh.s == 1)) return 0;
  return RoundUp256(sizeof(float) * static_cast<size_t>(sh.k) * sh.c * sh.r * sh.s);
}

cudaError_t LaunchConv2dBackwardData(const Conv2dShape& sh, const float* dy, const float* w, const float* residual,
                                     const float* relu_y, float* dx, void* workspace, cudaStream_t stream) {
  if (!Conv2dBackwardShapeIsValid(sh)) return cudaErrorInvalidValue;
  if (sh.n == 0) return cudaSuccess;
  const size_t ws_bytes = Conv2dBackwardDataWorkspaceBytes(sh);
  if (dy == nullptr || w == nullptr || dx == nullptr) return cudaErrorInvalidValue;
  if (ws_bytes > 0 && (workspace == nullptr || !detail::IsAligned(workspace, 16))) return cudaErrorInvalidValue;

  const float* wt = w;  // a 1x1 filter [K, C, 1, 1] is already w_t
  if (ws_bytes > 0) {
    float* reordered = static_cast<float*>(workspace);
    const int64_t total = int64_t{sh.k} * sh.c * sh.r * sh.s;
    SSLINV_LAUNCH(FilterToPhaseRowsKernel, detail::GridFor(total, kThreads, 0), kThreads, 0, stream, w, sh, reordered);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    wt = reordered;
  }

  DgradArgs a;
  a.sh = sh;
  a.P = sh.p();
  a.Q = sh.q();
  // Phases with a_h >= H hold no pixels (stride larger than the map): left out of the grid.
  const int phases_h = std::min(sh.stride_h, sh.h);
  a.phases_w = std::min(sh.stride_w, sh.w);
  const int64_t max_rows = int64_t{sh.n} * CeilDiv(sh.h, sh.stride_h) * CeilDiv(sh.w, sh.stride_w);  // phase (0, 0)
  a.row_blocks = static_cast<int>(CeilDiv(max_rows, kBM));
  const int64_t blocks_x = int64_t{phases_h} * a.phases_w * a.row_blocks;
  if (blocks_x > INT_MAX) return cudaErrorInvalidValue;
  a.dy = dy;
  a.wt = wt;
  a.residual = residual;
  a.relu_y = relu_y;
  a.dx = dx;
  a.vec_out = sh.c % 4 == 0 && detail::IsAligned(dx, 16) && (residual == nullptr || detail::IsAligned(residual, 16)) &&
              (relu_y == nullptr || detail::IsAligned(relu_y, 16));
  // Vector gathers: dy along K and w_t along C in whole float4 groups.
  const bool vec = sh.k % 4 == 0 && sh.c % 4 == 0 && detail::IsAligned(dy, 16) && detail::IsAligned(wt, 16);
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(CeilDiv(sh.c, kBN)));
  if (vec) LaunchDgrad<true>(grid, stream, a);
  else LaunchDgrad<false>(grid, stream, a);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
