// Pillow-exact resampling, crops and the ToTensor + Normalize kernel (see ops/resample.h).
//
// Written from the description of Pillow 9's libImaging resampling (Resample.c, Geometry.c): the
// arithmetic (which operations run in double, float or int32, and in which order) is reproduced, not
// the code. Integer accumulation order does not matter (int32 sums are exact and never overflow for
// 8-bit inputs and these filters), so the passes are arranged for speed: both accumulate whole rows
// (the horizontal pass on transposed blocks), which vectorises, with an AVX2 build picked at run
// time. The intermediate image between the passes is uint8, rounded and clipped, as in Pillow.
#include "ops/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"

// The coefficient arithmetic must round exactly as Pillow's does: no fused multiply-adds.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sslinv {

namespace {

constexpr int kPrecisionBits = kResamplePrecisionBits;  // Pillow's PRECISION_BITS for 8-bit images
constexpr double kPi = 3.14159265358979323846;  // M_PI
// Largest accepted side: keeps every index and fixed-point product in int32 range, as in Pillow.
constexpr int64_t kMaxSide = 1 << 24;

double BoxFilter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double BilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double HammingFilter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * kPi;
  // Pillow's constants are C floats widened to double.
  return std::sin(x) / x * (static_cast<double>(0.54f) + static_cast<double>(0.46f) * std::cos(x));
}

double BicubicFilter(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}

double LanczosFilter(double x) {
  if (-3.0 <= x && x < 3.0) return Sinc(x) * Sinc(x / 3);
  return 0.0;
}

struct FilterDef {
  double (*fn)(double);
  double support;
};

FilterDef GetFilter(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::kBox: return {BoxFilter, 0.5};
    case ResampleFilter::kBilinear: return {BilinearFilter, 1.0};
    case ResampleFilter::kHamming: return {HammingFilter, 1.0};
    case ResampleFilter::kBicubic: return {BicubicFilter, 2.0};
    case ResampleFilter::kLanczos: return {LanczosFilter, 3.0};
    case ResampleFilter::kNearest: break;
  }
  return {BilinearFilter, 1.0};
}

// Fixed-point taps for output positions [first, first + count) of one dimension (see ResampleTaps).
struct Coeffs {
  int ksize = 0;
  int64_t first = 0;
  std::vector<int32_t> bounds;  // per position: first source index, number of taps
  std::vector<int32_t> k;       // per position: ksize taps (unused ones 0)

