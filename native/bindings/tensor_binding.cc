// Tensor factories and memory statistics exposed to JS:
//   empty(dtype, shape), zeros(dtype, shape), fromTypedArray(array, shape), memoryStats()
#include <cstring>

#include "bindings/bindings.h"
#include "bindings/napi_util.h"
#include "core/device_copy.h"

namespace sslinv {
namespace napi {

namespace {

DType ParseDTypeArg(Napi::Env env, Napi::Value v) {
  if (!v.IsString()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "dtype: expected a string");
  DType d;
  std::string name = v.As<Napi::String>().Utf8Value();
  if (!ParseDType(name, &d)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "dtype: unknown dtype '" + name + "'");
  return d;
}

// The optional device argument (default the CPU); a CUDA device must exist.
Device ParseDeviceArg(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined()) return Device{};
  if (!v.IsString()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "device: expected a string such as 'cpu' or 'cuda:0'");
  Device d;
  Check(env, ParseDevice(v.As<Napi::String>().Utf8Value(), &d));
  return d;
}

Napi::Value Empty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DType d = ParseDTypeArg(env, info[0]);
  Tensor t;
  Check(env, NewTensor(d, GetShape(env, info[1], "shape"), ParseDeviceArg(env, info[2]), &t));
  return TensorWrap::New(env, std::move(t));
}

Napi::Value Zeros(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DType d = ParseDTypeArg(env, info[0]);
  Tensor t;
  Check(env, NewTensor(d, GetShape(env, info[1], "shape"), ParseDeviceArg(env, info[2]), &t));
  Check(env, ZeroTensor(t));
  return TensorWrap::New(env, std::move(t));
}

Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "fromTypedArray: expected (typedArray, shape)");
  }
  Napi::TypedArray src = info[0].As<Napi::TypedArray>();
  DType d;
  switch (src.TypedArrayType()) {
    case napi_float32_array: d = DType::kF32; break;
    case napi_float64_array: d = DType::kF64; break;
    case napi_int32_array: d = DType::kI32; break;
    case napi_bigint64_array: d = DType::kI64; break;
    case napi_uint8_array: d = DType::kU8; break;
    default: ThrowCode(env, "ERR_DTYPE_MISMATCH", "fromTypedArray: unsupported typed array type");
  }
  Tensor t;
  Check(env, NewTensor(d, GetShape(env, info[1], "shape"), Device{}, &t));
  if (static_cast<size_t>(t.numel()) != src.ElementLength()) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "fromTypedArray: the array has " + std::to_string(src.ElementLength()) +
                                             " elements but the shape " + t.ShapeString() + " needs " +
                                             std::to_string(t.numel()));
  }
  const uint8_t* bytes = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
  if (t.nbytes()) std::memcpy(t.buffer->data(), bytes, t.nbytes());
  return TensorWrap::New(env, std::move(t));
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveBuffers", Napi::Number::New(env, static_cast<double>(Buffer::LiveBuffers())));
  o.Set("liveBytes", Napi::Number::New(env, static_cast<double>(Buffer::LiveBytes())));
  return o;
}

}  // namespace

void RegisterTensorBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", TensorWrap::Init(env));
  exports.Set("empty", Napi::Function::New(env, Empty, "empty"));
  exports.Set("zeros", Napi::Function::New(env, Zeros, "zeros"));
  exports.Set("fromTypedArray", Napi::Function::New(env, FromTypedArray, "fromTypedArray"));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats, "memoryStats"));
}

}  // namespace napi
}  // namespace sslinv
