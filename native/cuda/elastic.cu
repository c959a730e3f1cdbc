// CUDA elastic deformation batched over views (see elastic.cuh), bit-identical to ElasticU8 in
// native/cpu/geometric.cc, whose stages it runs as four launches over all views at once (grid.y is
// the view, or for the blur the plan whose sigma a field uses):
//   1. WarpKernel:        cv::warpAffine of the source into a per-view warped image (CvWarpAffineLinear);
//   2. BlurPassKernel<0>: the 17-tap row pass of both noise fields (CvGaussianBlur17, pass 0);
//   3. BlurPassKernel<1>: the column pass into the displacement fields (pass 1);
//   4. RemapKernel:       alpha scaling, map rounding and cv::remap of the warped image
//                         (CvRemapDisplaced).
// Every kernel is a gather with one thread per output pixel (all channels) or field value, so no
// result depends on the launch geometry. The displacement fields go through memory rather than being
// fused into the remap so that GaussianBlur17FieldsF32 runs the very same blur kernels and the tests
// can compare the float32 fields bit for bit, not only the uint8 images they end in.
#include "cuda/elastic.cuh"

#include <cmath>
#include <cstring>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "ops/geometric.h"

namespace sslinv::cuda {

namespace {

using detail::AddRn;
using detail::GridFor;
using detail::kThreads;
using detail::MulRn;

constexpr int64_t kMaxSide = 32767;   // as ElasticU8: OpenCV's remap indexes with int16
constexpr int64_t kMaxViews = 65535;  // grid.y
constexpr size_t kAlign = 16;
constexpr int kTaps = 17;

inline size_t AlignUp(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// What the kernels need of a view (or, for the blur alone, of a field).
struct Plan {
  float k[kTaps];  // cv::getGaussianKernel(17, sigma, CV_32F)
  float alpha;     // float32(alpha); unused by the blur alone
};

// cv::borderInterpolate for BORDER_REFLECT_101 in closed form: reflection about 0 and len - 1 has
// period 2 (len - 1). The CPU's Reflect101 reflects step by step; both agree for every |p| < 2^31
// (and here |p| <= 32768 + 16).
__device__ __forceinline__ int32_t Reflect101(int32_t p, int32_t len) {
  if (static_cast<uint32_t>(p) < static_cast<uint32_t>(len)) return p;
  if (len == 1) return 0;
  const int32_t period = 2 * (len - 1);
  const int32_t q = (p < 0 ? -p : p) % period;
  return q < len ? q : period - q;
}

__device__ __forceinline__ int32_t SaturateShort(int32_t v) { return v < -32768 ? -32768 : (v > 32767 ? 32767 : v); }

// OpenCV's cvRound of a float as x86-64's cvtss2si computes it: half to even, and INT_MIN for NaN and
// values out of int32 range, where a GPU's conversion would saturate instead.
__device__ __forceinline__ int32_t CvRoundF(float v) {
  if (!(v >= -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(rintf(v));
}

// OpenCV's 8-bit bilinear interpolation at (X, Y) in 1/32 pixel (see BilinearTap in
// native/cpu/geometric.cc): 15-bit weights, taps through BORDER_REFLECT_101, (sum + 2^14) >> 15.
// The CPU reflects only when a tap is outside; reflecting an inside tap is the identity.
template <int C>
__device__ __forceinline__ void BilinearTap(const uint8_t* __restrict__ img, int32_t H, int32_t W, int32_t X,
                                            int32_t Y, uint8_t* __restrict__ out) {
  const int32_t sx = SaturateShort(X >> 5), sy = SaturateShort(Y >> 5), fx = X & 31, fy = Y & 31;
  const int64_t x0 = Reflect101(sx, W), x1 = Reflect101(sx + 1, W);
  const int64_t r0 = static_cast<int64_t>(Reflect101(sy, H)) * W, r1 = static_cast<int64_t>(Reflect101(sy + 1, H)) * W;
  const int32_t w0 = (32 - fy) * (32 - fx) * 32, w1 = (32 - fy) * fx * 32, w2 = fy * (32 - fx) * 32, w3 = fy * fx * 32;
  const uint8_t* p00 = img + (r0 + x0) * C;
  const uint8_t* p01 = img + (r0 + x1) * C;
  const uint8_t* p10 = img + (r1 + x0) * C;
  const uint8_t* p11 = img + (r1 + x1) * C;
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int32_t v = __ldg(p00 + c) * w0 + __ldg(p01 + c) * w1 + __ldg(p10 + c) * w2 + __ldg(p11 + c) * w3;
    out[c] = static_cast<uint8_t>((v + (1 << 14)) >> 15);
  }
}

// tables: per view adelta[W], bdelta[W], x0[H], y0[H] (CvWarpAffineTables).
template <int C>
__global__ void __launch_bounds__(kThreads)
    WarpKernel(const uint8_t* __restrict__ src, int64_t src_view_stride, int32_t H, int32_t W,
               const uint32_t* __restrict__ tables, uint8_t* __restrict__ warped) {
  const int64_t v = blockIdx.y, n = static_cast<int64_t>(H) * W;
  const uint8_t* s = src + v * src_view_stride;
  const uint32_t* ad = tables + v * 2 * (static_cast<int64_t>(W) + H);
  const uint32_t* bd = ad + W;
  const uint32_t* x0 = bd + W;
  const uint32_t* y0 = x0 + H;
  uint8_t* out = warped + v * n * C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int32_t y = static_cast<int32_t>(i / W), x = static_cast<int32_t>(i - static_cast<int64_t>(y) * W);
    // 1/1024 pixel in wrapping uint32 arithmetic, then 1/32 pixel by an arithmetic shift.
    const int32_t X = static_cast<int32_t>(x0[y] + ad[x]) >> 5;
    const int32_t Y = static_cast<int32_t>(y0[y] + bd[x]) >> 5;
    BilinearTap<C>(s, H, W, X, Y, out + i * C);
  }
}

// Pass 0 at (y, x) of one field: all 17 taps left to right, the chain starting from fmaf(tap, k0, 0)
// as the CPU's does. A row of width 1 is copied: OpenCV gives a side of length 1 a kernel of size 1.
__device__ __forceinline__ float RowPass(const float* __restrict__ field, int32_t W, const float* k, int32_t y,
                                         int32_t x) {
  const float* row = field + static_cast<int64_t>(y) * W;
  if (W == 1) return row[0];
  float acc = fmaf(row[Reflect101(x - 8, W)], k[0], 0.0f);
#pragma unroll
  for (int t = 1; t < kTaps; ++t) acc = fmaf(row[Reflect101(x - 8 + t, W)], k[t], acc);
  return acc;
}

// Pass 1 at (y, x) of one row-filtered field: the centre tap, then for t = 1..8 the pair
// (row y + t) + (row y - t) rounded to float first and fused into the chain, as OpenCV's symmetric
// column filter does. A column of height 1 is copied.
__device__ __forceinline__ float ColumnPass(const float* __restrict__ field, int32_t H, int32_t W, const float* k,
                                            int32_t y, int32_t x) {
  const float* col = field + x;
  if (H == 1) return col[0];
  float acc = fmaf(col[static_cast<int64_t>(y) * W], k[8], 0.0f);
#pragma unroll
  for (int t = 1; t <= 8; ++t) {
    const float dn = col[static_cast<int64_t>(Reflect101(y + t, H)) * W];
    const float up = col[static_cast<int64_t>(Reflect101(y - t, H)) * W];
    acc = fmaf(AddRn(dn, up), k[8 + t], acc);
  }
  return acc;
}

// One pass over fields of H x W: field blockIdx.y * gridDim.z + blockIdx.z uses plans[blockIdx.y]'s
// kernel (the two fields of a view share its sigma).
template <int kPass>
__global__ void __launch_bounds__(kThreads)
    BlurPassKernel(const float* __restrict__ in, int32_t H, int32_t W, const Plan* __restrict__ plans,
                   float* __restrict__ out) {
  const int64_t n = static_cast<int64_t>(H) * W;
  const int64_t off = (static_cast<int64_t>(blockIdx.y) * gridDim.z + blockIdx.z) * n;
  float k[kTaps];
#pragma unroll
  for (int t = 0; t < kTaps; ++t) k[t] = plans[blockIdx.y].k[t];
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int32_t y = static_cast<int32_t>(i / W), x = static_cast<int32_t>(i - static_cast<int64_t>(y) * W);
    out[off + i] = kPass == 0 ? RowPass(in + off, W, k, y, x) : ColumnPass(in + off, H, W, k, y, x);
  }
}

// disp: per view dx[H, W] then dy[H, W]. map = float32(index + d * alpha), each step rounded (the
// CPU's SSE and scalar code both multiply, then add), then cvRound(map * 32).
template <int C>
__global__ void __launch_bounds__(kThreads)
    RemapKernel(const uint8_t* __restrict__ warped, const float* __restrict__ disp, int32_t H, int32_t W,
                const Plan* __restrict__ plans, uint8_t* __restrict__ dst) {
  const int64_t v = blockIdx.y, n = static_cast<int64_t>(H) * W;
  const float alpha = plans[v].alpha;
  const uint8_t* img = warped + v * n * C;
  const float* dx = disp + v * 2 * n;
  const float* dy = dx + n;
  uint8_t* out = dst + v * n * C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int32_t y = static_cast<int32_t>(i / W), x = static_cast<int32_t>(i - static_cast<int64_t>(y) * W);
    const float mx = AddRn(static_cast<float>(x), MulRn(dx[i], alpha));
    const float my = AddRn(static_cast<float>(y), MulRn(dy[i], alpha));
    BilinearTap<C>(img, H, W, CvRoundF(MulRn(mx, 32.0f)), CvRoundF(MulRn(my, 32.0f)), out + i * C);
  }
}

// The blur's plan for one sigma (the CPU's kernel, from the shared host function).
Plan BlurPlan(double sigma, double alpha) {
  Plan p;
  std::memset(&p, 0, sizeof p);
  CvGaussianKernel17(sigma, p.k);
  p.alpha = static_cast<float>(alpha);
  return p;
}

bool ValidSides(int64_t h, int64_t w) { return h >= 1 && w >= 1 && h <= kMaxSide && w <= kMaxSide; }

bool ValidWorkspace(const void* workspace, size_t bytes, size_t needed) {
  return workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % kAlign == 0 && bytes >= needed;
}

// Both passes over nplans x per_plan fields of h x w: src -> tmp (rows) -> dst (columns).
void LaunchBlur(const float* src, int64_t h, int64_t w, const Plan* plans, int64_t nplans, unsigned per_plan,
                float* tmp, float* dst, cudaStream_t stream) {
  const dim3 grid(GridFor(h * w, kThreads, 0), static_cast<unsigned>(nplans), per_plan);
  const int32_t H = static_cast<int32_t>(h), W = static_cast<int32_t>(w);
  SSLINV_LAUNCH(BlurPassKernel<0>, grid, kThreads, 0, stream, src, H, W, plans, tmp);
  SSLINV_LAUNCH(BlurPassKernel<1>, grid, kThreads, 0, stream, tmp, H, W, plans, dst);
}

template <int C>
void LaunchDeform(const uint8_t* src, int64_t src_view_stride, int32_t H, int32_t W, const uint32_t* tables,
                  const float* disp, const Plan* plans, int64_t views, uint8_t* warped, uint8_t* dst,
                  cudaStream_t stream) {
  const dim3 grid(GridFor(static_cast<int64_t>(H) * W, kThreads, 0), static_cast<unsigned>(views));
  SSLINV_LAUNCH(WarpKernel<C>, grid, kThreads, 0, stream, src, src_view_stride, H, W, tables, warped);
  SSLINV_LAUNCH(RemapKernel<C>, grid, kThreads, 0, stream, warped, disp, H, W, plans, dst);
}

// The elastic workspace: [plans][warp tables] (staged from the host in one copy), then the row-pass
// fields, the displacement fields and the warped images.
struct ElasticLayout {
  size_t plans = 0, tables = 0, rows = 0, disp = 0, warped = 0, total = 0;
  ElasticLayout(int64_t views, int64_t h, int64_t w, int64_t c) {
    const size_t v = static_cast<size_t>(views), hw = static_cast<size_t>(h * w);
    tables = AlignUp(v * sizeof(Plan));
    rows = tables + AlignUp(v * 2 * static_cast<size_t>(h + w) * sizeof(uint32_t));
    disp = rows + AlignUp(v * 2 * hw * sizeof(float));
    warped = disp + AlignUp(v * 2 * hw * sizeof(float));
    total = warped + AlignUp(v * hw * static_cast<size_t>(c));
  }
};

}  // namespace

