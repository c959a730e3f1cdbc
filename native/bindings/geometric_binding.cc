// Geometric ops exposed to JS (see native/ops/geometric.h for the arithmetic). Images are uint8 HWC
// in a Uint8Array with 1 to 4 channels; every op returns a new Uint8Array and never writes its input.
//
//   geomPilAffineU8(src, h, w, c, matrix[6], outHeight, outWidth)     Pillow Image.transform AFFINE NEAREST
//   geomRotateU8(src, h, w, c, angle)                                 F.rotate (Pillow rotate, NEAREST)
//   geomRotateMatrix(angle, width, height) -> number[6]               the matrix rotate uses
//   geomAffineU8(src, h, w, c, {angle, translate, scale, shear})      F.affine (NEAREST, fill 0)
//   geomAffineMatrix({angle, translate, scale, shear}, width, height) -> number[6]
//   geomFlipU8(src, h, w, c, horizontal)                              F.hflip / F.vflip
//   geomResizedCropU8(src, h, w, c, {top, left, height, width, outHeight, outWidth, filter?})
//   geomElasticU8(src, h, w, c, {sigma, alpha, affineOffsets[6], noiseX, noiseY})
//   geomElasticAffineMatrix(h, w, affineOffsets[6]) -> number[6]      its cv::getAffineTransform
//   geomGaussianBlur17F32(field, h, w, sigma) -> Float32Array          its cv::GaussianBlur (17x17)
//
// The TypeScript layer (src/transforms/geometric.ts) validates arguments first; the checks here are
// the second line of defence and throw errors with the stable codes of src/errors.ts.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/image_args.h"
#include "bindings/napi_util.h"
#include "ops/geometric.h"

namespace sslinv {
namespace napi {

namespace {

Napi::Uint8Array NewOutput(Napi::Env env, int64_t h, int64_t w, int64_t c) {
  const double n = static_cast<double>(h) * static_cast<double>(w) * static_cast<double>(c);
  if (h < 1 || w < 1 || n > 4294967295.0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "output of " + std::to_string(h) + "x" + std::to_string(w) + "x" +
                                               std::to_string(c) + " is empty or too large");
  }
  return Napi::Uint8Array::New(env, static_cast<size_t>(n));
}

double GetFiniteNumber(Napi::Env env, Napi::Value v, const std::string& what) {
  const double d = GetNumber(env, v, what.c_str());
  if (!std::isfinite(d)) ThrowCode(env, "ERR_INVALID_ARGUMENT", what + ": expected a finite number");
  return d;
}

// A list of exactly n finite numbers (an Array or a typed array).
std::vector<double> GetNumbers(Napi::Env env, Napi::Value v, size_t n, const std::string& what) {
  if (!v.IsArray() && !v.IsTypedArray()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", what + ": expected " + std::to_string(n) + " numbers");
  }
  Napi::Object o = v.As<Napi::Object>();
  const Napi::Value len = o.Get("length");
  if (!len.IsNumber() || len.As<Napi::Number>().Int64Value() != static_cast<int64_t>(n)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", what + ": expected " + std::to_string(n) + " numbers");
  }
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = GetFiniteNumber(env, o.Get(static_cast<uint32_t>(i)), what);
  return out;
}

std::vector<double> MatrixToVector(const double m[6]) { return std::vector<double>(m, m + 6); }

Napi::Array ToArray(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
  return a;
}

AffineParams GetAffineParams(Napi::Env env, Napi::Value v) {
  Napi::Object o = GetObject(env, v, "params");
  AffineParams p;
  p.angle = GetFiniteNumber(env, o.Get("angle"), "angle");
  const std::vector<double> t = GetNumbers(env, o.Get("translate"), 2, "translate");
  p.translate[0] = t[0];
  p.translate[1] = t[1];
  p.scale = GetFiniteNumber(env, o.Get("scale"), "scale");
  const std::vector<double> s = GetNumbers(env, o.Get("shear"), 2, "shear");
  p.shear[0] = s[0];
  p.shear[1] = s[1];
  return p;
}

// geomPilAffineU8(src, h, w, c, matrix, outHeight, outWidth)
Napi::Value PilAffine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View src = GetImageArg(info);
  const std::vector<double> m = GetNumbers(env, info[4], 6, "matrix");
  const int64_t oh = GetInt(env, info[5], "outHeight"), ow = GetInt(env, info[6], "outWidth");
  Napi::Uint8Array out = NewOutput(env, oh, ow, src.channels);
  Check(env, PilAffineNearestU8(src, m.data(), oh, ow, out.Data(), /*parallel=*/true));
  return out;
}

// geomRotateU8(src, h, w, c, angle)
Napi::Value Rotate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View src = GetImageArg(info);
  const double angle = GetFiniteNumber(env, info[4], "angle");
  Napi::Uint8Array out = NewOutput(env, src.height, src.width, src.channels);
  Check(env, RotateU8(src, angle, out.Data(), /*parallel=*/true));
  return out;
}

