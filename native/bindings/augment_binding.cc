// MoCo v2's augmentation chain of one view (native/ops/augment.h) on a libuv worker thread:
//
//   applyAugmentU8Async(src, height, width, channels, params, {mean, std}, out, slot) -> Promise<void>
//
// src: RGB uint8 HWC pixels (copied before the call returns, so the caller may reuse them); params:
// an AugmentParams object of src/transforms/augment.ts ({set, size, crop?, colorJitter?, grayscale?,
// blurSigma?, hflip?}), read strictly: the fields its set uses must be present with the right types
// (ERR_INVALID_ARGUMENT naming the field), the others are ignored as applyAugment ignores them.
// out: a float32 CPU tensor [N, 3, size, size] (the view is written to out[slot], normalised, CHW) or
// a uint8 one [N, size, size, 3] (the view before ToTensor, HWC); the tensor's memory is kept alive
// until the call ends. The work runs single-threaded on the worker,
// so many views run at once (libuv's pool has UV_THREADPOOL_SIZE threads). A failure rejects the
// promise with the kernel's coded error; bad arguments throw synchronously.
#include <string>
#include <utility>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/image_args.h"
#include "bindings/image_worker.h"
#include "bindings/napi_util.h"
#include "ops/augment.h"

namespace sslinv {
namespace napi {

namespace {

[[noreturn]] void Bad(Napi::Env env, const std::string& field, const std::string& what) {
  ThrowCode(env, "ERR_INVALID_ARGUMENT", "params." + field + ": " + what);
}

Napi::Object Obj(Napi::Env env, Napi::Value v, const std::string& field) {
  if (!v.IsObject() || v.IsArray()) Bad(env, field, "expected an object");
  return v.As<Napi::Object>();
}

int64_t Int(Napi::Env env, Napi::Value v, const std::string& field) {
  if (!v.IsNumber()) Bad(env, field, "expected an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  // The range test first: the cast is only defined for doubles that fit.
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
    Bad(env, field, "expected an integer");
  }
  return static_cast<int64_t>(d);
}

double Num(Napi::Env env, Napi::Value v, const std::string& field) {
  if (!v.IsNumber()) Bad(env, field, "expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Bool(Napi::Env env, Napi::Value v, const std::string& field) {
  if (!v.IsBoolean()) Bad(env, field, "expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

AugmentPlan GetPlan(Napi::Env env, Napi::Value pv) {
  Napi::Object o = Obj(env, pv, "");
  AugmentPlan p;
  Napi::Value sv = o.Get("set");
  const std::string set = sv.IsString() ? sv.As<Napi::String>().Utf8Value() : std::string();
  if (set == "default") {
    p.set = AugmentSetId::kDefault;
  } else if (set == "ventral") {
    p.set = AugmentSetId::kVentral;
  } else if (set == "dorsal") {
    p.set = AugmentSetId::kDorsal;
  } else {
    Bad(env, "set", "expected one of default, ventral, dorsal");
  }
  p.size = Int(env, o.Get("size"), "size");
  if (p.size < 1 || p.size > 65536) Bad(env, "size", "expected an integer from 1 to 65536");
  if (p.set != AugmentSetId::kDorsal) {
    Napi::Object c = Obj(env, o.Get("crop"), "crop");
    p.crop.top = Int(env, c.Get("top"), "crop.top");
    p.crop.left = Int(env, c.Get("left"), "crop.left");
    p.crop.height = Int(env, c.Get("height"), "crop.height");
    p.crop.width = Int(env, c.Get("width"), "crop.width");
    p.hflip = Bool(env, o.Get("hflip"), "hflip");
  }
  if (p.set != AugmentSetId::kVentral) {
    Napi::Value jv = o.Get("colorJitter");
    if (jv.IsUndefined()) Bad(env, "colorJitter", "expected the jitter parameters or null");
    if (!jv.IsNull()) {
      Napi::Object j = Obj(env, jv, "colorJitter");
      Napi::Value ov = j.Get("order");
      if (!ov.IsArray() || ov.As<Napi::Array>().Length() != 4) {
        Bad(env, "colorJitter.order", "expected a permutation of 0..3");
      }
      Napi::Array order = ov.As<Napi::Array>();
      for (uint32_t i = 0; i < 4; ++i) {
        const int64_t id = Int(env, order.Get(i), "colorJitter.order");
        if (id < 0 || id > 3) Bad(env, "colorJitter.order", "expected a permutation of 0..3");
        p.order[i] = static_cast<int32_t>(id);
      }
      p.brightness = Num(env, j.Get("brightness"), "colorJitter.brightness");
      p.contrast = Num(env, j.Get("contrast"), "colorJitter.contrast");
      p.saturation = Num(env, j.Get("saturation"), "colorJitter.saturation");
      p.hue = Num(env, j.Get("hue"), "colorJitter.hue");
      p.jitter = true;
    }
    p.grayscale = Bool(env, o.Get("grayscale"), "grayscale");
    Napi::Value bv = o.Get("blurSigma");
    if (bv.IsUndefined()) Bad(env, "blurSigma", "expected a number or null");
    if (!bv.IsNull()) {
      p.blur_sigma = Num(env, bv, "blurSigma");
      p.blur = true;
    }
  }
  return p;
}

// The chain on a libuv thread, single-threaded (image_worker.h): into float32 CHW (dst_f32, with
// mean/std) or uint8 HWC (dst_u8).
class AugmentWorker : public ImagePromiseWorker {
 public:
  AugmentWorker(Napi::Env env, const ImageU8View& src, AugmentPlan plan, std::vector<float> mean,
                std::vector<float> std_, const Tensor& out, float* dst_f32, uint8_t* dst_u8)
      : ImagePromiseWorker(env, "sslinv.applyAugment", src, out),
        plan_(plan),
        mean_(std::move(mean)),
        std_(std::move(std_)),
        dst_f32_(dst_f32),
        dst_u8_(dst_u8) {}

 private:
  Status Run(const ImageU8View& src) override {
    if (dst_u8_ != nullptr) return ApplyAugmentU8ToU8(src, plan_, dst_u8_, /*parallel=*/false);
    return ApplyAugmentU8(src, plan_, mean_.data(), std_.data(), dst_f32_, /*parallel=*/false);
  }

  AugmentPlan plan_;
  std::vector<float> mean_, std_;
  float* dst_f32_;
  uint8_t* dst_u8_;
};

// applyAugmentU8Async(src, height, width, channels, params, {mean, std}, out, slot) -> Promise<void>
// out: float32 [N, 3, size, size] (the normalised view, CHW) or uint8 [N, size, size, 3] (the view
// before ToTensor, HWC; mean and std are still checked, and unused).
Napi::Value ApplyAugmentAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ImageU8View src = GetImageArg(info);
  if (src.channels != 3) ThrowCode(env, "ERR_INVALID_ARGUMENT", "src: expected an RGB image (3 channels)");
  const AugmentPlan plan = GetPlan(env, info[4]);
  // Refuse what the kernels would refuse now, synchronously, with the field's name.
  Check(env, ValidateAugmentPlan(src, plan));
  Napi::Object norm = GetObject(env, info[5], "normalization");
  std::vector<float> mean = GetChannelFloats(env, norm, "mean", 3);
  std::vector<float> std_ = GetChannelFloats(env, norm, "std", 3);
  const std::string side = std::to_string(plan.size);
  if (info.Length() < 8) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "out: expected a float32 [N, 3, size, size] or uint8 [N, size, size, 3] tensor");
  }
  const Tensor& t = GetTensor(env, info[6], "out");
  Check(env, ExpectCPU(t, "out"));
  Check(env, ExpectRank(t, 4, "out"));
  const bool u8 = t.dtype == DType::kU8;
  if (!u8) Check(env, ExpectDType(t, DType::kF32, "out"));
  const bool shape_ok = u8 ? (t.dim(1) == plan.size && t.dim(2) == plan.size && t.dim(3) == 3)
                           : (t.dim(1) == 3 && t.dim(2) == plan.size && t.dim(3) == plan.size);
  if (!shape_ok) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string("out: expected ") +
                                             (u8 ? "[N, " + side + ", " + side + ", 3]" : "[N, 3, " + side + ", " + side + "]") +
                                             " but the tensor is " + t.ShapeString());
  }
  const int64_t slot = GetInt(env, info[7], "slot");
  if (slot < 0 || slot >= t.dim(0)) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "slot: " + std::to_string(slot) + " is outside the batch of " +
                                               std::to_string(t.dim(0)));
  }
  const int64_t per = 3 * plan.size * plan.size;
  float* dst_f32 = u8 ? nullptr : t.data<float>() + slot * per;
  uint8_t* dst_u8 = u8 ? t.data<uint8_t>() + slot * per : nullptr;
  return QueueImageWorker<AugmentWorker>(env, "applyAugmentU8Async", src, plan, std::move(mean), std::move(std_), t,
                                         dst_f32, dst_u8);
}

}  // namespace

void RegisterAugmentBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("applyAugmentU8Async", Napi::Function::New(env, ApplyAugmentAsync, "applyAugmentU8Async"));
}

}  // namespace napi
}  // namespace sslinv
