// Geometric kernels: Pillow's nearest-neighbour affine engines, rotation, torchvision's affine
// matrix, flips, crops, resized crops, and albumentations' elastic transform on OpenCV's arithmetic
// (see ops/geometric.h for what is reproduced).
//
// Written from the behaviour of Pillow 9.4 (Image.rotate / Image.transform, libImaging Geometry.c and
// Crop.c), torchvision 0.14 (functional.affine, _get_inverse_affine_matrix) and OpenCV 4.6
// (getAffineTransform, warpAffine, GaussianBlur, remap): which operations run in double, float or
// fixed point, in which order, and how each result is rounded, checked against those libraries by
// test/transforms/geometric.test.ts. The code is our own.
#include "ops/geometric.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/cpu_features.h"
#include "core/threadpool.h"

// Every product and sum below must round exactly as in the reference libraries: no contraction into
// fused multiply-adds except where written explicitly (std::fma, which OpenCV's AVX2 build uses).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sslinv {

namespace {

// Largest accepted side: Pillow and OpenCV index with int, and OpenCV's remap with int16.
constexpr int64_t kMaxSide = 1 << 24;
constexpr int64_t kMaxElasticSide = 32767;
// Python's math.radians multiplies by this constant (pi / 180 folded into one double).
constexpr double kDegToRad = 3.14159265358979323846 / 180.0;



Status ValidateImage(const ImageU8View& src, const char* what, int64_t max_side = kMaxSide) {
  if (src.data == nullptr) return InvalidArgument(std::string(what) + ": no image data");
  if (src.height < 1 || src.width < 1 || src.height > max_side || src.width > max_side) {
    return InvalidArgument(std::string(what) + ": image sides must be 1 to " + std::to_string(max_side) + ", got " +
                           std::to_string(src.height) + "x" + std::to_string(src.width));
  }
  if (src.channels < 1 || src.channels > 4) {
    return InvalidArgument(std::string(what) + ": channels must be 1 to 4, got " + std::to_string(src.channels));
  }
  return Status::Ok();
}

// C's (int) conversion of a double as x86-64 performs it: truncation, and INT_MIN for values out of
// range (and NaN), which Pillow's and OpenCV's index checks then reject.
inline int32_t TruncToInt(double v) {
  if (!(v > -2147483649.0 && v < 2147483648.0)) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// Pillow's COORD(v): -1 for negative positions, else truncation.
inline int32_t PilCoord(double v) { return v < 0.0 ? -1 : TruncToInt(v); }

// Pillow's FLOOR(v).
inline int32_t PilFloor(double v) { return v < 0.0 ? TruncToInt(std::floor(v)) : TruncToInt(v); }

// OpenCV's cvRound: round half to even under the default rounding mode, INT_MIN out of range (what
// cvtsd2si / cvtss2si return, and what OpenCV uses on x86-64).
inline int32_t CvRound(double v) {
#if defined(__SSE2__)
  return _mm_cvtsd_si32(_mm_set_sd(v));
#else
  if (!(v > -2147483648.5 && v < 2147483647.5)) return INT32_MIN;
  return static_cast<int32_t>(std::lrint(v));
#endif
}

inline int32_t CvRoundF(float v) {
#if defined(__SSE2__)
  return _mm_cvtss_si32(_mm_set_ss(v));
#else
  return CvRound(static_cast<double>(v));
#endif
}

inline int16_t SaturateShort(int32_t v) {
  return static_cast<int16_t>(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}

// Python's round(x, 15) for |x| <= 1: the correctly rounded 15-decimal string, read back correctly
// rounded (CPython does the same with its own dtoa; glibc's printf and strtod are exact too).
double PyRound15(double x) {
  if (!std::isfinite(x)) return x;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15f", x);
  return std::strtod(buf, nullptr);
}

template <int C>
inline void CopyPixel(uint8_t* d, const uint8_t* s) {
  for (int c = 0; c < C; ++c) d[c] = s[c];
}

inline bool CheckFixed(const double a[6], int64_t x, int64_t y) {
  const double xd = static_cast<double>(x), yd = static_cast<double>(y);
  return std::fabs(xd * a[0] + yd * a[1] + a[2]) < 32768.0 && std::fabs(xd * a[3] + yd * a[4] + a[5]) < 32768.0;
}

inline int32_t Fix16(double v) { return PilFloor(v * 65536.0 + 0.5); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pillow's affine set-up, shared with the CUDA views (see ops/geometric.h). Defined here, under the
// fp-contract=off above, so the callers in native/cuda/*.cu get the same roundings whatever nvcc's
// host compiler would contract.

double PyMod(double x, double m) {
  double r = std::fmod(x, m);
  if (r != 0.0) {
    if ((m < 0) != (r < 0)) r += m;
  } else {
    r = std::copysign(0.0, m);
  }
  return r;
}

PilAffineEngine SelectPilAffineEngine(const double a[6], int64_t out_height, int64_t out_width) {
  const int64_t oh = out_height, ow = out_width;
  if (a[1] == 0 && a[3] == 0) return PilAffineEngine::kScale;
  if (CheckFixed(a, 0, 0) && CheckFixed(a, ow, oh) && CheckFixed(a, 0, oh) && CheckFixed(a, ow, 0)) {
    return PilAffineEngine::kFixed;
  }
  return PilAffineEngine::kFloat;
}

void PilScaleAffineTables(const double a[6], int64_t width, int64_t out_height, int64_t out_width, int32_t* xintab,
                          int32_t* yintab, int64_t* xmin, int64_t* xmax) {
  const int32_t xsize = static_cast<int32_t>(width);
  const int64_t ow = out_width, oh = out_height;
  std::fill(xintab, xintab + ow, 0);
  double xo = a[2] + a[0] * 0.5;
  int64_t lo = ow, hi = 0;
  for (int64_t x = 0; x < ow; ++x) {
    const int32_t xin = PilCoord(xo);
    if (xin >= 0 && xin < xsize) {
      hi = x + 1;
      if (x < lo) lo = x;
      xintab[x] = xin;
    }
    xo += a[0];
  }
  *xmin = lo;
  *xmax = hi;
  // The row positions are a running double sum too: tabulated serially.
  double yo = a[5] + a[4] * 0.5;
  for (int64_t y = 0; y < oh; ++y) {
    yintab[y] = PilCoord(yo);
    yo += a[4];
  }
}

void PilAffineFixedCoefficients(const double a[6], uint32_t fx[6]) {
  fx[0] = static_cast<uint32_t>(Fix16(a[0]));
  fx[1] = static_cast<uint32_t>(Fix16(a[1]));
  fx[2] = static_cast<uint32_t>(Fix16(a[2] + a[0] * 0.5 + a[1] * 0.5));
  fx[3] = static_cast<uint32_t>(Fix16(a[3]));
  fx[4] = static_cast<uint32_t>(Fix16(a[4]));
  fx[5] = static_cast<uint32_t>(Fix16(a[5] + a[3] * 0.5 + a[4] * 0.5));
}

void PilAffineFloatRowStarts(const double a[6], int64_t out_height, double* xs, double* ys) {
  double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
  double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
  for (int64_t y = 0; y < out_height; ++y) {
    xs[y] = xo;
    ys[y] = yo;
    xo += a[1];
    yo += a[4];
  }
}

namespace {

// ---------------------------------------------------------------------------------------------
// Pillow's affine engines (NEAREST).

// ImagingScaleAffine: a[1] == 0 and a[3] == 0.
template <int C>
void ScaleAffine(const ImageU8View& src, const double a[6], int64_t oh, int64_t ow, uint8_t* dst, bool parallel) {
  const int32_t ysize = static_cast<int32_t>(src.height);
  std::vector<int32_t> xintab(static_cast<size_t>(ow)), yintab(static_cast<size_t>(oh));
  int64_t xmin = 0, xmax = 0;
  PilScaleAffineTables(a, src.width, oh, ow, xintab.data(), yintab.data(), &xmin, &xmax);
  ForRange(parallel, oh, GrainFor(ow * C, 1 << 15), [&](int64_t b, int64_t e) {
    for (int64_t y = b; y < e; ++y) {
      uint8_t* out = dst + y * ow * C;
      std::memset(out, 0, static_cast<size_t>(ow * C));
      const int32_t yi = yintab[static_cast<size_t>(y)];
      if (yi < 0 || yi >= ysize) continue;
      const uint8_t* in = src.data + static_cast<int64_t>(yi) * src.width * C;
      for (int64_t x = xmin; x < xmax; ++x) CopyPixel<C>(out + x * C, in + xintab[static_cast<size_t>(x)] * C);
    }
  });
}

// affine_fixed: 16.16 fixed point, positions stepped by int32 additions (wrapping as the C code's
// int arithmetic does on x86-64).
template <int C>
void AffineFixed(const ImageU8View& src, const double a[6], int64_t oh, int64_t ow, uint8_t* dst, bool parallel) {
  const uint32_t xsize = static_cast<uint32_t>(src.width), ysize = static_cast<uint32_t>(src.height);
  uint32_t fx[6];
  PilAffineFixedCoefficients(a, fx);
  const uint32_t a0 = fx[0], a1 = fx[1], a2 = fx[2], a3 = fx[3], a4 = fx[4], a5 = fx[5];
  const int64_t W = src.width;
  auto S64 = [](uint32_t v) { return static_cast<int64_t>(static_cast<int32_t>(v)); };
  ForRange(parallel, oh, GrainFor(ow * C, 1 << 15), [&](int64_t b, int64_t e) {
    for (int64_t y = b; y < e; ++y) {
      // Row y starts where y additions of a1 (a4) left it; modular arithmetic makes that a product.
      uint32_t xx = a2 + static_cast<uint32_t>(y) * a1;
      uint32_t yy = a5 + static_cast<uint32_t>(y) * a4;
      uint8_t* out = dst + y * ow * C;
      // Fast path: when the exact positions along the row never leave the int32 range (always, in
      // practice), the source position is monotonic in x, so the pixels inside the image form one
      // run: find its ends, copy it without checks, zero the rest.
      const int64_t sx = S64(a2) + y * S64(a1), sy = S64(a5) + y * S64(a4);
      const int64_t ex = sx + (ow - 1) * S64(a0), ey = sy + (ow - 1) * S64(a3);
      const bool no_wrap = std::min({sx, sy, ex, ey}) >= INT32_MIN && std::max({sx, sy, ex, ey}) <= INT32_MAX;
      if (no_wrap) {
        auto inside = [&](int64_t x) {
          const uint32_t xi = static_cast<uint32_t>(static_cast<int32_t>(xx + static_cast<uint32_t>(x) * a0) >> 16);
          const uint32_t yi = static_cast<uint32_t>(static_cast<int32_t>(yy + static_cast<uint32_t>(x) * a3) >> 16);
          return xi < xsize && yi < ysize;
        };
        int64_t lo = 0, hi = ow;
        while (lo < hi && !inside(lo)) ++lo;
        while (hi > lo && !inside(hi - 1)) --hi;
        std::memset(out, 0, static_cast<size_t>(lo * C));
        uint32_t px = xx + static_cast<uint32_t>(lo) * a0, py = yy + static_cast<uint32_t>(lo) * a3;
        for (int64_t x = lo; x < hi; ++x, px += a0, py += a3) {
          const int64_t xi = static_cast<int32_t>(px) >> 16, yi = static_cast<int32_t>(py) >> 16;
          CopyPixel<C>(out + x * C, src.data + (yi * W + xi) * C);
        }
        std::memset(out + hi * C, 0, static_cast<size_t>((ow - hi) * C));
        continue;
      }
      for (int64_t x = 0; x < ow; ++x, xx += a0, yy += a3) {
        const uint32_t xin = static_cast<uint32_t>(static_cast<int32_t>(xx) >> 16);
        const uint32_t yin = static_cast<uint32_t>(static_cast<int32_t>(yy) >> 16);
        if (xin < xsize && yin < ysize) {
          CopyPixel<C>(out + x * C, src.data + (static_cast<int64_t>(yin) * src.width + xin) * C);
        } else {
          for (int c = 0; c < C; ++c) out[x * C + c] = 0;
        }
      }
    }
  });
}

// The double-precision engine (when the fixed-point range check fails).
template <int C>
void AffineFloat(const ImageU8View& src, const double a[6], int64_t oh, int64_t ow, uint8_t* dst, bool parallel) {
  const int32_t xsize = static_cast<int32_t>(src.width), ysize = static_cast<int32_t>(src.height);
  std::vector<double> xos(static_cast<size_t>(oh)), yos(static_cast<size_t>(oh));
  PilAffineFloatRowStarts(a, oh, xos.data(), yos.data());
  ForRange(parallel, oh, GrainFor(ow * C * 4, 1 << 15), [&](int64_t b, int64_t e) {
    for (int64_t y = b; y < e; ++y) {
      double xx = xos[static_cast<size_t>(y)], yy = yos[static_cast<size_t>(y)];
      uint8_t* out = dst + y * ow * C;
      for (int64_t x = 0; x < ow; ++x, xx += a[0], yy += a[3]) {
        const int32_t xin = PilCoord(xx);
        const int32_t yin = PilCoord(yy);
        if (xin >= 0 && xin < xsize && yin >= 0 && yin < ysize) {
          CopyPixel<C>(out + x * C, src.data + (static_cast<int64_t>(yin) * src.width + xin) * C);
        } else {
          for (int c = 0; c < C; ++c) out[x * C + c] = 0;
        }
      }
    }
  });
}

template <int C>
void PilAffineImpl(const ImageU8View& src, const double a[6], int64_t oh, int64_t ow, uint8_t* dst, bool parallel) {
  switch (SelectPilAffineEngine(a, oh, ow)) {
    case PilAffineEngine::kScale: ScaleAffine<C>(src, a, oh, ow, dst, parallel); break;
    case PilAffineEngine::kFixed: AffineFixed<C>(src, a, oh, ow, dst, parallel); break;
    case PilAffineEngine::kFloat: AffineFloat<C>(src, a, oh, ow, dst, parallel); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Transposes.

// Output row r, columns [0, ow), read from source pixel `first` then every `step` pixels (a row read
// backwards for the flips, a column for the quarter turns).
template <int C>
inline void CopyStrided(const uint8_t* first, int64_t step, int64_t ow, uint8_t* out) {
  for (int64_t c = 0; c < ow; ++c) CopyPixel<C>(out + c * C, first + c * step * C);
}

enum class Transpose { kFlipLeftRight, kFlipTopBottom, kRotate90, kRotate180, kRotate270 };

// Pillow's Image.transpose. The quarter turns walk the source in tiles of 64 output rows so that the
// columns they read stay in cache.
template <int C>
void TransposeImpl(const ImageU8View& src, Transpose op, uint8_t* dst, bool parallel) {
  const int64_t H = src.height, W = src.width;
  const uint8_t* s = src.data;
  switch (op) {
    case Transpose::kFlipLeftRight:  // out(r, c) = in(r, W - 1 - c)
    case Transpose::kRotate180:      // out(r, c) = in(H - 1 - r, W - 1 - c)
      ForRange(parallel, H, GrainFor(W * C, 1 << 15), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t sr = op == Transpose::kFlipLeftRight ? r : H - 1 - r;
          CopyStrided<C>(s + (sr * W + W - 1) * C, -1, W, dst + r * W * C);
        }
      });
      break;
    case Transpose::kFlipTopBottom:  // out(r, c) = in(H - 1 - r, c)
      ForRange(parallel, H, GrainFor(W * C, 1 << 15), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          std::memcpy(dst + r * W * C, s + (H - 1 - r) * W * C, static_cast<size_t>(W * C));
        }
      });
      break;
    case Transpose::kRotate90:   // counter-clockwise, W x H output: out(r, c) = in(c, W - 1 - r)
    case Transpose::kRotate270:  // clockwise, W x H output: out(r, c) = in(H - 1 - c, r)
      ForRange(parallel, W, GrainFor(H * C, 1 << 15), [&](int64_t b, int64_t e) {
        constexpr int64_t kTile = 64;
        for (int64_t c0 = 0; c0 < H; c0 += kTile) {
          const int64_t cn = std::min(kTile, H - c0);
          for (int64_t r = b; r < e; ++r) {
            uint8_t* out = dst + (r * H + c0) * C;
            if (op == Transpose::kRotate90) {
              CopyStrided<C>(s + (c0 * W + W - 1 - r) * C, W, cn, out);
            } else {
              CopyStrided<C>(s + ((H - 1 - c0) * W + r) * C, -W, cn, out);
            }
          }
        }
      });
      break;
  }
}

template <template <int> class F, typename... Args>
void DispatchChannels(int64_t channels, Args&&... args) {
  switch (channels) {
    case 1: F<1>::Run(std::forward<Args>(args)...); break;
    case 2: F<2>::Run(std::forward<Args>(args)...); break;
    case 3: F<3>::Run(std::forward<Args>(args)...); break;
    default: F<4>::Run(std::forward<Args>(args)...); break;
  }
}

template <int C>
struct PilAffineOp {
  static void Run(const ImageU8View& src, const double* a, int64_t oh, int64_t ow, uint8_t* dst, bool parallel) {
    PilAffineImpl<C>(src, a, oh, ow, dst, parallel);
  }
};

template <int C>
struct TransposeOp {
  static void Run(const ImageU8View& src, Transpose op, uint8_t* dst, bool parallel) {
    TransposeImpl<C>(src, op, dst, parallel);
  }
};

// ---------------------------------------------------------------------------------------------
// OpenCV emulation for the elastic transform.

// cv::borderInterpolate for BORDER_REFLECT_101.
inline int64_t Reflect101(int64_t p, int64_t len) {
  if (static_cast<uint64_t>(p) < static_cast<uint64_t>(len)) return p;
  if (len == 1) return 0;
  do {
    if (p < 0) {
      p = -p;
    } else {
      p = 2 * len - 2 - p;
    }
  } while (static_cast<uint64_t>(p) >= static_cast<uint64_t>(len));
  return p;
}

// cv::getAffineTransform: the 6x6 system solved by OpenCV's LU (partial pivoting, elimination with
// the negated reciprocal pivot, back substitution dividing by the pivot). Returns false (and zeros,
// as cv::solve leaves them) for a singular system.
bool CvGetAffineTransform(const float srcpts[6], const float dstpts[6], double M[6]) {
  constexpr int m = 6;
  double A[m * m], b[m];
  for (int i = 0; i < 3; ++i) {
    const int j = i * 12, k = i * 12 + 6;
    A[j] = A[k + 3] = static_cast<double>(srcpts[2 * i]);
    A[j + 1] = A[k + 4] = static_cast<double>(srcpts[2 * i + 1]);
    A[j + 2] = A[k + 5] = 1;
    A[j + 3] = A[j + 4] = A[j + 5] = 0;
    A[k] = A[k + 1] = A[k + 2] = 0;
    b[i * 2] = static_cast<double>(dstpts[2 * i]);
    b[i * 2 + 1] = static_cast<double>(dstpts[2 * i + 1]);
  }
  for (int i = 0; i < m; ++i) {
    int k = i;
    for (int j = i + 1; j < m; ++j) {
      if (std::abs(A[j * m + i]) > std::abs(A[k * m + i])) k = j;
    }
    if (std::abs(A[k * m + i]) < DBL_EPSILON * 100) {
      std::fill(M, M + 6, 0.0);
      return false;
    }
    if (k != i) {
      for (int j = i; j < m; ++j) std::swap(A[i * m + j], A[k * m + j]);
      std::swap(b[i], b[k]);
    }
    const double d = -1 / A[i * m + i];
    for (int j = i + 1; j < m; ++j) {
      const double alpha = A[j * m + i] * d;
      for (int kk = i + 1; kk < m; ++kk) A[j * m + kk] += alpha * A[i * m + kk];
      b[j] += alpha * b[i];
    }
  }
  for (int i = m - 1; i >= 0; --i) {
    double s = b[i];
    for (int kk = i + 1; kk < m; ++kk) s -= A[i * m + kk] * b[kk];
    b[i] = s / A[i * m + i];
  }
  std::copy(b, b + 6, M);
  return true;
}

// OpenCV's 8-bit bilinear interpolation: integer source position (sx, sy), fractions (fx, fy) in
// 1/32 pixel, weights (32 - fy)(32 - fx) * 32 ... summing to 2^15, taps read through
// BORDER_REFLECT_101, result (sum + 2^14) >> 15. (OpenCV's table stores 32767 and 1 for the
// fraction-free case, which rounds to the same value.)
template <int C>
inline void BilinearTap(const ImageU8View& src, int32_t sx, int32_t sy, int32_t fx, int32_t fy, uint8_t* out) {
  const int64_t W = src.width, H = src.height;
  int64_t sx0 = sx, sx1 = static_cast<int64_t>(sx) + 1, sy0 = sy, sy1 = static_cast<int64_t>(sy) + 1;
  if (!(sx >= 0 && sx1 < W && sy >= 0 && sy1 < H)) {
    sx0 = Reflect101(sx0, W);
    sx1 = Reflect101(sx1, W);
    sy0 = Reflect101(sy0, H);
    sy1 = Reflect101(sy1, H);
  }
  const int32_t w0 = (32 - fy) * (32 - fx) * 32, w1 = (32 - fy) * fx * 32, w2 = fy * (32 - fx) * 32,
                w3 = fy * fx * 32;
  const uint8_t* p00 = src.data + (sy0 * W + sx0) * C;
  const uint8_t* p01 = src.data + (sy0 * W + sx1) * C;
  const uint8_t* p10 = src.data + (sy1 * W + sx0) * C;
  const uint8_t* p11 = src.data + (sy1 * W + sx1) * C;
  for (int c = 0; c < C; ++c) {
    const int32_t v = p00[c] * w0 + p01[c] * w1 + p10[c] * w2 + p11[c] * w3;
    out[c] = static_cast<uint8_t>((v + (1 << 14)) >> 15);
  }
}

// cv::warpAffine(src, M, same size, INTER_LINEAR, BORDER_REFLECT_101), from the fixed-point tables of
// CvWarpAffineTables (shared with the CUDA views).
template <int C>
void CvWarpAffineLinear(const ImageU8View& src, const double M[6], uint8_t* dst, bool parallel) {
  constexpr int kAbBits = 10, kInterBits = 5;
  const int64_t H = src.height, W = src.width;
  std::vector<uint32_t> tables(static_cast<size_t>(2 * (W + H)));
  uint32_t* ad = tables.data();
  uint32_t* bd = ad + W;
  uint32_t* x0 = bd + W;
  uint32_t* y0 = x0 + H;
  CvWarpAffineTables(M, H, W, ad, bd, x0, y0);
  ForRange(parallel, H, GrainFor(W * C * 4, 1 << 15), [&](int64_t b, int64_t e) {
    // A failed allocation here is rethrown on the caller's thread by the pool.
    std::vector<int32_t> XY(static_cast<size_t>(2 * W));
    int32_t* X = XY.data();
    int32_t* Y = X + W;
    for (int64_t y = b; y < e; ++y) {
      // Positions in 1/1024 pixel (int arithmetic, wrapping as OpenCV's int does), then 1/32 pixel.
      for (int64_t x = 0; x < W; ++x) {
        X[x] = static_cast<int32_t>(x0[y] + ad[x]) >> (kAbBits - kInterBits);
        Y[x] = static_cast<int32_t>(y0[y] + bd[x]) >> (kAbBits - kInterBits);
      }
      uint8_t* out = dst + y * W * C;
      for (int64_t x = 0; x < W; ++x) {
        BilinearTap<C>(src, SaturateShort(X[x] >> kInterBits), SaturateShort(Y[x] >> kInterBits), X[x] & 31,
                       Y[x] & 31, out + x * C);
      }
    }
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The elastic transform's host set-up, shared with the CUDA views (see ops/geometric.h).

void CvWarpAffineTables(const double M_in[6], int64_t height, int64_t width, uint32_t* adelta, uint32_t* bdelta,
                        uint32_t* x0, uint32_t* y0) {
  // warpAffine inverts the forward matrix (no WARP_INVERSE_MAP), in double as OpenCV writes it.
  double M[6];
  std::copy(M_in, M_in + 6, M);
  {
    double D = M[0] * M[4] - M[1] * M[3];
    D = D != 0 ? 1. / D : 0;
    const double A11 = M[4] * D, A22 = M[0] * D;
    M[0] = A11;
    M[1] *= -D;
    M[3] *= -D;
    M[4] = A22;
    const double b1 = -M[0] * M[2] - M[1] * M[5];
    const double b2 = -M[3] * M[2] - M[4] * M[5];
    M[2] = b1;
    M[5] = b2;
  }
  constexpr int kAbScale = 1 << 10, kRoundDelta = kAbScale / 32 / 2;
  for (int64_t x = 0; x < width; ++x) {
    adelta[x] = static_cast<uint32_t>(CvRound(M[0] * static_cast<double>(x) * kAbScale));
    bdelta[x] = static_cast<uint32_t>(CvRound(M[3] * static_cast<double>(x) * kAbScale));
  }
  for (int64_t y = 0; y < height; ++y) {
    const double yd = static_cast<double>(y);
    x0[y] = static_cast<uint32_t>(CvRound((M[1] * yd + M[2]) * kAbScale)) + kRoundDelta;
    y0[y] = static_cast<uint32_t>(CvRound((M[4] * yd + M[5]) * kAbScale)) + kRoundDelta;
  }
}

// cv::getGaussianKernel(17, sigma, CV_32F): OpenCV's bit-exact double kernel rounded to float.
void CvGaussianKernel17(double sigma, float k[17]) {
  constexpr int n = 17, n2 = 8;
  const double scale2X = -0.125 / (sigma * sigma);
  double values[n2];
  double sum = 0;
  for (int i = 0, x = 1 - n; i < n2; ++i, x += 2) {
    const double t = std::exp(static_cast<double>(x * x) * scale2X);
    values[i] = t;
    sum += t;
  }
  sum *= 2;
  sum += 1;
  const double mul1 = 1 / sum;
  for (int i = 0; i < n2; ++i) {
    const double t = values[i] * mul1;
    k[i] = k[n - 1 - i] = static_cast<float>(t);
  }
  k[n2] = static_cast<float>(mul1);
}

namespace {

// OpenCV's separable float filter for the 17-tap Gaussian, with FMA accumulation as its AVX2 build
// does (row pass: all 17 taps left to right, starting from 0; column pass: centre tap, then the
// symmetric pairs, each pair summed first), BORDER_REFLECT_101 on both axes.
//   pass 0 (rows): rows [b, e) of `in` -> `out`;  pass 1 (columns): rows [b, e) of the result from
//   the row-filtered field `in` (all H rows) -> `out`.
inline __attribute__((always_inline)) void BlurPassBody(int pass, const float* in, int64_t H, int64_t W,
                                                        const float* k, int64_t b, int64_t e, float* out) {
  if (pass == 0) {
    std::vector<float> ext(static_cast<size_t>(W + 16));
    for (int64_t y = b; y < e; ++y) {
      const float* row = in + y * W;
      for (int64_t i = 0; i < W + 16; ++i) ext[static_cast<size_t>(i)] = row[Reflect101(i - 8, W)];
      float* o = out + y * W;
      for (int64_t x = 0; x < W; ++x) o[x] = std::fma(ext[static_cast<size_t>(x)], k[0], 0.0f);
      for (int t = 1; t < 17; ++t) {
        const float* s = ext.data() + t;
        const float kt = k[t];
        for (int64_t x = 0; x < W; ++x) o[x] = std::fma(s[x], kt, o[x]);
      }
    }
    return;
  }
  for (int64_t y = b; y < e; ++y) {
    float* o = out + y * W;
    const float* c = in + y * W;
    for (int64_t x = 0; x < W; ++x) o[x] = std::fma(c[x], k[8], 0.0f);
    for (int t = 1; t <= 8; ++t) {
      const float* up = in + Reflect101(y - t, H) * W;
      const float* dn = in + Reflect101(y + t, H) * W;
      const float kt = k[8 + t];
      for (int64_t x = 0; x < W; ++x) o[x] = std::fma(dn[x] + up[x], kt, o[x]);
    }
  }
}

void BlurPassGeneric(int pass, const float* in, int64_t H, int64_t W, const float* k, int64_t b, int64_t e,
                     float* out) {
  BlurPassBody(pass, in, H, W, k, b, e, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2,fma"))) void BlurPassAvx2(int pass, const float* in, int64_t H, int64_t W,
                                                      const float* k, int64_t b, int64_t e, float* out) {
  BlurPassBody(pass, in, H, W, k, b, e, out);
}
#endif

using BlurPassFn = void (*)(int, const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*);

BlurPassFn SelectBlurPass() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (DetectCpuIsa() != CpuIsa::kGeneric) return BlurPassAvx2;
#endif
  return BlurPassGeneric;
}

// cv::GaussianBlur(field, (17, 17), sigma) of a float32 H x W field, into dst. As OpenCV does for a
// whole (non-ROI) array, a side of length 1 gets a kernel of size 1, whose pass is the identity.
void CvGaussianBlur17(const float* src, int64_t H, int64_t W, double sigma, float* dst, bool parallel) {
  const size_t n = static_cast<size_t>(H * W);
  float k[17];
  CvGaussianKernel17(sigma, k);
  const BlurPassFn fn = SelectBlurPass();
  auto run = [&](int pass, const float* in, float* out, int64_t work) {
    ForRange(parallel, H, GrainFor(W * work, 1 << 15), [&](int64_t b, int64_t e) { fn(pass, in, H, W, k, b, e, out); });
  };
  if (H == 1 && W == 1) {
    std::copy(src, src + n, dst);
  } else if (W == 1) {
    run(1, src, dst, 9);
  } else if (H == 1) {
    run(0, src, dst, 17);
  } else {
    std::vector<float> rowbuf(n);
    run(0, src, rowbuf.data(), 17);
    run(1, rowbuf.data(), dst, 9);
  }
}

// cv::remap(src, map_x, map_y, INTER_LINEAR, BORDER_REFLECT_101) with float32 maps given as
// map = float32(index + dx * alpha): map coordinates become 1/32-pixel fixed point by cvRound.
template <int C>
void CvRemapDisplaced(const ImageU8View& src, const float* dx, const float* dy, float alpha, uint8_t* dst,
                      bool parallel) {
  const int64_t H = src.height, W = src.width;
  ForRange(parallel, H, GrainFor(W * C * 4, 1 << 15), [&](int64_t b, int64_t e) {
    // A failed allocation here is rethrown on the caller's thread by the pool.
    std::vector<int32_t> XY(static_cast<size_t>(2 * W));
    int32_t* X = XY.data();
    int32_t* Y = X + W;
    for (int64_t y = b; y < e; ++y) {
      // albumentations: dx *= alpha (float32); map_x = np.float32(x + dx) with x int64, so the sum is
      // formed in double and rounded once, which equals the float32 sum (x is exact in float32).
      // cv::remap then takes cvRound(map * 32).
      const float* rx = dx + y * W;
      const float* ry = dy + y * W;
      const float yf = static_cast<float>(y);
      int64_t x = 0;
#if defined(__SSE2__)
      const __m128 va = _mm_set1_ps(alpha), v32 = _mm_set1_ps(32.0f), vy = _mm_set1_ps(yf);
      __m128 vx = _mm_setr_ps(0.0f, 1.0f, 2.0f, 3.0f);
      const __m128 v4 = _mm_set1_ps(4.0f);
      for (; x + 4 <= W; x += 4, vx = _mm_add_ps(vx, v4)) {
        const __m128 mx = _mm_add_ps(vx, _mm_mul_ps(_mm_loadu_ps(rx + x), va));
        const __m128 my = _mm_add_ps(vy, _mm_mul_ps(_mm_loadu_ps(ry + x), va));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(X + x), _mm_cvtps_epi32(_mm_mul_ps(mx, v32)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(Y + x), _mm_cvtps_epi32(_mm_mul_ps(my, v32)));
      }
#endif
      for (; x < W; ++x) {
        const float mx = static_cast<float>(x) + rx[x] * alpha;
        const float my = yf + ry[x] * alpha;
        X[x] = CvRoundF(mx * 32.0f);
        Y[x] = CvRoundF(my * 32.0f);
      }
      uint8_t* out = dst + y * W * C;
      for (x = 0; x < W; ++x) {
        BilinearTap<C>(src, SaturateShort(X[x] >> 5), SaturateShort(Y[x] >> 5), X[x] & 31, Y[x] & 31, out + x * C);
      }
    }
  });
}

template <int C>
struct ElasticOp {
  static void Run(const ImageU8View& src, const double* M, const float* dx, const float* dy, float alpha,
                  uint8_t* dst, bool parallel) {
    std::vector<uint8_t> warped(static_cast<size_t>(src.height * src.width * C));
    CvWarpAffineLinear<C>(src, M, warped.data(), parallel);
    ImageU8View w = src;
    w.data = warped.data();
    CvRemapDisplaced<C>(w, dx, dy, alpha, dst, parallel);
  }
};

}  // namespace

// -------------------------------------------------------------------------------------------------

Status PilAffineNearestU8(const ImageU8View& src, const double a[6], int64_t out_height, int64_t out_width,
                          uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "affine"));
  if (out_height < 1 || out_width < 1 || out_height > kMaxSide || out_width > kMaxSide) {
    return InvalidArgument("affine: output sides must be 1 to " + std::to_string(kMaxSide));
  }
  if (dst == nullptr) return InvalidArgument("affine: no output buffer");
  try {
    DispatchChannels<PilAffineOp>(src.channels, src, a, out_height, out_width, dst, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("affine: out of memory for the position tables");
  }
  return Status::Ok();
}

void PilRotateMatrix(double angle, int64_t width, int64_t height, double m[6]) {
  const double cx = static_cast<double>(width) / 2.0, cy = static_cast<double>(height) / 2.0;
  const double a = -(PyMod(angle, 360.0) * kDegToRad);
  m[0] = PyRound15(std::cos(a));
  m[1] = PyRound15(std::sin(a));
  m[2] = 0.0;
  m[3] = PyRound15(-std::sin(a));
  m[4] = PyRound15(std::cos(a));
  m[5] = 0.0;
  // transform(-cx - 0, -cy - 0, matrix) with matrix[2] = matrix[5] = 0.0, then += the centre.
  const double x = -cx - 0.0, y = -cy - 0.0;
  const double t2 = m[0] * x + m[1] * y + m[2];
  const double t5 = m[3] * x + m[4] * y + m[5];
  m[2] = t2 + cx;
  m[5] = t5 + cy;
}

Status RotateU8(const ImageU8View& src, double angle, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "rotate"));
  if (!std::isfinite(angle)) return InvalidArgument("rotate: the angle must be finite");
  if (dst == nullptr) return InvalidArgument("rotate: no output buffer");
  const double a = PyMod(angle, 360.0);
  if (a == 0) {
    std::memcpy(dst, src.data, static_cast<size_t>(src.height * src.width * src.channels));
    return Status::Ok();
  }
  if (a == 180) {
    DispatchChannels<TransposeOp>(src.channels, src, Transpose::kRotate180, dst, parallel);
    return Status::Ok();
  }
  if ((a == 90 || a == 270) && src.width == src.height) {
    DispatchChannels<TransposeOp>(src.channels, src, a == 90 ? Transpose::kRotate90 : Transpose::kRotate270, dst,
                                  parallel);
    return Status::Ok();
  }
  double m[6];
  PilRotateMatrix(a, src.width, src.height, m);
  return PilAffineNearestU8(src, m, src.height, src.width, dst, parallel);
}

void TorchvisionInverseAffineMatrix(const double center[2], const AffineParams& p, double m[6]) {
  const double rot = p.angle * kDegToRad;
  const double sx = p.shear[0] * kDegToRad;
  const double sy = p.shear[1] * kDegToRad;
  const double cx = center[0], cy = center[1];
  const double tx = p.translate[0], ty = p.translate[1];
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  const double r[6] = {d, -b, 0.0, -c, a, 0.0};
  for (int i = 0; i < 6; ++i) m[i] = r[i] / p.scale;
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
}

Status TorchvisionAffineU8(const ImageU8View& src, const AffineParams& p, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "affine"));
  const double vals[] = {p.angle, p.translate[0], p.translate[1], p.scale, p.shear[0], p.shear[1]};
  for (double v : vals) {
    if (!std::isfinite(v)) return InvalidArgument("affine: angle, translate, scale and shear must be finite");
  }
  if (!(p.scale > 0)) return InvalidArgument("affine: scale must be positive");
  const double center[2] = {static_cast<double>(src.width) * 0.5, static_cast<double>(src.height) * 0.5};
  double m[6];
  TorchvisionInverseAffineMatrix(center, p, m);
  return PilAffineNearestU8(src, m, src.height, src.width, dst, parallel);
}

Status FlipU8(const ImageU8View& src, bool horizontal, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "flip"));
  if (dst == nullptr) return InvalidArgument("flip: no output buffer");
  DispatchChannels<TransposeOp>(src.channels, src, horizontal ? Transpose::kFlipLeftRight : Transpose::kFlipTopBottom,
                                dst, parallel);
  return Status::Ok();
}

