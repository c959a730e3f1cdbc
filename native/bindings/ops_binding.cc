// JS entry points of the CPU ops. Each validates its tensors (dtype, rank, shape), allocates the
// output, runs the kernel and returns the output tensor. Options objects carry the typed parameters
// (see the op headers in native/ops for shapes and conventions).
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/image_args.h"
#include "bindings/napi_util.h"
#include "bindings/op_args.h"
#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/gemm_kernels.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/layout.h"
#include "ops/moco_loss.h"
#include "ops/pool.h"
#include "ops/resample.h"

namespace sslinv {
namespace napi {

namespace {

const Tensor* OptionalF32(Napi::Env env, Napi::Object o, const char* key, const std::vector<int64_t>& shape) {
  const Tensor* t = GetOptionalTensor(env, o.Get(key), key);
  if (t) {
    Check(env, ExpectCPU(*t, key));
    Check(env, ExpectDType(*t, DType::kF32, key));
    Check(env, ExpectShape(*t, shape, key));
  }
  return t;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", CpuIsaName(DetectCpuIsa()));
  o.Set("gemmKernel", SelectMicroKernel().name);
  o.Set("threads", ThreadPool::Get().num_threads());
#ifdef SSL_INV_WITH_CUDA
  o.Set("cudaCompiled", true);
#else
  o.Set("cudaCompiled", false);
#endif
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n = GetInt(env, info[0], "threads");
  if (n < 1 || n > 1024) ThrowCode(env, "ERR_INVALID_ARGUMENT", "threads: expected an integer from 1 to 1024");
  ThreadPool::Get().SetNumThreads(static_cast<int>(n));
  return env.Undefined();
}

// gemm(a, b, {transA, transB, bias, residual, relu}) -> C = op(a) op(b) (+ bias + residual, ReLU)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaGemm(info);
  Napi::Env env = info.Env();
  const Tensor& a = GetCpuTensor(env, info[0], "a", DType::kF32, 2);
  const Tensor& b = GetCpuTensor(env, info[1], "b", DType::kF32, 2);
  Napi::Object o = GetOptions(env, info, 2);
  const GemmDims d = GetGemmDims(env, a, b, o, "gemm");
  const Tensor* bias = OptionalF32(env, o, "bias", {d.N});
  const Tensor* res = OptionalF32(env, o, "residual", {d.M, d.N});
  Tensor c = NewCpuTensor(env, DType::kF32, {d.M, d.N});
  GemmEpilogue ep;
  ep.bias = bias ? bias->data<float>() : nullptr;
  ep.residual = res ? res->data<float>() : nullptr;
  ep.ld_residual = d.N;
  ep.relu = GetBoolProp(env, o, "relu", false);
  Check(env, Sgemm(d.M, d.N, d.K, a.data<float>(), a.dim(1), d.transA, b.data<float>(), b.dim(1), d.transB, c.data<float>(),
                   d.N, ep));
  return TensorWrap::New(env, std::move(c));
}

// convPackWeights(w [K, C, R, S], scale? [K]) -> packed weights (opaque float32 tensor)
Napi::Value ConvPackWeights(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaConvPackWeights(info);
  Napi::Env env = info.Env();
  const Tensor& w = GetCpuTensor(env, info[0], "weight", DType::kF32, 4);
  const int64_t K = w.dim(0), C = w.dim(1), R = w.dim(2), S = w.dim(3);
  const Tensor* scale = nullptr;
  if (info.Length() > 1) {
    scale = GetOptionalTensor(env, info[1], "scale");
    if (scale) {
      Check(env, ExpectDType(*scale, DType::kF32, "scale"));
      Check(env, ExpectShape(*scale, {K}, "scale"));
    }
  }
  Tensor packed = NewCpuTensor(env, DType::kF32, {Conv2dPackedWeightFloats(K, C, R, S)});
  Check(env, Conv2dPackWeights(w.data<float>(), K, C, R, S, scale ? scale->data<float>() : nullptr,
                               packed.data<float>()));
  return TensorWrap::New(env, std::move(packed));
}

// The bf16-in-memory convolution and its kernel timer exist on CUDA only (cuda_ops_binding.h says
// what they compute); with a CPU tensor they throw ERR_DEVICE_UNAVAILABLE there.
Napi::Value Conv2dBf16Storage(const Napi::CallbackInfo& info) { return CudaConv2dBf16Storage(info); }

// toBfloat16(x float32, padLastDimTo?) -> bfloat16 with the last dimension zero-padded; the same
// bits on the CPU and on a device.
Napi::Value ToBfloat16(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaToBfloat16(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, -1);
  const Bf16Padding b = GetBf16Padding(env, x, info[1]);
  Tensor y = NewCpuTensor(env, DType::kBF16, b.shape);
  F32ToBf16PaddedRows(x.data<float>(), x.numel() / b.c, b.c, b.c_pad, y.data<uint16_t>());
  return TensorWrap::New(env, std::move(y));
}

// bfloat16ToFloat32(x bfloat16) -> float32, exactly.
Napi::Value Bfloat16ToFloat32(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaBfloat16ToFloat32(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kBF16, -1);
  Tensor y = NewCpuTensor(env, DType::kF32, x.shape);
  Bf16ToF32(x.data<uint16_t>(), y.data<float>(), x.numel());
  return TensorWrap::New(env, std::move(y));
}
Napi::Value BenchConv2dBf16Nhwc(const Napi::CallbackInfo& info) { return CudaBenchConv2dBf16Nhwc(info); }

// conv2d(x [N, H, W, C], packed, {outChannels, kernelH, kernelW, strideH, strideW, padH, padW,
//        bias?, residual?, relu}) -> y [N, P, Q, K]
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaConv2d(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, 4);
  const Tensor& w = GetCpuTensor(env, info[1], "packedWeight", DType::kF32, 1);
  Napi::Object o = GetObject(env, info[2], "options");
  if (GetPrecision(env, o) != "fp32") {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "conv2d: the CPU computes in fp32 only; tf32 and bf16 need tensors on a CUDA device");
  }
  if (GetConvAlgo(env, o) != "auto") {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "conv2d: algo names a CUDA kernel variant; the CPU has one kernel (algo 'auto')");
  }
  const Conv2dParams p = GetConv2dParams(env, x, o);
  if (w.numel() != Conv2dPackedWeightFloats(p.k, p.c, p.r, p.s)) {
    // The header check in the kernel names the shapes; this guards against truncated buffers.
    if (w.numel() < 16) ThrowCode(env, "ERR_INVALID_ARGUMENT", "conv2d: packedWeight is not a packed weight tensor");
    Check(env, CheckConv2dPackedWeights(w.data<float>(), p));
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "conv2d: the packed weight tensor has the wrong size");
  }
  const std::vector<int64_t> out_shape{p.n, p.out_h(), p.out_w(), p.k};
  const Tensor* bias = OptionalF32(env, o, "bias", {p.k});
  const Tensor* res = OptionalF32(env, o, "residual", out_shape);
  Tensor y = NewCpuTensor(env, DType::kF32, out_shape);
  GemmEpilogue ep;
  ep.bias = bias ? bias->data<float>() : nullptr;
  ep.residual = res ? res->data<float>() : nullptr;
  ep.relu = GetBoolProp(env, o, "relu", false);
  Check(env, Conv2dForwardNHWC(p, x.data<float>(), w.data<float>(), ep, y.data<float>()));
  return TensorWrap::New(env, std::move(y));
}

