// JS entry points of the training primitives: train-mode batch norm, the layer backward kernels
// (ops/layer_backward.h), the SGD step and MoCo's momentum update (ops/sgd.h).
//
// Every op runs on the device of its first tensor argument: the CPU kernels (native/cpu), or, for a
// tensor on a CUDA device, the CUDA launchers (cuda/layer_backward.cuh, cuda/sgd.cuh) on that
// device's stream, with results allocated there. Every other tensor argument must be on that same
// device, else ERR_DEVICE_UNAVAILABLE naming the argument and both devices (as the other CUDA
// bindings answer a mixed call). Without the CUDA backend no tensor can be on a device.
//
// Every binding validates all of its arguments before any kernel runs, the same way on either
// device: float32 dtype, ranks, shapes (ERR_SHAPE_MISMATCH naming the argument and both shapes),
// option ranges (ERR_INVALID_ARGUMENT). Outputs are new tensors and inputs are never written, except
// by sgdStepInPlace and momentumUpdateInPlace, whose purpose is to update their parameter tensors in
// place (on the device, by kernels queued on its stream). Device kernels run asynchronously: an
// error inside one surfaces at the next synchronisation (SSL_INV_CUDA_SYNC=1 checks after each op).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"
#include "bindings/op_args.h"
#include "ops/layer_backward.h"
#include "ops/sgd.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/layer_backward.cuh"
#include "cuda/runtime.h"
#include "cuda/sgd.cuh"
#endif

namespace sslinv {
namespace napi {

namespace {

std::string DeviceName(Device d) {
  return d.type == DeviceType::kCPU ? std::string("cpu") : "cuda:" + std::to_string(d.index);
}

// The device an op runs on: its first tensor argument's (the CPU when that is not a tensor on a CUDA
// device; the argument checks then report what is wrong with it).
Device OpDevice(Napi::Env env, Napi::Value first) {
  return IsCudaTensorArg(first) ? GetTensor(env, first, "x").device() : Device{};
}

// A float32 tensor argument on `dev` of the given rank (any when rank < 0).
const Tensor& F32Arg(Napi::Env env, const char* op, Napi::Value v, const char* what, int rank, Device dev) {
  const Tensor& t = GetTensor(env, v, what);
  if (!(t.device() == dev)) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", std::string(op) + ": " + what + " is on " + DeviceName(t.device()) +
                                                 " but the op's first tensor argument is on " + DeviceName(dev) +
                                                 ": one call's tensors must share a device (move it with tensor.to())");
  }
  Check(env, ExpectDType(t, DType::kF32, what));
  if (rank >= 0) Check(env, ExpectRank(t, rank, what));
  return t;
}

// A float32 tensor argument on `dev` with at least `min_rank` dimensions.
const Tensor& F32ArgMinRank(Napi::Env env, const char* op, Napi::Value v, const char* what, int min_rank, Device dev) {
  const Tensor& t = F32Arg(env, op, v, what, -1, dev);
  if (t.ndim() < min_rank) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": " + what + ": expected at least " +
                                             std::to_string(min_rank) + " dimensions but got shape " + t.ShapeString());
  }
  return t;
}

#ifdef SSL_INV_WITH_CUDA
bool OnCuda(Device d) { return d.type == DeviceType::kCUDA; }

// Throws the launch error of `op`, or (SSL_INV_CUDA_SYNC=1) the error of its execution, as the other
// CUDA bindings do.
void Launched(Napi::Env env, cudaError_t err, Device dev, const char* op) {
  Check(env, cuda::FromCuda(err, op));
  static const bool sync = [] {
    const char* v = std::getenv("SSL_INV_CUDA_SYNC");
    return v != nullptr && v[0] == '1';
  }();
  if (sync) Check(env, cuda::Synchronize(dev.index, op));
}

// Scratch device memory for one op: returned to the allocator's cache when it goes out of scope,
// the stream ordering its reuse after the op's kernels.
struct Scratch {
  Tensor t;
  size_t bytes = 0;
  void* data() const { return t.buffer ? t.buffer->data() : nullptr; }
};
Scratch NewScratch(Napi::Env env, size_t bytes, Device dev) {
  Scratch s;
  s.bytes = bytes;
  if (bytes) s.t = NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(bytes)}, dev);
  return s;
}
#endif