  int32_t min(int64_t pos) const { return bounds[2 * (pos - first)]; }
  int32_t len(int64_t pos) const { return bounds[2 * (pos - first) + 1]; }
  const int32_t* taps(int64_t pos) const { return &k[(pos - first) * ksize]; }
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc, for a sub-range of the output positions (each
// position's taps depend only on that position, so a sub-range gives the same taps).
void PrecomputeTaps(int64_t in_size, float in0, float in1, int64_t out_size, const FilterDef& filter,
                    int64_t first, int64_t count, ResampleTaps* c) {
  const double scale = static_cast<double>(in1 - in0) / static_cast<double>(out_size);  // float subtraction
  double filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = filter.support * filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c->ksize = ksize;
  c->bounds.assign(static_cast<size_t>(2 * count), 0);
  c->weights.assign(static_cast<size_t>(count * ksize), 0);
  std::vector<double> w(static_cast<size_t>(ksize));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t xx = first + i;
    const double center = static_cast<double>(in0) + (static_cast<double>(xx) + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    if (xmax > ksize) xmax = ksize;  // cannot happen (Pillow's buffer has ksize taps); defensive
    for (int x = 0; x < xmax; ++x) {
      const double v = filter.fn((x + xmin - center + 0.5) * ss);
      w[static_cast<size_t>(x)] = v;
      ww += v;
    }
    int32_t* k = &c->weights[static_cast<size_t>(i * ksize)];
    for (int x = 0; x < xmax; ++x) {
      double v = w[static_cast<size_t>(x)];
      if (ww != 0.0) v /= ww;
      const double scaled = v * static_cast<double>(1 << kPrecisionBits);
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + scaled) : static_cast<int32_t>(0.5 + scaled);
    }
    c->bounds[static_cast<size_t>(2 * i)] = xmin;
    c->bounds[static_cast<size_t>(2 * i + 1)] = xmax;
  }
}

void PrecomputeCoeffs(int64_t in_size, float in0, float in1, int64_t out_size, const FilterDef& filter,
                      int64_t first, int64_t count, Coeffs* c) {
  ResampleTaps t;
  PrecomputeTaps(in_size, in0, in1, out_size, filter, first, count, &t);
  c->ksize = t.ksize;
  c->first = first;
  c->bounds = std::move(t.bounds);
  c->k = std::move(t.weights);
}

// Runs fn(begin, end) over [0, n), split over the pool when `parallel` and there is enough work.


// The core of both passes: one output row of a convolution down a stack of rows,
//   dst[e] = clip((2^21 + sum_t base[t * stride + e] * k[t]) >> 22, 0, 255)   for e in [0, n),
// accumulated in chunks that stay in L1. The horizontal pass runs it on transposed blocks, so both
// passes vectorise along the row (an AVX2 build of it is picked at run time).
inline __attribute__((always_inline)) void ConvolveRowBody(const uint8_t* base, int64_t stride, const int32_t* k,
                                                           int32_t ntaps, int64_t n, uint8_t* dst) {
  constexpr int64_t kChunk = 1024;
  int32_t acc[kChunk];
  for (int64_t e0 = 0; e0 < n; e0 += kChunk) {
    const int64_t m = std::min(kChunk, n - e0);
    for (int64_t e = 0; e < m; ++e) acc[e] = 1 << (kPrecisionBits - 1);
    for (int32_t t = 0; t < ntaps; ++t) {
      const uint8_t* row = base + t * stride + e0;
      const int32_t w = k[t];
      for (int64_t e = 0; e < m; ++e) acc[e] += static_cast<int32_t>(row[e]) * w;
    }
    for (int64_t e = 0; e < m; ++e) {
      const int32_t v = acc[e] >> kPrecisionBits;
      dst[e0 + e] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
  }
}

void ConvolveRowGeneric(const uint8_t* base, int64_t stride, const int32_t* k, int32_t ntaps, int64_t n,
                        uint8_t* dst) {
  ConvolveRowBody(base, stride, k, ntaps, n, dst);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) void ConvolveRowAvx2(const uint8_t* base, int64_t stride, const int32_t* k,
                                                     int32_t ntaps, int64_t n, uint8_t* dst) {
  ConvolveRowBody(base, stride, k, ntaps, n, dst);
}
#endif

using ConvolveRowFn = void (*)(const uint8_t*, int64_t, const int32_t*, int32_t, int64_t, uint8_t*);

ConvolveRowFn SelectConvolveRow() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (DetectCpuIsa() != CpuIsa::kGeneric) return ConvolveRowAvx2;
#endif
  return ConvolveRowGeneric;
}

// Horizontal pass: rows [0, nrows) of `in` (row stride in_w pixels, starting at row `row0`), output
// columns [col0, col0 + ncols) -> out (nrows x ncols, packed). Works on blocks of rows: a block is
// transposed (column-major: one "row" per source column), convolved with ConvolveRow per output
// column, and transposed back. Integer sums are exact, so this equals Pillow's per-pixel loop.
template <int C>
void HorizontalPass(const uint8_t* in, int64_t in_w, int64_t row0, int64_t nrows, const Coeffs& cf, int64_t col0,
                    int64_t ncols, uint8_t* out, bool parallel) {
  if (nrows <= 0 || ncols <= 0) return;
  int64_t xlo = in_w, xhi = 0;
  for (int64_t j = 0; j < ncols; ++j) {
    const int32_t len = cf.len(col0 + j);
    if (len <= 0) continue;
    xlo = std::min<int64_t>(xlo, cf.min(col0 + j));
    xhi = std::max<int64_t>(xhi, static_cast<int64_t>(cf.min(col0 + j)) + len);
  }
  if (xhi < xlo) xlo = xhi = 0;
  const int64_t span = xhi - xlo;
  constexpr int64_t kBlock = 64;
  const int64_t nblocks = (nrows + kBlock - 1) / kBlock;
  const ConvolveRowFn convolve = SelectConvolveRow();
  ForRange(parallel, nblocks, GrainFor((ncols * cf.ksize + span) * kBlock * C, 1 << 16), [&](int64_t b0, int64_t b1) {
    // A failed allocation here is rethrown on the caller's thread by the pool, and caught by the
    // public entry points.
    std::vector<uint8_t> t(static_cast<size_t>(std::max<int64_t>(1, span * kBlock * C)));
    std::vector<uint8_t> ot(static_cast<size_t>(ncols * kBlock * C));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kBlock, R = std::min(kBlock, nrows - r0), RC = R * C;
      for (int64_t r = 0; r < R; ++r) {
        const uint8_t* src = in + ((row0 + r0 + r) * in_w + xlo) * C;
        uint8_t* dst = t.data() + r * C;
        for (int64_t x = 0; x < span; ++x) {
          for (int c = 0; c < C; ++c) dst[x * RC + c] = src[x * C + c];
        }
      }
      for (int64_t j = 0; j < ncols; ++j) {
        const int64_t xx = col0 + j;
        const int32_t len = cf.len(xx);
        uint8_t* dst = ot.data() + j * RC;
        if (len <= 0) {
          std::memset(dst, 0, static_cast<size_t>(RC));  // no taps: (2^21 >> 22) = 0
          continue;
        }
        convolve(t.data() + (cf.min(xx) - xlo) * RC, RC, cf.taps(xx), len, RC, dst);
      }
      for (int64_t r = 0; r < R; ++r) {
        uint8_t* dst = out + (r0 + r) * ncols * C;
        const uint8_t* src = ot.data() + r * C;
        for (int64_t j = 0; j < ncols; ++j) {
          for (int c = 0; c < C; ++c) dst[j * C + c] = src[j * RC + c];
        }
      }
    }
  });
}