// maxPool2d(x [N, H, W, C], {kernelH, kernelW, strideH, strideW, padH, padW}) -> [N, P, Q, C]
Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaMaxPool2d(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, 4);
  const Pool2dParams p = GetPool2dParams(env, x, GetObject(env, info[1], "options"));
  Tensor y = NewCpuTensor(env, DType::kF32, {p.n, p.out_h(), p.out_w(), p.c});
  Check(env, MaxPool2dNHWC(p, x.data<float>(), y.data<float>()));
  return TensorWrap::New(env, std::move(y));
}

// globalAvgPool(x [N, H, W, C]) -> [N, C]
Napi::Value GlobalAvgPool(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaGlobalAvgPool(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, 4);
  Tensor y = NewCpuTensor(env, DType::kF32, {x.dim(0), x.dim(3)});
  Check(env, GlobalAvgPoolNHWC(x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.data<float>(), y.data<float>()));
  return TensorWrap::New(env, std::move(y));
}

Napi::Value Relu(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaRelu(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, -1);
  Tensor y = NewCpuTensor(env, DType::kF32, x.shape);
  ReluF32(x.data<float>(), y.data<float>(), x.numel());
  return TensorWrap::New(env, std::move(y));
}

// add(a, b, relu?) -> a + b (then ReLU)
Napi::Value Add(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaAdd(info);
  Napi::Env env = info.Env();
  const Tensor& a = GetCpuTensor(env, info[0], "a", DType::kF32, -1);
  const Tensor& b = GetCpuTensor(env, info[1], "b", DType::kF32, -1);
  Check(env, ExpectShape(b, a.shape, "b"));
  const bool relu = info.Length() > 2 && info[2].ToBoolean().Value();
  Tensor y = NewCpuTensor(env, DType::kF32, a.shape);
  AddF32(a.data<float>(), b.data<float>(), y.data<float>(), a.numel(), relu);
  return TensorWrap::New(env, std::move(y));
}

