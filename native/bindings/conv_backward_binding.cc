// JS entry points of the convolution's backward kernels (ops/conv2d_backward.h on the CPU,
// cuda/conv2d_backward.cuh on a CUDA device):
//
//   conv2dBackwardData(dy [N, P, Q, K], weight [K, C, R, S], {outChannels, kernelH, kernelW, strideH,
//                      strideW, padH, padW, inputH, inputW}, residual?, reluOutput?)
//                      -> dx [N, inputH, inputW, C]
//     residual and reluOutput (dx's shape, or undefined) are the fused epilogue of ops/conv2d_backward.h:
//     dx = mask(reluOutput, dgrad + residual).
//   conv2dBackwardWeight(x [N, H, W, C], dy [N, P, Q, K], {outChannels, kernelH, kernelW, strideH,
//                        strideW, padH, padW}) -> dw [K, C, R, S]
//
// The call runs on the device of its first tensor argument, and every tensor argument must be on that
// device (another device is ERR_DEVICE_UNAVAILABLE, as for every op that mixes devices); the result is
// allocated there. Every argument is checked the same way on either device, before any kernel runs:
// float32 tensors of rank 4, a valid geometry, a weight shaped [outChannels, C, kernelH, kernelW], and
// dy shaped as the forward convolution's output. On a CUDA device the kernels are queued on the
// device's stream (errors of the launch are thrown at once; SSL_INV_CUDA_SYNC=1 also waits for them,
// as in cuda_ops_binding.h), their scratch memory comes from the device's caching allocator, and sizes
// past the kernels' 32-bit GEMM indices are ERR_INVALID_ARGUMENT. The device kernels sum in another
// order than the CPU's: results agree to fp32 rounding, not bit for bit (each device is deterministic).
#include <climits>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"
#include "bindings/op_args.h"
#include "ops/conv2d_backward.h"
#ifdef SSL_INV_WITH_CUDA
#include "cuda/conv2d_backward.cuh"
#include "cuda/runtime.h"
#endif

namespace sslinv {
namespace napi {

namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string DeviceName(const Device& d) {
  return d.type == DeviceType::kCPU ? std::string("cpu") : "cuda:" + std::to_string(d.index);
}

// A float32 rank-4 tensor argument on `device`, the device of the call's first tensor. Checked in
// GetCpuTensor's order: the device, then dtype, then rank.
const Tensor& GetF32x4(Napi::Env env, Napi::Value v, const char* op, const char* what, const Device& device) {
  const Tensor& t = GetTensor(env, v, what);
  if (!(t.device() == device)) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE",
              std::string(op) + ": " + what + " is on " + DeviceName(t.device()) + " but the call's first tensor is on " +
                  DeviceName(device) + "; all tensors of one call must be on the same device (move them with tensor.to())");
  }
  Check(env, ExpectDType(t, DType::kF32, what));
  Check(env, ExpectRank(t, 4, what));
  return t;
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

#ifdef SSL_INV_WITH_CUDA
// p as the CUDA kernels' shape; sizes past their 32-bit indices are ERR_INVALID_ARGUMENT.
cuda::Conv2dShape CudaShape(Napi::Env env, const Conv2dParams& p, const char* op) {
  for (int64_t v : {p.n, p.h, p.w, p.c, p.k, p.r, p.s, p.stride_h, p.stride_w, p.pad_h, p.pad_w}) {
    if (v > INT_MAX) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": sizes too large for the CUDA kernels");
  }
  const auto i = [](int64_t v) { return static_cast<int>(v); };
  const cuda::Conv2dShape sh{i(p.n), i(p.h), i(p.w), i(p.c), i(p.k), i(p.r), i(p.s),
                             i(p.stride_h), i(p.stride_w), i(p.pad_h), i(p.pad_w)};
  if (!cuda::Conv2dBackwardShapeIsValid(sh)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT",
              std::string(op) + ": N*H*W, N*P*Q, K*R*S or R*S*C too large for the CUDA kernels' 32-bit indices");
  }
  return sh;
}

// Device scratch for one call, from the caching allocator (back to its cache when the tensor goes out
// of scope; the stream orders its reuse after this call's kernels). bytes == 0: none.
Tensor NewScratch(Napi::Env env, size_t bytes, Device device) {
  return bytes ? NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(bytes)}, device) : Tensor{};
}
void* ScratchData(const Tensor& t) { return t.buffer ? t.buffer->data() : nullptr; }

