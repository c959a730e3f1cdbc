// Readers of the option objects that the CPU and CUDA bindings of one op share, so both validate a
// call the same way: conv2d's and maxPool2d's geometry, and conv2d's precision.
#pragma once
#include <napi.h>

#include <string>

#include "core/tensor.h"
#include "ops/conv2d.h"
#include "ops/pool.h"

namespace sslinv {
namespace napi {

// Conv2dParams of x [N, H, W, C] and {outChannels, kernelH, kernelW, strideH, strideW, padH, padW},
// validated (ValidateConv2dParams).
Conv2dParams GetConv2dParams(Napi::Env env, const Tensor& x, Napi::Object o);
// Pool2dParams of x [N, H, W, C] and {kernelH, kernelW, strideH, strideW, padH, padW}, validated.
Pool2dParams GetPool2dParams(Napi::Env env, const Tensor& x, Napi::Object o);
// The options' `precision`: "fp32" (also when absent), "tf32" or "bf16".
std::string GetPrecision(Napi::Env env, Napi::Object o);
// options.algo of conv2d: 'auto' (absent) or a named CUDA kernel variant: 'simt-bk8', 'simt-bk16'
// (fp32), 'mma-staged', 'mma-pipelined' (tf32; 'mma-pipelined' is also the bf16-in-memory kernel),
// 'wgmma' (bf16 in memory, sm_90a); benchmarks time them side by side. Anything else is
// ERR_INVALID_ARGUMENT.
std::string GetConvAlgo(Napi::Env env, Napi::Object o);
// The covariance's SYRK kernel argument: 'auto' (also when undefined), 'simt' or '3xtf32' (CUDA
// variants, for benchmarks); anything else is ERR_INVALID_ARGUMENT.
std::string GetCovarianceSyrk(Napi::Env env, Napi::Value v);
// toBfloat16's output shape for x [..., c] and the padLastDimTo argument (undefined: c), checked
// (x has a dimension, padLastDimTo >= c >= 1).
struct Bf16Padding {
  int64_t c = 0, c_pad = 0;
  std::vector<int64_t> shape;  // x's shape with the last dimension c_pad
};
Bf16Padding GetBf16Padding(Napi::Env env, const Tensor& x, Napi::Value pad);

}  // namespace napi
}  // namespace sslinv