// Vertical pass: output rows [oy0, oy0 + noy) -> out (noy x ncols, packed). Source row r of the pass
// is row (r - in_row_offset) of `in`, whose rows are in_w pixels wide; columns [in_col0, in_col0 +
// ncols) are read.
template <int C>
void VerticalPass(const uint8_t* in, int64_t in_w, int64_t in_row_offset, int64_t in_col0, const Coeffs& cf,
                  int64_t oy0, int64_t noy, int64_t ncols, uint8_t* out, bool parallel) {
  const int64_t n = ncols * C;
  const ConvolveRowFn convolve = SelectConvolveRow();
  ForRange(parallel, noy, GrainFor(n * cf.ksize, 1 << 16), [&](int64_t rb, int64_t re) {
    for (int64_t i = rb; i < re; ++i) {
      const int64_t yy = oy0 + i;
      const int32_t len = cf.len(yy);
      uint8_t* dst = out + i * n;
      if (len <= 0) {
        std::memset(dst, 0, static_cast<size_t>(n));
        continue;
      }
      const int64_t ymin = cf.min(yy) - in_row_offset;
      convolve(in + (ymin * in_w + in_col0) * C, in_w * C, cf.taps(yy), len, n, dst);
    }
  });
}

void CopyWindow(const ImageU8View& src, int64_t top, int64_t left, int64_t height, int64_t width, uint8_t* dst) {
  const int64_t C = src.channels;
  for (int64_t y = 0; y < height; ++y) {
    std::memcpy(dst + y * width * C, src.data + ((top + y) * src.width + left) * C, static_cast<size_t>(width * C));
  }
}

// Pillow's nearest-neighbour scaling (ImagingScaleAffine): positions advance by repeated addition.
std::vector<int64_t> NearestTable(double start, double step, int64_t count, int64_t in_size) {
  std::vector<int64_t> tab(static_cast<size_t>(count));
  double pos = start + step * 0.5;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = pos < 0.0 ? -1 : static_cast<int64_t>(pos);
    tab[static_cast<size_t>(i)] = (v >= 0 && v < in_size) ? v : -1;
    pos += step;
  }
  return tab;
}

void NearestRegion(const ImageU8View& src, const ResampleSpec& spec, const float box[4], const Window& r,
                   uint8_t* dst) {
  const int64_t C = src.channels;
  const double ax = static_cast<double>(box[2] - box[0]) / static_cast<double>(spec.out_width);
  const double ay = static_cast<double>(box[3] - box[1]) / static_cast<double>(spec.out_height);
  const std::vector<int64_t> xt = NearestTable(box[0], ax, r.left + r.width, src.width);
  const std::vector<int64_t> yt = NearestTable(box[1], ay, r.top + r.height, src.height);
  for (int64_t y = 0; y < r.height; ++y) {
    uint8_t* out = dst + y * r.width * C;
    const int64_t sy = yt[static_cast<size_t>(r.top + y)];
    if (sy < 0) {
      std::memset(out, 0, static_cast<size_t>(r.width * C));
      continue;
    }
    const uint8_t* row = src.data + sy * src.width * C;
    for (int64_t x = 0; x < r.width; ++x) {
      const int64_t sx = xt[static_cast<size_t>(r.left + x)];
      for (int64_t c = 0; c < C; ++c) out[x * C + c] = sx < 0 ? 0 : row[sx * C + c];
    }
  }
}