void CheckChannelVector(Napi::Env env, const Tensor& t, int64_t c, const char* what) {
  Check(env, ExpectCPU(t, what));
  Check(env, ExpectDType(t, DType::kF32, what));
  Check(env, ExpectShape(t, {c}, what));
}

// batchNormInference(x [..., C], gamma, beta, mean, var, eps) -> y
Napi::Value BatchNormInference(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaBatchNormInference(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, -1);
  if (x.ndim() < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", "batchNormInference: x needs a channel dimension");
  const int64_t C = x.dim(-1);
  const char* names[] = {"gamma", "beta", "runningMean", "runningVar"};
  const Tensor* v[4];
  for (int i = 0; i < 4; ++i) {
    v[i] = &GetTensor(env, info[1 + i], names[i]);
    CheckChannelVector(env, *v[i], C, names[i]);
  }
  const double eps = info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : -1;
  if (!(eps >= 0)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "eps: expected a number >= 0");
  Tensor y = NewCpuTensor(env, DType::kF32, x.shape);
  BatchNormInferenceF32(x.data<float>(), v[0]->data<float>(), v[1]->data<float>(), v[2]->data<float>(),
                        v[3]->data<float>(), eps, y.data<float>(), x.numel() / std::max<int64_t>(C, 1), C);
  return TensorWrap::New(env, std::move(y));
}

// batchNormFold(gamma, beta, mean, var, eps) -> [scale, shift]
Napi::Value BatchNormFold(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaBatchNormFold(info);
  Napi::Env env = info.Env();
  const Tensor& g = GetTensor(env, info[0], "gamma");
  const int64_t C = g.numel();
  const char* names[] = {"gamma", "beta", "runningMean", "runningVar"};
  const Tensor* v[4];
  for (int i = 0; i < 4; ++i) {
    v[i] = &GetTensor(env, info[i], names[i]);
    CheckChannelVector(env, *v[i], C, names[i]);
  }
  const double eps = info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : -1;
  if (!(eps >= 0)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "eps: expected a number >= 0");
  Tensor scale = NewCpuTensor(env, DType::kF32, {C});
  Tensor shift = NewCpuTensor(env, DType::kF32, {C});
  BatchNormFoldF32(v[0]->data<float>(), v[1]->data<float>(), v[2]->data<float>(), v[3]->data<float>(), eps,
                   scale.data<float>(), shift.data<float>(), C);
  return NewTensorArray(env, {std::move(scale), std::move(shift)});
}

// linear(x [N, in], w [out, in], bias? [out]) -> [N, out]
Napi::Value Linear(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaLinear(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetCpuTensor(env, info[0], "x", DType::kF32, 2);
  const Tensor& w = GetCpuTensor(env, info[1], "weight", DType::kF32, 2);
  if (w.dim(1) != x.dim(1)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "linear: x has " + std::to_string(x.dim(1)) + " features but the weight is " +
                                             w.ShapeString());
  }
  const Tensor* bias = GetOptionalTensor(env, info.Length() > 2 ? info[2] : env.Undefined(), "bias");
  if (bias) CheckChannelVector(env, *bias, w.dim(0), "bias");
  Tensor y = NewCpuTensor(env, DType::kF32, {x.dim(0), w.dim(0)});
  GemmEpilogue ep;
  ep.bias = bias ? bias->data<float>() : nullptr;
  Check(env, Sgemm(x.dim(0), w.dim(0), x.dim(1), x.data<float>(), x.dim(1), false, w.data<float>(), w.dim(1), true,
                   y.data<float>(), w.dim(0), ep));
  return TensorWrap::New(env, std::move(y));
}

Napi::Value Layout(const Napi::CallbackInfo& info, bool to_nhwc) {
  if (IsCudaTensorArg(info[0])) return CudaLayout(info, to_nhwc);
  Napi::Env env = info.Env();
  const Tensor& x = GetTensor(env, info[0], "x");
  Check(env, ExpectCPU(x, "x"));
  Check(env, ExpectRank(x, 4, "x"));
  const int64_t n = x.dim(0);
  const int64_t c = to_nhwc ? x.dim(1) : x.dim(3), h = to_nhwc ? x.dim(2) : x.dim(1), w = to_nhwc ? x.dim(3) : x.dim(2);
  Tensor y = NewCpuTensor(env, x.dtype, to_nhwc ? std::vector<int64_t>{n, h, w, c} : std::vector<int64_t>{n, c, h, w});
  if (to_nhwc) {
    NchwToNhwc(x.buffer->data(), y.buffer->data(), n, c, h, w, DTypeSize(x.dtype));
  } else {
    NhwcToNchw(x.buffer->data(), y.buffer->data(), n, c, h, w, DTypeSize(x.dtype));
  }
  return TensorWrap::New(env, std::move(y));
}

Napi::Value NchwToNhwcOp(const Napi::CallbackInfo& info) { return Layout(info, true); }
Napi::Value NhwcToNchwOp(const Napi::CallbackInfo& info) { return Layout(info, false); }

// Test hook: runs a parallel region whose helper thread (or, with one thread, the caller) throws,
// to check that the error reaches JS and the process goes on.
// mocoLoss(q [N, D], kPos [N, D], queue [D, K], temperature, ranks?, rowLosses?) -> [loss [1], dq [N, D]]
// + rank int32 [N] when `ranks` is true (queue logits above each positive logit), then rowLoss
// float32 [N] when `rowLosses` is true (each query's cross-entropy); on a CUDA device as well
// (cuda_ops_binding.cc; the ranks by native/cuda/moco_rank.cu).
// gatherRows(x [R, ...] any dtype, index Int32Array [n]) -> [n, ...] on x's device, y[r] = x[index[r]]
// (torch's x[index] along dim 0). Every index is checked before anything is allocated or copied.
Napi::Value GatherRowsOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& x = GetTensor(env, info[0], "x");
  if (x.shape.empty()) ThrowCode(env, "ERR_SHAPE_MISMATCH", "gatherRows: x must have at least one dimension, got a scalar");
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "gatherRows: index: expected an Int32Array");
  }
  Napi::Int32Array given = info[1].As<Napi::Int32Array>();
  std::vector<int32_t> index(given.ElementLength());
  if (!index.empty()) std::memcpy(index.data(), given.Data(), index.size() * sizeof(int32_t));
  const int64_t rows = x.dim(0), n = static_cast<int64_t>(index.size());
  for (int64_t i = 0; i < n; ++i) {
    if (index[i] < 0 || index[i] >= rows) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", "gatherRows: index[" + std::to_string(i) + "] = " + std::to_string(index[i]) +
                                                 " is outside the " + std::to_string(rows) + " rows of x " + x.ShapeString());
    }
  }
  std::vector<int64_t> shape = x.shape;
  shape[0] = n;
  const int64_t row_bytes = rows > 0 ? static_cast<int64_t>(x.nbytes()) / rows : 0;
  if (x.device().type != DeviceType::kCPU) return CudaGatherRows(env, x, index, shape, row_bytes);
  Tensor y = NewCpuTensor(env, x.dtype, shape);
  if (n > 0 && row_bytes > 0) GatherRows(x.buffer->data(), y.buffer->data(), index.data(), n, static_cast<size_t>(row_bytes));
  return TensorWrap::New(env, std::move(y));
}

