// Element-wise kernels (see ops/elementwise.h). Plain loops over contiguous memory that the compiler
// vectorises; large tensors are split across the pool.
#include "ops/elementwise.h"

#include "core/bf16_bits.h"

#include <cstring>

#include <cmath>

#include "core/threadpool.h"

namespace sslinv {

namespace {
constexpr int64_t kGrain = 1 << 15;
}

void ReluF32(const float* x, float* y, int64_t n) {
  ThreadPool::Get().ParallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    // NaN stays NaN, as torch.relu does (clamp_min propagates NaN).
    for (int64_t i = b; i < e; ++i) y[i] = (x[i] > 0.f || std::isnan(x[i])) ? x[i] : 0.f;
  });
}

void AddF32(const float* a, const float* b, float* y, int64_t n, bool relu) {
  ThreadPool::Get().ParallelFor(n, kGrain, [&](int64_t s, int64_t e) {
    if (relu) {
      for (int64_t i = s; i < e; ++i) {
        const float v = a[i] + b[i];
        y[i] = (v > 0.f || std::isnan(v)) ? v : 0.f;
      }
    } else {
      for (int64_t i = s; i < e; ++i) y[i] = a[i] + b[i];
    }
  });
}

void ScaleShiftF32(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c) {
  ThreadPool::Get().ParallelFor(rows, (kGrain + c - 1) / c, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      for (int64_t j = 0; j < c; ++j) yr[j] = xr[j] * scale[j] + shift[j];
    }
  });
}

void BatchNormFoldF32(const float* gamma, const float* beta, const float* mean, const float* var, double eps,
                      float* scale, float* shift, int64_t c) {
  for (int64_t j = 0; j < c; ++j) {
    // PyTorch (batch_norm_cpu_collect_linear_and_constant_terms): invstd = 1 / sqrt(var + eps) in
    // float, alpha = invstd * weight, beta = bias - mean * alpha.
    const float invstd = 1.f / std::sqrt(var[j] + static_cast<float>(eps));
    const float a = invstd * gamma[j];
    scale[j] = a;
    shift[j] = beta[j] - mean[j] * a;
  }
}

void BatchNormInferenceF32(const float* x, const float* gamma, const float* beta, const float* mean,
                           const float* var, double eps, float* y, int64_t rows, int64_t c) {
  float* scale = new float[static_cast<size_t>(2 * c)];
  float* shift = scale + c;
  BatchNormFoldF32(gamma, beta, mean, var, eps, scale, shift, c);
  ScaleShiftF32(x, scale, shift, y, rows, c);
  delete[] scale;
}

void F32ToBf16PaddedRows(const float* x, int64_t rows, int64_t c, int64_t c_pad, uint16_t* y) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c_pad; ++j) {
      y[r * c_pad + j] = j < c ? Float32ToBf16Bits(x[r * c + j]) : uint16_t{0};
    }
  }
}

void Bf16ToF32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(x[i]) << 16;
    std::memcpy(y + i, &u, 4);
  }
}

}  // namespace sslinv
