// The argument convention of every uint8 image op: (pixels: Uint8Array of HWC bytes, height, width,
// channels, ...). Shared by the image, geometric and colour bindings.
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "ops/resample.h"

namespace sslinv {
namespace napi {

// Reads info[0..3] as an image view (no copy): sides 1 to 2^24, 1 to 4 channels, and exactly
// height * width * channels bytes; throws a typed JS error otherwise.
ImageU8View GetImageArg(const Napi::CallbackInfo& info);

// Option readers shared by the CPU and CUDA image bindings.
bool HasOption(Napi::Object o, const char* key);  // present and not null
// {outHeight, outWidth, filter? (Pillow's number), box? [x0, y0, x1, y1]}
ResampleSpec GetResampleSpec(Napi::Env env, Napi::Object o);
// {top, left, height, width}
Window GetWindow(Napi::Env env, Napi::Object o);
// o[key]: exactly `channels` numbers, as float32 (mean / std of a normalisation).
std::vector<float> GetChannelFloats(Napi::Env env, Napi::Object o, const char* key, int64_t channels);

}  // namespace napi
}  // namespace sslinv
