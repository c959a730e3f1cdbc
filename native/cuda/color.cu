// CUDA photometric ops, batched over views (see color.cuh).
//
// Layout of the per-view kernels: a grid-stride loop over the source pixels along grid.x and groups
// of kViewsPerThread views along grid.y. A thread reads its source pixel once, computes what every
// view shares (the luma, the SMOOTH-filtered value, the HSV triple), then writes that pixel of each
// view of its group: for one view, consecutive threads write consecutive pixels. The per-view work is
// a few float operations, so the source-side work (9 taps for sharpness, three divisions for HSV) is
// what the view loop amortises; the group split keeps enough blocks busy when an image is small.
//
// Every arithmetic step is the CPU op's (native/cpu/color.cc), with its C types; the comments there
// explain where each step comes from in Pillow.
#include "cuda/color.cuh"

#include <cmath>

#include "cuda/kernel_util.cuh"
#include "ops/pil_integer.h"  // EqualizeLut

namespace sslinv::cuda {

namespace {

using detail::AddRn;
using detail::DivRn;
using detail::GridFor;
using detail::kThreads;
using detail::MulRn;
using detail::SubRn;

constexpr int64_t kMaxSide = int64_t{1} << 24;
// Pixel indices stay below 2^31 so that per-pixel indexing can use int64 math without overflow
// anywhere (views * pixels * C is computed in int64).
constexpr int64_t kMaxPixels = (int64_t{1} << 31) - 1;
// Views written by one thread (grid.y = ceil(views / kViewsPerThread) groups).
constexpr int kViewsPerThread = 16;
// Threads of the one-block reductions (the contrast mean, the equalize histograms).
constexpr int kReduceThreads = 256;

// Per-view parameters, passed by value in the kernel's parameter block.
struct ViewFloats {
  float v[kMaxViewsPerLaunch];
};
struct ViewBytes {
  uint8_t v[kMaxViewsPerLaunch];
};

// Correctly rounded double operations for the hue conversion (Pillow computes these steps in C
// double). nvcc would not contract them under -fmad=false; the intrinsics make it independent of
// that flag. The emulation build's x86-64 SSE2 double arithmetic is IEEE and not contracted.
#if defined(__CUDACC__)
__device__ __forceinline__ double DMul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double DAdd(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double DSub(double a, double b) { return __dadd_rn(a, -b); }
__device__ __forceinline__ double DDiv(double a, double b) { return __ddiv_rn(a, b); }
#else
inline double DMul(double a, double b) { return a * b; }
inline double DAdd(double a, double b) { return a + b; }
inline double DSub(double a, double b) { return a - b; }
inline double DDiv(double a, double b) { return a / b; }
#endif

bool ValidImage(int64_t height, int64_t width) {
  return height >= 1 && width >= 1 && height <= kMaxSide && width <= kMaxSide && height * width <= kMaxPixels;
}

// Pillow's rgb2l: ITU-R 601-2 luma in 16-bit fixed point.
__device__ __forceinline__ int Luma(int r, int g, int b) { return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; }

__device__ __forceinline__ int Clip8(int v) { return v <= 0 ? 0 : (v < 256 ? v : 255); }

// Image.blend(im1, im2, alpha) per value (ImagingBlend): t = in1 + alpha * (in2 - in1) in C float;
// truncated inside [0, 1], clipped to 0..255 and truncated outside. (float)(in2 - in1) is exact.
__device__ __forceinline__ uint8_t Blend(float alpha, int in1, int in2) {
  const float t = AddRn(static_cast<float>(in1), MulRn(alpha, static_cast<float>(in2 - in1)));
  if (alpha >= 0.0f && alpha <= 1.0f) return static_cast<uint8_t>(static_cast<int>(t));
  if (t <= 0.0f) return 0;
  if (t >= 255.0f) return 255;
  return static_cast<uint8_t>(static_cast<int>(t));
}

// The views [v0, v1) of this thread's group (grid.y); v1 <= v0 when the group is empty.
struct ViewRange {
  int v0, v1;
};
__device__ __forceinline__ ViewRange GroupViews(int views) {
  const int v0 = static_cast<int>(blockIdx.y) * kViewsPerThread;
  const int v1 = v0 + kViewsPerThread < views ? v0 + kViewsPerThread : views;
  return {v0, v1};
}

// ---------------------------------------------------------------------------------------------
// Batch ops: grayscale, invert.

__global__ void __launch_bounds__(kThreads) GrayscaleKernel(const uint8_t* __restrict__ src, int64_t pixels,
                                                            uint8_t* __restrict__ dst) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < pixels; i += stride) {
    const uint8_t* p = src + i * 3;
    const uint8_t l = static_cast<uint8_t>(Luma(p[0], p[1], p[2]));
    dst[i * 3] = l;
    dst[i * 3 + 1] = l;
    dst[i * 3 + 2] = l;
  }
}

__global__ void __launch_bounds__(kThreads) InvertKernel(const uint8_t* __restrict__ src, int64_t n,
                                                         uint8_t* __restrict__ dst) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    dst[i] = static_cast<uint8_t>(255 - src[i]);
  }
}

