// See napi_util.h.
#include "bindings/napi_util.h"

#include "core/device_copy.h"

#include <algorithm>
#include <cstring>

namespace sslinv {
namespace napi {

namespace {

struct AddonData {
  Napi::FunctionReference tensor_ctor;
};

AddonData* GetAddonData(Napi::Env env) {
  AddonData* d = env.GetInstanceData<AddonData>();
  if (d == nullptr) {
    d = new AddonData();
    env.SetInstanceData<AddonData>(d);
  }
  return d;
}

const char* TypedArrayTypeFor(DType dtype, napi_typedarray_type* out) {
  switch (dtype) {
    case DType::kF32: *out = napi_float32_array; return "Float32Array";
    case DType::kF64: *out = napi_float64_array; return "Float64Array";
    case DType::kI32: *out = napi_int32_array; return "Int32Array";
    case DType::kI64: *out = napi_bigint64_array; return "BigInt64Array";
    case DType::kU8: *out = napi_uint8_array; return "Uint8Array";
    case DType::kBF16: *out = napi_uint16_array; return "Uint16Array";  // the raw bits
  }
  *out = napi_uint8_array;
  return "Uint8Array";
}

}  // namespace

void ThrowCode(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

void ThrowStatus(Napi::Env env, const Status& st) { ThrowCode(env, CodeName(st.code()), st.message()); }

Napi::Function TensorWrap::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "NativeTensor",
      {
          InstanceAccessor<&TensorWrap::Shape>("shape"),
          InstanceAccessor<&TensorWrap::DTypeName>("dtype"),
          InstanceAccessor<&TensorWrap::Device>("device"),
          InstanceAccessor<&TensorWrap::NBytes>("nbytes"),
          InstanceAccessor<&TensorWrap::Disposed>("disposed"),
          InstanceMethod<&TensorWrap::Dispose>("dispose"),
          InstanceMethod<&TensorWrap::Read>("read"),
          InstanceMethod<&TensorWrap::Write>("write"),
          InstanceMethod<&TensorWrap::WriteRows>("writeRows"),
          InstanceMethod<&TensorWrap::Reshape>("reshape"),
          InstanceMethod<&TensorWrap::Clone>("clone"),
      });
  GetAddonData(env)->tensor_ctor = Napi::Persistent(ctor);
  return ctor;
}

Napi::Object TensorWrap::New(Napi::Env env, Tensor tensor) {
  Tensor* holder = new Tensor(std::move(tensor));
  Napi::External<Tensor> ext = Napi::External<Tensor>::New(env, holder);
  Napi::Object obj;
  try {
    obj = GetAddonData(env)->tensor_ctor.New({ext});
  } catch (...) {
    delete holder;
    throw;
  }
  return obj;
}

bool TensorWrap::IsTensor(Napi::Value v) {
  if (!v.IsObject()) return false;
  return v.As<Napi::Object>().InstanceOf(GetAddonData(v.Env())->tensor_ctor.Value());
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "NativeTensor cannot be constructed directly; use the tensor factories");
  }
  Tensor* holder = info[0].As<Napi::External<Tensor>>().Data();
  tensor_ = std::move(*holder);
  delete holder;
  reported_bytes_ = tensor_.buffer ? static_cast<int64_t>(tensor_.buffer->nbytes()) : 0;
  if (reported_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, reported_bytes_);
}

TensorWrap::~TensorWrap() {
  // Finaliser: the GC collected a tensor that was never disposed. Dropping the buffer reference
  // frees the memory; the external-memory figure is corrected in Release when the env is usable.
  tensor_.buffer.reset();
}

void TensorWrap::Release(Napi::Env env) {
  if (disposed_) return;
  disposed_ = true;
  tensor_.buffer.reset();
  if (reported_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env, tensor_.shape.size());
  for (size_t i = 0; i < tensor_.shape.size(); ++i) arr.Set(i, Napi::Number::New(env, static_cast<double>(tensor_.shape[i])));
  return arr;
}

Napi::Value TensorWrap::DTypeName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), sslinv::DTypeName(tensor_.dtype));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  const sslinv::Device d = tensor_.device();
  std::string name = DeviceName(d);
  return Napi::String::New(info.Env(), name);
}

Napi::Value TensorWrap::NBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(tensor_.nbytes()));
}

