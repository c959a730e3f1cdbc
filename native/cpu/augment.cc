// See native/ops/augment.h. Each step mirrors one line of applyAugmentU8 (src/transforms/augment.ts),
// with the kernels the TS ops call (the crop and flip of ops/geometric.h, the resampling, the colour
// ops); the buffers ping-pong between two work images instead of allocating one per op as the TS does.
#include "ops/augment.h"

#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "ops/color.h"
#include "ops/geometric.h"

namespace sslinv {

namespace {

// A C float's finite range as Math.fround sees it: doubles from 2^128 - 2^103 (half an ulp above
// FLT_MAX) up round to infinity. The colour ops refuse factors that do (they receive C floats).
bool FiniteAsFloat(double v) {
  return std::isfinite(v) && std::fabs(v) < std::ldexp(1.0, 128) - std::ldexp(1.0, 103);
}

// An owned RGB image the chain works on.
struct Work {
  std::vector<uint8_t> data;
  int64_t height = 0, width = 0;
  ImageU8View view() const { return ImageU8View{data.data(), height, width, 3}; }
  void Resize(int64_t h, int64_t w) {
    height = h;
    width = w;
    data.resize(static_cast<size_t>(h * w * 3));
  }
};

// resizeU8(x, {width, height, filter: 'bilinear'}): the binding's ResampleRegionU8 over the whole output.
Status ResizeBilinear(const Work& in, int64_t out_h, int64_t out_w, Work* out, bool parallel) {
  ResampleSpec spec;
  spec.out_height = out_h;
  spec.out_width = out_w;
  spec.filter = ResampleFilter::kBilinear;
  SSLINV_RETURN_IF_ERROR(ValidateResample(in.view(), spec));
  Window region;
  region.height = out_h;
  region.width = out_w;
  out->Resize(out_h, out_w);
  return ResampleRegionU8(in.view(), spec, region, out->data.data(), parallel);
}

// Python's round(n / 2) for an integer n >= 0 (roundHalfEvenHalf in preprocess.ts).
int64_t RoundHalfEvenHalf(int64_t n) {
  const int64_t q = n / 2;
  if (n % 2 == 0) return q;
  return q % 2 == 0 ? q : q + 1;
}

// centerCropOffset in preprocess.ts: negative where CenterCrop pads with zeros first.
int64_t CenterCropOffset(int64_t size, int64_t crop) {
  if (crop > size) return -((crop - size) / 2);
  return RoundHalfEvenHalf(size - crop);
}

// Where the view goes: ToTensor + Normalize into float32 CHW (f32), or the uint8 window itself, HWC
// (u8), with CenterCrop's zero padding where the window leaves the image, which Normalize of those
// zeros reproduces (CropNormalizeU8 reads them as pixel value 0).
struct ViewOut {
  const float* mean = nullptr;
  const float* std = nullptr;
  float* f32 = nullptr;
  uint8_t* u8 = nullptr;
};

Status WriteWindow(const ImageU8View& img, const Window& w, const ViewOut& out, bool parallel) {
  if (out.f32 != nullptr) return CropNormalizeU8(img, w, out.mean, out.std, out.f32, parallel);
  return CropU8(img, w, out.u8);
}

Status Run(const ImageU8View& src, const AugmentPlan& p, const ViewOut& out, bool parallel) {
  Work a, b;  // current image in a; ops write b, then swap
  if (p.set != AugmentSetId::kDorsal) {
    // F.resized_crop on PIL: img.crop(box) (inside the image: ValidateAugmentPlan), then
    // img.resize((size, size), BILINEAR).
    b.Resize(p.crop.height, p.crop.width);
    SSLINV_RETURN_IF_ERROR(CropBoxU8(src, p.crop.left, p.crop.top, p.crop.left + p.crop.width,
                                     p.crop.top + p.crop.height, b.data.data(), parallel));
    SSLINV_RETURN_IF_ERROR(ResizeBilinear(b, p.size, p.size, &a, parallel));
  } else {
    a.Resize(src.height, src.width);
    std::memcpy(a.data.data(), src.data, a.data.size());
  }
  if (p.set != AugmentSetId::kVentral) {
    if (p.jitter) {
      for (int32_t id : p.order) {
        b.Resize(a.height, a.width);
        if (id == 0) {
          SSLINV_RETURN_IF_ERROR(EnhanceU8(a.view(), EnhanceKind::kBrightness, p.brightness, b.data.data(), parallel));
        } else if (id == 1) {
          SSLINV_RETURN_IF_ERROR(EnhanceU8(a.view(), EnhanceKind::kContrast, p.contrast, b.data.data(), parallel));
        } else if (id == 2) {
          SSLINV_RETURN_IF_ERROR(EnhanceU8(a.view(), EnhanceKind::kColor, p.saturation, b.data.data(), parallel));
        } else {
          SSLINV_RETURN_IF_ERROR(AdjustHueU8(a.view(), p.hue, b.data.data(), parallel));
        }
        std::swap(a, b);
      }
    }
    if (p.grayscale) {
      b.Resize(a.height, a.width);
      SSLINV_RETURN_IF_ERROR(RgbToGrayscaleU8(a.view(), b.data.data(), parallel));
      std::swap(a, b);
    }
    if (p.blur) {
      b.Resize(a.height, a.width);
      SSLINV_RETURN_IF_ERROR(PilGaussianBlurU8(a.view(), p.blur_sigma, b.data.data(), parallel));
      std::swap(a, b);
    }
  }
  Window all;
  all.height = p.size;
  all.width = p.size;
  if (p.set != AugmentSetId::kDorsal) {
    if (p.hflip) {
      b.Resize(a.height, a.width);
      SSLINV_RETURN_IF_ERROR(FlipU8(a.view(), /*horizontal=*/true, b.data.data(), parallel));
      std::swap(a, b);
    }
    return WriteWindow(a.view(), all, out, parallel);
  }
  // resizeShorterSide(x, size): the shorter side becomes size, the longer int(size * long / short)
  // (doubles, as in resizedSize); no resampling when the size is already that.
  const bool w_short = a.width <= a.height;
  const int64_t shorter = w_short ? a.width : a.height, longer = w_short ? a.height : a.width;
  const int64_t new_long = static_cast<int64_t>(
      std::trunc(static_cast<double>(p.size * longer) / static_cast<double>(shorter)));
  const int64_t rw = w_short ? p.size : new_long, rh = w_short ? new_long : p.size;
  if (rw != a.width || rh != a.height) {
    SSLINV_RETURN_IF_ERROR(ResizeBilinear(a, rh, rw, &b, parallel));
    std::swap(a, b);
  }
  // centerCrop(x, size) then toTensorNormalize: CropNormalizeU8 of CenterCrop's window reads the
  // zeros of torchvision's padding where the window leaves the image, as centerCrop's fill does.
  Window center;
  center.top = CenterCropOffset(a.height, p.size);
  center.left = CenterCropOffset(a.width, p.size);
  center.height = p.size;
  center.width = p.size;
  return WriteWindow(a.view(), center, out, parallel);
}

}  // namespace

Status ValidateAugmentPlan(const ImageU8View& src, const AugmentPlan& p) {
  if (src.channels != 3 || src.height < 1 || src.width < 1 || src.data == nullptr) {
    return InvalidArgument("params: expected an RGB uint8 image (3 channels)");
  }
  if (p.set != AugmentSetId::kDefault && p.set != AugmentSetId::kVentral && p.set != AugmentSetId::kDorsal) {
    return InvalidArgument("params.set: expected 0 (default), 1 (ventral) or 2 (dorsal)");
  }
  if (p.size < 1 || p.size > 65536) return InvalidArgument("params.size: expected an integer from 1 to 65536");
  if (p.set != AugmentSetId::kDorsal) {
    const Window& c = p.crop;
    if (c.top < 0 || c.left < 0 || c.height < 1 || c.width < 1 || c.top + c.height > src.height ||
        c.left + c.width > src.width) {
      return InvalidArgument("params.crop: must be a box inside the " + std::to_string(src.width) + "x" +
                             std::to_string(src.height) + " image");
    }
  }
  if (p.set != AugmentSetId::kVentral) {
    if (p.jitter) {
      bool seen[4] = {false, false, false, false};
      for (int32_t id : p.order) {
        if (id < 0 || id > 3 || seen[id]) return InvalidArgument("params.colorJitter.order: must be a permutation of 0..3");
        seen[id] = true;
      }
      if (!FiniteAsFloat(p.brightness)) return InvalidArgument("params.colorJitter.brightness: must be a finite float32");
      if (!FiniteAsFloat(p.contrast)) return InvalidArgument("params.colorJitter.contrast: must be a finite float32");
      if (!FiniteAsFloat(p.saturation)) return InvalidArgument("params.colorJitter.saturation: must be a finite float32");
      if (!(p.hue >= -0.5 && p.hue <= 0.5)) return InvalidArgument("params.colorJitter.hue: must be in [-0.5, 0.5]");
    }
    if (p.blur && !(FiniteAsFloat(p.blur_sigma) && p.blur_sigma >= 0 && p.blur_sigma <= 1e6)) {
      return InvalidArgument("params.blurSigma: must be a number from 0 to 1e6");
    }
  }
  return Status::Ok();
}

Status ApplyAugmentU8(const ImageU8View& src, const AugmentPlan& plan, const float* mean, const float* std,
                      float* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateAugmentPlan(src, plan));
  ViewOut out;
  out.mean = mean;
  out.std = std;
  out.f32 = dst;
  try {
    return Run(src, plan, out, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("applyAugment: out of memory");
  }
}

Status ApplyAugmentU8ToU8(const ImageU8View& src, const AugmentPlan& plan, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateAugmentPlan(src, plan));
  ViewOut out;
  out.u8 = dst;
  try {
    return Run(src, plan, out, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("applyAugment: out of memory");
  }
}

}  // namespace sslinv