template <int C>
Status ConvolveRegion(const ImageU8View& src, const ResampleSpec& spec, const ResampleDecision& dec, const Window& r,
                      uint8_t* dst, bool parallel) {
  const FilterDef filter = GetFilter(spec.filter);
  const float* box = dec.box;
  const bool need_h = dec.need_h, need_v = dec.need_v;
  if (!need_h && !need_v) {
    CopyWindow(src, r.top, r.left, r.height, r.width, dst);
    return Status::Ok();
  }
  if (!need_v) {
    // Rows are unchanged: output row y is the horizontal pass of source row y.
    Coeffs ch;
    PrecomputeCoeffs(src.width, box[0], box[2], spec.out_width, filter, r.left, r.width, &ch);
    HorizontalPass<C>(src.data, src.width, r.top, r.height, ch, r.left, r.width, dst, parallel);
    return Status::Ok();
  }
  Coeffs cv;
  PrecomputeCoeffs(src.height, box[1], box[3], spec.out_height, filter, r.top, r.height, &cv);
  if (!need_h) {
    VerticalPass<C>(src.data, src.width, 0, r.left, cv, r.top, r.height, r.width, dst, parallel);
    return Status::Ok();
  }
  // Source rows that the vertical pass reads for the requested output rows.
  int64_t first = std::numeric_limits<int64_t>::max(), last = 0;
  for (int64_t yy = r.top; yy < r.top + r.height; ++yy) {
    first = std::min<int64_t>(first, cv.min(yy));
    last = std::max<int64_t>(last, static_cast<int64_t>(cv.min(yy)) + std::max<int32_t>(cv.len(yy), 0));
  }
  if (last < first) last = first;
  Coeffs ch;
  PrecomputeCoeffs(src.width, box[0], box[2], spec.out_width, filter, r.left, r.width, &ch);
  std::vector<uint8_t> tmp(static_cast<size_t>((last - first) * r.width * C));
  HorizontalPass<C>(src.data, src.width, first, last - first, ch, r.left, r.width, tmp.data(), parallel);
  VerticalPass<C>(tmp.data(), r.width, first, 0, cv, r.top, r.height, r.width, dst, parallel);
  return Status::Ok();
}

Status ResampleRegionImpl(const ImageU8View& src, const ResampleSpec& spec, const Window& r, uint8_t* dst,
                          bool parallel) {
  if (r.height == 0 || r.width == 0) return Status::Ok();
  const ResampleDecision dec = DecideResample(src.height, src.width, spec);
  if (dec.crop) {
    CopyWindow(src, dec.crop_top + r.top, dec.crop_left + r.left, r.height, r.width, dst);
    return Status::Ok();
  }
  if (spec.filter == ResampleFilter::kNearest) {
    NearestRegion(src, spec, dec.box, r, dst);
    return Status::Ok();
  }
  switch (src.channels) {
    case 1: return ConvolveRegion<1>(src, spec, dec, r, dst, parallel);
    case 2: return ConvolveRegion<2>(src, spec, dec, r, dst, parallel);
    case 3: return ConvolveRegion<3>(src, spec, dec, r, dst, parallel);
    case 4: return ConvolveRegion<4>(src, spec, dec, r, dst, parallel);
  }
  return InvalidArgument("resample: channels must be 1 to 4");
}

Status ValidateWindowInside(const Window& r, int64_t height, int64_t width, const char* what) {
  if (r.height < 0 || r.width < 0 || r.top < 0 || r.left < 0 || r.top + r.height > height ||
      r.left + r.width > width) {
    return InvalidArgument(std::string(what) + ": the window [top " + std::to_string(r.top) + ", left " +
                           std::to_string(r.left) + ", " + std::to_string(r.height) + "x" +
                           std::to_string(r.width) + "] is not inside the " + std::to_string(height) + "x" +
                           std::to_string(width) + " output");
  }
  return Status::Ok();
}