Napi::Value TensorWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorWrap::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& t = GetTensor(env, Value(), "tensor");
  napi_typedarray_type type;
  TypedArrayTypeFor(t.dtype, &type);
  const size_t nbytes = t.nbytes();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, nbytes);
  Check(env, CopyBytes(ab.Data(), sslinv::Device{}, t.buffer->data(), t.device(), nbytes));
  napi_value out;
  napi_status s = napi_create_typedarray(env, type, static_cast<size_t>(t.numel()), ab, 0, &out);
  if (s != napi_ok) ThrowCode(env, "ERR_NATIVE_INTERNAL", "could not create the typed array");
  return Napi::Value(env, out);
}

namespace {

// info[0] as the typed array of t's dtype (`op` and `usage` name the call in the errors).
Napi::TypedArray SourceArrayFor(const Napi::CallbackInfo& info, const Tensor& t, const char* op, const char* usage) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": expected " + usage);
  Napi::TypedArray src = info[0].As<Napi::TypedArray>();
  napi_typedarray_type want;
  const char* want_name = TypedArrayTypeFor(t.dtype, &want);
  if (src.TypedArrayType() != want) {
    ThrowCode(env, "ERR_DTYPE_MISMATCH", std::string(op) + ": a " + sslinv::DTypeName(t.dtype) + " tensor takes a " + want_name);
  }
  return src;
}

}  // namespace

Napi::Value TensorWrap::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& t = GetTensor(env, Value(), "tensor");
  Napi::TypedArray src = SourceArrayFor(info, t, "write", "a typed array");
  if (src.ByteLength() != t.nbytes()) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "write: the array has " + std::to_string(src.ElementLength()) +
                                             " elements but the tensor has " + std::to_string(t.numel()));
  }
  const uint8_t* bytes = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
  Check(env, CopyBytes(t.buffer->data(), t.device(), bytes, sslinv::Device{}, t.nbytes()));
  return env.Undefined();
}

// writeRows(src, offset, rows, stride): src holds `rows` rows of src.length / rows elements; row r
// overwrites elements [offset + r * stride, offset + r * stride + src.length / rows) of the tensor,
// counted in the flat row-major order. Everything is checked before a byte moves, so a refused call
// leaves the tensor as it was.
Napi::Value TensorWrap::WriteRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& t = GetTensor(env, Value(), "tensor");
  Napi::TypedArray src = SourceArrayFor(info, t, "writeRows", "(typed array, offset, rows, stride)");
  if (info.Length() < 4) ThrowCode(env, "ERR_INVALID_ARGUMENT", "writeRows: expected (typed array, offset, rows, stride)");
  const int64_t offset = GetInt(env, info[1], "offset"), rows = GetInt(env, info[2], "rows"),
                stride = GetInt(env, info[3], "stride");
  const int64_t n = static_cast<int64_t>(src.ElementLength()), numel = t.numel();
  if (offset < 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", "writeRows: offset must be >= 0, got " + std::to_string(offset));
  if (rows < 1) ThrowCode(env, "ERR_INVALID_ARGUMENT", "writeRows: rows must be >= 1, got " + std::to_string(rows));
  if (n % rows != 0) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "writeRows: " + std::to_string(n) + " elements do not split into " +
                                             std::to_string(rows) + " rows");
  }
  const int64_t width = n / rows;
  if (stride < width) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "writeRows: stride " + std::to_string(stride) + " is shorter than a row of " +
                                               std::to_string(width));
  }
  // Last element written: offset + (rows - 1) * stride + width - 1, checked without overflow.
  const bool fits = offset <= numel && width <= numel - offset &&
                    (rows == 1 || (stride <= numel && (rows - 1) <= (numel - offset - width) / std::max<int64_t>(stride, 1)));
  if (!fits) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "writeRows: " + std::to_string(rows) + " rows of " + std::to_string(width) +
                                             " at offset " + std::to_string(offset) + ", stride " + std::to_string(stride) +
                                             " run past the tensor's " + std::to_string(numel) + " elements");
  }
  if (width == 0) return env.Undefined();
  const size_t esize = t.nbytes() / static_cast<size_t>(std::max<int64_t>(numel, 1));
  const uint8_t* bytes = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
  Check(env, CopyRowsFromHost(static_cast<uint8_t*>(t.buffer->data()) + offset * esize, t.device(), stride * esize, bytes,
                              width * esize, width * esize, rows));
  return env.Undefined();
}