size_t ElasticWorkspaceBytes(int64_t views, int64_t h, int64_t w, int64_t c) {
  if (views < 0 || h < 0 || w < 0 || c < 0) return 0;
  return ElasticLayout(views, h, w, c).total;
}

cudaError_t ElasticViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                           const float* noise, const ElasticViewParams* params, int64_t views, uint8_t* dst,
                           void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (src == nullptr || dst == nullptr || noise == nullptr || params == nullptr || !ValidSides(h, w) || c < 1 ||
      c > 4 || views < 1 || views > kMaxViews || src_view_stride < 0) {
    return cudaErrorInvalidValue;
  }
  const ElasticLayout layout(views, h, w, c);
  if (!ValidWorkspace(workspace, workspace_bytes, layout.total)) return cudaErrorInvalidValue;
  // Per view: the kernel and alpha, then ElasticU8's affine set-up (ElasticAffineMatrix and warpAffine's
  // tables), all by the CPU op's own functions.
  std::vector<uint8_t> host(layout.rows, 0);
  Plan* plans = reinterpret_cast<Plan*>(host.data());
  uint32_t* tables = reinterpret_cast<uint32_t*>(host.data() + layout.tables);
  const int64_t per_view = 2 * (h + w);
  for (int64_t v = 0; v < views; ++v) {
    const ElasticViewParams& p = params[v];
    if (!std::isfinite(p.sigma) || !(p.sigma > 0) || !std::isfinite(p.alpha)) return cudaErrorInvalidValue;
    for (float o : p.affine_offsets) {
      if (!std::isfinite(o)) return cudaErrorInvalidValue;
    }
    plans[v] = BlurPlan(p.sigma, p.alpha);
    double M[6];
    ElasticAffineMatrix(h, w, p.affine_offsets, M);
    uint32_t* t = tables + v * per_view;
    CvWarpAffineTables(M, h, w, t, t + w, t + 2 * w, t + 2 * w + h);
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  const cudaError_t e = detail::CopyToDevice(ws, host.data(), host.size(), stream);
  if (e != cudaSuccess) return e;
  const Plan* dplans = reinterpret_cast<const Plan*>(ws);
  const uint32_t* dtables = reinterpret_cast<const uint32_t*>(ws + layout.tables);
  float* rows = reinterpret_cast<float*>(ws + layout.rows);
  float* disp = reinterpret_cast<float*>(ws + layout.disp);
  uint8_t* warped = ws + layout.warped;
  LaunchBlur(noise, h, w, dplans, views, 2, rows, disp, stream);
  const int32_t H = static_cast<int32_t>(h), W = static_cast<int32_t>(w);
  switch (c) {
    case 1: LaunchDeform<1>(src, src_view_stride, H, W, dtables, disp, dplans, views, warped, dst, stream); break;
    case 2: LaunchDeform<2>(src, src_view_stride, H, W, dtables, disp, dplans, views, warped, dst, stream); break;
    case 3: LaunchDeform<3>(src, src_view_stride, H, W, dtables, disp, dplans, views, warped, dst, stream); break;
    default: LaunchDeform<4>(src, src_view_stride, H, W, dtables, disp, dplans, views, warped, dst, stream); break;
  }
  return cudaGetLastError();
}