// A new float32 tensor on `dev` (uninitialised on a device; the kernels write every element).
Tensor NewF32(Napi::Env env, Device dev, const std::vector<int64_t>& shape) {
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) return NewDeviceTensor(env, DType::kF32, shape, dev);
#endif
  return NewCpuTensor(env, DType::kF32, shape);
}

void ExpectShapeOf(Napi::Env env, const char* op, const Tensor& t, const std::vector<int64_t>& shape, const char* what) {
  const Status st = ExpectShape(t, shape, what);
  if (!st.ok()) ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": " + st.message());
}

// A number option: required (no fallback) or defaulted when absent.
double NumberOption(Napi::Env env, const char* op, Napi::Object o, const char* key, const double* fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && fallback != nullptr) return *fallback;
  if (!v.IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": " + key + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

// The `groups` option of batchNormTrain: absent -> 1, else a whole number >= 1.
int64_t GroupsOption(Napi::Env env, const char* op, Napi::Object o) {
  Napi::Value v = o.Get("groups");
  if (v.IsUndefined()) return 1;
  const std::string bad = std::string(op) + ": groups must be an integer >= 1";
  if (!v.IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", bad + ", got a value that is not a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || d != std::floor(d)) {
    std::ostringstream m;
    m << bad << ", got " << d;
    ThrowCode(env, "ERR_INVALID_ARGUMENT", m.str());
  }
  return static_cast<int64_t>(d);
}

// batchNormTrain(x [N, ..., C], weight, bias, runningMean, runningVar,
//                {eps, momentum, relu?, residual?, groups?})
//   -> [y, saveMean, saveInvstd, newRunningMean, newRunningVar]
// residual (x's shape) is added to the normalised value before the ReLU (a ResNet block's sum).
// groups (default 1): split batch norm, G groups of N / G samples each normalised with its own
// statistics (ops/layer_backward.h); N % G == 0 and at least 2 values per channel in each group, else
// ERR_INVALID_ARGUMENT. saveMean and saveInvstd are [C] when G == 1 and [G, C] (row g: group g) when
// G > 1; the running statistics ([C]) are updated from group 0's statistics only.
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "batchNormTrain";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& x = F32ArgMinRank(env, op, info[0], "x", 2, dev);
  const char* names[] = {"weight", "bias", "runningMean", "runningVar"};
  const Tensor* v[4];
  for (int i = 0; i < 4; ++i) v[i] = &F32Arg(env, op, info[1 + i], names[i], -1, dev);
  Napi::Object o = GetObject(env, info[5], "options");
  const int64_t C = x.dim(-1);
  for (int i = 0; i < 4; ++i) ExpectShapeOf(env, op, *v[i], {C}, names[i]);
  const int64_t rows = C > 0 ? x.numel() / C : 0;
  if (C < 1 || rows < 2) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": expected more than 1 value per channel when training, x is " +
                                             x.ShapeString());
  }
  const double eps = NumberOption(env, op, o, "eps", nullptr);
  if (!(eps >= 0) || !std::isfinite(eps)) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": eps must be a finite number >= 0");
  const double momentum = NumberOption(env, op, o, "momentum", nullptr);
  if (!(momentum >= 0 && momentum <= 1)) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": momentum must be in [0, 1]");
  const bool relu = GetBoolProp(env, o, "relu", false);
  const int64_t G = GroupsOption(env, op, o);
  const int64_t N = x.dim(0);
  if (N % G != 0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": groups = " + std::to_string(G) +
                                               " does not divide the batch size N = " + std::to_string(N) + " of x " +
                                               x.ShapeString());
  }
  if (rows / G < 2) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": groups = " + std::to_string(G) + " leaves " +
                                               std::to_string(rows / G) + " value per channel in each group of x " +
                                               x.ShapeString() + "; training needs more than 1");
  }
  const Tensor* residual = nullptr;
  Napi::Value rv = o.Get("residual");
  if (!rv.IsUndefined() && !rv.IsNull()) {
    residual = &F32Arg(env, op, rv, "residual", -1, dev);
    ExpectShapeOf(env, op, *residual, x.shape, "residual");
  }
  const std::vector<int64_t> saved = G == 1 ? std::vector<int64_t>{C} : std::vector<int64_t>{G, C};
  std::vector<Tensor> out;
  out.push_back(NewF32(env, dev, x.shape));
  out.push_back(NewF32(env, dev, saved));
  out.push_back(NewF32(env, dev, saved));
  for (int i = 0; i < 2; ++i) out.push_back(NewF32(env, dev, {C}));
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    const Scratch ws = NewScratch(env, cuda::BatchNormTrainWorkspaceBytes(rows, C, G), dev);
    Launched(env, cuda::BatchNormTrainF32(x.data<float>(), rows, C, G, v[0]->data<float>(), v[1]->data<float>(),
                                          v[2]->data<float>(), v[3]->data<float>(), eps, momentum, relu,
                                          residual ? residual->data<float>() : nullptr, out[0].data<float>(),
                                          out[1].data<float>(), out[2].data<float>(), out[3].data<float>(),
                                          out[4].data<float>(), ws.data(), ws.bytes, StreamOf(env, dev)),
             dev, op);
    return NewTensorArray(env, std::move(out));
  }