// normalizeImagesU8(x uint8 [N, H, W, C] (1 <= C <= 4), {mean, std}) -> float32 [N, C, H, W] on x's
// device: ToTensor + Normalize of each image, (float(v) / 255 - mean[c]) / std[c] in float32, the
// bits of CropNormalizeU8 (and so of the float32 output of applyAugmentAsync for a uint8 view).
Napi::Value NormalizeImagesU8Op(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& x = GetTensor(env, info[0], "x");
  Check(env, ExpectDType(x, DType::kU8, "x"));
  Check(env, ExpectRank(x, 4, "x"));
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  if (c < 1 || c > 4) ThrowCode(env, "ERR_SHAPE_MISMATCH", "normalizeImagesU8: x must be [N, H, W, C] with 1 to 4 channels, got " + x.ShapeString());
  Napi::Object norm = GetObject(env, info[1], "normalization");
  const std::vector<float> mean = GetChannelFloats(env, norm, "mean", c);
  const std::vector<float> std_ = GetChannelFloats(env, norm, "std", c);
  for (int64_t k = 0; k < c; ++k) {
    if (!(std_[k] != 0.0f) || !std::isfinite(std_[k]) || !std::isfinite(mean[k])) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", "normalizeImagesU8: std must be finite and non-zero, mean finite (channel " +
                                                 std::to_string(k) + ")");
    }
  }
  if (x.device().type != DeviceType::kCPU) return CudaNormalizeImagesU8(env, x, mean, std_);
  Tensor y = NewCpuTensor(env, DType::kF32, {n, c, h, w});
  if (y.numel() > 0) {
    Window all;
    all.height = h;
    all.width = w;
    ForRange(true, n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const ImageU8View img{x.data<uint8_t>() + i * h * w * c, h, w, c};
        // Cannot fail: the sizes and the normalisation were checked above.
        (void)CropNormalizeU8(img, all, mean.data(), std_.data(), y.data<float>() + i * c * h * w, /*parallel=*/false);
      }
    });
  }
  return TensorWrap::New(env, std::move(y));
}

