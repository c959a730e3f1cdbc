// Pooling on NHWC activations.
//
// MaxPool2dNHWC: PyTorch's max_pool2d with ceil_mode = false (floor rounding of the output size),
// dilation 1; padded positions never win; NaN propagates as in PyTorch.
//   x: [N, H, W, C] -> y: [N, P, Q, C], P = (H + 2*pad - kernel) / stride + 1
// GlobalAvgPoolNHWC: adaptive_avg_pool2d to 1x1: per image and channel, the sum over (h, w) in
// row-major order divided by H*W (PyTorch's order for contiguous input).
//   x: [N, H, W, C] -> y: [N, C]
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

struct Pool2dParams {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h() const { return (h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (w + 2 * pad_w - kernel_w) / stride_w + 1; }
};

Status ValidatePool2dParams(const Pool2dParams& p);
Status MaxPool2dNHWC(const Pool2dParams& p, const float* x, float* y);
Status GlobalAvgPoolNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y);

}  // namespace sslinv