#endif
  Check(env, BatchNormTrainF32(x.data<float>(), rows, C, G, v[0]->data<float>(), v[1]->data<float>(),
                               v[2]->data<float>(), v[3]->data<float>(), eps, momentum, relu,
                               residual ? residual->data<float>() : nullptr, out[0].data<float>(), out[1].data<float>(),
                               out[2].data<float>(), out[3].data<float>(), out[4].data<float>()));
  return NewTensorArray(env, std::move(out));
}

// batchNormBackward(dy, x [N, ..., C], weight [C], mean, invstd, reluOutput?) -> [dx, dweight, dbias]
// reluOutput (x's shape): the output of a ReLU after the batch norm; dy is masked by it first.
// mean and invstd are the forward's saved statistics, [C] (one group) or [G, C] (split batch norm:
// G groups of N / G samples); the group count is read from their shape. invstd must have mean's
// shape, and G must divide N, else ERR_SHAPE_MISMATCH naming the argument.
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "batchNormBackward";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& dy = F32ArgMinRank(env, op, info[0], "dy", 2, dev);
  const Tensor& x = F32ArgMinRank(env, op, info[1], "x", 2, dev);
  const char* names[] = {"weight", "mean", "invstd"};
  const Tensor* v[3];
  for (int i = 0; i < 3; ++i) v[i] = &F32Arg(env, op, info[2 + i], names[i], -1, dev);
  const Tensor* relu_y = nullptr;
  if (info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNull()) {
    relu_y = &F32Arg(env, op, info[5], "reluOutput", -1, dev);
  }
  ExpectShapeOf(env, op, dy, x.shape, "dy");
  if (relu_y) ExpectShapeOf(env, op, *relu_y, x.shape, "reluOutput");
  const int64_t C = x.dim(-1);
  ExpectShapeOf(env, op, *v[0], {C}, "weight");
  const Tensor& mean = *v[1];
  if (mean.ndim() == 1) {
    ExpectShapeOf(env, op, mean, {C}, "mean");
  } else if (mean.ndim() != 2 || mean.dim(0) < 1 || mean.dim(1) != C) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": mean: expected shape [" + std::to_string(C) + "] or [G, " +
                                             std::to_string(C) + "] (G >= 1 groups) but got " + mean.ShapeString());
  }
  ExpectShapeOf(env, op, *v[2], mean.shape, "invstd");
  const int64_t G = mean.ndim() == 2 ? mean.dim(0) : 1;
  const int64_t N = x.dim(0);
  if (N % G != 0) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": mean: " + mean.ShapeString() + " holds " +
                                             std::to_string(G) + " groups, which do not divide the batch size N = " +
                                             std::to_string(N) + " of x " + x.ShapeString());
  }
  const int64_t rows = C > 0 ? x.numel() / C : 0;
  if (C < 1 || rows < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": x is empty: " + x.ShapeString());
  Tensor dx = NewF32(env, dev, x.shape);
  Tensor dw = NewF32(env, dev, {C});
  Tensor db = NewF32(env, dev, {C});
  const float* ry = relu_y ? relu_y->data<float>() : nullptr;
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    const Scratch ws = NewScratch(env, cuda::BatchNormBackwardWorkspaceBytes(rows, C, G), dev);
    Launched(env, cuda::BatchNormBackwardF32(dy.data<float>(), ry, x.data<float>(), rows, C, G, v[0]->data<float>(),
                                             mean.data<float>(), v[2]->data<float>(), dx.data<float>(),
                                             dw.data<float>(), db.data<float>(), ws.data(), ws.bytes,
                                             StreamOf(env, dev)),
             dev, op);
  } else
