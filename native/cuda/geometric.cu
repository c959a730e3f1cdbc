// CUDA geometric ops batched over views (see geometric.cuh): Pillow's nearest affine engines,
// rotation, torchvision's affine, flips and crop boxes, bit-identical to native/cpu/geometric.cc.
//
// One kernel serves every op. The host turns each view's parameters into a ViewPlan (what the CPU
// op would run: a copy, a transpose, a crop, or one of Pillow's three affine engines with its
// coefficients) plus, where Pillow's arithmetic is a running double sum, the tabulated positions;
// the device then gathers one source pixel (or zero) per output pixel. Block row blockIdx.y is the
// view, so the mode is uniform over a block and the switch below does not diverge.
#include "cuda/geometric.cuh"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

using detail::kThreads;

enum Mode : int32_t {
  kCopy = 0,
  kFlipLeftRight,
  kFlipTopBottom,
  kRotate90,   // square images only, as Pillow's rotate uses the transpose there
  kRotate180,
  kRotate270,
  kCrop,
  kScale,      // ImagingScaleAffine: tabulated source column / row per output column / row
  kFixed,      // 16.16 fixed point
  kFloat,      // double stepping
};

struct ViewPlan {
  int32_t mode;
  int32_t out_h, out_w;
  int32_t x0, y0;     // crop origin
  uint32_t fx[6];     // kFixed: Fix16 of a0, a1, a2 + a0/2 + a1/2, a3, a4, a5 + a3/2 + a4/2
  double a0, a3;      // kFloat: the steps along an output row
  int64_t src_offset, dst_offset;  // bytes
  int64_t itab;       // kScale: first of out_w column then out_h row indices (-1 = outside)
  int64_t dtab;       // kFloat: first of out_h row-start x then out_h row-start y positions
};

constexpr int64_t kMaxSide = int64_t{1} << 24;
constexpr int64_t kMaxPixels = int64_t{1} << 34;  // per image, as the CPU colour ops bound it
constexpr int64_t kMaxViews = 65535;  // grid.y
constexpr size_t kAlign = 16;