Status CropBoxU8(const ImageU8View& src, int64_t x0, int64_t y0, int64_t x1, int64_t y1, uint8_t* dst,
                 bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "crop"));
  if (x1 <= x0 || y1 <= y0 || x1 - x0 > kMaxSide || y1 - y0 > kMaxSide || std::abs(x0) > kMaxSide ||
      std::abs(y0) > kMaxSide) {
    return InvalidArgument("crop: the box must be non-empty with sides and offsets up to " +
                           std::to_string(kMaxSide));
  }
  if (dst == nullptr) return InvalidArgument("crop: no output buffer");
  const int64_t C = src.channels, ow = x1 - x0, oh = y1 - y0;
  const int64_t cx0 = std::min(ow, std::max<int64_t>(0, -x0));             // first column inside
  const int64_t cx1 = std::max(cx0, std::min(ow, src.width - x0));          // end of columns inside
  ForRange(parallel, oh, GrainFor(ow * C, 1 << 15), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      uint8_t* out = dst + r * ow * C;
      const int64_t sy = y0 + r;
      if (sy < 0 || sy >= src.height || cx1 <= cx0) {
        std::memset(out, 0, static_cast<size_t>(ow * C));
        continue;
      }
      std::memset(out, 0, static_cast<size_t>(cx0 * C));
      std::memcpy(out + cx0 * C, src.data + (sy * src.width + x0 + cx0) * C, static_cast<size_t>((cx1 - cx0) * C));
      std::memset(out + cx1 * C, 0, static_cast<size_t>((ow - cx1) * C));
    }
  });
  return Status::Ok();
}

