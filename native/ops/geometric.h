// Geometric ops on uint8 HWC images (1 to 4 independent channels), reproducing what the original's
// synthetic-invariance evaluation computes with torchvision 0.14 on PIL images (Pillow 9.4) and, for
// the elastic deformation, with albumentations 1.0.3 on OpenCV 4.6.
//
// Pillow's nearest-neighbour affine transform (Image.transform(size, AFFINE, a, NEAREST)), which
// rotate and torchvision's affine end in. `a` maps an output pixel (x, y) to the input position
// (a0 x + a1 y + a2, a3 x + a4 y + a5), sampled at pixel centres. Pillow picks one of three engines
// and each rounds differently, so all three are reproduced:
//   - a1 == 0 and a3 == 0 (pure scaling/translation): per column, start at a2 + a0 / 2 and add a0 in
//     double, one addition per column (and likewise a5 + a4 / 2 per row); the source index is the
//     truncation of that sum, -1 when it is negative.
//   - otherwise, when all four corners of the output map to input coordinates below 32768 in
//     magnitude: 16.16 fixed point. Each coefficient becomes floor(v * 65536 + 0.5) (a2 and a5 after
//     adding half of a0 + a1, resp. a3 + a4), the position is stepped by integer additions, and the
//     source index is the position shifted right by 16 (an arithmetic shift, so a floor).
//   - otherwise: the same stepping in double, truncating as in the scaling engine.
// Output pixels whose source lies outside the image are 0 (torchvision's fill=None).
//
// Rotation (Image.rotate(angle, NEAREST, expand=False, center=None, fillcolor=0)): the angle is
// reduced with Python's float `%` 360; 0 copies, 180 flips both ways, 90 and 270 on a square image
// transpose; any other angle builds Pillow's matrix (cos and sin of -radians(angle), each rounded to
// 15 decimals as Python's round(x, 15) does, around the centre (w / 2, h / 2)) and transforms.
//
// torchvision's F.affine on a PIL image: _get_inverse_affine_matrix(center = (w * 0.5, h * 0.5),
// angle, translate, scale, shear) in double, operation for operation, then the transform above.
// Trigonometry is the C library's (Python's math module calls the same functions).
//
// ResizedCropU8: F.resized_crop on PIL: Image.crop((left, top, left + width, top + height)) with each
// coordinate rounded half-to-even (Python's round), the part outside the image zero (Pillow's crop),
// then Pillow's resize to (out_w, out_h) with the given filter (ops/resample.h).
//
// ElasticU8: albumentations 1.0.3 elastic_transform(approximate=True) with interpolation
// INTER_LINEAR and border BORDER_REFLECT_101, given its random draws (the 6 affine offsets, already
// rounded to float32, and the two noise fields rand() * 2 - 1 in float32):
//   1. pts1 = three points around the "centre" (h // 2, w // 2) at +-(min(h, w) // 3) (in x, y order as
//      albumentations writes them), pts2 = pts1 + offsets (float32); M = cv::getAffineTransform
//      (a 6x6 LU solve with partial pivoting, in double);
//   2. cv::warpAffine(img, M, INTER_LINEAR, BORDER_REFLECT_101): M is inverted in double, positions
//      are stepped in 1/1024 pixel fixed point, rounded to 1/32 pixel, and interpolated with OpenCV's
//      15-bit bilinear weights;
//   3. each noise field is blurred with cv::GaussianBlur(ksize 17x17, sigma) in float32 (OpenCV's
//      bit-exact Gaussian kernel rounded to float32; a row pass then a column pass with the symmetric
//      pairs added first, each accumulated with fused multiply-adds as OpenCV's AVX2 build does;
//      borders BORDER_REFLECT_101), then multiplied by alpha in float32;
//   4. map = float32(index + displacement) and cv::remap(INTER_LINEAR, BORDER_REFLECT_101): map
//      coordinates rounded to 1/32 pixel (half to even), the same bilinear weights.
//
// Threading: `parallel` lets an op split rows over the ThreadPool; every output pixel is computed
// exactly as the serial code would (accumulated quantities are pretabulated serially first).
#pragma once
#include <cstdint>