inline size_t AlignUp(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// The host-side set-up (PyMod, Pillow's engine choice, the scaling engine's tables, the 16.16
// coefficients, the double engine's row starts) is the CPU op's own, from ops/geometric.h: it runs
// in native/cpu/geometric.cc, compiled without FMA contraction, so nothing here needs to guard its
// roundings against nvcc's host compiler.

// The kFloat kernel's per-pixel conversions (device code; the CPU op's are the same two lines in
// native/cpu/geometric.cc). C's (int) conversion as x86-64 performs it: truncation, INT_MIN out of
// range and for NaN. A GPU's conversion saturates instead, so the range check is explicit.
__device__ __forceinline__ int32_t TruncToInt(double v) {
  if (!(v > -2147483649.0 && v < 2147483648.0)) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// Pillow's COORD(v): -1 for negative positions, else truncation.
__device__ __forceinline__ int32_t PilCoord(double v) { return v < 0.0 ? -1 : TruncToInt(v); }

// The per-view host work, accumulated into one staging buffer that mirrors the workspace layout:
// plans, then the double tables, then the int32 tables.
struct Staging {
  std::vector<ViewPlan> plans;
  std::vector<double> dtab;
  std::vector<int32_t> itab;
};

ViewPlan BasePlan(int32_t mode, int64_t v, int64_t out_h, int64_t out_w, int64_t c, int64_t src_view_stride) {
  ViewPlan p;
  std::memset(&p, 0, sizeof p);
  p.mode = mode;
  p.out_h = static_cast<int32_t>(out_h);
  p.out_w = static_cast<int32_t>(out_w);
  p.src_offset = v * src_view_stride;
  p.dst_offset = v * out_h * out_w * c;
  return p;
}

// Pillow's engine choice and set-up for matrix `a` (PilAffineImpl in native/cpu/geometric.cc).
void PlanAffine(const double a[6], int64_t h, int64_t w, int64_t out_h, int64_t out_w, ViewPlan& p, Staging& st) {
  switch (SelectPilAffineEngine(a, out_h, out_w)) {
    case PilAffineEngine::kScale: {
      // ImagingScaleAffine's tables; columns outside [xmin, xmax) (the valid run) become -1, as do
      // rows outside the image.
      p.mode = kScale;
      p.itab = static_cast<int64_t>(st.itab.size());
      st.itab.resize(st.itab.size() + static_cast<size_t>(out_w + out_h));
      int32_t* xintab = st.itab.data() + p.itab;
      int32_t* yintab = xintab + out_w;
      int64_t xmin = 0, xmax = 0;
      PilScaleAffineTables(a, w, out_h, out_w, xintab, yintab, &xmin, &xmax);
      for (int64_t x = 0; x < out_w; ++x) {
        if (x < xmin || x >= xmax) xintab[x] = -1;
      }
      for (int64_t y = 0; y < out_h; ++y) {
        if (yintab[y] < 0 || yintab[y] >= h) yintab[y] = -1;
      }
      break;
    }
    case PilAffineEngine::kFixed:
      p.mode = kFixed;
      PilAffineFixedCoefficients(a, p.fx);
      break;
    case PilAffineEngine::kFloat: {
      // The double engine: row starts are running sums over rows (tabulated on the host); the device
      // walks each row adding a0 and a3.
      p.mode = kFloat;
      p.a0 = a[0];
      p.a3 = a[3];
      p.dtab = static_cast<int64_t>(st.dtab.size());
      st.dtab.resize(st.dtab.size() + static_cast<size_t>(2 * out_h));
      double* xs = st.dtab.data() + p.dtab;
      PilAffineFloatRowStarts(a, out_h, xs, xs + out_h);
      break;
    }
  }
}

// Source pixel read by output pixel (r, col) of a non-kFloat view, or -1 for a zero.
__device__ __forceinline__ int64_t SourcePixel(const ViewPlan& p, const int32_t* itab, int32_t H, int32_t W,
                                               int32_t r, int32_t col) {
  switch (p.mode) {
    case kCopy: return static_cast<int64_t>(r) * W + col;
    case kFlipLeftRight: return static_cast<int64_t>(r) * W + (W - 1 - col);
    case kFlipTopBottom: return static_cast<int64_t>(H - 1 - r) * W + col;
    case kRotate90: return static_cast<int64_t>(col) * W + (W - 1 - r);
    case kRotate180: return static_cast<int64_t>(H - 1 - r) * W + (W - 1 - col);
    case kRotate270: return static_cast<int64_t>(H - 1 - col) * W + r;
    case kCrop: {
      const int64_t sy = static_cast<int64_t>(p.y0) + r, sx = static_cast<int64_t>(p.x0) + col;
      return (sy >= 0 && sy < H && sx >= 0 && sx < W) ? sy * W + sx : -1;
    }
    case kScale: {
      const int32_t xs = itab[p.itab + col], ys = itab[p.itab + p.out_w + r];
      return (xs < 0 || ys < 0) ? -1 : static_cast<int64_t>(ys) * W + xs;
    }
    default: {  // kFixed: y additions of a1 then col additions of a0, modulo 2^32
      const uint32_t xx = p.fx[2] + static_cast<uint32_t>(r) * p.fx[1] + static_cast<uint32_t>(col) * p.fx[0];
      const uint32_t yy = p.fx[5] + static_cast<uint32_t>(r) * p.fx[4] + static_cast<uint32_t>(col) * p.fx[3];
      const uint32_t xin = static_cast<uint32_t>(static_cast<int32_t>(xx) >> 16);
      const uint32_t yin = static_cast<uint32_t>(static_cast<int32_t>(yy) >> 16);
      return (xin < static_cast<uint32_t>(W) && yin < static_cast<uint32_t>(H))
                 ? static_cast<int64_t>(yin) * W + xin
                 : -1;
    }
  }
}

template <int C>
__device__ __forceinline__ void PutPixel(uint8_t* out, const uint8_t* src, int64_t s) {
  if (s < 0) {
#pragma unroll
    for (int k = 0; k < C; ++k) out[k] = 0;
  } else {
    const uint8_t* in = src + s * C;
#pragma unroll
    for (int k = 0; k < C; ++k) out[k] = __ldg(in + k);
  }
}

// grid: (blocks per view, views); each view's pixels (or, for kFloat, rows) are grid-strided.
template <int C>
__global__ void __launch_bounds__(kThreads)
    GeometricKernel(const uint8_t* __restrict__ src, int32_t H, int32_t W, const ViewPlan* __restrict__ plans,
                    const int32_t* __restrict__ itab, const double* __restrict__ dtab, uint8_t* __restrict__ dst) {
  const ViewPlan p = plans[blockIdx.y];
  const uint8_t* s = src + p.src_offset;
  uint8_t* d = dst + p.dst_offset;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  if (p.mode == kFloat) {
    // Pillow's double engine: positions are stepped by repeated additions along the row.
    for (int64_t r = tid; r < p.out_h; r += stride) {
      double xx = dtab[p.dtab + r], yy = dtab[p.dtab + p.out_h + r];
      uint8_t* out = d + r * p.out_w * C;
      for (int32_t col = 0; col < p.out_w; ++col) {
        const int32_t xin = PilCoord(xx), yin = PilCoord(yy);
        const bool inside = xin >= 0 && xin < W && yin >= 0 && yin < H;
        PutPixel<C>(out + static_cast<int64_t>(col) * C, s, inside ? static_cast<int64_t>(yin) * W + xin : -1);
        xx += p.a0;
        yy += p.a3;
      }
    }
    return;
  }
  const int64_t npix = static_cast<int64_t>(p.out_h) * p.out_w;
  for (int64_t i = tid; i < npix; i += stride) {
    const int32_t r = static_cast<int32_t>(i / p.out_w), col = static_cast<int32_t>(i - static_cast<int64_t>(r) * p.out_w);
    PutPixel<C>(d + i * C, s, SourcePixel(p, itab, H, W, r, col));
  }
}

bool ValidImage(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride, int64_t views) {
  return src != nullptr && h >= 1 && w >= 1 && h <= kMaxSide && w <= kMaxSide && h * w <= kMaxPixels && c >= 1 &&
         c <= 4 &&
         views >= 1 && views <= kMaxViews && src_view_stride >= 0;
}

// Copies the staged plans and tables into the workspace and launches the kernel.
cudaError_t Launch(const uint8_t* src, int64_t h, int64_t w, int64_t c, const Staging& st, uint8_t* dst,
                   void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const size_t views = st.plans.size();
  const size_t plan_bytes = AlignUp(views * sizeof(ViewPlan));
  const size_t d_bytes = AlignUp(st.dtab.size() * sizeof(double));
  const size_t i_bytes = AlignUp(st.itab.size() * sizeof(int32_t));
  if (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % kAlign != 0 ||
      workspace_bytes < plan_bytes + d_bytes + i_bytes) {
    return cudaErrorInvalidValue;
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  // One host buffer, one copy.
  std::vector<uint8_t> host(plan_bytes + d_bytes + i_bytes, 0);
  std::memcpy(host.data(), st.plans.data(), views * sizeof(ViewPlan));
  if (!st.dtab.empty()) std::memcpy(host.data() + plan_bytes, st.dtab.data(), st.dtab.size() * sizeof(double));
  if (!st.itab.empty()) {
    std::memcpy(host.data() + plan_bytes + d_bytes, st.itab.data(), st.itab.size() * sizeof(int32_t));
  }
  cudaError_t e = detail::CopyToDevice(ws, host.data(), host.size(), stream);
  if (e != cudaSuccess) return e;
  const ViewPlan* plans = reinterpret_cast<const ViewPlan*>(ws);
  const double* dtab = reinterpret_cast<const double*>(ws + plan_bytes);
  const int32_t* itab = reinterpret_cast<const int32_t*>(ws + plan_bytes + d_bytes);
  int64_t max_pix = 1;
  for (const ViewPlan& p : st.plans) max_pix = std::max<int64_t>(max_pix, static_cast<int64_t>(p.out_h) * p.out_w);
  const dim3 grid(detail::GridFor(max_pix, kThreads, 0), static_cast<unsigned>(views));
  const int32_t H = static_cast<int32_t>(h), W = static_cast<int32_t>(w);
  switch (c) {
    case 1: SSLINV_LAUNCH(GeometricKernel<1>, grid, kThreads, 0, stream, src, H, W, plans, itab, dtab, dst); break;
    case 2: SSLINV_LAUNCH(GeometricKernel<2>, grid, kThreads, 0, stream, src, H, W, plans, itab, dtab, dst); break;
    case 3: SSLINV_LAUNCH(GeometricKernel<3>, grid, kThreads, 0, stream, src, H, W, plans, itab, dtab, dst); break;
    default: SSLINV_LAUNCH(GeometricKernel<4>, grid, kThreads, 0, stream, src, H, W, plans, itab, dtab, dst); break;
  }
  return cudaGetLastError();
}

}  // namespace

size_t GeometricWorkspaceBytes(int64_t views, int64_t out_h, int64_t out_w) {
  if (views < 0 || out_h < 0 || out_w < 0) return 0;
  const size_t v = static_cast<size_t>(views);
  // Worst case: every view uses the double engine (2 out_h doubles) or the scaling engine
  // (out_w + out_h int32); a view uses at most one of them.
  return AlignUp(v * sizeof(ViewPlan)) + AlignUp(v * 2 * static_cast<size_t>(out_h) * sizeof(double)) +
         AlignUp(v * static_cast<size_t>(out_h + out_w) * sizeof(int32_t));
}

cudaError_t PilAffineNearestViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                    const double* matrices, int64_t views, int64_t out_h, int64_t out_w,
                                    uint8_t* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (!ValidImage(src, h, w, c, src_view_stride, views) || matrices == nullptr || dst == nullptr || out_h < 1 ||
      out_w < 1 || out_h > kMaxSide || out_w > kMaxSide || out_h * out_w > kMaxPixels) {
    return cudaErrorInvalidValue;
  }
  Staging st;
  st.plans.reserve(static_cast<size_t>(views));
  for (int64_t v = 0; v < views; ++v) {
    ViewPlan p = BasePlan(kFixed, v, out_h, out_w, c, src_view_stride);
    PlanAffine(matrices + 6 * v, h, w, out_h, out_w, p, st);
    st.plans.push_back(p);
  }
  return Launch(src, h, w, c, st, dst, workspace, workspace_bytes, stream);
}

cudaError_t RotateViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                          const double* angles, int64_t views, uint8_t* dst, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream) {
  if (!ValidImage(src, h, w, c, src_view_stride, views) || angles == nullptr || dst == nullptr) {
    return cudaErrorInvalidValue;
  }
  Staging st;
  st.plans.reserve(static_cast<size_t>(views));
  for (int64_t v = 0; v < views; ++v) {
    if (!std::isfinite(angles[v])) return cudaErrorInvalidValue;
    // RotateU8: the reduced angle picks a copy, a transpose, or Pillow's matrix.
    const double a = PyMod(angles[v], 360.0);
    ViewPlan p = BasePlan(kCopy, v, h, w, c, src_view_stride);
    if (a == 0) {
      p.mode = kCopy;
    } else if (a == 180) {
      p.mode = kRotate180;
    } else if ((a == 90 || a == 270) && w == h) {
      p.mode = a == 90 ? kRotate90 : kRotate270;
    } else {
      double m[6];
      PilRotateMatrix(a, w, h, m);
      PlanAffine(m, h, w, h, w, p, st);
    }
    st.plans.push_back(p);
  }
  return Launch(src, h, w, c, st, dst, workspace, workspace_bytes, stream);
}