Status ResizedCropBox(const ResizedCropSpec& spec, int64_t box[4]) {
  const double v[4] = {spec.left, spec.top, spec.left + spec.width, spec.top + spec.height};
  for (double x : v) {
    if (!std::isfinite(x) || std::fabs(x) > static_cast<double>(kMaxSide)) {
      return InvalidArgument("resizedCrop: top, left, height and width must be finite, the box within +-" +
                             std::to_string(kMaxSide));
    }
  }
  // Pillow's Image.crop checks the float box, then _crop rounds each coordinate (Python's round).
  if (v[2] < v[0]) return InvalidArgument("resizedCrop: Coordinate 'right' is less than 'left' (width < 0)");
  if (v[3] < v[1]) return InvalidArgument("resizedCrop: Coordinate 'lower' is less than 'upper' (height < 0)");
  for (int i = 0; i < 4; ++i) box[i] = static_cast<int64_t>(std::nearbyint(v[i]));
  if (box[2] <= box[0] || box[3] <= box[1]) {
    return InvalidArgument("resizedCrop: the crop box rounds to an empty image (" + std::to_string(box[2] - box[0]) +
                           "x" + std::to_string(box[3] - box[1]) + "), which Pillow cannot resize");
  }
  return Status::Ok();
}

Status ResizedCropU8(const ImageU8View& src, const ResizedCropSpec& spec, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "resizedCrop"));
  int64_t box[4];
  SSLINV_RETURN_IF_ERROR(ResizedCropBox(spec, box));
  if (spec.out_height < 1 || spec.out_width < 1 || spec.out_height > kMaxSide || spec.out_width > kMaxSide) {
    return InvalidArgument("resizedCrop: output sides must be 1 to " + std::to_string(kMaxSide));
  }
  if (dst == nullptr) return InvalidArgument("resizedCrop: no output buffer");
  try {
    const int64_t cw = box[2] - box[0], ch = box[3] - box[1];
    std::vector<uint8_t> crop(static_cast<size_t>(cw * ch * src.channels));
    SSLINV_RETURN_IF_ERROR(CropBoxU8(src, box[0], box[1], box[2], box[3], crop.data(), parallel));
    ImageU8View cv;
    cv.data = crop.data();
    cv.height = ch;
    cv.width = cw;
    cv.channels = src.channels;
    ResampleSpec rs;
    rs.out_height = spec.out_height;
    rs.out_width = spec.out_width;
    rs.filter = spec.filter;
    return ResampleU8(cv, rs, dst, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("resizedCrop: out of memory for the crop");
  }
}

