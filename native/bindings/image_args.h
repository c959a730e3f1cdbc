// The argument convention of every uint8 image op: (pixels: Uint8Array of HWC bytes, height, width,
// channels, ...). Shared by the image, geometric and colour bindings.
#pragma once
#include <napi.h>

#include "ops/resample.h"

namespace sslinv {
namespace napi {

// Reads info[0..3] as an image view (no copy): sides 1 to 2^24, 1 to 4 channels, and exactly
// height * width * channels bytes; throws a typed JS error otherwise.
ImageU8View GetImageArg(const Napi::CallbackInfo& info);

}  // namespace napi
}  // namespace sslinv