cudaError_t TorchvisionAffineViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                     const AffineParams* params, int64_t views, uint8_t* dst, void* workspace,
                                     size_t workspace_bytes, cudaStream_t stream) {
  if (!ValidImage(src, h, w, c, src_view_stride, views) || params == nullptr || dst == nullptr) {
    return cudaErrorInvalidValue;
  }
  Staging st;
  st.plans.reserve(static_cast<size_t>(views));
  const double center[2] = {static_cast<double>(w) * 0.5, static_cast<double>(h) * 0.5};
  for (int64_t v = 0; v < views; ++v) {
    const AffineParams& q = params[v];
    const double vals[] = {q.angle, q.translate[0], q.translate[1], q.scale, q.shear[0], q.shear[1]};
    for (double x : vals) {
      if (!std::isfinite(x)) return cudaErrorInvalidValue;
    }
    if (!(q.scale > 0)) return cudaErrorInvalidValue;
    double m[6];
    TorchvisionInverseAffineMatrix(center, q, m);
    ViewPlan p = BasePlan(kFixed, v, h, w, c, src_view_stride);
    PlanAffine(m, h, w, h, w, p, st);
    st.plans.push_back(p);
  }
  return Launch(src, h, w, c, st, dst, workspace, workspace_bytes, stream);
}

