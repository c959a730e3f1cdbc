// CUDA SGD step and MoCo's momentum (key-encoder) update on float32 tensors: the device counterparts
// of ops/sgd.h, bit-identical to the CPU ops. Both are element-wise, so each element goes through the
// CPU op's operations in its order: fmaf (one rounding) exactly where the CPU uses std::fma, correctly
// rounded products and sums (__fmul_rn, __fadd_rn) where it rounds them one by one, and the scalars
// rounded to float32 on the host as the CPU op rounds them.
//
// Both launchers take any number of tensors and update them in one launch per 32 tensors (a network's
// parameters in a few launches rather than one each): grid (row of blocks per tensor, tensor), each
// tensor's elements grid-stride over its row. Float4 accesses for a tensor whose pointers are all
// 16-byte aligned, scalar ones otherwise (same bits).
//
// Pointers are device pointers. In place is allowed exactly (param_out == param, buf_out == buf_in,
// out == k; a k may also be its own q): every element is read before the same thread writes it.
// Otherwise no output may overlap an input or another output (the bindings check storage). Returns
// cudaErrorInvalidValue for a negative size or a missing momentum buffer, else the first launch error.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"
#include "ops/sgd.h"

namespace sslinv::cuda {

// One parameter of an SGD step (SgdStepF32 of ops/sgd.h). buf_in == null: the first step with
// momentum (buf = d); buf_out: needed when momentum != 0, ignored otherwise.
struct SgdDeviceTensor {
  const float* param = nullptr;
  const float* grad = nullptr;
  const float* buf_in = nullptr;
  float* param_out = nullptr;
  float* buf_out = nullptr;
  int64_t n = 0;
};

// p must pass ValidateSgdParams (ops/sgd.h).
cudaError_t SgdStepF32(const SgdParams& p, const SgdDeviceTensor* ts, size_t count, cudaStream_t stream,
                       int grid_cap = 0);

// out = k * m + q * (1 - m) (MomentumUpdateF32), 0 <= m <= 1.
struct MomentumDeviceTensor {
  const float* k = nullptr;
  const float* q = nullptr;
  float* out = nullptr;
  int64_t n = 0;
};
cudaError_t MomentumUpdateF32(const MomentumDeviceTensor* ts, size_t count, double m, cudaStream_t stream,
                              int grid_cap = 0);

}  // namespace sslinv::cuda