// geomRotateMatrix(angle, width, height)
Napi::Value RotateMatrix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double angle = GetFiniteNumber(env, info[0], "angle");
  const int64_t w = GetInt(env, info[1], "width"), h = GetInt(env, info[2], "height");
  double m[6];
  PilRotateMatrix(angle, w, h, m);
  return ToArray(env, MatrixToVector(m));
}

// geomAffineU8(src, h, w, c, params)
Napi::Value Affine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View src = GetImageArg(info);
  const AffineParams p = GetAffineParams(env, info[4]);
  Napi::Uint8Array out = NewOutput(env, src.height, src.width, src.channels);
  Check(env, TorchvisionAffineU8(src, p, out.Data(), /*parallel=*/true));
  return out;
}

// geomAffineMatrix(params, width, height)
Napi::Value AffineMatrix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const AffineParams p = GetAffineParams(env, info[0]);
  const int64_t w = GetInt(env, info[1], "width"), h = GetInt(env, info[2], "height");
  const double center[2] = {static_cast<double>(w) * 0.5, static_cast<double>(h) * 0.5};
  double m[6];
  TorchvisionInverseAffineMatrix(center, p, m);
  return ToArray(env, MatrixToVector(m));
}

// geomFlipU8(src, h, w, c, horizontal)
Napi::Value Flip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View src = GetImageArg(info);
  if (info.Length() < 5 || !info[4].IsBoolean()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "horizontal: expected a boolean");
  }
  Napi::Uint8Array out = NewOutput(env, src.height, src.width, src.channels);
  Check(env, FlipU8(src, info[4].As<Napi::Boolean>().Value(), out.Data(), /*parallel=*/true));
  return out;
}

// geomResizedCropU8(src, h, w, c, {top, left, height, width, outHeight, outWidth, filter?})
Napi::Value ResizedCrop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View src = GetImageArg(info);
  Napi::Object o = GetObject(env, info[4], "options");
  ResizedCropSpec spec;
  spec.top = GetFiniteNumber(env, o.Get("top"), "top");
  spec.left = GetFiniteNumber(env, o.Get("left"), "left");
  spec.height = GetFiniteNumber(env, o.Get("height"), "height");
  spec.width = GetFiniteNumber(env, o.Get("width"), "width");
  spec.out_height = GetIntProp(env, o, "outHeight");
  spec.out_width = GetIntProp(env, o, "outWidth");
  Napi::Value f = o.Get("filter");
  if (!f.IsUndefined() && !f.IsNull()) {
    if (!ParseResampleFilter(GetInt(env, f, "filter"), &spec.filter)) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", "filter: expected 0 (nearest) to 5 (hamming)");
    }
  }
  Napi::Uint8Array out = NewOutput(env, spec.out_height, spec.out_width, src.channels);
  Check(env, ResizedCropU8(src, spec, out.Data(), /*parallel=*/true));
  return out;
}