cudaError_t FlipViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                        const uint8_t* horizontal, int64_t views, uint8_t* dst, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream) {
  if (!ValidImage(src, h, w, c, src_view_stride, views) || horizontal == nullptr || dst == nullptr) {
    return cudaErrorInvalidValue;
  }
  Staging st;
  st.plans.reserve(static_cast<size_t>(views));
  for (int64_t v = 0; v < views; ++v) {
    st.plans.push_back(BasePlan(horizontal[v] ? kFlipLeftRight : kFlipTopBottom, v, h, w, c, src_view_stride));
  }
  return Launch(src, h, w, c, st, dst, workspace, workspace_bytes, stream);
}

cudaError_t CropBoxesViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                             const int64_t* boxes, int64_t views, uint8_t* dst, int64_t dst_view_stride,
                             void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (!ValidImage(src, h, w, c, src_view_stride, views) || boxes == nullptr || dst == nullptr ||
      dst_view_stride < 0) {
    return cudaErrorInvalidValue;
  }
  Staging st;
  st.plans.reserve(static_cast<size_t>(views));
  for (int64_t v = 0; v < views; ++v) {
    const int64_t x0 = boxes[4 * v], y0 = boxes[4 * v + 1], x1 = boxes[4 * v + 2], y1 = boxes[4 * v + 3];
    // CropBoxU8's limits.
    if (x1 <= x0 || y1 <= y0 || x1 - x0 > kMaxSide || y1 - y0 > kMaxSide || std::abs(x0) > kMaxSide ||
        std::abs(y0) > kMaxSide) {
      return cudaErrorInvalidValue;
    }
    const int64_t oh = y1 - y0, ow = x1 - x0;
    if (oh * ow > kMaxPixels || oh * ow * c > dst_view_stride) return cudaErrorInvalidValue;
    ViewPlan p = BasePlan(kCrop, v, oh, ow, c, src_view_stride);
    p.dst_offset = v * dst_view_stride;
    p.x0 = static_cast<int32_t>(x0);
    p.y0 = static_cast<int32_t>(y0);
    st.plans.push_back(p);
  }
  return Launch(src, h, w, c, st, dst, workspace, workspace_bytes, stream);
}

}  // namespace sslinv::cuda
