// Probe kernels exposed to JS (see native/ops/eigen.h):
//   symmetricEigen(a [n, n] f64) -> [w [n], v [n, n]]   (ascending; eigenvectors as columns)
//   symmetricShiftedSolve(a [n, n] f64, b [n, m] f64, shifts [S] f64) -> [x [n, S*m], w [n]]
//   multinomialLossGrad(z [n, P*K] f64, bias [P*K] f64, y [P, n] i32, K) -> [loss [P], g [n, P*K], gb [P*K]]
//     (on the CPU, or on the CUDA device z lives on: cuda_ops_binding.cc)
//   addDiagonal(a [n, n] f64, alpha) -> a + alpha I
//   rbfFromGram(xy [n, m] f64, xx [n] f64, yy [m] f64, gamma, same) -> K [n, m]
#include <string>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"
#include "ops/eigen.h"

namespace sslinv {
namespace napi {

namespace {

Napi::Value SymmetricEigenOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& a = GetSquareF64(env, info[0], "a");
  const int64_t n = a.dim(0);
  Tensor w = NewCpuTensor(env, DType::kF64, {n});
  Tensor v = NewCpuTensor(env, DType::kF64, {n, n});
  Check(env, SymmetricEigen(a.data<double>(), n, n, w.data<double>(), v.data<double>()));
  return NewTensorArray(env, {std::move(w), std::move(v)});
}

Napi::Value SymmetricShiftedSolveOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& a = GetCpuTensor(env, info[0], "a", DType::kF64, 2);
  const Tensor& b = GetCpuTensor(env, info[1], "b", DType::kF64, 2);
  const Tensor& shifts = GetCpuTensor(env, info[2], "shifts", DType::kF64, 1);
  const int64_t n = a.dim(0), m = b.dim(1), S = shifts.dim(0);
  if (a.dim(1) != n || b.dim(0) != n) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "symmetricShiftedSolve: a is " + a.ShapeString() + ", b " + b.ShapeString());
  }
  Tensor x = NewCpuTensor(env, DType::kF64, {n, S * m});
  Tensor w = NewCpuTensor(env, DType::kF64, {n});
  Check(env, SymmetricShiftedSolve(a.data<double>(), n, n, b.data<double>(), m, shifts.data<double>(), S, x.data<double>(),
                                   w.data<double>()));
  return NewTensorArray(env, {std::move(x), std::move(w)});
}

Napi::Value MultinomialLossGradOp(const Napi::CallbackInfo& info) {
  if (IsCudaTensorArg(info[0])) return CudaMultinomialLossGrad(info);
  Napi::Env env = info.Env();
  const Tensor& z = GetCpuTensor(env, info[0], "z", DType::kF64, 2);
  const Tensor& bias = GetCpuTensor(env, info[1], "bias", DType::kF64, 1);
  const Tensor& y = GetCpuTensor(env, info[2], "y", DType::kI32, 2);
  const int64_t K = GetInt(env, info[3], "K");
  const int64_t n = z.dim(0), P = y.dim(0);
  if (K < 1) ThrowCode(env, "ERR_INVALID_ARGUMENT", "multinomialLossGrad: K must be >= 1");
  if (y.dim(1) != n || z.dim(1) != P * K || bias.dim(0) != P * K) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "multinomialLossGrad: z is " + z.ShapeString() + ", bias " + bias.ShapeString() +
                                             ", y " + y.ShapeString() + " with K = " + std::to_string(K));
  }
  Tensor loss = NewCpuTensor(env, DType::kF64, {P});
  Tensor g = NewCpuTensor(env, DType::kF64, {n, P * K});
  Tensor gb = NewCpuTensor(env, DType::kF64, {P * K});
  Check(env, MultinomialLossGrad(z.data<double>(), bias.data<double>(), y.data<int32_t>(), n, P, K, loss.data<double>(),
                                 g.data<double>(), gb.data<double>()));
  return NewTensorArray(env, {std::move(loss), std::move(g), std::move(gb)});
}

Napi::Value RbfFromGramOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& xy = GetCpuTensor(env, info[0], "xy", DType::kF64, 2);
  const Tensor& xx = GetCpuTensor(env, info[1], "xx", DType::kF64, 1);
  const Tensor& yy = GetCpuTensor(env, info[2], "yy", DType::kF64, 1);
  const double gamma = GetNumber(env, info[3], "gamma");
  const bool same = info[4].ToBoolean().Value();
  if (xx.dim(0) != xy.dim(0) || yy.dim(0) != xy.dim(1)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "rbfFromGram: xy is " + xy.ShapeString() + ", xx " + xx.ShapeString() + ", yy " +
                                             yy.ShapeString());
  }
  Tensor k = CopyTensor(env, xy);
  Check(env, RbfFromGram(k.data<double>(), xy.dim(0), xy.dim(1), xx.data<double>(), yy.data<double>(), gamma, same));
  return TensorWrap::New(env, std::move(k));
}

Napi::Value AddDiagonalOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& a = GetSquareF64(env, info[0], "a");
  const double alpha = GetNumber(env, info[1], "alpha");
  Tensor out = NewCpuTensor(env, DType::kF64, a.shape);
  Check(env, AddDiagonal(a.data<double>(), a.dim(0), alpha, out.data<double>()));
  return TensorWrap::New(env, std::move(out));
}

}  // namespace

void RegisterProbeBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("symmetricEigen", Napi::Function::New(env, SymmetricEigenOp, "symmetricEigen"));
  exports.Set("symmetricShiftedSolve", Napi::Function::New(env, SymmetricShiftedSolveOp, "symmetricShiftedSolve"));
  exports.Set("multinomialLossGrad", Napi::Function::New(env, MultinomialLossGradOp, "multinomialLossGrad"));
  exports.Set("addDiagonal", Napi::Function::New(env, AddDiagonalOp, "addDiagonal"));
  exports.Set("rbfFromGram", Napi::Function::New(env, RbfFromGramOp, "rbfFromGram"));
}

}  // namespace napi
}  // namespace sslinv
