// MoCo v2's augmentation chain for one view, from already drawn parameters, in one native call: the
// C++ twin of applyAugment in src/transforms/augment.ts (see there for the torchvision / Pillow
// semantics of each step). It runs the very kernels the synchronous TS ops call (ResampleRegionU8,
// EnhanceU8, AdjustHueU8, RgbToGrayscaleU8, PilGaussianBlurU8, CropNormalizeU8) in the same order;
// only the trivial glue steps of the TS code are written here (the crop copy of cropU8, the mirror
// of hflipU8, and resizeShorterSide's output size / CenterCrop's window of src/data/preprocess.ts),
// with the same integer arithmetic, so the output is bit for bit that of applyAugment.
//
// Input: an RGB uint8 HWC image. Output: float32 [3, size, size] (CHW), ToTensor + Normalize of the
// view (ApplyAugmentU8), or the view before ToTensor, uint8 [size, size, 3] HWC (ApplyAugmentU8ToU8),
// whose CropNormalizeU8 over the whole view is ApplyAugmentU8's output bit for bit (so it can be
// normalised later, e.g. on a GPU after a copy of a quarter of the bytes). `parallel` as in the kernels: pass false on threads that are not the ThreadPool's (libuv
// workers running many views at once).
#pragma once
#include <cstdint>

#include "core/status.h"
#include "ops/resample.h"

namespace sslinv {

enum class AugmentSetId : int32_t { kDefault = 0, kVentral = 1, kDorsal = 2 };

// The fields of AugmentParams (augment.ts) that the set uses; the others are ignored, as there.
struct AugmentPlan {
  AugmentSetId set = AugmentSetId::kDefault;
  int64_t size = 0;
  Window crop;                                    // default, ventral: the RandomResizedCrop box
  bool hflip = false;                             // default, ventral
  bool jitter = false;                            // default, dorsal: ColorJitter applied
  int32_t order[4] = {0, 1, 2, 3};                // 0 brightness, 1 contrast, 2 saturation, 3 hue
  double brightness = 1, contrast = 1, saturation = 1, hue = 0;
  bool grayscale = false;                         // default, dorsal
  bool blur = false;                              // default, dorsal
  double blur_sigma = 0;
};

// Checks the plan against the image (RGB, crop inside it, order a permutation, size 1..65536).
Status ValidateAugmentPlan(const ImageU8View& src, const AugmentPlan& plan);

// dst: 3 x size x size float32; mean/std: 3 float32 values each.
Status ApplyAugmentU8(const ImageU8View& src, const AugmentPlan& plan, const float* mean, const float* std,
                      float* dst, bool parallel);
// dst: size x size x 3 uint8 (HWC).
Status ApplyAugmentU8ToU8(const ImageU8View& src, const AugmentPlan& plan, uint8_t* dst, bool parallel);

}  // namespace sslinv
