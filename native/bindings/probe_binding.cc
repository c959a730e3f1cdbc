// Probe kernels exposed to JS (see native/ops/eigen.h):
//   symmetricEigen(a [n, n] f64) -> [w [n], v [n, n]]   (ascending; eigenvectors as columns)
//   symmetricShiftedSolve(a [n, n] f64, b [n, m] f64, shifts [S] f64) -> [x [n, S*m], w [n]]
//   multinomialLossGrad(z [n, P*K] f64, bias [P*K] f64, y [P, n] i32, K) -> [loss [P], g [n, P*K], gb [P*K]]
//   addDiagonal(a [n, n] f64, alpha) -> a + alpha I
//   rbfFromGram(xy [n, m] f64, xx [n] f64, yy [m] f64, gamma, same) -> K [n, m]
#include <cstring>
#include <string>

#include "bindings/bindings.h"
#include "bindings/napi_util.h"
#include "ops/eigen.h"

namespace sslinv {
namespace napi {

namespace {

Napi::Value SymmetricEigenOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& a = GetCpuTensor(env, info[0], "a", DType::kF64, 2);
  if (a.dim(0) != a.dim(1)) ThrowCode(env, "ERR_SHAPE_MISMATCH", "symmetricEigen: expected a square matrix, got " + a.ShapeString());
  const int64_t n = a.dim(0);
  Tensor w = NewCpuTensor(env, DType::kF64, {n});
  Tensor v = NewCpuTensor(env, DType::kF64, {n, n});
  Check(env, SymmetricEigen(a.data<double>(), n, n, w.data<double>(), v.data<double>()));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, TensorWrap::New(env, std::move(w)));
  out.Set(1u, TensorWrap::New(env, std::move(v)));
  return out;
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
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, TensorWrap::New(env, std::move(x)));
  out.Set(1u, TensorWrap::New(env, std::move(w)));
  return out;
}

Napi::Value MultinomialLossGradOp(const Napi::CallbackInfo& info) {
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
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, TensorWrap::New(env, std::move(loss)));
  out.Set(1u, TensorWrap::New(env, std::move(g)));
  out.Set(2u, TensorWrap::New(env, std::move(gb)));
  return out;
}

Napi::Value RbfFromGramOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& xy = GetCpuTensor(env, info[0], "xy", DType::kF64, 2);
  const Tensor& xx = GetCpuTensor(env, info[1], "xx", DType::kF64, 1);
  const Tensor& yy = GetCpuTensor(env, info[2], "yy", DType::kF64, 1);
  if (info.Length() < 5 || !info[3].IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "rbfFromGram: gamma must be a number");
  const double gamma = info[3].As<Napi::Number>().DoubleValue();
  const bool same = info[4].ToBoolean().Value();
  if (xx.dim(0) != xy.dim(0) || yy.dim(0) != xy.dim(1)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "rbfFromGram: xy is " + xy.ShapeString() + ", xx " + xx.ShapeString() + ", yy " +
                                             yy.ShapeString());
  }
  Tensor k = NewCpuTensor(env, DType::kF64, xy.shape);
  if (xy.nbytes()) std::memcpy(k.buffer->data(), xy.buffer->data(), xy.nbytes());
  Check(env, RbfFromGram(k.data<double>(), xy.dim(0), xy.dim(1), xx.data<double>(), yy.data<double>(), gamma, same));
  return TensorWrap::New(env, std::move(k));
}

Napi::Value AddDiagonalOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& a = GetCpuTensor(env, info[0], "a", DType::kF64, 2);
  if (a.dim(0) != a.dim(1)) ThrowCode(env, "ERR_SHAPE_MISMATCH", "addDiagonal: expected a square matrix, got " + a.ShapeString());
  if (info.Length() < 2 || !info[1].IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "addDiagonal: alpha must be a number");
  Tensor out = NewCpuTensor(env, DType::kF64, a.shape);
  Check(env, AddDiagonal(a.data<double>(), a.dim(0), info[1].As<Napi::Number>().DoubleValue(), out.data<double>()));
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