#endif
  {
    Check(env, BatchNormBackwardF32(dy.data<float>(), ry, x.data<float>(), rows, C, G, v[0]->data<float>(),
                                    mean.data<float>(), v[2]->data<float>(), dx.data<float>(), dw.data<float>(),
                                    db.data<float>()));
  }
  std::vector<Tensor> out;
  out.push_back(std::move(dx));
  out.push_back(std::move(dw));
  out.push_back(std::move(db));
  return NewTensorArray(env, std::move(out));
}

// reluBackward(dy, y) -> dx
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "reluBackward";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& dy = F32Arg(env, op, info[0], "dy", -1, dev);
  const Tensor& y = F32Arg(env, op, info[1], "y", -1, dev);
  ExpectShapeOf(env, op, dy, y.shape, "dy");
  Tensor dx = NewF32(env, dev, y.shape);
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    Launched(env, cuda::ReluBackwardF32(dy.data<float>(), y.data<float>(), dx.data<float>(), y.numel(), StreamOf(env, dev)),
             dev, op);
    return TensorWrap::New(env, std::move(dx));
  }
#endif
  ReluBackwardF32(dy.data<float>(), y.data<float>(), dx.data<float>(), y.numel());
  return TensorWrap::New(env, std::move(dx));
}

// maxPool2dBackward(dy [N, P, Q, C], x [N, H, W, C], {kernelH, kernelW, strideH, strideW, padH, padW}) -> dx
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "maxPool2dBackward";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& dy = F32Arg(env, op, info[0], "dy", 4, dev);
  const Tensor& x = F32Arg(env, op, info[1], "x", 4, dev);
  const Pool2dParams p = GetPool2dParams(env, x, GetObject(env, info[2], "options"));
  ExpectShapeOf(env, op, dy, {p.n, p.out_h(), p.out_w(), p.c}, "dy");
  Tensor dx = NewF32(env, dev, x.shape);
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    const Scratch ws = NewScratch(env, cuda::MaxPool2dBackwardWorkspaceBytes(p), dev);
    Launched(env, cuda::MaxPool2dBackwardNHWC(p, dy.data<float>(), x.data<float>(), dx.data<float>(), ws.data(),
                                              ws.bytes, StreamOf(env, dev)),
             dev, op);
    return TensorWrap::New(env, std::move(dx));
  }
#endif
  Check(env, MaxPool2dBackwardNHWC(p, dy.data<float>(), x.data<float>(), dx.data<float>()));
  return TensorWrap::New(env, std::move(dx));
}

// globalAvgPoolBackward(dy [N, C], inputShape [N, H, W, C]) -> dx [N, H, W, C]
Napi::Value GlobalAvgPoolBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "globalAvgPoolBackward";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& dy = F32Arg(env, op, info[0], "dy", 2, dev);
  const std::vector<int64_t> shape = GetShape(env, info[1], "inputShape");
  if (shape.size() != 4 || shape[1] < 1 || shape[2] < 1 || shape[3] < 1) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": inputShape must be [N, H, W, C] with H, W, C >= 1");
  }
  ExpectShapeOf(env, op, dy, {shape[0], shape[3]}, "dy");
  Tensor dx = NewF32(env, dev, shape);
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    Launched(env, cuda::GlobalAvgPoolBackwardNHWC(shape[0], shape[1], shape[2], shape[3], dy.data<float>(),
                                                  dx.data<float>(), StreamOf(env, dev)),
             dev, op);
    return TensorWrap::New(env, std::move(dx));
  }
#endif
  Check(env, GlobalAvgPoolBackwardNHWC(shape[0], shape[1], shape[2], shape[3], dy.data<float>(), dx.data<float>()));
  return TensorWrap::New(env, std::move(dx));
}

