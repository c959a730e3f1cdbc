// JS entry points of the convolution's backward kernels (ops/conv2d_backward.h), CPU only so far:
//
//   conv2dBackwardData(dy [N, P, Q, K], weight [K, C, R, S], {outChannels, kernelH, kernelW, strideH,
//                      strideW, padH, padW, inputH, inputW}, residual?, reluOutput?)
//                      -> dx [N, inputH, inputW, C]
//     residual and reluOutput (dx's shape, or undefined) are the fused epilogue of ops/conv2d_backward.h:
//     dx = mask(reluOutput, dgrad + residual).
//   conv2dBackwardWeight(x [N, H, W, C], dy [N, P, Q, K], {outChannels, kernelH, kernelW, strideH,
//                        strideW, padH, padW}) -> dw [K, C, R, S]
//
// Every argument is checked before any kernel runs: float32 CPU tensors of rank 4 (a tensor on a
// CUDA device is ERR_DEVICE_UNAVAILABLE, since no device kernel exists yet), a valid geometry, a
// weight shaped [outChannels, C, kernelH, kernelW], and dy shaped as the forward convolution's output.
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"
#include "bindings/op_args.h"
#include "ops/conv2d_backward.h"

namespace sslinv {
namespace napi {

namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A float32 rank-4 tensor on the CPU; a CUDA tensor gets ERR_DEVICE_UNAVAILABLE with the reason.
const Tensor& GetCpuF32x4(Napi::Env env, Napi::Value v, const char* op, const char* what) {
  if (IsCudaTensorArg(v)) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE",
              std::string(op) + ": " + what +
                  " is on a CUDA device, but the backward ops run on the CPU only so far;"
                  " copy the tensors to 'cpu' first");
  }
  return GetCpuTensor(env, v, what, DType::kF32, 4);
}

// dy must be the forward output [N, P, Q, K] of the convolution p.
void CheckDy(Napi::Env env, const Tensor& dy, const Conv2dParams& p, const char* op) {
  const std::vector<int64_t> want{p.n, p.out_h(), p.out_w(), p.k};
  if (dy.shape != want) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": dy must be the convolution's output " + ShapeText(want) +
                                             " [N, P, Q, K] for input " +
                                             ShapeText({p.n, p.h, p.w, p.c}) + ", but got " + dy.ShapeString());
  }
}

// inputH / inputW of conv2dBackwardData: positive integers.
int64_t GetInputSize(Napi::Env env, Napi::Object o, const char* key) {
  const int64_t v = GetIntProp(env, o, key);
  if (v <= 0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT",
              std::string("conv2dBackwardData: ") + key + " must be >= 1, got " + std::to_string(v));
  }
  return v;
}

Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dBackwardData";
  const Tensor& dy = GetCpuF32x4(env, info[0], op, "dy");
  const Tensor& w = GetCpuF32x4(env, info[1], op, "weight");
  Napi::Object o = GetObject(env, info[2], "options");
  // The forward convolution: x is [N, inputH, inputW, C] with N from dy and C from the weight.
  Tensor x_shape;
  x_shape.shape = {dy.dim(0), GetInputSize(env, o, "inputH"), GetInputSize(env, o, "inputW"), w.dim(1)};
  const Conv2dParams p = GetConv2dParams(env, x_shape, o);
  if (w.shape != std::vector<int64_t>{p.k, p.c, p.r, p.s}) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": weight must be [outChannels, C, kernelH, kernelW] = " +
                                             ShapeText({p.k, p.c, p.r, p.s}) + ", got " + w.ShapeString());
  }
  CheckDy(env, dy, p, op);
  DgradEpilogue ep;
  const char* names[] = {"residual", "reluOutput"};
  for (int i = 0; i < 2; ++i) {
    Napi::Value v = info[3 + i];
    if (v.IsUndefined() || v.IsNull()) continue;
    const Tensor& t = GetCpuF32x4(env, v, op, names[i]);
    if (t.shape != x_shape.shape) {
      ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": " + names[i] + " must have dx's shape " +
                                               ShapeText(x_shape.shape) + ", got " + t.ShapeString());
    }
    (i == 0 ? ep.residual : ep.relu_y) = t.data<float>();
  }
  Tensor dx = NewCpuTensor(env, DType::kF32, x_shape.shape);
  Check(env, Conv2dBackwardDataNHWC(p, dy.data<float>(), w.data<float>(), dx.data<float>(), ep));
  return TensorWrap::New(env, std::move(dx));
}

Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dBackwardWeight";
  const Tensor& x = GetCpuF32x4(env, info[0], op, "x");
  const Tensor& dy = GetCpuF32x4(env, info[1], op, "dy");
  const Conv2dParams p = GetConv2dParams(env, x, GetObject(env, info[2], "options"));
  CheckDy(env, dy, p, op);
  Tensor dw = NewCpuTensor(env, DType::kF32, {p.k, p.c, p.r, p.s});
  Check(env, Conv2dBackwardWeightNHWC(p, x.data<float>(), dy.data<float>(), dw.data<float>()));
  return TensorWrap::New(env, std::move(dw));
}

}  // namespace

void RegisterConvBackwardBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData, "conv2dBackwardData"));
  exports.Set("conv2dBackwardWeight", Napi::Function::New(env, Conv2dBackwardWeight, "conv2dBackwardWeight"));
}

}  // namespace napi
}  // namespace sslinv