// ---------------------------------------------------------------------------------------------
// Enhance.

// int(mean(L) + 0.5) of the image, by one block: per-thread integer sums of the luma, a shared
// tree sum (exact, so the order does not matter), then ImageStat's double mean as the CPU op
// computes it (the double sum of j * hist[j] is exact: below 2^53).
__global__ void __launch_bounds__(kReduceThreads) LumaMeanKernel(const uint8_t* __restrict__ src, int64_t pixels,
                                                                 int32_t* __restrict__ degenerate) {
  __shared__ unsigned long long partial[kReduceThreads];
  unsigned long long sum = 0;
  for (int64_t i = threadIdx.x; i < pixels; i += kReduceThreads) {
    const uint8_t* p = src + i * 3;
    sum += static_cast<unsigned long long>(Luma(p[0], p[1], p[2]));
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double mean = DDiv(static_cast<double>(partial[0]), static_cast<double>(pixels));
    *degenerate = static_cast<int32_t>(DAdd(mean, 0.5));
  }
}

// Brightness (degenerate 0) and contrast (degenerate from LumaMeanKernel): per value the blend with a
// constant, as the CPU op's LUT holds it (alpha == 0: the degenerate; alpha == 1: the value).
template <bool kContrast>
__global__ void __launch_bounds__(kThreads) BlendConstKernel(const uint8_t* __restrict__ src, int64_t pixels,
                                                             ViewFloats alpha, int views,
                                                             const int32_t* __restrict__ degenerate,
                                                             uint8_t* __restrict__ dst) {
  const int d = kContrast ? *degenerate : 0;
  const ViewRange vr = GroupViews(views);
  const int64_t n = pixels * 3;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < pixels; i += stride) {
    const uint8_t* p = src + i * 3;
    const int in[3] = {p[0], p[1], p[2]};
    for (int v = vr.v0; v < vr.v1; ++v) {
      const float a = alpha.v[v];
      uint8_t* o = dst + v * n + i * 3;
      for (int c = 0; c < 3; ++c) {
        o[c] = a == 0.0f ? static_cast<uint8_t>(d) : (a == 1.0f ? static_cast<uint8_t>(in[c]) : Blend(a, d, in[c]));
      }
    }
  }
}

// Color (saturation): the blend with the pixel's luma.
__global__ void __launch_bounds__(kThreads) SaturationKernel(const uint8_t* __restrict__ src, int64_t pixels,
                                                             ViewFloats alpha, int views, uint8_t* __restrict__ dst) {
  const ViewRange vr = GroupViews(views);
  const int64_t n = pixels * 3;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < pixels; i += stride) {
    const uint8_t* p = src + i * 3;
    const int in[3] = {p[0], p[1], p[2]};
    const int l = Luma(in[0], in[1], in[2]);
    for (int v = vr.v0; v < vr.v1; ++v) {
      const float a = alpha.v[v];
      uint8_t* o = dst + v * n + i * 3;
      for (int c = 0; c < 3; ++c) {
        o[c] = a == 1.0f ? static_cast<uint8_t>(in[c]) : (a == 0.0f ? static_cast<uint8_t>(l) : Blend(a, l, in[c]));
      }
    }
  }
}

// Sharpness: the blend of the SMOOTH-filtered image with the image. SMOOTH (Pillow's ImagingFilter3x3
// for 3-band images), per channel in C float:
//   ss = 0.5; ss += R(y+1); ss += R(y); ss += R(y-1);   R(r) = (p[x-1]*k0 + p[x]*k1) + p[x+1]*k2
// with row y+1 against kernel[0..2] and y-1 against kernel[6..8], kernel = {1,1,1, 1,5,1, 1,1,1} / 13f,
// then clip8 (clamp to 0..255, truncate). The 1-pixel border (and images under 3x3) are copied, so
// the blend of a border value with itself is the value.
__device__ __forceinline__ float SmoothRow(const uint8_t* p, float ka, float kb, float kc) {
  return AddRn(AddRn(MulRn(static_cast<float>(p[-3]), ka), MulRn(static_cast<float>(p[0]), kb)),
               MulRn(static_cast<float>(p[3]), kc));
}