// sumRows(x [M, N]) -> [N]
Napi::Value SumRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sumRows";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& x = F32Arg(env, op, info[0], "x", 2, dev);
  Tensor out = NewF32(env, dev, {x.dim(1)});
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    const Scratch ws = NewScratch(env, cuda::SumRowsWorkspaceBytes(x.dim(0), x.dim(1)), dev);
    Launched(env, cuda::SumRowsF32(x.data<float>(), x.dim(0), x.dim(1), out.data<float>(), ws.data(), ws.bytes,
                                   StreamOf(env, dev)),
             dev, op);
    return TensorWrap::New(env, std::move(out));
  }
#endif
  Check(env, SumRowsF32(x.data<float>(), x.dim(0), x.dim(1), out.data<float>()));
  return TensorWrap::New(env, std::move(out));
}

// momentumUpdate(k, q, m) -> k * m + q * (1 - m)
Napi::Value MomentumUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "momentumUpdate";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& k = F32Arg(env, op, info[0], "k", -1, dev);
  const Tensor& q = F32Arg(env, op, info[1], "q", -1, dev);
  ExpectShapeOf(env, op, q, k.shape, "q");
  const double m = GetNumber(env, info[2], "m");
  if (!(m >= 0 && m <= 1)) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": m must be in [0, 1]");
  Tensor out = NewF32(env, dev, k.shape);
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    const cuda::MomentumDeviceTensor t{k.data<float>(), q.data<float>(), out.data<float>(), k.numel()};
    Launched(env, cuda::MomentumUpdateF32(&t, 1, m, StreamOf(env, dev)), dev, op);
    return TensorWrap::New(env, std::move(out));
  }
#endif
  Check(env, MomentumUpdateF32(k.data<float>(), q.data<float>(), m, out.data<float>(), k.numel()));
  return TensorWrap::New(env, std::move(out));
}

// sgdStep(param, grad, buffer | undefined, {lr, momentum?, weightDecay?, dampening?, nesterov?})
//   -> [param'] without momentum, [param', buffer'] with it
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sgdStep";
  const Device dev = OpDevice(env, info[0]);
  const Tensor& param = F32Arg(env, op, info[0], "param", -1, dev);
  const Tensor& grad = F32Arg(env, op, info[1], "grad", -1, dev);
  const bool has_buf = !(info[2].IsUndefined() || info[2].IsNull());
  const Tensor* buf = has_buf ? &F32Arg(env, op, info[2], "buffer", -1, dev) : nullptr;
  Napi::Object o = GetObject(env, info[3], "options");
  ExpectShapeOf(env, op, grad, param.shape, "grad");
  if (buf) ExpectShapeOf(env, op, *buf, param.shape, "buffer");
  const double zero = 0;
  SgdParams p;
  p.lr = NumberOption(env, op, o, "lr", nullptr);
  p.momentum = NumberOption(env, op, o, "momentum", &zero);
  p.weight_decay = NumberOption(env, op, o, "weightDecay", &zero);
  p.dampening = NumberOption(env, op, o, "dampening", &zero);
  p.nesterov = GetBoolProp(env, o, "nesterov", false);
  const Status st = ValidateSgdParams(p);
  if (!st.ok()) ThrowCode(env, "ERR_INVALID_ARGUMENT", st.message());
  if (buf && p.momentum == 0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": a momentum buffer was given but momentum is 0");
  }
  std::vector<Tensor> out;
  out.push_back(NewF32(env, dev, param.shape));
  if (p.momentum != 0) out.push_back(NewF32(env, dev, param.shape));
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    const cuda::SgdDeviceTensor t{param.data<float>(), grad.data<float>(), buf ? buf->data<float>() : nullptr,
                                  out[0].data<float>(), p.momentum != 0 ? out[1].data<float>() : nullptr,
                                  param.numel()};
    Launched(env, cuda::SgdStepF32(p, &t, 1, StreamOf(env, dev)), dev, op);
    return NewTensorArray(env, std::move(out));
  }
#endif
  Check(env, SgdStepF32(p, param.data<float>(), grad.data<float>(), buf ? buf->data<float>() : nullptr,
                        out[0].data<float>(), p.momentum != 0 ? out[1].data<float>() : nullptr, param.numel()));
  return NewTensorArray(env, std::move(out));
}