// Throws the launch error of `op`, or with SSL_INV_CUDA_SYNC=1 the error of its execution (the rule
// of cuda_ops_binding.h).
void CheckLaunched(Napi::Env env, cudaError_t err, Device device, const char* op) {
  Check(env, cuda::FromCuda(err, op));
  static const bool sync = [] {
    const char* v = std::getenv("SSL_INV_CUDA_SYNC");
    return v != nullptr && v[0] == '1';
  }();
  if (sync) Check(env, cuda::Synchronize(device.index, op));
}

Tensor DgradOnDevice(Napi::Env env, const Conv2dParams& p, const Tensor& dy, const Tensor& w, const DgradEpilogue& ep,
                     const std::vector<int64_t>& dx_shape, Device dev, const char* op) {
  const cuda::Conv2dShape sh = CudaShape(env, p, op);
  Tensor dx = NewDeviceTensor(env, DType::kF32, dx_shape, dev);
  if (dx.numel() == 0) return dx;  // N = 0
  const Tensor ws = NewScratch(env, cuda::Conv2dBackwardDataWorkspaceBytes(sh), dev);
  CheckLaunched(env,
                cuda::LaunchConv2dBackwardData(sh, dy.data<float>(), w.data<float>(), ep.residual, ep.relu_y,
                                               dx.data<float>(), ScratchData(ws), StreamOf(env, dev)),
                dev, op);
  return dx;
}

Tensor WgradOnDevice(Napi::Env env, const Conv2dParams& p, const Tensor& x, const Tensor& dy, Device dev, const char* op) {
  const cuda::Conv2dShape sh = CudaShape(env, p, op);
  Tensor dw = NewDeviceTensor(env, DType::kF32, {p.k, p.c, p.r, p.s}, dev);
  const Tensor ws = NewScratch(env, cuda::Conv2dBackwardWeightWorkspaceBytes(sh), dev);
  CheckLaunched(env,
                cuda::LaunchConv2dBackwardWeight(sh, x.data<float>(), dy.data<float>(), dw.data<float>(), ScratchData(ws),
                                                 StreamOf(env, dev)),
                dev, op);
  return dw;
}
#else
// Without the CUDA backend no tensor is on a device, so these are never reached.
Tensor DgradOnDevice(Napi::Env env, const Conv2dParams&, const Tensor&, const Tensor&, const DgradEpilogue&,
                     const std::vector<int64_t>&, Device, const char*) {
  ThrowNoCudaBackend(env);
}
Tensor WgradOnDevice(Napi::Env env, const Conv2dParams&, const Tensor&, const Tensor&, Device, const char*) {
  ThrowNoCudaBackend(env);
}
#endif

Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dBackwardData";
  const Device dev = GetTensor(env, info[0], "dy").device();
  const Tensor& dy = GetF32x4(env, info[0], op, "dy", dev);
  const Tensor& w = GetF32x4(env, info[1], op, "weight", dev);
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
    const Tensor& t = GetF32x4(env, v, op, names[i], dev);
    if (t.shape != x_shape.shape) {
      ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": " + names[i] + " must have dx's shape " +
                                               ShapeText(x_shape.shape) + ", got " + t.ShapeString());
    }
    (i == 0 ? ep.residual : ep.relu_y) = t.data<float>();
  }
  if (dev.type == DeviceType::kCUDA) return TensorWrap::New(env, DgradOnDevice(env, p, dy, w, ep, x_shape.shape, dev, op));
  Tensor dx = NewCpuTensor(env, DType::kF32, x_shape.shape);
  Check(env, Conv2dBackwardDataNHWC(p, dy.data<float>(), w.data<float>(), dx.data<float>(), ep));
  return TensorWrap::New(env, std::move(dx));
}

Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dBackwardWeight";
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = GetF32x4(env, info[0], op, "x", dev);
  const Tensor& dy = GetF32x4(env, info[1], op, "dy", dev);
  const Conv2dParams p = GetConv2dParams(env, x, GetObject(env, info[2], "options"));
  CheckDy(env, dy, p, op);
  if (dev.type == DeviceType::kCUDA) return TensorWrap::New(env, WgradOnDevice(env, p, x, dy, dev, op));
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