Napi::Value TensorWrap::Reshape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& t = GetTensor(env, Value(), "tensor");
  std::vector<int64_t> shape = GetShape(env, info[0], "shape");
  Tensor view = t;
  view.shape = shape;
  if (view.numel() != t.numel()) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "reshape: cannot view " + t.ShapeString() + " as " + view.ShapeString());
  }
  return New(env, std::move(view));
}

Napi::Value TensorWrap::Clone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return New(env, CopyTensor(env, GetTensor(env, Value(), "tensor")));
}

const Tensor& GetTensor(Napi::Env env, Napi::Value v, const char* what) {
  if (!TensorWrap::IsTensor(v)) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected a tensor");
  TensorWrap* w = TensorWrap::Unwrap(v.As<Napi::Object>());
  if (w->disposed()) ThrowCode(env, "ERR_TENSOR_DISPOSED", std::string(what) + ": the tensor was disposed");
  return w->tensor();
}

const Tensor* GetOptionalTensor(Napi::Env env, Napi::Value v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  return &GetTensor(env, v, what);
}

int64_t GetInt(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d))) || d > 9007199254740991.0 || d < -9007199254740991.0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected an integer");
  }
  return static_cast<int64_t>(d);
}

int64_t GetIntProp(Napi::Env env, Napi::Object o, const char* key) { return GetInt(env, o.Get(key), key); }

bool GetBoolProp(Napi::Env env, Napi::Object o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(key) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

double GetNumber(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<double> GetNumberArray(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsArray()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out[i] = GetNumber(env, a.Get(i), what);
  return out;
}

std::vector<int64_t> GetShape(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsArray()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected an array of sizes");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    shape[i] = GetInt(env, a.Get(i), what);
    if (shape[i] < 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": sizes must be >= 0");
  }
  return shape;
}

const Tensor& GetCpuTensor(Napi::Env env, Napi::Value v, const char* what, DType dtype, int rank) {
  const Tensor& t = GetTensor(env, v, what);
  Check(env, ExpectCPU(t, what));
  Check(env, ExpectDType(t, dtype, what));
  if (rank >= 0) Check(env, ExpectRank(t, rank, what));
  return t;
}

const Tensor& GetSquareF64(Napi::Env env, Napi::Value v, const char* what) {
  const Tensor& t = GetCpuTensor(env, v, what, DType::kF64, 2);
  if (t.dim(0) != t.dim(1)) ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(what) + ": expected a square matrix, got " + t.ShapeString());
  return t;
}

GemmDims GetGemmDims(Napi::Env env, const Tensor& a, const Tensor& b, Napi::Object options, const char* op) {
  GemmDims d;
  d.transA = GetBoolProp(env, options, "transA", false);
  d.transB = GetBoolProp(env, options, "transB", false);
  d.M = d.transA ? a.dim(1) : a.dim(0);
  d.K = d.transA ? a.dim(0) : a.dim(1);
  const int64_t Kb = d.transB ? b.dim(1) : b.dim(0);
  d.N = d.transB ? b.dim(0) : b.dim(1);
  if (d.K != Kb) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(op) + ": inner dimensions differ: op(a) is [" + std::to_string(d.M) +
                                             ", " + std::to_string(d.K) + "], op(b) is [" + std::to_string(Kb) + ", " +
                                             std::to_string(d.N) + "]");
  }
  return d;
}

Tensor NewCpuTensor(Napi::Env env, DType dtype, const std::vector<int64_t>& shape) {
  Tensor t;
  Check(env, NewTensor(dtype, shape, sslinv::Device{}, &t));
  return t;
}

Tensor CopyTensor(Napi::Env env, const Tensor& t) {
  Tensor out;
  Check(env, CopyTensorTo(t, t.device(), &out));
  return out;
}

Napi::Object GetObject(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsObject()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected an options object");
  return v.As<Napi::Object>();
}

Napi::Object GetOptions(Napi::Env env, const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i ? GetObject(env, info[i], "options") : Napi::Object::New(env);
}

Napi::Array NewTensorArray(Napi::Env env, std::vector<Tensor> tensors) {
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) out.Set(static_cast<uint32_t>(i), TensorWrap::New(env, std::move(tensors[i])));
  return out;
}

}  // namespace napi
}  // namespace sslinv
