// Element-wise float32 ops on contiguous tensors viewed as [rows, C] (C = the innermost, channel
// dimension of NHWC activations or of [N, C] features).
//
// BatchNormInference follows PyTorch's CPU inference formula exactly:
//   scale = gamma / sqrt(var + eps), shift = beta - mean * scale, y = x * scale + shift
// with scale and shift rounded to float32, as PyTorch computes them.
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

void ReluF32(const float* x, float* y, int64_t n);
void AddF32(const float* a, const float* b, float* y, int64_t n, bool relu);
// y[i, c] = x[i, c] * scale[c] + shift[c]
void ScaleShiftF32(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c);
void BatchNormInferenceF32(const float* x, const float* gamma, const float* beta, const float* mean,
                           const float* var, double eps, float* y, int64_t rows, int64_t c);
// Per-channel scale and shift of an inference batch norm (for folding into convolutions).
void BatchNormFoldF32(const float* gamma, const float* beta, const float* mean, const float* var, double eps,
                      float* scale, float* shift, int64_t c);
// bfloat16 as raw bits. x [rows, c] float32 -> y [rows, c_pad] bf16, rounded to nearest even (every
// NaN -> 0x7FFF, as CUDA's conversion does, so both devices give the same bits), zeros past column c.
void F32ToBf16PaddedRows(const float* x, int64_t rows, int64_t c, int64_t c_pad, uint16_t* y);
// bf16 bits -> float32, exactly.
void Bf16ToF32(const uint16_t* x, float* y, int64_t n);

}  // namespace sslinv
