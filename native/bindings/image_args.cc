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

}  // namespace napi
}  // namespace sslinv
