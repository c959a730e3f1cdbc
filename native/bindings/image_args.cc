// See image_args.h.
#include "bindings/image_args.h"

#include <string>

#include "bindings/napi_util.h"

namespace sslinv {
namespace napi {

ImageU8View GetImageArg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "src: expected a Uint8Array of HWC pixels");
  }
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array && ta.TypedArrayType() != napi_uint8_clamped_array) {
    ThrowCode(env, "ERR_DTYPE_MISMATCH", "src: expected a Uint8Array of HWC pixels");
  }
  ImageU8View v;
  v.height = GetInt(env, info[1], "height");
  v.width = GetInt(env, info[2], "width");
  v.channels = GetInt(env, info[3], "channels");
  if (v.height < 1 || v.width < 1 || v.channels < 1 || v.channels > 4 || v.height > (int64_t{1} << 24) ||
      v.width > (int64_t{1} << 24)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "src: height and width must be 1 to 2^24 and channels 1 to 4");
  }
  const double expect = static_cast<double>(v.height) * static_cast<double>(v.width) * static_cast<double>(v.channels);
  if (static_cast<double>(ta.ElementLength()) != expect) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "src: " + std::to_string(ta.ElementLength()) + " bytes for a " +
                                             std::to_string(v.height) + "x" + std::to_string(v.width) + "x" +
                                             std::to_string(v.channels) + " image");
  }
  v.data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return v;
}

bool HasOption(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

ResampleSpec GetResampleSpec(Napi::Env env, Napi::Object o) {
  ResampleSpec spec;
  spec.out_height = GetIntProp(env, o, "outHeight");
  spec.out_width = GetIntProp(env, o, "outWidth");
  if (HasOption(o, "filter")) {
    if (!ParseResampleFilter(GetIntProp(env, o, "filter"), &spec.filter)) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", "filter: expected 0 (nearest) to 5 (hamming)");
    }
  }
  if (HasOption(o, "box")) {
    Napi::Value bv = o.Get("box");
    if (!bv.IsArray() || bv.As<Napi::Array>().Length() != 4) {
      ThrowCode(env, "ERR_INVALID_ARGUMENT", "box: expected [x0, y0, x1, y1]");
    }
    Napi::Array b = bv.As<Napi::Array>();
    for (uint32_t i = 0; i < 4; ++i) {
      Napi::Value e = b.Get(i);
      if (!e.IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "box: expected four numbers");
      spec.box[i] = static_cast<float>(e.As<Napi::Number>().DoubleValue());
    }
    spec.has_box = true;
  }
  return spec;
}

Window GetWindow(Napi::Env env, Napi::Object o) {
  Window w;
  w.top = GetIntProp(env, o, "top");
  w.left = GetIntProp(env, o, "left");
  w.height = GetIntProp(env, o, "height");
  w.width = GetIntProp(env, o, "width");
  return w;
}

std::vector<float> GetChannelFloats(Napi::Env env, Napi::Object o, const char* key, int64_t channels) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray() && !v.IsTypedArray()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(key) + ": expected " + std::to_string(channels) + " numbers");
  }
  Napi::Object arr = v.As<Napi::Object>();
  const int64_t n = static_cast<int64_t>(arr.Get("length").As<Napi::Number>().Int64Value());
  if (n != channels) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(key) + ": expected " + std::to_string(channels) +
                                             " numbers (one per channel), got " + std::to_string(n));
  }
  std::vector<float> out(static_cast<size_t>(channels));
  for (int64_t i = 0; i < channels; ++i) {
    Napi::Value e = arr.Get(static_cast<uint32_t>(i));
    if (!e.IsNumber()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(key) + ": expected numbers");
    out[static_cast<size_t>(i)] = static_cast<float>(e.As<Napi::Number>().DoubleValue());
  }
  return out;
}

}  // namespace napi
}  // namespace sslinv