// The SgdParams of an options object {lr, momentum?, weightDecay?, dampening?, nesterov?}, checked.
SgdParams GetSgdParams(Napi::Env env, const char* op, Napi::Object o) {
  const double zero = 0;
  SgdParams p;
  p.lr = NumberOption(env, op, o, "lr", nullptr);
  p.momentum = NumberOption(env, op, o, "momentum", &zero);
  p.weight_decay = NumberOption(env, op, o, "weightDecay", &zero);
  p.dampening = NumberOption(env, op, o, "dampening", &zero);
  p.nesterov = GetBoolProp(env, o, "nesterov", false);
  const Status st = ValidateSgdParams(p);
  if (!st.ok()) ThrowCode(env, "ERR_INVALID_ARGUMENT", st.message());
  return p;
}

// An Array argument of exactly n elements (n < 0: any length).
Napi::Array ArrayArg(Napi::Env env, const char* op, Napi::Value v, const char* what, int64_t n) {
  if (!v.IsArray() || (n >= 0 && v.As<Napi::Array>().Length() != static_cast<uint32_t>(n))) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": " + what + ": expected an array" +
                                               (n >= 0 ? " of " + std::to_string(n) + " elements" : ""));
  }
  return v.As<Napi::Array>();
}

// momentumUpdateInPlace(ks[], qs[], m): every k = k * m + q * (1 - m), written into k. All arguments
// are checked first: float32 tensors on ks[0]'s device, q shaped like its k, no k sharing storage
// with another k or with any q. On a CUDA device: one launch per 32 tensors.
Napi::Value MomentumUpdateInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "momentumUpdateInPlace";
  Napi::Array ks = ArrayArg(env, op, info[0], "ks", -1);
  const uint32_t count = ks.Length();
  Napi::Array qs = ArrayArg(env, op, info[1], "qs", count);
  const double m = GetNumber(env, info[2], "m");
  if (!(m >= 0 && m <= 1)) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": m must be in [0, 1]");
  const Device dev = count > 0 ? OpDevice(env, ks.Get(0u)) : Device{};
  std::vector<MomentumInPlaceTensor> ts(count);
  std::map<const Buffer*, uint32_t> written;  // storage of each k -> its index
  std::vector<const Buffer*> read(count);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    const Tensor& k = F32Arg(env, op, ks.Get(i), ("ks" + at).c_str(), -1, dev);
    const Tensor& q = F32Arg(env, op, qs.Get(i), ("qs" + at).c_str(), -1, dev);
    ExpectShapeOf(env, op, q, k.shape, ("qs" + at).c_str());
    if (!written.emplace(k.buffer.get(), i).second) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": ks" + at + " shares its storage with another k");
    }
    read[i] = q.buffer.get();
    ts[i] = {k.data<float>(), q.data<float>(), k.numel()};
  }
  // A q may be its own k (each element is read before it is written), never another one.
  for (uint32_t i = 0; i < count; ++i) {
    auto it = written.find(read[i]);
    if (it != written.end() && it->second != i) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": qs[" + std::to_string(i) +
                                                 "] shares its storage with ks[" + std::to_string(it->second) + "]");
    }
  }
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    std::vector<cuda::MomentumDeviceTensor> dts(count);
    for (uint32_t i = 0; i < count; ++i) dts[i] = {ts[i].k, ts[i].q, ts[i].k, ts[i].n};
    Launched(env, cuda::MomentumUpdateF32(dts.data(), dts.size(), m, StreamOf(env, dev)), dev, op);
    return env.Undefined();
  }
#endif
  Check(env, MomentumUpdateInPlaceF32(ts, m));
  return env.Undefined();
}

