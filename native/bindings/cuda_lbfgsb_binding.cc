// The device-resident L-BFGS-B's vector ops and the logistic objective's weight packing, for
// src/probes/lbfgsb-device.ts and logistic.ts (kernels: native/cuda/lbfgsb.cuh). A solver's vectors
// live in one float64 device tensor `state` of slots x n elements; ops name vectors by slot.
//
//   cudaLbfgsbVec(state, n, op, dst, a, b, s)        op 0 copy, 1 neg, 2 sub (a - b), 3 scale (s a),
//                                                    4 axpy (a + s b); b = -1 when unused
//   cudaLbfgsbDots(state, n, len, x, ys[]) -> Float64Array   dot products of the first len elements
//   cudaLbfgsbMaxAbsDiffers(state, n, a, b) -> [max |a|, 1 if a != b somewhere]   (b = -1: no compare)
//   cudaLbfgsbSubsm(state, n, d, z, wySlots[], wsSlots[], a[], b[], theta)
//   cudaLbfgsbRead(state, n, slot) -> Float64Array;  cudaLbfgsbWrite(state, n, slot, Float64Array)
//   cudaLogisticPack(states[], n, xSlot, dim, K) -> [m [dim, P*K], bias [P*K]]
//   cudaLogisticUnpack(gx [dim, P*K], gb [P*K], states[], n, xSlot, gSlot, dim, K, l2s[])
// The ops that return numbers wait for the device (a small copy back); the others are queued.
// Without the CUDA backend every entry point is ERR_DEVICE_UNAVAILABLE.
#include <algorithm>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/lbfgsb.cuh"
#include "cuda/runtime.h"
#endif

namespace sslinv {
namespace napi {
namespace {

#ifdef SSL_INV_WITH_CUDA

struct State {
  const Tensor* t;
  int64_t n, slots;
  double* Slot(Napi::Env env, int64_t s) const {
    if (s < 0 || s >= slots) ThrowCode(env, "ERR_INVALID_ARGUMENT", "lbfgsb: slot " + std::to_string(s) + " outside 0.." + std::to_string(slots - 1));
    return t->data<double>() + s * n;
  }
};

State GetState(Napi::Env env, Napi::Value v, Napi::Value nv) {
  const Tensor& t = GetTensor(env, v, "state");
  if (t.device().type != DeviceType::kCUDA) ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "lbfgsb: the state must be on a CUDA device");
  Check(env, ExpectDType(t, DType::kF64, "state"));
  const int64_t n = GetInt(env, nv, "n");
  if (n < 1 || t.numel() % n != 0) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "lbfgsb: a state of " + std::to_string(t.numel()) + " values is not whole vectors of n = " + std::to_string(n));
  }
  return State{&t, n, t.numel() / n};
}

void Launched(Napi::Env env, cudaError_t err, const char* what) { Check(env, cuda::FromCuda(err, what)); }

Napi::Float64Array ToJs(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
  return a;
}

Napi::Value LbfgsbVec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const State s = GetState(env, info[0], info[1]);
  const int64_t op = GetInt(env, info[2], "op"), b = GetInt(env, info[5], "b");
  double* dst = s.Slot(env, GetInt(env, info[3], "dst"));
  const double* a = s.Slot(env, GetInt(env, info[4], "a"));
  const double* bp = b < 0 ? nullptr : s.Slot(env, b);
  Launched(env, cuda::LaunchLbfgsbVecOp(static_cast<cuda::LbfgsbVecOp>(op), s.n, dst, a, bp, GetNumber(env, info[6], "s"),
                                        StreamOf(env, s.t->device())),
           "lbfgsb vector op");
  return env.Undefined();
}

Napi::Value LbfgsbDots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const State s = GetState(env, info[0], info[1]);
  const int64_t len = GetInt(env, info[2], "len");
  if (len < 0 || len > s.n) ThrowCode(env, "ERR_INVALID_ARGUMENT", "lbfgsb dots: len outside 0..n");
  const double* x = s.Slot(env, GetInt(env, info[3], "x"));
  const std::vector<double> ys = GetNumberArray(env, info[4], "ys");
  std::vector<double> out(ys.size());
  if (ys.empty()) return ToJs(env, out);
  const Device dev = s.t->device();
  Tensor dots = NewDeviceTensor(env, DType::kF64, {static_cast<int64_t>(ys.size())}, dev);
  for (size_t k0 = 0; k0 < ys.size(); k0 += cuda::kLbfgsbMaxDots) {
    const int count = static_cast<int>(std::min<size_t>(cuda::kLbfgsbMaxDots, ys.size() - k0));
    cuda::LbfgsbDotArgs args{};
    for (int k = 0; k < count; ++k) args.y[k] = s.Slot(env, static_cast<int64_t>(ys[k0 + k]));
    Launched(env, cuda::LaunchLbfgsbDots(len, x, args, count, dots.data<double>() + k0, StreamOf(env, dev)), "lbfgsb dots");
  }
  Check(env, cuda::CopyToHost(dev.index, out.data(), dots.data<double>(), out.size() * sizeof(double)));
  return ToJs(env, out);
}

Napi::Value LbfgsbMaxAbsDiffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const State s = GetState(env, info[0], info[1]);
  const double* a = s.Slot(env, GetInt(env, info[2], "a"));
  const int64_t b = GetInt(env, info[3], "b");
  const Device dev = s.t->device();
  Tensor out = NewDeviceTensor(env, DType::kF64, {2}, dev);
  Launched(env, cuda::LaunchLbfgsbMaxAbsDiffers(s.n, a, b < 0 ? nullptr : s.Slot(env, b), out.data<double>(), StreamOf(env, dev)),
           "lbfgsb max |g|");
  std::vector<double> host(2);
  Check(env, cuda::CopyToHost(dev.index, host.data(), out.data<double>(), 2 * sizeof(double)));
  return ToJs(env, host);
}

Napi::Value LbfgsbSubsm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const State s = GetState(env, info[0], info[1]);
  double* d = s.Slot(env, GetInt(env, info[2], "d"));
  double* z = s.Slot(env, GetInt(env, info[3], "z"));
  const std::vector<double> wy = GetNumberArray(env, info[4], "wySlots"), ws = GetNumberArray(env, info[5], "wsSlots");
  const std::vector<double> a = GetNumberArray(env, info[6], "a"), b = GetNumberArray(env, info[7], "b");
  const size_t col = wy.size();
  if (ws.size() != col || a.size() != col || b.size() != col || col > static_cast<size_t>(cuda::kLbfgsbMaxMemory)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "lbfgsb subsm: slot and coefficient lists of one length <= " + std::to_string(cuda::kLbfgsbMaxMemory));
  }
  cuda::LbfgsbSubsmArgs args{};
  args.col = static_cast<int>(col);
  args.theta = GetNumber(env, info[8], "theta");
  for (size_t j = 0; j < col; ++j) {
    args.wy[j] = s.Slot(env, static_cast<int64_t>(wy[j]));
    args.ws[j] = s.Slot(env, static_cast<int64_t>(ws[j]));
    args.a[j] = a[j];
    args.b[j] = b[j];
  }
  Launched(env, cuda::LaunchLbfgsbSubsm(s.n, d, z, args, StreamOf(env, s.t->device())), "lbfgsb subsm");
  return env.Undefined();
}

Napi::Value LbfgsbRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const State s = GetState(env, info[0], info[1]);
  const double* p = s.Slot(env, GetInt(env, info[2], "slot"));
  std::vector<double> host(static_cast<size_t>(s.n));
  Check(env, cuda::CopyToHost(s.t->device().index, host.data(), p, host.size() * sizeof(double)));
  return ToJs(env, host);
}

Napi::Value LbfgsbWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const State s = GetState(env, info[0], info[1]);
  double* p = s.Slot(env, GetInt(env, info[2], "slot"));
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "lbfgsb write: expected a Float64Array");
  }
  Napi::Float64Array a = info[3].As<Napi::Float64Array>();
  if (static_cast<int64_t>(a.ElementLength()) != s.n) ThrowCode(env, "ERR_SHAPE_MISMATCH", "lbfgsb write: expected n values");
  Check(env, cuda::CopyToDevice(s.t->device().index, p, a.Data(), a.ElementLength() * sizeof(double)));
  return env.Undefined();
}

std::vector<const Tensor*> GetStates(Napi::Env env, Napi::Value v, int64_t n, int64_t min_slots, Device* dev) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() == 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", "states: expected a non-empty array of tensors");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<const Tensor*> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const State s = GetState(env, arr.Get(i), Napi::Number::New(env, static_cast<double>(n)));
    if (s.slots < min_slots) ThrowCode(env, "ERR_SHAPE_MISMATCH", "states: too few vectors");
    if (i == 0) *dev = s.t->device();
    else if (!(s.t->device() == *dev)) ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "states: all on one device");
    out.push_back(s.t);
  }
  return out;
}