size_t GaussianBlur17WorkspaceBytes(int64_t fields, int64_t h, int64_t w) {
  if (fields < 0 || h < 0 || w < 0) return 0;
  return AlignUp(static_cast<size_t>(fields) * sizeof(Plan)) +
         AlignUp(static_cast<size_t>(fields) * static_cast<size_t>(h * w) * sizeof(float));
}

cudaError_t GaussianBlur17FieldsF32(const float* src, int64_t h, int64_t w, const double* sigmas, int64_t fields,
                                    float* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (src == nullptr || dst == nullptr || sigmas == nullptr || !ValidSides(h, w) || fields < 1 ||
      fields > kMaxViews || !ValidWorkspace(workspace, workspace_bytes, GaussianBlur17WorkspaceBytes(fields, h, w))) {
    return cudaErrorInvalidValue;
  }
  std::vector<Plan> plans(static_cast<size_t>(fields));
  for (int64_t f = 0; f < fields; ++f) {
    if (!std::isfinite(sigmas[f]) || !(sigmas[f] > 0)) return cudaErrorInvalidValue;
    plans[static_cast<size_t>(f)] = BlurPlan(sigmas[f], 0.0);
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  const cudaError_t e = detail::CopyToDevice(ws, plans.data(), plans.size() * sizeof(Plan), stream);
  if (e != cudaSuccess) return e;
  float* rows = reinterpret_cast<float*>(ws + AlignUp(plans.size() * sizeof(Plan)));
  LaunchBlur(src, h, w, reinterpret_cast<const Plan*>(ws), fields, 1, rows, dst, stream);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