__global__ void __launch_bounds__(kThreads) SharpnessKernel(const uint8_t* __restrict__ src, int64_t height,
                                                            int64_t width, ViewFloats alpha, int views,
                                                            uint8_t* __restrict__ dst) {
  const ViewRange vr = GroupViews(views);
  const int64_t pixels = height * width, n = pixels * 3, row = width * 3;
  const float k1 = DivRn(1.0f, 13.0f), k5 = DivRn(5.0f, 13.0f);
  const float offset = 0.5f;  // Pillow: (float)0 += 0.5 (double), exactly 0.5f
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < pixels; i += stride) {
    const int64_t y = i / width, x = i - y * width;
    const uint8_t* p = src + i * 3;
    const bool border = y == 0 || y == height - 1 || x == 0 || x == width - 1;  // also all of W < 3 or H < 3
    int in[3], sm[3];
    for (int c = 0; c < 3; ++c) {
      in[c] = p[c];
      sm[c] = in[c];
      if (!border) {
        float ss = offset;
        ss = AddRn(ss, SmoothRow(p + row + c, k1, k1, k1));  // kernel[0..2] on row y+1
        ss = AddRn(ss, SmoothRow(p + c, k1, k5, k1));        // kernel[3..5] on row y
        ss = AddRn(ss, SmoothRow(p - row + c, k1, k1, k1));  // kernel[6..8] on row y-1
        sm[c] = static_cast<int>(fminf(255.0f, fmaxf(0.0f, ss)));
      }
    }
    for (int v = vr.v0; v < vr.v1; ++v) {
      const float a = alpha.v[v];
      uint8_t* o = dst + v * n + i * 3;
      for (int c = 0; c < 3; ++c) {
        o[c] = a == 1.0f ? static_cast<uint8_t>(in[c]) : (a == 0.0f ? static_cast<uint8_t>(sm[c]) : Blend(a, sm[c], in[c]));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Hue: Pillow's rgb2hsv / hsv2rgb (Convert.c) with their C types.

__device__ __forceinline__ void RgbToHsv(int r, int g, int b, int& hh, int& ss, int& vv) {
  const int maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  const int minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  vv = maxc;
  if (minc == maxc) {
    hh = 0;
    ss = 0;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const float s = DivRn(cr, static_cast<float>(maxc));
  const float rc = DivRn(static_cast<float>(maxc - r), cr);
  const float gc = DivRn(static_cast<float>(maxc - g), cr);
  const float bc = DivRn(static_cast<float>(maxc - b), cr);
  float h;
  if (r == maxc) {
    h = SubRn(bc, gc);
  } else if (g == maxc) {
    h = static_cast<float>(DSub(DAdd(2.0, static_cast<double>(rc)), static_cast<double>(bc)));
  } else {
    h = static_cast<float>(DSub(DAdd(4.0, static_cast<double>(gc)), static_cast<double>(rc)));
  }
  // fmod(h / 6.0 + 1.0, 1.0): the argument lies in [5/6, 2), where fmod subtracts 1 exactly.
  double t = DAdd(DDiv(static_cast<double>(h), 6.0), 1.0);
  if (t >= 1.0) t = DSub(t, 1.0);
  h = static_cast<float>(t);
  hh = Clip8(static_cast<int>(DMul(static_cast<double>(h), 255.0)));
  ss = Clip8(static_cast<int>(DMul(static_cast<double>(s), 255.0)));
}

// C's round() (half away from zero) of x >= 0: the fraction x - trunc(x) is exact in double.
__device__ __forceinline__ int RoundHalfAway(double x) {
  const int i = static_cast<int>(x);
  return DSub(x, static_cast<double>(i)) >= 0.5 ? i + 1 : i;
}

// The saturation term of hsv2rgb: fs = (float)(s / 255.0), shared by the views.
__device__ __forceinline__ float HsvFs(int s) { return static_cast<float>(DDiv(static_cast<double>(s), 255.0)); }

__device__ __forceinline__ void HsvToRgb(int h, int s, float fs, int v, uint8_t* out) {
  if (s == 0) {
    out[0] = out[1] = out[2] = static_cast<uint8_t>(v);
    return;
  }
  const double hh = DDiv(DMul(static_cast<double>(h), 6.0), 255.0);
  const int i = static_cast<int>(floor(hh));
  const float f = static_cast<float>(DSub(hh, static_cast<double>(static_cast<float>(i))));
  const double vv = static_cast<double>(v);
  const int p = RoundHalfAway(DMul(vv, DSub(1.0, static_cast<double>(fs))));
  const float fsf = MulRn(fs, f);  // float * float: a float product
  const int q = RoundHalfAway(DMul(vv, DSub(1.0, static_cast<double>(fsf))));
  const int tt =
      RoundHalfAway(DMul(vv, DSub(1.0, DMul(static_cast<double>(fs), DSub(1.0, static_cast<double>(f))))));
  const uint8_t up = static_cast<uint8_t>(Clip8(p)), uq = static_cast<uint8_t>(Clip8(q));
  const uint8_t ut = static_cast<uint8_t>(Clip8(tt)), uv = static_cast<uint8_t>(v);
  switch (i % 6) {
    case 0: out[0] = uv; out[1] = ut; out[2] = up; break;
    case 1: out[0] = uq; out[1] = uv; out[2] = up; break;
    case 2: out[0] = up; out[1] = uv; out[2] = ut; break;
    case 3: out[0] = up; out[1] = uq; out[2] = uv; break;
    case 4: out[0] = ut; out[1] = up; out[2] = uv; break;
    default: out[0] = uv; out[1] = up; out[2] = uq; break;
  }
}

__global__ void __launch_bounds__(kThreads) HueKernel(const uint8_t* __restrict__ src, int64_t pixels,
                                                      ViewBytes shift, int views, uint8_t* __restrict__ dst) {
  const ViewRange vr = GroupViews(views);
  const int64_t n = pixels * 3;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < pixels; i += stride) {
    const uint8_t* p = src + i * 3;
    int h, s, v;
    RgbToHsv(p[0], p[1], p[2], h, s, v);
    const float fs = HsvFs(s);
    for (int k = vr.v0; k < vr.v1; ++k) {
      uint8_t out[3];
      HsvToRgb((h + shift.v[k]) & 0xff, s, fs, v, out);  // H += shift as a uint8, wrapping
      uint8_t* o = dst + k * n + i * 3;
      o[0] = out[0];
      o[1] = out[1];
      o[2] = out[2];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Posterize: per view a bit mask over every value.

__global__ void __launch_bounds__(kThreads) PosterizeKernel(const uint8_t* __restrict__ src, int64_t n,
                                                            ViewBytes mask, int views, uint8_t* __restrict__ dst) {
  const ViewRange vr = GroupViews(views);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint8_t x = src[i];
    for (int v = vr.v0; v < vr.v1; ++v) dst[v * n + i] = static_cast<uint8_t>(x & mask.v[v]);
  }
}

// ---------------------------------------------------------------------------------------------
// Equalize.

// One block per image: the per-channel histograms in shared memory (integer atomics: the counts do
// not depend on the order), then thread c builds channel c's LUT with the CPU op's EqualizeLut.
__global__ void __launch_bounds__(kReduceThreads) EqualizeLutKernel(const uint8_t* __restrict__ src, int64_t pixels,
                                                                    int channels, uint8_t* __restrict__ luts) {
  __shared__ unsigned hist[4 * 256];
  const int64_t img = blockIdx.x;
  const uint8_t* in = src + img * pixels * channels;
  const int64_t n = pixels * channels;
  for (int i = threadIdx.x; i < 4 * 256; i += kReduceThreads) hist[i] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads) {
    const int c = static_cast<int>(i % channels);
    atomicAdd(&hist[c * 256 + in[i]], 1u);
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < channels) {
    const int c = threadIdx.x;
    EqualizeLut(hist + c * 256, luts + (img * channels + c) * 256);  // ops/pil_integer.h, as on the CPU
  }
}

// Applies image blockIdx.y's LUTs (staged in shared memory) over its values.
__global__ void __launch_bounds__(kThreads) ApplyLutKernel(const uint8_t* __restrict__ src, int64_t n, int channels,
                                                           const uint8_t* __restrict__ luts,
                                                           uint8_t* __restrict__ dst) {
  __shared__ uint8_t lut[4 * 256];
  const int64_t img = blockIdx.y;
  for (int i = threadIdx.x; i < channels * 256; i += kThreads) lut[i] = luts[img * channels * 256 + i];
  __syncthreads();
  const uint8_t* in = src + img * n;
  uint8_t* out = dst + img * n;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = lut[static_cast<int>(i % channels) * 256 + in[i]];
  }
}

// Grid of a per-view kernel: pixels along x, view groups along y.
dim3 ViewGrid(int64_t items, int views, int grid_cap) {
  return dim3(GridFor(items, kThreads, grid_cap), static_cast<unsigned>((views + kViewsPerThread - 1) / kViewsPerThread));
}

}  // namespace

cudaError_t RgbToGrayscaleBatchU8(const uint8_t* src, int64_t images, int64_t height, int64_t width, uint8_t* dst,
                                  cudaStream_t stream, int grid_cap) {
  if (src == nullptr || dst == nullptr || images < 1 || !ValidImage(height, width) ||
      images > kMaxPixels / (height * width)) {
    return cudaErrorInvalidValue;
  }
  const int64_t pixels = images * height * width;
  SSLINV_LAUNCH(GrayscaleKernel, GridFor(pixels, kThreads, grid_cap), kThreads, 0, stream, src, pixels, dst);
  return cudaGetLastError();
}

cudaError_t InvertBatchU8(const uint8_t* src, int64_t images, int64_t height, int64_t width, int64_t channels,
                          uint8_t* dst, cudaStream_t stream, int grid_cap) {
  if (src == nullptr || dst == nullptr || images < 1 || !ValidImage(height, width) || channels < 1 || channels > 4 ||
      images > kMaxPixels / (height * width)) {
    return cudaErrorInvalidValue;
  }
  const int64_t n = images * height * width * channels;
  SSLINV_LAUNCH(InvertKernel, GridFor(n, kThreads, grid_cap), kThreads, 0, stream, src, n, dst);
  return cudaGetLastError();
}

size_t EnhanceWorkspaceBytes() { return 16; }

cudaError_t EnhanceViewsU8(const uint8_t* src, int64_t height, int64_t width, EnhanceKind kind, const double* factors,
                           int64_t views, uint8_t* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                           int grid_cap) {
  if (src == nullptr || dst == nullptr || factors == nullptr || views < 1 || !ValidImage(height, width)) {
    return cudaErrorInvalidValue;
  }
  const int k = static_cast<int>(kind);
  if (k < 0 || k > 3) return cudaErrorInvalidValue;
  for (int64_t v = 0; v < views; ++v) {
    // The CPU op's checks: a finite factor, finite once rounded to a C float (PyArg "f").
    if (!std::isfinite(factors[v]) || !std::isfinite(static_cast<float>(factors[v]))) return cudaErrorInvalidValue;
  }
  int32_t* degenerate = static_cast<int32_t*>(workspace);
  const int64_t pixels = height * width;
  if (kind == EnhanceKind::kContrast) {
    if (workspace == nullptr || workspace_bytes < EnhanceWorkspaceBytes() || !detail::IsAligned(workspace, 4)) {
      return cudaErrorInvalidValue;
    }
    SSLINV_LAUNCH(LumaMeanKernel, 1, kReduceThreads, 0, stream, src, pixels, degenerate);
  }
  for (int64_t v0 = 0; v0 < views; v0 += kMaxViewsPerLaunch) {
    const int nv = static_cast<int>(views - v0 < kMaxViewsPerLaunch ? views - v0 : kMaxViewsPerLaunch);
    ViewFloats alpha{};
    for (int v = 0; v < nv; ++v) alpha.v[v] = static_cast<float>(factors[v0 + v]);
    uint8_t* out = dst + v0 * pixels * 3;
    const dim3 grid = ViewGrid(pixels, nv, grid_cap);
    switch (kind) {
      case EnhanceKind::kBrightness:
        SSLINV_LAUNCH(BlendConstKernel<false>, grid, kThreads, 0, stream, src, pixels, alpha, nv,
                      static_cast<const int32_t*>(nullptr), out);
        break;
      case EnhanceKind::kContrast:
        SSLINV_LAUNCH(BlendConstKernel<true>, grid, kThreads, 0, stream, src, pixels, alpha, nv,
                      static_cast<const int32_t*>(degenerate), out);
        break;
      case EnhanceKind::kColor:
        SSLINV_LAUNCH(SaturationKernel, grid, kThreads, 0, stream, src, pixels, alpha, nv, out);
        break;
      case EnhanceKind::kSharpness:
        SSLINV_LAUNCH(SharpnessKernel, grid, kThreads, 0, stream, src, height, width, alpha, nv, out);
        break;
    }
  }
  return cudaGetLastError();
}

cudaError_t AdjustHueViewsU8(const uint8_t* src, int64_t height, int64_t width, const double* hue_factors,
                             int64_t views, uint8_t* dst, cudaStream_t stream, int grid_cap) {
  if (src == nullptr || dst == nullptr || hue_factors == nullptr || views < 1 || !ValidImage(height, width)) {
    return cudaErrorInvalidValue;
  }
  for (int64_t v = 0; v < views; ++v) {
    if (!(hue_factors[v] >= -0.5 && hue_factors[v] <= 0.5)) return cudaErrorInvalidValue;
  }
  const int64_t pixels = height * width;
  for (int64_t v0 = 0; v0 < views; v0 += kMaxViewsPerLaunch) {
    const int nv = static_cast<int>(views - v0 < kMaxViewsPerLaunch ? views - v0 : kMaxViewsPerLaunch);
    ViewBytes shift{};
    // np.uint8(hue_factor * 255): the double product truncated toward zero, modulo 256 (host).
    for (int v = 0; v < nv; ++v) {
      shift.v[v] = static_cast<uint8_t>(static_cast<int>(std::trunc(hue_factors[v0 + v] * 255.0)) & 0xff);
    }
    SSLINV_LAUNCH(HueKernel, ViewGrid(pixels, nv, grid_cap), kThreads, 0, stream, src, pixels, shift, nv,
                  dst + v0 * pixels * 3);
  }
  return cudaGetLastError();
}

cudaError_t PosterizeViewsU8(const uint8_t* src, int64_t height, int64_t width, int64_t channels, const int64_t* bits,
                             int64_t views, uint8_t* dst, cudaStream_t stream, int grid_cap) {
  if (src == nullptr || dst == nullptr || bits == nullptr || views < 1 || !ValidImage(height, width) ||
      channels < 1 || channels > 4) {
    return cudaErrorInvalidValue;
  }
  for (int64_t v = 0; v < views; ++v) {
    if (bits[v] < 0 || bits[v] > 8) return cudaErrorInvalidValue;
  }
  const int64_t n = height * width * channels;
  for (int64_t v0 = 0; v0 < views; v0 += kMaxViewsPerLaunch) {
    const int nv = static_cast<int>(views - v0 < kMaxViewsPerLaunch ? views - v0 : kMaxViewsPerLaunch);
    ViewBytes mask{};
    for (int v = 0; v < nv; ++v) mask.v[v] = static_cast<uint8_t>(~((1 << (8 - bits[v0 + v])) - 1));
    SSLINV_LAUNCH(PosterizeKernel, ViewGrid(n, nv, grid_cap), kThreads, 0, stream, src, n, mask, nv, dst + v0 * n);
  }
  return cudaGetLastError();
}

size_t EqualizeWorkspaceBytes(int64_t images, int64_t channels) {
  return images < 1 || channels < 1 ? 0 : static_cast<size_t>(images * channels * 256);
}

cudaError_t EqualizeBatchU8(const uint8_t* src, int64_t images, int64_t height, int64_t width, int64_t channels,
                            uint8_t* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream, int grid_cap) {
  if (src == nullptr || dst == nullptr || workspace == nullptr || images < 1 || !ValidImage(height, width) ||
      channels < 1 || channels > 4 || images > 65535 || workspace_bytes < EqualizeWorkspaceBytes(images, channels)) {
    return cudaErrorInvalidValue;  // images <= 65535: they index grid.y of the apply kernel
  }
  const int64_t pixels = height * width, n = pixels * channels;
  uint8_t* luts = static_cast<uint8_t*>(workspace);
  const int c = static_cast<int>(channels);
  SSLINV_LAUNCH(EqualizeLutKernel, static_cast<unsigned>(images), kReduceThreads, 0, stream, src, pixels, c, luts);
  const dim3 grid(GridFor(n, kThreads, grid_cap), static_cast<unsigned>(images));
  SSLINV_LAUNCH(ApplyLutKernel, grid, kThreads, 0, stream, src, n, c, static_cast<const uint8_t*>(luts), dst);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