Napi::Value LogisticPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = GetInt(env, info[1], "n"), x_slot = GetInt(env, info[2], "xSlot");
  const int64_t dim = GetInt(env, info[3], "dim"), K = GetInt(env, info[4], "K");
  if (dim < 0 || K < 1 || (dim + 1) * K != n || x_slot < 0) ThrowCode(env, "ERR_SHAPE_MISMATCH", "logisticPack: n must be (dim + 1) * K");
  Device dev;
  const std::vector<const Tensor*> states = GetStates(env, info[0], n, x_slot + 1, &dev);
  const int64_t P = static_cast<int64_t>(states.size()), PK = P * K;
  Tensor m = NewDeviceTensor(env, DType::kF64, {dim, PK}, dev);
  Tensor bias = NewDeviceTensor(env, DType::kF64, {PK}, dev);
  for (int64_t p = 0; p < P; ++p) {
    Launched(env, cuda::LaunchLogisticPack(dim, K, PK, p, states[p]->data<double>() + x_slot * n, m.buffer ? m.data<double>() : nullptr,
                                           bias.data<double>(), StreamOf(env, dev)),
             "logisticPack");
  }
  return NewTensorArray(env, {std::move(m), std::move(bias)});
}

Napi::Value LogisticUnpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& gx = GetTensor(env, info[0], "gx");
  const Tensor& gb = GetTensor(env, info[1], "gb");
  const int64_t n = GetInt(env, info[3], "n"), x_slot = GetInt(env, info[4], "xSlot"), g_slot = GetInt(env, info[5], "gSlot");
  const int64_t dim = GetInt(env, info[6], "dim"), K = GetInt(env, info[7], "K");
  const std::vector<double> l2s = GetNumberArray(env, info[8], "l2s");
  if (dim < 0 || K < 1 || (dim + 1) * K != n || x_slot < 0 || g_slot < 0) ThrowCode(env, "ERR_SHAPE_MISMATCH", "logisticUnpack: n must be (dim + 1) * K");
  Device dev;
  const std::vector<const Tensor*> states = GetStates(env, info[2], n, std::max(x_slot, g_slot) + 1, &dev);
  const int64_t P = static_cast<int64_t>(states.size()), PK = P * K;
  if (static_cast<int64_t>(l2s.size()) != P) ThrowCode(env, "ERR_SHAPE_MISMATCH", "logisticUnpack: one l2 per problem");
  for (const Tensor* t : {&gx, &gb}) {
    if (!(t->device() == dev)) ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "logisticUnpack: gx and gb must be on the states' device");
    Check(env, ExpectDType(*t, DType::kF64, "gx/gb"));
  }
  Check(env, ExpectShape(gx, {dim, PK}, "gx"));
  Check(env, ExpectShape(gb, {PK}, "gb"));
  for (int64_t p = 0; p < P; ++p) {
    double* base = states[p]->data<double>();
    Launched(env, cuda::LaunchLogisticUnpack(dim, K, PK, p, gx.buffer ? gx.data<double>() : nullptr, gb.data<double>(), base + x_slot * n,
                                             l2s[p], base + g_slot * n, StreamOf(env, dev)),
             "logisticUnpack");
  }
  return env.Undefined();
}

#else

#define LbfgsbVec NoCudaBackend
#define LbfgsbDots NoCudaBackend
#define LbfgsbMaxAbsDiffers NoCudaBackend
#define LbfgsbSubsm NoCudaBackend
#define LbfgsbRead NoCudaBackend
#define LbfgsbWrite NoCudaBackend
#define LogisticPack NoCudaBackend
#define LogisticUnpack NoCudaBackend

#endif

}  // namespace

void RegisterCudaLbfgsbBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaLbfgsbVec", Napi::Function::New(env, LbfgsbVec, "cudaLbfgsbVec"));
  exports.Set("cudaLbfgsbDots", Napi::Function::New(env, LbfgsbDots, "cudaLbfgsbDots"));
  exports.Set("cudaLbfgsbMaxAbsDiffers", Napi::Function::New(env, LbfgsbMaxAbsDiffers, "cudaLbfgsbMaxAbsDiffers"));
  exports.Set("cudaLbfgsbSubsm", Napi::Function::New(env, LbfgsbSubsm, "cudaLbfgsbSubsm"));
  exports.Set("cudaLbfgsbRead", Napi::Function::New(env, LbfgsbRead, "cudaLbfgsbRead"));
  exports.Set("cudaLbfgsbWrite", Napi::Function::New(env, LbfgsbWrite, "cudaLbfgsbWrite"));
  exports.Set("cudaLogisticPack", Napi::Function::New(env, LogisticPack, "cudaLogisticPack"));
  exports.Set("cudaLogisticUnpack", Napi::Function::New(env, LogisticUnpack, "cudaLogisticUnpack"));
}

}  // namespace napi
}  // namespace sslinv