Status ValidateImage(const ImageU8View& src, const char* what) {
  if (src.data == nullptr && src.height * src.width * src.channels != 0) {
    return InvalidArgument(std::string(what) + ": no image data");
  }
  if (src.height < 1 || src.width < 1 || src.height > kMaxSide || src.width > kMaxSide) {
    return InvalidArgument(std::string(what) + ": image sides must be 1 to " + std::to_string(kMaxSide) + ", got " +
                           std::to_string(src.height) + "x" + std::to_string(src.width));
  }
  if (src.channels < 1 || src.channels > 4) {
    return InvalidArgument(std::string(what) + ": channels must be 1 to 4, got " + std::to_string(src.channels));
  }
  return Status::Ok();
}

}  // namespace

bool ParseResampleFilter(int64_t value, ResampleFilter* out) {
  if (value < 0 || value > 5) return false;
  *out = static_cast<ResampleFilter>(value);
  return true;
}

const char* ResampleFilterName(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::kNearest: return "nearest";
    case ResampleFilter::kLanczos: return "lanczos";
    case ResampleFilter::kBilinear: return "bilinear";
    case ResampleFilter::kBicubic: return "bicubic";
    case ResampleFilter::kBox: return "box";
    case ResampleFilter::kHamming: return "hamming";
  }
  return "unknown";
}

ResampleDecision DecideResample(int64_t in_height, int64_t in_width, const ResampleSpec& spec) {
  ResampleDecision d;
  if (spec.has_box) {
    std::copy(spec.box, spec.box + 4, d.box);
  } else {
    d.box[0] = 0.0f;
    d.box[1] = 0.0f;
    d.box[2] = static_cast<float>(in_width);
    d.box[3] = static_cast<float>(in_height);
  }
  const float* box = d.box;
  // Pillow's _resize: a box with integral offset whose size equals the output size is a crop.
  d.crop = box[0] - static_cast<float>(static_cast<int>(box[0])) == 0.0f &&
           box[2] - box[0] == static_cast<float>(spec.out_width) &&
           box[1] - static_cast<float>(static_cast<int>(box[1])) == 0.0f &&
           box[3] - box[1] == static_cast<float>(spec.out_height);
  d.crop_top = static_cast<int>(box[1]);
  d.crop_left = static_cast<int>(box[0]);
  // Pillow's test for skipping a pass (note: it compares the box's end with the output size).
  d.need_h = spec.out_width != in_width || box[0] != 0.0f || box[2] != static_cast<float>(spec.out_width);
  d.need_v = spec.out_height != in_height || box[1] != 0.0f || box[3] != static_cast<float>(spec.out_height);
  return d;
}

Status ComputeResampleTaps(int64_t in_size, float in0, float in1, int64_t out_size, ResampleFilter filter,
                           int64_t first, int64_t count, ResampleTaps* out) {
  if (out == nullptr) return InvalidArgument("resample taps: null output");
  if (in_size < 1 || in_size > kMaxSide || out_size < 1 || out_size > kMaxSide || count < 0 || first < 0 ||
      first + count > out_size) {
    return InvalidArgument("resample taps: sizes out of range");
  }
  if (!std::isfinite(in0) || !std::isfinite(in1) || in0 < 0 || in1 > static_cast<float>(in_size) || in1 - in0 < 0) {
    return InvalidArgument("resample taps: the box must lie inside the source");
  }
  ResampleFilter parsed;
  if (!ParseResampleFilter(static_cast<int64_t>(filter), &parsed)) return InvalidArgument("resample taps: unknown filter");
  try {
    if (filter == ResampleFilter::kNearest) {
      const double step = static_cast<double>(in1 - in0) / static_cast<double>(out_size);
      const std::vector<int64_t> tab = NearestTable(in0, step, first + count, in_size);
      out->ksize = 1;
      out->bounds.assign(static_cast<size_t>(2 * count), 0);
      out->weights.assign(static_cast<size_t>(count), 0);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t v = tab[static_cast<size_t>(first + i)];
        if (v < 0) continue;  // no tap: the value is 0, as Pillow leaves such pixels
        out->bounds[static_cast<size_t>(2 * i)] = static_cast<int32_t>(v);
        out->bounds[static_cast<size_t>(2 * i + 1)] = 1;
        out->weights[static_cast<size_t>(i)] = int32_t{1} << kPrecisionBits;
      }
      return Status::Ok();
    }
    PrecomputeTaps(in_size, in0, in1, out_size, GetFilter(filter), first, count, out);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("resample taps: out of memory");
  }
  return Status::Ok();
}

