// Image ops exposed to JS: Pillow-exact resampling, crops, and torchvision's ToTensor + Normalize
// (see native/ops/resample.h for the arithmetic). Images are uint8 HWC in a Uint8Array (a Buffer
// works); outputs are new typed arrays or a slot of a float32 [N, C, H, W] tensor, or of a uint8
// [N, H, W, C] one: the crop's pixels before ToTensor + Normalize (mean and std are then checked and
// unused; ops.normalizeImagesU8 of the batch gives the float32 output's bits).
//
//   resizeU8(src, height, width, channels, {outHeight, outWidth, filter?, box?, region?}) -> Uint8Array
//   cropNormalizeU8(src, height, width, channels, {top, left, height, width, mean, std}, out?, slot?)
//       -> Float32Array (no `out`) | undefined
//   resizeCropNormalizeU8(src, height, width, channels, {outHeight, outWidth, filter?, box?, top, left,
//       height, width, mean, std}, out?, slot?) -> Float32Array | undefined
//   resizeCropNormalizeU8Async(<same>, out, slot) -> Promise<void>: runs on a libuv worker thread
//       (single-threaded per call, so several images run at once); the input is copied first, and the
//       output tensor's memory is kept alive until the call ends.
//
// `filter` is Pillow's number (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming;
// default 2). `box` is [x0, y0, x1, y1] (rounded to float32 like Pillow's). `region` is {top, left,
// height, width} of the output to compute. mean and std have `channels` numbers, rounded to float32.
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/image_args.h"
#include "bindings/image_worker.h"
#include "bindings/napi_util.h"
#include "ops/resample.h"

namespace sslinv {
namespace napi {

namespace {

struct SrcImage {
  ImageU8View view;
};

SrcImage GetSrc(const Napi::CallbackInfo& info) { return SrcImage{GetImageArg(info)}; }


// The output: a slot of a float32 [N, C, H, W] tensor, of a uint8 [N, H, W, C] one (u8), or (out
// undefined) a new Float32Array.
struct Output {
  Tensor tensor;  // holds the buffer alive (async calls)
  float* data = nullptr;
  uint8_t* u8 = nullptr;
  bool fresh = false;  // a new Float32Array is returned
  Napi::Float32Array array;
};

Output GetOutput(const Napi::CallbackInfo& info, size_t out_index, int64_t channels, const Window& crop,
                 bool require_tensor) {
  Napi::Env env = info.Env();
  Output o;
  const int64_t per_image = channels * crop.height * crop.width;
  if (info.Length() <= out_index || info[out_index].IsUndefined() || info[out_index].IsNull()) {
    if (require_tensor) ThrowCode(env, "ERR_INVALID_ARGUMENT", "out: expected a float32 [N, C, H, W] or uint8 [N, H, W, C] tensor");
    if (crop.height < 1 || crop.width < 1) ThrowCode(env, "ERR_INVALID_ARGUMENT", "crop sides must be >= 1");
    o.array = Napi::Float32Array::New(env, static_cast<size_t>(per_image));
    o.data = o.array.Data();
    o.fresh = true;
    return o;
  }
  const Tensor& t = GetTensor(env, info[out_index], "out");
  Check(env, ExpectCPU(t, "out"));
  const bool u8 = t.dtype == DType::kU8;
  if (!u8) Check(env, ExpectDType(t, DType::kF32, "out"));
  Check(env, ExpectRank(t, 4, "out"));
  const std::string c = std::to_string(channels), h = std::to_string(crop.height), w = std::to_string(crop.width);
  if (u8 ? (t.dim(1) != crop.height || t.dim(2) != crop.width || t.dim(3) != channels)
         : (t.dim(1) != channels || t.dim(2) != crop.height || t.dim(3) != crop.width)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "out: expected [N, " + (u8 ? h + ", " + w + ", " + c : c + ", " + h + ", " + w) +
                                             "] but the tensor is " + t.ShapeString());
  }
  const int64_t slot = info.Length() > out_index + 1 ? GetInt(env, info[out_index + 1], "slot") : 0;
  if (slot < 0 || slot >= t.dim(0)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "slot: " + std::to_string(slot) + " is outside the batch of " +
                                               std::to_string(t.dim(0)));
  }
  o.tensor = t;
  if (u8) o.u8 = t.data<uint8_t>() + slot * per_image;
  else o.data = t.data<float>() + slot * per_image;
  return o;
}

Napi::Value Result(Napi::Env env, const Output& o) { return o.fresh ? Napi::Value(o.array) : env.Undefined(); }

// resizeU8(src, height, width, channels, {outHeight, outWidth, filter?, box?, region?}) -> Uint8Array
Napi::Value ResizeU8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SrcImage s = GetSrc(info);
  Napi::Object o = GetObject(env, info[4], "options");
  ResampleSpec spec = GetResampleSpec(env, o);
  Check(env, ValidateResample(s.view, spec));
  Window region;
  region.height = spec.out_height;
  region.width = spec.out_width;
  if (HasOption(o, "region")) region = GetWindow(env, GetObject(env, o.Get("region"), "region"));
  if (region.height < 0 || region.width < 0 || region.top < 0 || region.left < 0 ||
      region.top + region.height > spec.out_height || region.left + region.width > spec.out_width) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "region: must lie inside the " + std::to_string(spec.out_height) + "x" +
                                               std::to_string(spec.out_width) + " output");
  }
  const size_t n = static_cast<size_t>(region.height * region.width * s.view.channels);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
  Check(env, ResampleRegionU8(s.view, spec, region, out.Data(), /*parallel=*/true));
  return out;
}

