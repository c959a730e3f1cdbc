// See op_args.h.
#include "bindings/op_args.h"

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

std::string GetPrecision(Napi::Env env, Napi::Object o) {
  Napi::Value v = o.Get("precision");
  if (v.IsUndefined()) return "fp32";
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s != "fp32" && s != "tf32" && s != "bf16") {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "precision: expected 'fp32', 'tf32' or 'bf16'");
  }
  return s;
}

}  // namespace napi
}  // namespace sslinv