Status ValidateResample(const ImageU8View& src, const ResampleSpec& spec) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "resample"));
  if (spec.out_height < 1 || spec.out_width < 1 || spec.out_height > kMaxSide || spec.out_width > kMaxSide) {
    return InvalidArgument("resample: output sides must be 1 to " + std::to_string(kMaxSide) + ", got " +
                           std::to_string(spec.out_height) + "x" + std::to_string(spec.out_width));
  }
  int64_t f = static_cast<int64_t>(spec.filter);
  ResampleFilter parsed;
  if (!ParseResampleFilter(f, &parsed)) return InvalidArgument("resample: unknown filter " + std::to_string(f));
  if (spec.has_box) {
    const float* b = spec.box;
    for (int i = 0; i < 4; ++i) {
      if (!std::isfinite(b[i])) return InvalidArgument("resample: the box must be finite");
    }
    // Pillow's checks, in its order.
    if (b[0] < 0 || b[1] < 0) return InvalidArgument("resample: box offset can't be negative");
    if (b[2] > static_cast<float>(src.width) || b[3] > static_cast<float>(src.height)) {
      return InvalidArgument("resample: box can't exceed original image size");
    }
    if (b[2] - b[0] < 0 || b[3] - b[1] < 0) return InvalidArgument("resample: box can't be empty");
  }
  return Status::Ok();
}

Status ResampleRegionU8(const ImageU8View& src, const ResampleSpec& spec, const Window& region, uint8_t* dst,
                        bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateResample(src, spec));
  SSLINV_RETURN_IF_ERROR(ValidateWindowInside(region, spec.out_height, spec.out_width, "resample"));
  if (dst == nullptr && region.height * region.width != 0) return InvalidArgument("resample: no output buffer");
  try {
    return ResampleRegionImpl(src, spec, region, dst, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("resample: out of memory for the intermediate image");
  }
}

Status ResampleU8(const ImageU8View& src, const ResampleSpec& spec, uint8_t* dst, bool parallel) {
  Window all;
  all.height = spec.out_height;
  all.width = spec.out_width;
  return ResampleRegionU8(src, spec, all, dst, parallel);
}

Status CropNormalizeU8(const ImageU8View& src, const Window& crop, const float* mean, const float* std, float* dst,
                       bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "cropNormalize"));
  if (crop.height < 1 || crop.width < 1 || crop.height > kMaxSide || crop.width > kMaxSide) {
    return InvalidArgument("cropNormalize: crop sides must be 1 to " + std::to_string(kMaxSide));
  }
  if (std::abs(crop.top) > kMaxSide || std::abs(crop.left) > kMaxSide) {
    return InvalidArgument("cropNormalize: crop offset out of range");
  }
  const int64_t C = src.channels;
  // torchvision: x.float().div(255) then sub_(mean).div_(std), all in float32. One table per channel.
  float lut[4 * 256];  // channels <= 4 (checked above)
  for (int64_t c = 0; c < C; ++c) {
    if (!(std[c] != 0.0f) || !std::isfinite(std[c]) || !std::isfinite(mean[c])) {
      return InvalidArgument("cropNormalize: std must be finite and non-zero, mean finite (channel " +
                             std::to_string(c) + ")");
    }
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c * 256 + v] = (x - mean[c]) / std[c];
    }
  }
  const int64_t H = crop.height, W = crop.width;
  // Columns of the crop that fall inside the image.
  const int64_t x_begin = std::min(W, std::max<int64_t>(0, -crop.left));
  const int64_t x_end = std::max(x_begin, std::min(W, src.width - crop.left));
  ForRange(parallel, C * H, GrainFor(W, 1 << 15), [&](int64_t b, int64_t e) {
    for (int64_t cy = b; cy < e; ++cy) {
      const int64_t c = cy / H, y = cy % H;
      const float* t = &lut[c * 256];
      const float pad = t[0];
      float* out = dst + cy * W;
      const int64_t sy = crop.top + y;
      if (sy < 0 || sy >= src.height) {
        std::fill(out, out + W, pad);
        continue;
      }
      std::fill(out, out + x_begin, pad);
      const uint8_t* row = src.data + (sy * src.width + crop.left) * C + c;
      for (int64_t x = x_begin; x < x_end; ++x) out[x] = t[row[x * C]];
      std::fill(out + x_end, out + W, pad);
    }
  });
  return Status::Ok();
}