#include "core/status.h"
#include "ops/resample.h"

namespace sslinv {

// Pillow's Image.transform(out size, AFFINE, a, NEAREST) with a zero fill. dst: out_height x
// out_width x channels.
Status PilAffineNearestU8(const ImageU8View& src, const double a[6], int64_t out_height, int64_t out_width,
                          uint8_t* dst, bool parallel);

// Pillow's affine set-up, host side. These are the single implementation that PilAffineNearestU8 runs
// and that the CUDA views (native/cuda/geometric.cu) upload, so both paths start from the same
// numbers. They are defined in native/cpu/geometric.cc, which is compiled without FMA contraction
// (every product is rounded before it is added, as in Pillow's C), whichever compiler builds the
// caller.

// Python's float `%`: the result has the sign of the divisor (how Image.rotate reduces its angle).
double PyMod(double x, double m);

// Which of Pillow's three nearest affine engines ImagingTransformAffine picks for matrix `a` and an
// out_width x out_height output: the scaling engine when a1 == 0 and a3 == 0, else 16.16 fixed point
// when all four output corners map below 32768 in magnitude, else the double engine.
enum class PilAffineEngine : int32_t { kScale, kFixed, kFloat };
PilAffineEngine SelectPilAffineEngine(const double a[6], int64_t out_height, int64_t out_width);

// ImagingScaleAffine's tables: the source column of each output column (the running double sum
// a2 + a0 / 2 + k a0, through Pillow's COORD) in xintab[out_width], valid for columns [*xmin, *xmax)
// (the run inside the image; 0 elsewhere, and *xmin = out_width, *xmax = 0 when empty); the source
// row of each output row (a5 + a4 / 2 + k a4, COORD) in yintab[out_height], unchecked: rows outside
// [0, height) are zero.
void PilScaleAffineTables(const double a[6], int64_t width, int64_t out_height, int64_t out_width, int32_t* xintab,
                          int32_t* yintab, int64_t* xmin, int64_t* xmax);

// affine_fixed's 16.16 coefficients: FLOOR(v * 65536 + 0.5) of a0, a1, a2 + a0 / 2 + a1 / 2, a3, a4,
// a5 + a3 / 2 + a4 / 2, as uint32 (the engine's int additions wrap as they do on x86-64).
void PilAffineFixedCoefficients(const double a[6], uint32_t fx[6]);

// The double engine's row starts: xs[y] and ys[y] are where output row y starts (a2 + a1 / 2 + a0 / 2
// and a5 + a4 / 2 + a3 / 2, plus y additions of a1, resp. a4, in double); along a row Pillow adds a0
// and a3 per pixel.
void PilAffineFloatRowStarts(const double a[6], int64_t out_height, double* xs, double* ys);

// The matrix Image.rotate(angle) passes to Image.transform (Pillow 9.4, center None, no translate,
// expand False) for a width x height image (the angle reduced mod 360 first, as rotate does).
void PilRotateMatrix(double angle, int64_t width, int64_t height, double out[6]);

// Image.rotate(angle, NEAREST, expand=False, fillcolor=0) as torchvision's F.rotate calls it. dst: same
// size as src.
Status RotateU8(const ImageU8View& src, double angle, uint8_t* dst, bool parallel);

struct AffineParams {
  double angle = 0;                // degrees
  double translate[2] = {0, 0};    // pixels (x, y), used as given (floats too)
  double scale = 1;                // > 0
  double shear[2] = {0, 0};        // degrees (x, y)
};

// torchvision 0.14's _get_inverse_affine_matrix(center, angle, translate, scale, shear), inverted=True.
void TorchvisionInverseAffineMatrix(const double center[2], const AffineParams& p, double out[6]);

// F.affine(img, angle, translate, scale, shear) on a PIL image (NEAREST, fill 0). dst: same size.
Status TorchvisionAffineU8(const ImageU8View& src, const AffineParams& p, uint8_t* dst, bool parallel);

// Image.transpose(FLIP_LEFT_RIGHT) (horizontal) or FLIP_TOP_BOTTOM.
Status FlipU8(const ImageU8View& src, bool horizontal, uint8_t* dst, bool parallel);

// Pillow's Image.crop(box) after its rounding (integer box; outside the image reads 0).
// dst: (y1 - y0) x (x1 - x0) x channels; the box must not be empty.
Status CropBoxU8(const ImageU8View& src, int64_t x0, int64_t y0, int64_t x1, int64_t y1, uint8_t* dst,
                 bool parallel);

struct ResizedCropSpec {
  double top = 0, left = 0, height = 0, width = 0;  // torchvision's arguments, any floats
  int64_t out_height = 0, out_width = 0;
  ResampleFilter filter = ResampleFilter::kBilinear;
};

// The crop box torchvision + Pillow use: x0 = round(left), y0 = round(top), x1 = round(left + width),
// y1 = round(top + height) (Python's round, half to even; the sums in double). Fails like Pillow when
// right < left or lower < upper, and (unlike Pillow, whose resize then fails) when the box is empty.
Status ResizedCropBox(const ResizedCropSpec& spec, int64_t box[4]);

// F.resized_crop(img, top, left, height, width, [out_h, out_w], filter) on a PIL image.
Status ResizedCropU8(const ImageU8View& src, const ResizedCropSpec& spec, uint8_t* dst, bool parallel);

struct ElasticSpec {
  double alpha = 1.0;  // applied as float32(alpha)
  double sigma = 50.0;
  // random_state.uniform(-alpha_affine, alpha_affine, size=(3, 2)).astype(float32), row-major.
  float affine_offsets[6] = {0, 0, 0, 0, 0, 0};
  // random_state.rand(h, w).astype(float32) * 2 - 1 for dx, then for dy (h * w each).
  const float* noise_x = nullptr;
  const float* noise_y = nullptr;
};

// albumentations 1.0.3 elastic_transform(img, alpha, sigma, alpha_affine, INTER_LINEAR,
// BORDER_REFLECT_101, approximate=True) given its random draws. dst: same size as src.
Status ElasticU8(const ImageU8View& src, const ElasticSpec& spec, uint8_t* dst, bool parallel);

// Step 1 alone: cv::getAffineTransform(pts1, pts2) (2x3, row-major) for an height x width image.
void ElasticAffineMatrix(int64_t height, int64_t width, const float affine_offsets[6], double M[6]);

// Step 3 alone: cv::GaussianBlur(field, (17, 17), sigma) of a float32 height x width field.
Status GaussianBlur17F32(const float* src, int64_t height, int64_t width, double sigma, float* dst, bool parallel);

// The elastic transform's host set-up beyond step 1, shared (like Pillow's set-up above) by ElasticU8
// and the CUDA views (native/cuda/elastic.cu), defined in native/cpu/geometric.cc without FMA
// contraction.
//
// cv::getGaussianKernel(17, sigma, CV_32F): OpenCV's bit-exact double kernel, rounded to float32.
void CvGaussianKernel17(double sigma, float k[17]);

// cv::warpAffine's fixed-point set-up for a height x width output (INTER_LINEAR) from the forward 2x3
// matrix M (what ElasticAffineMatrix gives): M inverted in double as OpenCV does, then, in 1/1024
// pixel, adelta[x] = cvRound(M'0 x 1024) and bdelta[x] = cvRound(M'3 x 1024) (width each), and the row
// starts x0[y] = cvRound((M'1 y + M'2) 1024) + 16 and y0[y] = cvRound((M'4 y + M'5) 1024) + 16 (height
// each). Output pixel (x, y) reads the source at int32(x0[y] + adelta[x]) >> 5, int32(y0[y] + bdelta[x])
// >> 5 in 1/32 pixel (the uint32 sums wrap as OpenCV's int arithmetic does on x86-64).
void CvWarpAffineTables(const double M[6], int64_t height, int64_t width, uint32_t* adelta, uint32_t* bdelta,
                        uint32_t* x0, uint32_t* y0);

}  // namespace sslinv
