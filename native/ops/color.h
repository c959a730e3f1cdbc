// Photometric image ops on uint8 HWC images, reproducing torchvision 0.14's functional ops on PIL
// images (Pillow 9.4) bit for bit, plus Pillow's ImageFilter.GaussianBlur (MoCo v2's blur).
//
// Every op reads `src` and writes a new image of the same size to `dst` (never in place). Unless
// noted, `src` must be RGB (3 channels), as Pillow's conversions require. The arithmetic of each op
// (which operations run in int, C float or double, how results are rounded, truncated or clipped)
// is that of the Pillow / torch code path torchvision takes; see native/cpu/color.cc.
//
//   RgbToGrayscaleU8       F.rgb_to_grayscale(img, 3): Pillow's convert('L'),
//                          L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, replicated to 3 channels.
//   EnhanceU8              ImageEnhance.{Brightness, Contrast, Color, Sharpness}(img).enhance(f), i.e.
//                          Image.blend(degenerate, img, f) with Pillow's float blend (truncation, and
//                          clipping when f is outside [0, 1]). Degenerates: black; the constant
//                          int(mean(L) + 0.5); the L image; the image filtered with ImageFilter.SMOOTH
//                          (Pillow's 3x3 float kernel, 1-pixel border copied unfiltered).
//   AdjustHueU8            F.adjust_hue: Pillow's RGB->HSV (rgb2hsv), H += uint8(trunc(h * 255)) with
//                          wrap-around, HSV->RGB (hsv2rgb). |hue_factor| <= 0.5.
//   GaussianBlurTorchU8    F.gaussian_blur on a PIL image: torch's float32 kernel
//                          (_get_gaussian_kernel1d with Sleef's expf and torch's summation order),
//                          reflect padding, the depthwise convolution as oneDNN's jit kernel computes it
//                          (one fused multiply-add chain per output, kernel rows outer, columns inner),
//                          round half to even, cast to uint8. Any channel count 1..4.
//   InvertU8, PosterizeU8, EqualizeU8
//                          ImageOps.invert / posterize / equalize (Pillow's histogram LUT with its
//                          integer arithmetic), per channel. Any channel count 1..4.
//   PilGaussianBlurU8      img.filter(ImageFilter.GaussianBlur(radius)): Pillow's three extended box
//                          blurs (ImagingGaussianBlur) in its 8.24 fixed point. Any channel count 1..4.
//
// Threading: `parallel` lets a call split rows over the ThreadPool; pass false from threads that are
// not the pool's.
#pragma once
#include <cstdint>

#include "core/status.h"
#include "ops/resample.h"  // ImageU8View

namespace sslinv {

enum class EnhanceKind : int32_t {
  kBrightness = 0,
  kContrast = 1,
  kColor = 2,  // saturation
  kSharpness = 3,
};

bool ParseEnhanceKind(int64_t value, EnhanceKind* out);

Status RgbToGrayscaleU8(const ImageU8View& src, uint8_t* dst, bool parallel);

// `factor` is rounded to a C float, as Pillow's blend receives it.
Status EnhanceU8(const ImageU8View& src, EnhanceKind kind, double factor, uint8_t* dst, bool parallel);

Status AdjustHueU8(const ImageU8View& src, double hue_factor, uint8_t* dst, bool parallel);

// torchvision's _get_gaussian_kernel1d(kernel_size, sigma) in float32: `out` gets kernel_size values.
Status GaussianKernel1dTorch(int64_t kernel_size, double sigma, float* out);

// kernel sizes odd and >= 1; sigmas > 0; each padding (size / 2) below the image side, as torch's
// reflect padding requires.
Status GaussianBlurTorchU8(const ImageU8View& src, int64_t kernel_w, int64_t kernel_h, double sigma_x,
                           double sigma_y, uint8_t* dst, bool parallel);

Status InvertU8(const ImageU8View& src, uint8_t* dst, bool parallel);
Status PosterizeU8(const ImageU8View& src, int64_t bits, uint8_t* dst, bool parallel);  // bits 0..8
Status EqualizeU8(const ImageU8View& src, uint8_t* dst, bool parallel);

// `radius` is rounded to a C float, as Pillow receives it; radius >= 0.
Status PilGaussianBlurU8(const ImageU8View& src, double radius, uint8_t* dst, bool parallel);

// Pillow's Gaussian blur set-up, host side: the single implementation that PilGaussianBlurU8 runs
// and that the CUDA views (native/cuda/blur.cu) upload, so both paths blur with the same constants.
// Defined in native/cpu/color.cc, which is compiled without FMA contraction (each float product is
// rounded before it is added, as in Pillow's C), whichever compiler builds the caller.

// ImagingGaussianBlur's box radius for `radius` with passes = 3, in C float (the radius rounded to a
// float; sqrt and floor of doubles stored to floats).
float PilBoxRadius(double radius);

// One line's constants of Pillow's extended box blur (BoxBlur.c) for a box radius and a line of
// `xsize` pixels: the integer radius, the edges of the middle run, and the 8.24 fixed-point weights
// of the whole (ww) and the fractional (fw) end pixels. Plain data: the CUDA kernels read it as is.
struct BoxLine {
  int32_t radius;
  int32_t edge_a, edge_b;
  uint32_t ww, fw;
};
BoxLine MakeBoxLine(float float_radius, int64_t xsize);

}  // namespace sslinv
