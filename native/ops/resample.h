// Image preprocessing on uint8 HWC images: Pillow-exact resampling, crops, and the fused
// crop -> ToTensor -> Normalize kernel of torchvision's evaluation transform.
//
// ResampleU8 / ResampleRegionU8 reproduce Pillow 9's Image.resize(size, filter, box) bit for bit
// for 8-bit images with 1 to 4 independent channels (L, RGB, CMYK; not RGBA/LA, which Pillow
// premultiplies by alpha around the resize):
//   - BOX, BILINEAR, HAMMING, BICUBIC (a = -0.5), LANCZOS (a = 3): Pillow's separable convolution.
//     The filter's support is widened by the scale factor when downscaling (antialiasing). Per output
//     pixel the taps are computed in double, normalised by their sum, rounded to fixed point with 22
//     fractional bits (PRECISION_BITS = 32 - 8 - 2), accumulated in int32 from a bias of 2^21 and
//     clipped to 0..255 from the integer part. The horizontal pass runs first and is stored as uint8;
//     the vertical pass reads it. A pass whose dimension (and box) is unchanged is skipped, as in
//     Pillow (it would be the identity anyway).
//   - NEAREST: Pillow's affine nearest-neighbour scaling: source coordinate = floor of a position that
//     starts at box0 + step / 2 and is advanced by repeated addition of step = (box1 - box0) / out in
//     double (the accumulated sum, not a product, decides ties exactly as Pillow does).
//   - out size == box size with an integral box offset: a plain copy of the box (Pillow crops).
// `box` is Pillow's optional source box (x0, y0, x1, y1) as float32 values (Pillow stores them as C
// floats); nullptr means the whole image.
//
// ResampleRegionU8 computes only the window [top, top + height) x [left, left + width) of the
// resized image, reading only the source rows and columns it needs. Every output pixel depends only
// on its own taps, so the window equals the same window of the full ResampleU8 result exactly; it is
// how a resize followed by a center crop avoids computing pixels the crop throws away.
//
// CropNormalizeU8 writes a [C, crop_h, crop_w] float32 block (CHW):
//   out[c][y][x] = (float(v) / 255.0f - mean[c]) / std[c]        (all float32 arithmetic)
// with v = src[top + y][left + x][c], or 0 where that position lies outside the image (torchvision's
// CenterCrop pads with zeros before cropping when the crop is larger than the image). This is
// exactly torchvision's ToTensor (img.float().div(255)) followed by Normalize (sub_(mean).div_(std)
// with float32 mean and std).
//
// ResizeCropNormalizeU8 = ResampleRegionU8 of the part of the crop window that lies inside the
// resized image, then CropNormalizeU8 with zero padding: the output of Resize -> CenterCrop ->
// ToTensor -> Normalize for one image, in one call and without materialising the full resize.
//
// Threading: `parallel` lets a call split its rows over the ThreadPool; pass false from threads that
// are not the pool's (e.g. libuv workers running many images at once), which then run serially.
#pragma once
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace sslinv {

// Pillow's filter numbers (Image.Resampling).
enum class ResampleFilter : int32_t {
  kNearest = 0,
  kLanczos = 1,
  kBilinear = 2,
  kBicubic = 3,
  kBox = 4,
  kHamming = 5,
};

bool ParseResampleFilter(int64_t value, ResampleFilter* out);
const char* ResampleFilterName(ResampleFilter f);

struct ImageU8View {
  const uint8_t* data = nullptr;  // HWC, rows packed (row stride = width * channels)
  int64_t height = 0, width = 0, channels = 0;
};

struct ResampleSpec {
  int64_t out_height = 0, out_width = 0;
  ResampleFilter filter = ResampleFilter::kBilinear;
  bool has_box = false;
  float box[4] = {0, 0, 0, 0};  // x0, y0, x1, y1 in source pixels (only if has_box)
};

// A window of an image: rows [top, top + height), columns [left, left + width).
struct Window {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// Pillow's fixed-point precision for 8-bit images: PRECISION_BITS = 32 - 8 - 2.
constexpr int kResamplePrecisionBits = 22;

// The taps of one axis of a resize, for output positions [first, first + count) (each position's taps
// depend only on that position). This is the single implementation of Pillow's precompute_coeffs +
// normalize_coeffs_8bpc that ResampleU8 uses and that the CUDA resample (native/cuda/resample.cu)
// uploads, so both paths apply the same integers.
//   bounds: 2 per position: the first source index, then the number of taps (0 when none).
//   weights: ksize per position, fixed point with kResamplePrecisionBits fractional bits; unused 0.
// An output value is clip((2^21 + sum_t in[first_index + t] * weights[t]) >> 22, 0, 255) in int32.
// NEAREST is given in the same form: Pillow's nearest source index as one tap of weight 2^22 (an exact
// copy under the formula above), or no tap (value 0) where that index falls outside the image.
struct ResampleTaps {
  int32_t ksize = 0;
  std::vector<int32_t> bounds;
  std::vector<int32_t> weights;
};

// in_size: the source side; in0, in1: the box along this axis (float32, as Pillow stores it; 0 and
// in_size without a box); out_size: the output side (>= 1). The caller validates these as
// ValidateResample does; count >= 0 and [first, first + count) inside [0, out_size).
Status ComputeResampleTaps(int64_t in_size, float in0, float in1, int64_t out_size, ResampleFilter filter,
                           int64_t first, int64_t count, ResampleTaps* out);

// Pillow's _resize decisions for a spec on an in_height x in_width source (the spec valid as
// ValidateResample checks it): the single implementation that ResampleU8 follows and that the CUDA
// resample plan (native/cuda/resample.cu) follows, so both take the same path.
//   box: the spec's box, or the whole source;
//   crop: a box with integral offset whose size equals the output size is a crop at (crop_top,
//         crop_left), no resampling;
//   need_h, need_v: Pillow's test for running the horizontal / vertical convolution pass (it compares
//         the box's end with the output size); without either the region is a copy. (NEAREST does not
//         use them on the CPU; the CUDA plan runs NEAREST as both passes of 1-tap tables.)
struct ResampleDecision {
  float box[4];
  bool crop = false;
  int64_t crop_top = 0, crop_left = 0;
  bool need_h = true, need_v = true;
};
ResampleDecision DecideResample(int64_t in_height, int64_t in_width, const ResampleSpec& spec);

// Checks sizes, channel count, filter and box the way Pillow does (box inside the image, not
// negative, not empty; output at least 1x1), plus overflow limits.
Status ValidateResample(const ImageU8View& src, const ResampleSpec& spec);

// dst: out_height x out_width x channels.
Status ResampleU8(const ImageU8View& src, const ResampleSpec& spec, uint8_t* dst, bool parallel);

// dst: region.height x region.width x channels; region must lie inside the output size.
Status ResampleRegionU8(const ImageU8View& src, const ResampleSpec& spec, const Window& region, uint8_t* dst,
                        bool parallel);

// dst: channels x crop.height x crop.width float32. crop.top/left may be negative and the window may
// extend past the image: those pixels read as 0. mean/std: `channels` float32 values each.
Status CropNormalizeU8(const ImageU8View& src, const Window& crop, const float* mean, const float* std,
                       float* dst, bool parallel);

// The crop window is in the coordinates of the resized image (out_height x out_width).
Status ResizeCropNormalizeU8(const ImageU8View& src, const ResampleSpec& spec, const Window& crop,
                             const float* mean, const float* std, float* dst, bool parallel);

// The uint8 twins, before ToTensor + Normalize: a [crop_h, crop_w, C] uint8 block (HWC) holding the
// window's pixels, 0 outside the image. CropNormalizeU8 of that whole block gives the float32 ops'
// output bit for bit (padding reads as pixel 0 in both), so the normalisation can run later, e.g. on
// a GPU after a copy of a quarter of the bytes (ops.normalizeImagesU8).
Status CropU8(const ImageU8View& src, const Window& crop, uint8_t* dst);
Status ResizeCropU8(const ImageU8View& src, const ResampleSpec& spec, const Window& crop, uint8_t* dst, bool parallel);

}  // namespace sslinv
