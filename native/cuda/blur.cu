// CUDA Gaussian blurs batched over views (see blur.cuh), bit-identical to GaussianBlurTorchU8 and
// PilGaussianBlurU8 in native/cpu/color.cc.
#include "cuda/blur.cuh"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "ops/color.h"  // GaussianKernel1dTorch, PilBoxRadius, BoxLine, MakeBoxLine
#include "ops/pil_integer.h"  // BoxBlurLine

namespace sslinv::cuda {

namespace {

using detail::kThreads;

constexpr int64_t kMaxSide = int64_t{1} << 24;
constexpr int64_t kMaxPixels = int64_t{1} << 34;
constexpr int64_t kMaxViews = 65535;  // grid.y
constexpr size_t kAlign = 16;

inline size_t AlignUp(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

bool ValidImage(const uint8_t* src, const uint8_t* dst, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                int64_t views) {
  return src != nullptr && dst != nullptr && h >= 1 && w >= 1 && h <= kMaxSide && w <= kMaxSide &&
         h * w <= kMaxPixels && c >= 1 && c <= 4 && views >= 1 && views <= kMaxViews && src_view_stride >= 0;
}

// ---------------------------------------------------------------------------------------------
// torchvision's gaussian_blur.

// One nonzero tap of a view's 2-D kernel: row i, column j, weight ky[i] * kx[j] (float32).
struct Tap {
  int32_t i, j;
  float w;
};

// torch's reflect padding (the padding is below the side, so one reflection suffices).
__device__ __forceinline__ int32_t Reflect(int32_t i, int32_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

__device__ __forceinline__ uint8_t RoundToU8(float v) {
  const float r = rintf(v);  // torch.round: half to even
  return static_cast<uint8_t>(r <= 0.0f ? 0 : (r >= 255.0f ? 255 : static_cast<int>(r)));
}

// grid: (blocks per view, views); one output pixel (all C channels) per thread, grid-strided. Each
// channel's value is one FMA chain over the view's taps in the CPU's order (kernel rows outer,
// columns inner).
template <int C>
__global__ void __launch_bounds__(kThreads)
    TorchBlurKernel(const uint8_t* __restrict__ src, int64_t src_view_stride, int32_t H, int32_t W, int32_t py,
                    int32_t px, const Tap* __restrict__ taps, int64_t taps_per_view,
                    const int32_t* __restrict__ counts, uint8_t* __restrict__ dst) {
  const int64_t v = blockIdx.y;
  const uint8_t* s = src + v * src_view_stride;
  const Tap* t = taps + v * taps_per_view;
  const int32_t n = counts[v];
  uint8_t* d = dst + v * static_cast<int64_t>(H) * W * C;
  const int64_t npix = static_cast<int64_t>(H) * W;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < npix; p += stride) {
    const int32_t y = static_cast<int32_t>(p / W), x = static_cast<int32_t>(p - static_cast<int64_t>(y) * W);
    float acc[C];
#pragma unroll
    for (int c = 0; c < C; ++c) acc[c] = 0.0f;
    for (int32_t k = 0; k < n; ++k) {
      const Tap tp = t[k];
      const int32_t sy = Reflect(y + tp.i - py, H), sx = Reflect(x + tp.j - px, W);
      const uint8_t* in = s + (static_cast<int64_t>(sy) * W + sx) * C;
#pragma unroll
      for (int c = 0; c < C; ++c) acc[c] = fmaf(static_cast<float>(__ldg(in + c)), tp.w, acc[c]);
    }
#pragma unroll
    for (int c = 0; c < C; ++c) d[p * C + c] = RoundToU8(acc[c]);
  }
}

// ---------------------------------------------------------------------------------------------
// Pillow's extended box blur (BoxBlur.c).

// The box radius and each line's constants (PilBoxRadius, BoxLine, MakeBoxLine) are the CPU op's
// own, from ops/color.h: they run in native/cpu/color.cc, compiled without FMA contraction, so no
// host rounding here needs guarding against nvcc's host compiler. BoxLine is plain data, uploaded as
// is.

// One line of one channel is BoxBlurLine (ops/pil_integer.h), the CPU op's own, compiled for the device.

// One box-blur pass over `lines` lines of `len` pixels of every view: thread (line, channel) blurs
// line * line_stride + channel, pixels `step` bytes apart. params[2 v + dir] is view v's line
// constants (dir 0: rows, 1: columns).
__global__ void __launch_bounds__(kThreads)
    BoxPassKernel(const uint8_t* __restrict__ in, int64_t in_view_stride, uint8_t* __restrict__ out,
                  int64_t out_view_stride, int32_t lines, int32_t len, int32_t channels, int64_t line_stride,
                  int64_t step, const BoxLine* __restrict__ params, int32_t dir) {
  const int64_t v = blockIdx.y;
  const BoxLine b = params[2 * v + dir];
  const int64_t n = static_cast<int64_t>(lines) * channels;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += stride) {
    const int64_t line = t / channels, ch = t - line * channels;
    const int64_t off = line * line_stride + ch;
    BoxBlurLine(in + v * in_view_stride + off, out + v * out_view_stride + off, step, len - 1, b);
  }
}

}  // namespace

size_t GaussianBlurTorchWorkspaceBytes(int64_t views, int64_t kernel_w, int64_t kernel_h) {
  if (views < 0 || kernel_w < 0 || kernel_h < 0) return 0;
  const size_t v = static_cast<size_t>(views);
  return AlignUp(v * sizeof(int32_t)) + AlignUp(v * static_cast<size_t>(kernel_w * kernel_h) * sizeof(Tap));
}

cudaError_t GaussianBlurTorchViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                     int64_t kernel_w, int64_t kernel_h, const double* sigma_x,
                                     const double* sigma_y, int64_t views, uint8_t* dst, void* workspace,
                                     size_t workspace_bytes, cudaStream_t stream) {
  if (!ValidImage(src, dst, h, w, c, src_view_stride, views) || sigma_x == nullptr || kernel_w < 1 ||
      kernel_h < 1 || kernel_w % 2 == 0 || kernel_h % 2 == 0 || kernel_w / 2 >= w || kernel_h / 2 >= h) {
    return cudaErrorInvalidValue;
  }
  const size_t v_count = static_cast<size_t>(views);
  const size_t per_view = static_cast<size_t>(kernel_w * kernel_h);
  const size_t count_bytes = AlignUp(v_count * sizeof(int32_t));
  const size_t total = GaussianBlurTorchWorkspaceBytes(views, kernel_w, kernel_h);
  if (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % kAlign != 0 || workspace_bytes < total) {
    return cudaErrorInvalidValue;
  }
  std::vector<uint8_t> host(total, 0);
  int32_t* counts = reinterpret_cast<int32_t*>(host.data());
  Tap* taps = reinterpret_cast<Tap*>(host.data() + count_bytes);
  std::vector<float> kx(static_cast<size_t>(kernel_w)), ky(static_cast<size_t>(kernel_h));
  for (int64_t v = 0; v < views; ++v) {
    const double sx = sigma_x[v], sy = sigma_y ? sigma_y[v] : sigma_x[v];
    if (!GaussianKernel1dTorch(kernel_w, sx, kx.data()).ok() || !GaussianKernel1dTorch(kernel_h, sy, ky.data()).ok()) {
      return cudaErrorInvalidValue;
    }
    // kernel2d = mm(ky[:, None], kx[None, :]): one float product per tap; the chain order is row
    // major, and taps of weight 0 are left out (see blur.cuh).
    Tap* t = taps + static_cast<size_t>(v) * per_view;
    int32_t n = 0;
    for (int64_t i = 0; i < kernel_h; ++i) {
      for (int64_t j = 0; j < kernel_w; ++j) {
        const float wv = ky[static_cast<size_t>(i)] * kx[static_cast<size_t>(j)];
        if (wv != 0.0f) t[n++] = Tap{static_cast<int32_t>(i), static_cast<int32_t>(j), wv};
      }
    }
    counts[v] = n;
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  cudaError_t e = detail::CopyToDevice(ws, host.data(), host.size(), stream);
  if (e != cudaSuccess) return e;
  const dim3 grid(detail::GridFor(h * w, kThreads, 0), static_cast<unsigned>(views));
  const int32_t H = static_cast<int32_t>(h), W = static_cast<int32_t>(w);
  const int32_t py = static_cast<int32_t>(kernel_h / 2), px = static_cast<int32_t>(kernel_w / 2);
  const Tap* dtaps = reinterpret_cast<const Tap*>(ws + count_bytes);
  const int32_t* dcounts = reinterpret_cast<const int32_t*>(ws);
  const int64_t tpv = static_cast<int64_t>(per_view);
  switch (c) {
    case 1:
      SSLINV_LAUNCH(TorchBlurKernel<1>, grid, kThreads, 0, stream, src, src_view_stride, H, W, py, px, dtaps, tpv,
                    dcounts, dst);
      break;
    case 2:
      SSLINV_LAUNCH(TorchBlurKernel<2>, grid, kThreads, 0, stream, src, src_view_stride, H, W, py, px, dtaps, tpv,
                    dcounts, dst);
      break;
    case 3:
      SSLINV_LAUNCH(TorchBlurKernel<3>, grid, kThreads, 0, stream, src, src_view_stride, H, W, py, px, dtaps, tpv,
                    dcounts, dst);
      break;
    default:
      SSLINV_LAUNCH(TorchBlurKernel<4>, grid, kThreads, 0, stream, src, src_view_stride, H, W, py, px, dtaps, tpv,
                    dcounts, dst);
      break;
  }
  return cudaGetLastError();
}

size_t PilGaussianBlurWorkspaceBytes(int64_t views, int64_t h, int64_t w, int64_t c) {
  if (views < 0 || h < 0 || w < 0 || c < 0) return 0;
  const size_t v = static_cast<size_t>(views);
  return AlignUp(v * 2 * sizeof(BoxLine)) + AlignUp(v * static_cast<size_t>(h * w * c));
}

cudaError_t PilGaussianBlurViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                   const double* radius, int64_t views, uint8_t* dst, void* workspace,
                                   size_t workspace_bytes, cudaStream_t stream) {
  if (!ValidImage(src, dst, h, w, c, src_view_stride, views) || radius == nullptr) return cudaErrorInvalidValue;
  const size_t param_bytes = AlignUp(static_cast<size_t>(views) * 2 * sizeof(BoxLine));
  if (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % kAlign != 0 ||
      workspace_bytes < PilGaussianBlurWorkspaceBytes(views, h, w, c)) {
    return cudaErrorInvalidValue;
  }
  std::vector<BoxLine> params(static_cast<size_t>(2 * views));
  for (int64_t v = 0; v < views; ++v) {
    const double r = radius[v];
    if (!(r >= 0.0) || !std::isfinite(r) || r > 1e6) return cudaErrorInvalidValue;
    const float box_radius = PilBoxRadius(r);
    params[static_cast<size_t>(2 * v)] = MakeBoxLine(box_radius, w);
    params[static_cast<size_t>(2 * v + 1)] = MakeBoxLine(box_radius, h);
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  cudaError_t e = detail::CopyToDevice(ws, params.data(), params.size() * sizeof(BoxLine), stream);
  if (e != cudaSuccess) return e;
  const BoxLine* dparams = reinterpret_cast<const BoxLine*>(ws);
  uint8_t* tmp = ws + param_bytes;
  const int64_t img = h * w * c;
  const int32_t H = static_cast<int32_t>(h), W = static_cast<int32_t>(w), C = static_cast<int32_t>(c);
  // Rows: src -> tmp -> dst -> tmp; columns: tmp -> dst -> tmp -> dst.
  const dim3 grid_rows(detail::GridFor(h * c, kThreads, 0), static_cast<unsigned>(views));
  const dim3 grid_cols(detail::GridFor(w * c, kThreads, 0), static_cast<unsigned>(views));
  SSLINV_LAUNCH(BoxPassKernel, grid_rows, kThreads, 0, stream, src, src_view_stride, tmp, img, H, W, C, w * c, c,
                dparams, 0);
  SSLINV_LAUNCH(BoxPassKernel, grid_rows, kThreads, 0, stream, tmp, img, dst, img, H, W, C, w * c, c, dparams, 0);
  SSLINV_LAUNCH(BoxPassKernel, grid_rows, kThreads, 0, stream, dst, img, tmp, img, H, W, C, w * c, c, dparams, 0);
  SSLINV_LAUNCH(BoxPassKernel, grid_cols, kThreads, 0, stream, tmp, img, dst, img, W, H, C, c, w * c, dparams, 1);
  SSLINV_LAUNCH(BoxPassKernel, grid_cols, kThreads, 0, stream, dst, img, tmp, img, W, H, C, c, w * c, dparams, 1);
  SSLINV_LAUNCH(BoxPassKernel, grid_cols, kThreads, 0, stream, tmp, img, dst, img, W, H, C, c, w * c, dparams, 1);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
