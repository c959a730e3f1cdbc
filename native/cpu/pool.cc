// Max and global-average pooling for NHWC float32 (see ops/pool.h). Channels are the innermost loop,
// so both kernels stream contiguous rows and vectorise.
#include "ops/pool.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/threadpool.h"

namespace sslinv {

Status ValidatePool2dParams(const Pool2dParams& p) {
  if (p.n < 0 || p.h <= 0 || p.w <= 0 || p.c <= 0) return InvalidArgument("pool2d: sizes must be positive");
  if (p.kernel_h <= 0 || p.kernel_w <= 0 || p.stride_h <= 0 || p.stride_w <= 0) {
    return InvalidArgument("pool2d: kernel and stride must be >= 1");
  }
  // PyTorch's rule: padding at most half the kernel, so every window holds a real element.
  if (p.pad_h < 0 || p.pad_w < 0 || 2 * p.pad_h > p.kernel_h || 2 * p.pad_w > p.kernel_w) {
    return InvalidArgument("pool2d: padding must be between 0 and half the kernel size");
  }
  if (p.out_h() <= 0 || p.out_w() <= 0) return ShapeMismatch("pool2d: the output would be empty");
  return Status::Ok();
}

Status MaxPool2dNHWC(const Pool2dParams& p, const float* x, float* y) {
  SSLINV_RETURN_IF_ERROR(ValidatePool2dParams(p));
  const int64_t P = p.out_h(), Q = p.out_w(), C = p.c;
  ThreadPool::Get().ParallelFor(p.n * P, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(static_cast<size_t>(C));
    for (int64_t np = begin; np < end; ++np) {
      const int64_t n = np / P, op = np % P;
      const float* xn = x + n * p.h * p.w * C;
      for (int64_t oq = 0; oq < Q; ++oq) {
        std::fill(acc.begin(), acc.end(), -std::numeric_limits<float>::infinity());
        const int64_t h0 = op * p.stride_h - p.pad_h, w0 = oq * p.stride_w - p.pad_w;
        for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + p.kernel_h, p.h); ++ih) {
          for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + p.kernel_w, p.w); ++iw) {
            const float* src = xn + (ih * p.w + iw) * C;
            float* a = acc.data();
            for (int64_t c = 0; c < C; ++c) {
              const float v = src[c];
              // PyTorch's rule: take v if it is larger or NaN (so a NaN, once taken, stays). Written
              // as a select (v != v is the NaN test) so it vectorises.
              a[c] = (v > a[c] || v != v) ? v : a[c];
            }
          }
        }
        float* dst = y + ((n * P + op) * Q + oq) * C;
        for (int64_t c = 0; c < C; ++c) dst[c] = acc[static_cast<size_t>(c)];
      }
    }
  });
  return Status::Ok();
}

Status GlobalAvgPoolNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y) {
  if (n < 0 || h <= 0 || w <= 0 || c <= 0) return InvalidArgument("global_avg_pool: sizes must be positive");
  const int64_t hw = h * w;
  const float count = static_cast<float>(hw);
  ThreadPool::Get().ParallelFor(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* dst = y + i * c;
      for (int64_t cc = 0; cc < c; ++cc) dst[cc] = 0.f;
      const float* src = x + i * hw * c;
      for (int64_t t = 0; t < hw; ++t) {
        const float* row = src + t * c;
        for (int64_t cc = 0; cc < c; ++cc) dst[cc] += row[cc];
      }
      for (int64_t cc = 0; cc < c; ++cc) dst[cc] /= count;
    }
  });
  return Status::Ok();
}

}  // namespace sslinv
