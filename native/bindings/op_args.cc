// See op_args.h.
#include "bindings/op_args.h"

#include <initializer_list>

#include "bindings/napi_util.h"

namespace sslinv {
namespace napi {

Conv2dParams GetConv2dParams(Napi::Env env, const Tensor& x, Napi::Object o) {
  Conv2dParams p;
  p.n = x.dim(0); p.h = x.dim(1); p.w = x.dim(2); p.c = x.dim(3);
  p.k = GetIntProp(env, o, "outChannels");
  p.r = GetIntProp(env, o, "kernelH");
  p.s = GetIntProp(env, o, "kernelW");
  p.stride_h = GetIntProp(env, o, "strideH");
  p.stride_w = GetIntProp(env, o, "strideW");
  p.pad_h = GetIntProp(env, o, "padH");
  p.pad_w = GetIntProp(env, o, "padW");
  Check(env, ValidateConv2dParams(p));
  return p;
}

Pool2dParams GetPool2dParams(Napi::Env env, const Tensor& x, Napi::Object o) {
  Pool2dParams p;
  p.n = x.dim(0); p.h = x.dim(1); p.w = x.dim(2); p.c = x.dim(3);
  p.kernel_h = GetIntProp(env, o, "kernelH");
  p.kernel_w = GetIntProp(env, o, "kernelW");
  p.stride_h = GetIntProp(env, o, "strideH");
  p.stride_w = GetIntProp(env, o, "strideW");
  p.pad_h = GetIntProp(env, o, "padH");
  p.pad_w = GetIntProp(env, o, "padW");
  Check(env, ValidatePool2dParams(p));
  return p;
}

namespace {

// v (the argument or option named `key`) as one of `allowed` (the first when undefined); anything
// else is ERR_INVALID_ARGUMENT listing the choices.
std::string GetChoice(Napi::Env env, Napi::Value v, const char* key, std::initializer_list<const char*> allowed) {
  if (v.IsUndefined()) return *allowed.begin();
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  std::string list;
  for (const char* a : allowed) {
    if (s == a) return s;
    list += std::string(list.empty() ? "'" : ", '") + a + "'";
  }
  ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(key) + ": expected one of " + list);
}

}  // namespace

std::string GetPrecision(Napi::Env env, Napi::Object o) { return GetChoice(env, o.Get("precision"), "precision", {"fp32", "tf32", "bf16"}); }

std::string GetCovarianceSyrk(Napi::Env env, Napi::Value v) { return GetChoice(env, v, "syrk", {"auto", "simt", "simt-bk16", "3xtf32"}); }

Bf16Padding GetBf16Padding(Napi::Env env, const Tensor& x, Napi::Value pad) {
  if (x.shape.empty()) ThrowCode(env, "ERR_SHAPE_MISMATCH", "toBfloat16: x needs at least one dimension");
  Bf16Padding b;
  b.c = x.shape.back();
  b.c_pad = pad.IsUndefined() ? b.c : GetInt(env, pad, "padLastDimTo");
  if (b.c < 1 || b.c_pad < b.c) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "toBfloat16: padLastDimTo must be >= the last dimension (" + std::to_string(b.c) + ")");
  }
  b.shape = x.shape;
  b.shape.back() = b.c_pad;
  return b;
}

std::string GetConvAlgo(Napi::Env env, Napi::Object o) { return GetChoice(env, o.Get("algo"), "algo", {"auto", "simt-bk8", "simt-bk16", "mma-staged", "mma-pipelined", "wgmma"}); }

}  // namespace napi
}  // namespace sslinv