Napi::Value MocoLoss(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaMocoLoss(info);
  Napi::Env env = info.Env();
  const Tensor& q = GetCpuTensor(env, info[0], "q", DType::kF32, 2);
  const Tensor& kp = GetCpuTensor(env, info[1], "kPos", DType::kF32, 2);
  const Tensor& queue = GetCpuTensor(env, info[2], "queue", DType::kF32, 2);
  Check(env, ExpectShape(kp, q.shape, "kPos"));
  if (queue.dim(0) != q.dim(1)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "mocoLoss: queue must be [dim, K] with dim = " + std::to_string(q.dim(1)) +
                                             ", got " + queue.ShapeString());
  }
  const double t = GetNumber(env, info[3], "temperature");
  if (!(t > 0) || !(t < 1e30)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "temperature: expected a positive number");
  auto flag = [&](size_t i) { return info.Length() > i && info[i].IsBoolean() && info[i].As<Napi::Boolean>().Value(); };
  const bool ranks = flag(4), row_losses = flag(5);
  // A rank is an int32 count of queue logits.
  if (ranks && queue.dim(1) > INT32_MAX) ThrowCode(env, "ERR_SHAPE_MISMATCH", "mocoLoss: ranks need K below 2^31");
  Tensor loss = NewCpuTensor(env, DType::kF32, {1});
  Tensor dq = NewCpuTensor(env, DType::kF32, q.shape);
  Tensor rank = ranks ? NewCpuTensor(env, DType::kI32, {q.dim(0)}) : Tensor();
  Tensor row_loss = row_losses ? NewCpuTensor(env, DType::kF32, {q.dim(0)}) : Tensor();
  Check(env, MocoLossForwardBackward(q.data<float>(), kp.data<float>(), queue.data<float>(), q.dim(0), q.dim(1),
                                     queue.dim(1), t, loss.data<float>(), dq.data<float>(),
                                     ranks ? rank.data<int32_t>() : nullptr,
                                     row_losses ? row_loss.data<float>() : nullptr));
  std::vector<Tensor> out;
  out.push_back(std::move(loss));
  out.push_back(std::move(dq));
  if (ranks) out.push_back(std::move(rank));
  if (row_losses) out.push_back(std::move(row_loss));
  return NewTensorArray(env, std::move(out));
}

Napi::Value DebugParallelThrow(const Napi::CallbackInfo& info) {
  ThreadPool::Get().Run(2, [](int tid, int nthreads) {
    if (tid == nthreads - 1) throw std::runtime_error("thrown on thread " + std::to_string(tid));
  });
  return info.Env().Undefined();
}

}  // namespace

void RegisterOpBindings(Napi::Env env, Napi::Object exports) {
  struct { const char* name; Napi::Value (*fn)(const Napi::CallbackInfo&); } ops[] = {
      {"info", Info},
      {"setNumThreads", SetNumThreads},
      {"gemm", Gemm},
      {"convPackWeights", ConvPackWeights},
      {"conv2d", Conv2d},
      {"conv2dBf16Storage", Conv2dBf16Storage},
      {"benchConv2dBf16Nhwc", BenchConv2dBf16Nhwc},
      {"toBfloat16", ToBfloat16},
      {"bfloat16ToFloat32", Bfloat16ToFloat32},
      {"maxPool2d", MaxPool2d},
      {"globalAvgPool", GlobalAvgPool},
      {"relu", Relu},
      {"add", Add},
      {"batchNormInference", BatchNormInference},
      {"batchNormFold", BatchNormFold},
      {"linear", Linear},
      {"nchwToNhwc", NchwToNhwcOp},
      {"nhwcToNchw", NhwcToNchwOp},
      {"mocoLoss", MocoLoss},
      {"gatherRows", GatherRowsOp},
      {"normalizeImagesU8", NormalizeImagesU8Op},
      {"_debugParallelThrow", DebugParallelThrow},
  };
  for (const auto& op : ops) exports.Set(op.name, Napi::Function::New(env, op.fn, op.name));
}

}  // namespace napi
}  // namespace sslinv