Status CropU8(const ImageU8View& src, const Window& crop, uint8_t* dst) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "crop"));
  if (crop.height < 1 || crop.width < 1 || crop.height > kMaxSide || crop.width > kMaxSide) {
    return InvalidArgument("crop: crop sides must be 1 to " + std::to_string(kMaxSide));
  }
  if (std::abs(crop.top) > kMaxSide || std::abs(crop.left) > kMaxSide) return InvalidArgument("crop: crop offset out of range");
  const int64_t C = src.channels;
  std::memset(dst, 0, static_cast<size_t>(crop.height * crop.width * C));
  const int64_t x0 = std::min(crop.width, std::max<int64_t>(0, -crop.left));
  const int64_t x1 = std::max(x0, std::min(crop.width, src.width - crop.left));
  if (x1 <= x0) return Status::Ok();
  for (int64_t y = 0; y < crop.height; ++y) {
    const int64_t sy = crop.top + y;
    if (sy < 0 || sy >= src.height) continue;
    std::memcpy(dst + (y * crop.width + x0) * C, src.data + (sy * src.width + crop.left + x0) * C,
                static_cast<size_t>((x1 - x0) * C));
  }
  return Status::Ok();
}

namespace {

// Resize -> CenterCrop of one image into `finish` (CropNormalizeU8 or CropU8 of the window): the part
// of the crop window inside the resized image is resampled; the rest is zero padding.
template <typename Finish>
Status ResizeCropThen(const ImageU8View& src, const ResampleSpec& spec, const Window& crop, bool parallel,
                      const char* op, const Finish& finish) {
  SSLINV_RETURN_IF_ERROR(ValidateResample(src, spec));
  if (crop.height < 1 || crop.width < 1 || crop.height > kMaxSide || crop.width > kMaxSide ||
      std::abs(crop.top) > kMaxSide || std::abs(crop.left) > kMaxSide) {
    return InvalidArgument(std::string(op) + ": crop sides must be 1 to " + std::to_string(kMaxSide) +
                           " and offsets within that range");
  }
  Window inter;
  inter.top = std::max<int64_t>(0, crop.top);
  inter.left = std::max<int64_t>(0, crop.left);
  inter.height = std::max<int64_t>(0, std::min(spec.out_height, crop.top + crop.height) - inter.top);
  inter.width = std::max<int64_t>(0, std::min(spec.out_width, crop.left + crop.width) - inter.left);
  try {
    std::vector<uint8_t> tmp(static_cast<size_t>(std::max<int64_t>(1, inter.height * inter.width) * src.channels), 0);
    ImageU8View part;
    part.data = tmp.data();
    part.channels = src.channels;
    Window local = crop;
    if (inter.height > 0 && inter.width > 0) {
      SSLINV_RETURN_IF_ERROR(ResampleRegionImpl(src, spec, inter, tmp.data(), parallel));
      part.height = inter.height;
      part.width = inter.width;
      local.top = crop.top - inter.top;
      local.left = crop.left - inter.left;
    } else {
      // The crop misses the image entirely (only possible for a hand-made window): all padding. A 1x1
      // zero image placed above the window gives exactly that.
      part.height = 1;
      part.width = 1;
      local.top = -crop.height;
      local.left = 0;
    }
    return finish(part, local);
  } catch (const std::bad_alloc&) {
    return OutOfMemory(std::string(op) + ": out of memory for the intermediate image");
  }
}

}  // namespace

Status ResizeCropNormalizeU8(const ImageU8View& src, const ResampleSpec& spec, const Window& crop, const float* mean,
                             const float* std, float* dst, bool parallel) {
  return ResizeCropThen(src, spec, crop, parallel, "resizeCropNormalize", [&](const ImageU8View& part, const Window& local) {
    return CropNormalizeU8(part, local, mean, std, dst, parallel);
  });
}

Status ResizeCropU8(const ImageU8View& src, const ResampleSpec& spec, const Window& crop, uint8_t* dst, bool parallel) {
  return ResizeCropThen(src, spec, crop, parallel, "resizeCrop", [&](const ImageU8View& part, const Window& local) {
    return CropU8(part, local, dst);
  });
}

}  // namespace sslinv
