// N-API glue shared by the bindings: the JS wrapper of a native Tensor, argument readers that throw
// typed errors, and the Status -> JS Error conversion.
//
// Every error thrown into JS carries a stable `code` (see src/errors.ts). Argument errors here are
// a second line of defence: the TypeScript layer validates user input before calling native code.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace sslinv {
namespace napi {

// Throws a JS Error with `code` set from the Status.
[[noreturn]] void ThrowStatus(Napi::Env env, const Status& st);
[[noreturn]] void ThrowCode(Napi::Env env, const char* code, const std::string& message);

// The JS object behind every native tensor. dispose() drops its reference to the buffer at once;
// the GC finaliser does the same for tensors that were never disposed.
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object New(Napi::Env env, Tensor tensor);
  static bool IsTensor(Napi::Value v);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  const Tensor& tensor() const { return tensor_; }
  bool disposed() const { return disposed_; }

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DTypeName(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value NBytes(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteRows(const Napi::CallbackInfo& info);
  Napi::Value Reshape(const Napi::CallbackInfo& info);
  Napi::Value Clone(const Napi::CallbackInfo& info);
  void Release(Napi::Env env);

  Tensor tensor_;
  bool disposed_ = false;
  int64_t reported_bytes_ = 0;
};

// Argument readers: `what` names the argument in error messages.
const Tensor& GetTensor(Napi::Env env, Napi::Value v, const char* what);
const Tensor* GetOptionalTensor(Napi::Env env, Napi::Value v, const char* what);
int64_t GetInt(Napi::Env env, Napi::Value v, const char* what);
int64_t GetIntProp(Napi::Env env, Napi::Object o, const char* key);
bool GetBoolProp(Napi::Env env, Napi::Object o, const char* key, bool fallback);
double GetNumber(Napi::Env env, Napi::Value v, const char* what);
// An Array of numbers (any length, possibly empty).
std::vector<double> GetNumberArray(Napi::Env env, Napi::Value v, const char* what);
std::vector<int64_t> GetShape(Napi::Env env, Napi::Value v, const char* what);
Napi::Object GetObject(Napi::Env env, Napi::Value v, const char* what);
// The options object at info[i], or an empty one when the call passes fewer arguments.
Napi::Object GetOptions(Napi::Env env, const Napi::CallbackInfo& info, size_t i);

// A CPU tensor argument of the given dtype and rank (rank < 0: any rank).
const Tensor& GetCpuTensor(Napi::Env env, Napi::Value v, const char* what, DType dtype, int rank);
// A square float64 CPU matrix argument.
const Tensor& GetSquareF64(Napi::Env env, Napi::Value v, const char* what);
// The sizes of C = op(a) op(b) from options {transA, transB}; throws when op(a) and op(b) do not chain.
struct GemmDims {
  int64_t M, N, K;
  bool transA, transB;
};
GemmDims GetGemmDims(Napi::Env env, const Tensor& a, const Tensor& b, Napi::Object options, const char* op);
// A new, uninitialised CPU tensor (allocation failures throw ERR_OUT_OF_MEMORY).
Tensor NewCpuTensor(Napi::Env env, DType dtype, const std::vector<int64_t>& shape);
// A deep copy of a tensor.
Tensor CopyTensor(Napi::Env env, const Tensor& t);
// A JS array of new tensor wrappers, in order (for ops with several outputs).
Napi::Array NewTensorArray(Napi::Env env, std::vector<Tensor> tensors);

// Unwraps a Status-returning call: throws into JS on failure.
inline void Check(Napi::Env env, const Status& st) {
  if (!st.ok()) ThrowStatus(env, st);
}

}  // namespace napi
}  // namespace sslinv