const float* GetNoise(Napi::Env env, Napi::Object o, const char* key, int64_t n) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    ThrowCode(env, "ERR_DTYPE_MISMATCH", std::string(key) + ": expected a Float32Array");
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(key) + ": expected " + std::to_string(n) + " values (height x " +
                                             "width), got " + std::to_string(a.ElementLength()));
  }
  return a.Data();
}

// geomElasticU8(src, h, w, c, {sigma, alpha, affineOffsets, noiseX, noiseY})
Napi::Value Elastic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageU8View src = GetImageArg(info);
  Napi::Object o = GetObject(env, info[4], "options");
  ElasticSpec spec;
  spec.sigma = GetFiniteNumber(env, o.Get("sigma"), "sigma");
  spec.alpha = GetFiniteNumber(env, o.Get("alpha"), "alpha");
  const std::vector<double> off = GetNumbers(env, o.Get("affineOffsets"), 6, "affineOffsets");
  for (int i = 0; i < 6; ++i) spec.affine_offsets[i] = static_cast<float>(off[static_cast<size_t>(i)]);
  spec.noise_x = GetNoise(env, o, "noiseX", src.height * src.width);
  spec.noise_y = GetNoise(env, o, "noiseY", src.height * src.width);
  Napi::Uint8Array out = NewOutput(env, src.height, src.width, src.channels);
  Check(env, ElasticU8(src, spec, out.Data(), /*parallel=*/true));
  return out;
}

// geomElasticAffineMatrix(height, width, affineOffsets) -> number[6]
Napi::Value ElasticMatrix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t h = GetInt(env, info[0], "height"), w = GetInt(env, info[1], "width");
  if (h < 1 || w < 1) ThrowCode(env, "ERR_INVALID_ARGUMENT", "height and width must be >= 1");
  const std::vector<double> off = GetNumbers(env, info[2], 6, "affineOffsets");
  float o[6];
  for (int i = 0; i < 6; ++i) o[i] = static_cast<float>(off[static_cast<size_t>(i)]);
  double m[6];
  ElasticAffineMatrix(h, w, o, m);
  return ToArray(env, MatrixToVector(m));
}

// geomGaussianBlur17F32(field: Float32Array, height, width, sigma) -> Float32Array
Napi::Value Blur17(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    ThrowCode(env, "ERR_DTYPE_MISMATCH", "field: expected a Float32Array");
  }
  Napi::Float32Array src = info[0].As<Napi::Float32Array>();
  const int64_t h = GetInt(env, info[1], "height"), w = GetInt(env, info[2], "width");
  const double sigma = GetFiniteNumber(env, info[3], "sigma");
  if (h < 1 || w < 1 || static_cast<double>(src.ElementLength()) != static_cast<double>(h) * static_cast<double>(w)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "field: expected height x width values");
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, src.ElementLength());
  Check(env, GaussianBlur17F32(src.Data(), h, w, sigma, out.Data(), /*parallel=*/true));
  return out;
}

}  // namespace

void RegisterGeometricBindings(Napi::Env env, Napi::Object exports) {
  struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } ops[] = {
      {"geomPilAffineU8", PilAffine},   {"geomRotateU8", Rotate},         {"geomRotateMatrix", RotateMatrix},
      {"geomAffineU8", Affine},         {"geomAffineMatrix", AffineMatrix}, {"geomFlipU8", Flip},
      {"geomResizedCropU8", ResizedCrop}, {"geomElasticU8", Elastic}, {"geomElasticAffineMatrix", ElasticMatrix},
      {"geomGaussianBlur17F32", Blur17},
  };
  for (const auto& op : ops) exports.Set(op.name, Napi::Function::New(env, op.fn, op.name));
}

}  // namespace napi
}  // namespace sslinv