void ElasticAffineMatrix(int64_t height, int64_t width, const float affine_offsets[6], double M[6]) {
  // albumentations: center_square = float32((h, w)) // 2, square_size = min(h, w) // 3, the three
  // points in that (h, w) order used as (x, y); pts2 = pts1 + offsets in float32.
  const float c0 = static_cast<float>(height / 2), c1 = static_cast<float>(width / 2);
  const float s = static_cast<float>(std::min(height, width) / 3);
  const float pts1[6] = {c0 + s, c1 + s, c0 + s, c1 - s, c0 - s, c1 - s};
  float pts2[6];
  for (int i = 0; i < 6; ++i) pts2[i] = pts1[i] + affine_offsets[i];
  CvGetAffineTransform(pts1, pts2, M);
}

Status GaussianBlur17F32(const float* src, int64_t height, int64_t width, double sigma, float* dst, bool parallel) {
  if (src == nullptr || dst == nullptr) return InvalidArgument("gaussianBlur: no data");
  if (height < 1 || width < 1 || height > kMaxSide || width > kMaxSide) {
    return InvalidArgument("gaussianBlur: sides must be 1 to " + std::to_string(kMaxSide));
  }
  if (!std::isfinite(sigma) || !(sigma > 0)) return InvalidArgument("gaussianBlur: sigma must be positive");
  try {
    CvGaussianBlur17(src, height, width, sigma, dst, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("gaussianBlur: out of memory");
  }
  return Status::Ok();
}

Status ElasticU8(const ImageU8View& src, const ElasticSpec& spec, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(ValidateImage(src, "elastic", kMaxElasticSide));
  if (!std::isfinite(spec.sigma) || !(spec.sigma > 0)) return InvalidArgument("elastic: sigma must be positive");
  if (!std::isfinite(spec.alpha)) return InvalidArgument("elastic: alpha must be finite");
  for (float v : spec.affine_offsets) {
    if (!std::isfinite(v)) return InvalidArgument("elastic: the affine offsets must be finite");
  }
  if (spec.noise_x == nullptr || spec.noise_y == nullptr) return InvalidArgument("elastic: missing noise fields");
  if (dst == nullptr) return InvalidArgument("elastic: no output buffer");
  const int64_t H = src.height, W = src.width;
  double M[6];
  ElasticAffineMatrix(H, W, spec.affine_offsets, M);
  try {
    const size_t n = static_cast<size_t>(H * W);
    std::vector<float> dx(n), dy(n);
    CvGaussianBlur17(spec.noise_x, H, W, spec.sigma, dx.data(), parallel);
    CvGaussianBlur17(spec.noise_y, H, W, spec.sigma, dy.data(), parallel);
    DispatchChannels<ElasticOp>(src.channels, src, static_cast<const double*>(M), static_cast<const float*>(dx.data()),
                                static_cast<const float*>(dy.data()), static_cast<float>(spec.alpha), dst, parallel);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("elastic: out of memory for the displacement fields");
  }
  return Status::Ok();
}

}  // namespace sslinv
