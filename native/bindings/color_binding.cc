// Colour ops exposed to JS (see native/ops/color.h for what each computes). Images are uint8 HWC in
// a Uint8Array; every op returns a new Uint8Array of the same size.
//
//   rgbToGrayscaleU8(src, height, width, channels) -> Uint8Array
//   enhanceU8(src, height, width, channels, kind, factor) -> Uint8Array
//       kind: 0 brightness, 1 contrast, 2 color (saturation), 3 sharpness
//   adjustHueU8(src, height, width, channels, hueFactor) -> Uint8Array
//   gaussianBlurU8(src, height, width, channels, kernelW, kernelH, sigmaX, sigmaY) -> Uint8Array
//   gaussianKernel1d(kernelSize, sigma) -> Float32Array
//   invertU8(src, height, width, channels) -> Uint8Array
//   equalizeU8(src, height, width, channels) -> Uint8Array
//   posterizeU8(src, height, width, channels, bits) -> Uint8Array
//   pilGaussianBlurU8(src, height, width, channels, radius) -> Uint8Array
#include <string>

#include "bindings/bindings.h"
#include "bindings/image_args.h"
#include "bindings/napi_util.h"
#include "ops/color.h"

namespace sslinv {
namespace napi {

namespace {

Napi::Uint8Array NewLike(Napi::Env env, const ImageU8View& v) {
  return Napi::Uint8Array::New(env, static_cast<size_t>(v.height * v.width * v.channels));
}

Napi::Value RgbToGrayscale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, RgbToGrayscaleU8(v, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value Enhance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  EnhanceKind kind;
  if (!ParseEnhanceKind(GetInt(env, info[4], "kind"), &kind)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "kind: expected 0 (brightness) to 3 (sharpness)");
  }
  const double factor = GetNumber(env, info[5], "factor");
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, EnhanceU8(v, kind, factor, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value AdjustHue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  const double h = GetNumber(env, info[4], "hueFactor");
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, AdjustHueU8(v, h, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value GaussianBlur(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  const int64_t kw = GetInt(env, info[4], "kernelW"), kh = GetInt(env, info[5], "kernelH");
  const double sx = GetNumber(env, info[6], "sigmaX"), sy = GetNumber(env, info[7], "sigmaY");
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, GaussianBlurTorchU8(v, kw, kh, sx, sy, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value GaussianKernel1d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t k = GetInt(env, info[0], "kernelSize");
  const double sigma = GetNumber(env, info[1], "sigma");
  if (k < 1 || k % 2 == 0 || k > (int64_t{1} << 20)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "kernelSize: expected an odd integer from 1 to 2^20");
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(k));
  Check(env, GaussianKernel1dTorch(k, sigma, out.Data()));
  return out;
}

Napi::Value Invert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, InvertU8(v, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value Equalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, EqualizeU8(v, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value Posterize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  const int64_t bits = GetInt(env, info[4], "bits");
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, PosterizeU8(v, bits, out.Data(), /*parallel=*/true));
  return out;
}

Napi::Value PilGaussianBlur(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View v = GetImageArg(info);
  const double radius = GetNumber(env, info[4], "radius");
  Napi::Uint8Array out = NewLike(env, v);
  Check(env, PilGaussianBlurU8(v, radius, out.Data(), /*parallel=*/true));
  return out;
}

}  // namespace

void RegisterColorBindings(Napi::Env env, Napi::Object exports) {
  struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } ops[] = {
      {"rgbToGrayscaleU8", RgbToGrayscale},
      {"enhanceU8", Enhance},
      {"adjustHueU8", AdjustHue},
      {"gaussianBlurU8", GaussianBlur},
      {"gaussianKernel1d", GaussianKernel1d},
      {"invertU8", Invert},
      {"equalizeU8", Equalize},
      {"posterizeU8", Posterize},
      {"pilGaussianBlurU8", PilGaussianBlur},
  };
  for (const auto& op : ops) exports.Set(op.name, Napi::Function::New(env, op.fn, op.name));
}

}  // namespace napi
}  // namespace sslinv