// sgdStepInPlace(params[], grads[], buffers[] (undefined entries: no buffer yet), options)
//   -> buffers'[]: for each entry, the new momentum buffer created by this (first) step, else undefined
// Every param and existing buffer is updated in place. All arguments are checked before anything is
// written: float32 tensors on params[0]'s device, grads and buffers shaped like their params, no
// storage shared between two params or buffers, or between a gradient and any param or buffer. New
// buffers are created on that device. On a CUDA device: one launch per 32 tensors.
Napi::Value SgdStepInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sgdStepInPlace";
  Napi::Array params = ArrayArg(env, op, info[0], "params", -1);
  const uint32_t count = params.Length();
  Napi::Array grads = ArrayArg(env, op, info[1], "grads", count);
  Napi::Array bufs = ArrayArg(env, op, info[2], "buffers", count);
  const SgdParams p = GetSgdParams(env, op, GetObject(env, info[3], "options"));
  const bool momentum = p.momentum != 0;
  const Device dev = count > 0 ? OpDevice(env, params.Get(0u)) : Device{};
  std::vector<const Tensor*> param(count), grad(count), buf(count, nullptr);
  std::vector<const Buffer*> written;  // storages this call writes: must be distinct
  for (uint32_t i = 0; i < count; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    param[i] = &F32Arg(env, op, params.Get(i), ("params" + at).c_str(), -1, dev);
    grad[i] = &F32Arg(env, op, grads.Get(i), ("grads" + at).c_str(), -1, dev);
    ExpectShapeOf(env, op, *grad[i], param[i]->shape, ("grads" + at).c_str());
    Napi::Value b = bufs.Get(i);
    if (!b.IsUndefined() && !b.IsNull()) {
      if (!momentum) {
        ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": a momentum buffer was given but momentum is 0");
      }
      buf[i] = &F32Arg(env, op, b, ("buffers" + at).c_str(), -1, dev);
      ExpectShapeOf(env, op, *buf[i], param[i]->shape, ("buffers" + at).c_str());
      if (buf[i]->buffer == grad[i]->buffer) {
        ThrowCode(env, "ERR_INVALID_ARGUMENT",
                  std::string(op) + ": buffers" + at + " shares its storage with grads" + at);
      }
      written.push_back(buf[i]->buffer.get());
    }
    written.push_back(param[i]->buffer.get());
  }
  std::vector<const Buffer*> sorted = written;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": two parameters or buffers share their storage");
  }
  // A gradient read while another tensor's update writes the same storage would race (between the
  // blocks of one launch on a GPU, between the threads of the one parallel range on the CPU).
  for (uint32_t i = 0; i < count; ++i) {
    if (std::binary_search(sorted.begin(), sorted.end(), grad[i]->buffer.get())) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT",
                std::string(op) + ": grads[" + std::to_string(i) + "] shares its storage with a parameter or buffer this step writes");
    }
  }
  std::vector<Tensor> fresh(count);  // first-step buffers
  std::vector<SgdInPlaceTensor> ts(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (momentum && !buf[i]) fresh[i] = NewF32(env, dev, param[i]->shape);
    ts[i].param = param[i]->data<float>();
    ts[i].grad = grad[i]->data<float>();
    ts[i].buf = buf[i] ? buf[i]->data<float>() : momentum ? fresh[i].data<float>() : nullptr;
    ts[i].buf_is_new = momentum && !buf[i];
    ts[i].n = param[i]->numel();
  }
#ifdef SSL_INV_WITH_CUDA
  if (OnCuda(dev)) {
    // In place: param_out is param, and buf_out the existing buffer (read first) or the new one.
    std::vector<cuda::SgdDeviceTensor> dts(count);
    for (uint32_t i = 0; i < count; ++i) {
      dts[i] = {ts[i].param, ts[i].grad, ts[i].buf_is_new ? nullptr : ts[i].buf, ts[i].param, ts[i].buf, ts[i].n};
    }
    Launched(env, cuda::SgdStepF32(p, dts.data(), dts.size(), StreamOf(env, dev)), dev, op);
  } else
#endif
  {
    Check(env, SgdStepInPlaceF32(p, ts));
  }
  Napi::Array out = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; ++i) {
    out.Set(i, fresh[i].buffer ? TensorWrap::New(env, std::move(fresh[i])) : env.Undefined());
  }
  return out;
}

}  // namespace

void RegisterLayerBackwardBindings(Napi::Env env, Napi::Object exports) {
  struct { const char* name; Napi::Value (*fn)(const Napi::CallbackInfo&); } ops[] = {
      {"batchNormTrain", BatchNormTrain},
      {"batchNormBackward", BatchNormBackward},
      {"reluBackward", ReluBackward},
      {"maxPool2dBackward", MaxPool2dBackward},
      {"globalAvgPoolBackward", GlobalAvgPoolBackward},
      {"sumRows", SumRows},
      {"momentumUpdate", MomentumUpdate},
      {"sgdStep", SgdStep},
      {"sgdStepInPlace", SgdStepInPlace},
      {"momentumUpdateInPlace", MomentumUpdateInPlace},
  };
  for (const auto& op : ops) exports.Set(op.name, Napi::Function::New(env, op.fn, op.name));
}

}  // namespace napi
}  // namespace sslinv