// cropNormalizeU8(src, height, width, channels, {top, left, height, width, mean, std}, out?, slot?)
Napi::Value CropNormalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SrcImage s = GetSrc(info);
  Napi::Object o = GetObject(env, info[4], "options");
  Window crop = GetWindow(env, o);
  std::vector<float> mean = GetChannelFloats(env, o, "mean", s.view.channels);
  std::vector<float> std_ = GetChannelFloats(env, o, "std", s.view.channels);
  Output out = GetOutput(info, 5, s.view.channels, crop, false);
  Check(env, out.u8 != nullptr ? CropU8(s.view, crop, out.u8)
                               : CropNormalizeU8(s.view, crop, mean.data(), std_.data(), out.data, /*parallel=*/true));
  return Result(env, out);
}

struct FusedArgs {
  SrcImage src;
  ResampleSpec spec;
  Window crop;
  std::vector<float> mean, std_;
};

FusedArgs GetFusedArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FusedArgs a;
  a.src = GetSrc(info);
  Napi::Object o = GetObject(env, info[4], "options");
  a.spec = GetResampleSpec(env, o);
  a.crop = GetWindow(env, o);
  a.mean = GetChannelFloats(env, o, "mean", a.src.view.channels);
  a.std_ = GetChannelFloats(env, o, "std", a.src.view.channels);
  Check(env, ValidateResample(a.src.view, a.spec));
  return a;
}

// resizeCropNormalizeU8(src, height, width, channels, options, out?, slot?)
Napi::Value ResizeCropNormalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FusedArgs a = GetFusedArgs(info);
  Output out = GetOutput(info, 5, a.src.view.channels, a.crop, false);
  Check(env, out.u8 != nullptr ? ResizeCropU8(a.src.view, a.spec, a.crop, out.u8, /*parallel=*/true)
                               : ResizeCropNormalizeU8(a.src.view, a.spec, a.crop, a.mean.data(), a.std_.data(),
                                                       out.data, /*parallel=*/true));
  return Result(env, out);
}

// The async form: the work runs on a libuv thread, single-threaded (image_worker.h).
class ResizeCropNormalizeWorker : public ImagePromiseWorker {
 public:
  ResizeCropNormalizeWorker(Napi::Env env, FusedArgs args, const Output& out)
      : ImagePromiseWorker(env, "sslinv.resizeCropNormalize", args.src.view, out.tensor),
        args_(std::move(args)),
        dst_(out.data),
        dst_u8_(out.u8) {}

 private:
  Status Run(const ImageU8View& src) override {
    if (dst_u8_ != nullptr) return ResizeCropU8(src, args_.spec, args_.crop, dst_u8_, /*parallel=*/false);
    return ResizeCropNormalizeU8(src, args_.spec, args_.crop, args_.mean.data(), args_.std_.data(), dst_,
                                 /*parallel=*/false);
  }

  FusedArgs args_;  // its src view points at the caller's pixels: Run reads the worker's copy
  float* dst_;
  uint8_t* dst_u8_;
};

// resizeCropNormalizeU8Async(src, height, width, channels, options, out, slot) -> Promise<void>
Napi::Value ResizeCropNormalizeAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FusedArgs a = GetFusedArgs(info);
  Output out = GetOutput(info, 5, a.src.view.channels, a.crop, true);
  return QueueImageWorker<ResizeCropNormalizeWorker>(env, "resizeCropNormalizeU8Async", std::move(a), out);
}

}  // namespace

void RegisterImageBindings(Napi::Env env, Napi::Object exports) {
  struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } ops[] = {
      {"resizeU8", ResizeU8},
      {"cropNormalizeU8", CropNormalize},
      {"resizeCropNormalizeU8", ResizeCropNormalize},
      {"resizeCropNormalizeU8Async", ResizeCropNormalizeAsync},
  };
  for (const auto& op : ops) exports.Set(op.name, Napi::Function::New(env, op.fn, op.name));
}

}  // namespace napi
}  // namespace sslinv
