// float64 linear algebra exposed to JS (see native/ops/linalg.h):
//   dgemm(a, b, {transA, transB}) (on the CPU, or through cuBLAS when a is on a CUDA device),
//   cholesky(a), triangularSolve(t, b, {lower, trans, unit}), inverse(a),
//   covarianceAccumulate(x, mean, m2, count, syrk?) -> count (updates mean and m2 in place; syrk:
//   'auto', or on CUDA 'simt' / 'simt-bk16' / '3xtf32', see cuda/covariance.cuh).
#include <cstring>
#include <string>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"
#include "bindings/op_args.h"
#include "ops/gemm.h"
#include "ops/linalg.h"

namespace sslinv {
namespace napi {

namespace {

Napi::Value DgemmOp(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaDgemm(info);
  Napi::Env env = info.Env();
  const Tensor& a = GetCpuTensor(env, info[0], "a", DType::kF64, 2);
  const Tensor& b = GetCpuTensor(env, info[1], "b", DType::kF64, 2);
  const GemmDims d = GetGemmDims(env, a, b, GetOptions(env, info, 2), "dgemm");
  Tensor c = NewCpuTensor(env, DType::kF64, {d.M, d.N});
  Check(env, Dgemm(d.M, d.N, d.K, a.data<double>(), a.dim(1), d.transA, b.data<double>(), b.dim(1), d.transB,
                   c.data<double>(), d.N, GemmEpilogueT<double>()));
  return TensorWrap::New(env, std::move(c));
}

Napi::Value CholeskyOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor l = CopyTensor(env, GetSquareF64(env, info[0], "a"));
  Check(env, CholeskyLower(l.data<double>(), l.dim(0), l.dim(0)));
  return TensorWrap::New(env, std::move(l));
}

Napi::Value TriangularSolveOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& t = GetSquareF64(env, info[0], "t");
  const Tensor& b = GetCpuTensor(env, info[1], "b", DType::kF64, 2);
  if (b.dim(0) != t.dim(0)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "triangularSolve: t is " + t.ShapeString() + " but b is " + b.ShapeString());
  }
  Napi::Object o = GetOptions(env, info, 2);
  Tensor x = CopyTensor(env, b);
  Check(env, TriangularSolve(t.data<double>(), t.dim(0), t.dim(0), GetBoolProp(env, o, "lower", true),
                             GetBoolProp(env, o, "trans", false), GetBoolProp(env, o, "unit", false), x.data<double>(),
                             x.dim(1), x.dim(1)));
  return TensorWrap::New(env, std::move(x));
}

Napi::Value InverseOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& a = GetSquareF64(env, info[0], "a");
  Tensor out = NewCpuTensor(env, DType::kF64, a.shape);
  Check(env, InverseLU(a.data<double>(), a.dim(0), out.data<double>()));
  return TensorWrap::New(env, std::move(out));
}

Napi::Value CovarianceAccumulateOp(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaCovarianceAccumulate(info);
  Napi::Env env = info.Env();
  const Tensor& x = GetTensor(env, info[0], "x");
  Check(env, ExpectCPU(x, "x"));
  Check(env, ExpectRank(x, 2, "x"));
  if (x.dtype != DType::kF32 && x.dtype != DType::kF64) {
    ThrowCode(env, "ERR_DTYPE_MISMATCH", "covarianceAccumulate: x must be float32 or float64");
  }
  if (GetCovarianceSyrk(env, info[4]) != "auto") {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "covarianceAccumulate: syrk names a CUDA kernel variant; the CPU has one (syrk 'auto')");
  }
  const int64_t d = x.dim(1);
  const Tensor& mean = GetCpuTensor(env, info[1], "mean", DType::kF64, 1);
  const Tensor& m2 = GetCpuTensor(env, info[2], "m2", DType::kF64, 2);
  Check(env, ExpectShape(mean, {d}, "mean"));
  Check(env, ExpectShape(m2, {d, d}, "m2"));
  int64_t count = GetInt(env, info[3], "count");
  Check(env, CovarianceAccumulate(x.buffer->data(), x.dtype == DType::kF32, x.dim(0), d, &count, mean.data<double>(),
                                  m2.data<double>()));
  return Napi::Number::New(env, static_cast<double>(count));
}

}  // namespace

void RegisterLinalgBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("dgemm", Napi::Function::New(env, DgemmOp, "dgemm"));
  exports.Set("cholesky", Napi::Function::New(env, CholeskyOp, "cholesky"));
  exports.Set("triangularSolve", Napi::Function::New(env, TriangularSolveOp, "triangularSolve"));
  exports.Set("inverse", Napi::Function::New(env, InverseOp, "inverse"));
  exports.Set("covarianceAccumulate", Napi::Function::New(env, CovarianceAccumulateOp, "covarianceAccumulate"));
}

}  // namespace napi
}  // namespace sslinv
