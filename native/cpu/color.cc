// Photometric ops, bit-exact with torchvision 0.14 + Pillow 9.4 (see ops/color.h).
//
// Written from a reading of the code paths torchvision takes (functional_pil.py, functional_tensor.py)
// and of Pillow's libImaging (Convert.c, Blend.c, Filter.c, BoxBlur.c), torch's CPU kernels and
// oneDNN's depthwise convolution: the arithmetic (which operations run in int, C float or double,
// their order, and how results are rounded, truncated or clipped) is reproduced, not the code.
// C's usual conversions matter here: in Pillow's `h = 2.0 + rc - bc` with float rc, bc the sum is a
// double that is then stored to a float, and in `fs * f` with two floats the product is a float.
// The comments give each such step its C type.
#include "ops/color.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "ops/pil_integer.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SSLINV_COLOR_X86 1
#endif

// Every float expression must round as Pillow's and torch's do: no contraction into fused
// multiply-adds except where the reference itself fuses (the blur's convolution and Sleef's exp,
// which call fma explicitly).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sslinv {

bool ParseEnhanceKind(int64_t value, EnhanceKind* out) {
  if (value < 0 || value > 3) return false;
  *out = static_cast<EnhanceKind>(value);
  return true;
}

namespace {

constexpr int64_t kMaxSide = int64_t{1} << 24;
constexpr int64_t kMaxPixels = int64_t{1} << 34;

Status CheckImage(const ImageU8View& src, const uint8_t* dst, bool rgb_only, const char* op) {
  if (src.data == nullptr || dst == nullptr) return InvalidArgument(std::string(op) + ": null image buffer");
  if (src.height < 1 || src.width < 1 || src.height > kMaxSide || src.width > kMaxSide ||
      src.height * src.width > kMaxPixels) {
    return InvalidArgument(std::string(op) + ": image sides must be 1 to 2^24 and the image at most 2^34 pixels, got " +
                           std::to_string(src.height) + "x" + std::to_string(src.width));
  }
  if (rgb_only && src.channels != 3) {
    return InvalidArgument(std::string(op) + ": expected an RGB image (3 channels), got " +
                           std::to_string(src.channels));
  }
  if (src.channels < 1 || src.channels > 4) {
    return InvalidArgument(std::string(op) + ": expected 1 to 4 channels, got " + std::to_string(src.channels));
  }
  return Status::Ok();
}

// Runs fn(begin, end) over [0, n), split over the pool when `parallel` and there is enough work.


template <typename Fn>
Status Guard(const char* op, const Fn& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return OutOfMemory(std::string(op) + ": out of memory");
  }
}

// Pillow's rgb2l: ITU-R 601-2 luma in 16-bit fixed point.
inline uint8_t Luma(const uint8_t* p) {
  return static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

inline uint8_t Clip8(int v) { return static_cast<uint8_t>(v <= 0 ? 0 : (v < 256 ? v : 255)); }

// ---------------------------------------------------------------------------------------------
// Image.blend(im1, im2, alpha) (ImagingBlend): alpha is a C float; inside [0, 1] the float result
// in1 + alpha * (in2 - in1) is truncated, outside it is clipped to 0..255 first. alpha == 0 and
// alpha == 1 copy im1 and im2.

struct Blend {
  float alpha;
  bool interpolate;
  explicit Blend(float a) : alpha(a), interpolate(a >= 0.0f && a <= 1.0f) {}
  inline uint8_t operator()(int in1, int in2) const {
    const float t = static_cast<float>(in1) + alpha * static_cast<float>(in2 - in1);  // int + float*int: float
    if (interpolate) return static_cast<uint8_t>(static_cast<int>(t));
    if (t <= 0.0f) return 0;
    if (t >= 255.0f) return 255;
    return static_cast<uint8_t>(static_cast<int>(t));
  }
};

// ImageFilter.SMOOTH on one row y (1 <= y <= H-2) of an RGB image, columns 1..W-2 (Pillow's
// ImagingFilter3x3 for 3-band images): per channel, in C float,
//   ss = 0.5; ss += R(y+1); ss += R(y); ss += R(y-1);  R(r) = (p[x-1]*k0 + p[x]*k1) + p[x+1]*k2
// with the row y+1 against kernel[0..2] and y-1 against kernel[6..8]; kernel = {1,1,1, 1,5,1, 1,1,1}
// each divided (in float) by 13; then clip8 (<= 0: 0, >= 255: 255, else truncation). Border pixels
// are copied.
struct SmoothKernel {
  float k[9];
  float offset;
  SmoothKernel() {
    const float raw[9] = {1, 1, 1, 1, 5, 1, 1, 1, 1};
    const float divisor = 13.0f;
    for (int i = 0; i < 9; ++i) k[i] = raw[i] / divisor;
    offset = static_cast<float>(0.0f + 0.5);  // offset (float) += 0.5 (double)
  }
};

// Pillow's clip8 of a float: <= 0 gives 0, >= 255 gives 255, else truncation (here as a clamp and a
// truncation: the same values).
inline uint8_t ClipF(float v) {
  return static_cast<uint8_t>(static_cast<int>(std::min(255.0f, std::max(0.0f, v))));
}

// Row y of Image.blend(image.filter(SMOOTH), image, alpha) (alpha != 1; alpha == 0 gives the smoothed
// row itself). The interior runs over the row's values e = 3x + c as one flat loop (the three taps of
// a kernel row are e - 3, e, e + 3); each value's float operations are Pillow's, in its order.
enum class BlendMode { kDegenerate, kInterpolate, kExtrapolate };

template <BlendMode M>
inline __attribute__((always_inline)) uint8_t BlendAs(float alpha, int in1, int in2) {
  if (M == BlendMode::kDegenerate) return static_cast<uint8_t>(in1);
  // (float)in1 + alpha * (float)(in2 - in1); the int difference converts to float exactly.
  const float a = static_cast<float>(in1);
  const float t = a + alpha * (static_cast<float>(in2) - a);
  if (M == BlendMode::kInterpolate) return static_cast<uint8_t>(static_cast<int>(t));
  return ClipF(t);
}

template <BlendMode M>
inline __attribute__((always_inline)) void SharpnessRowBody(const uint8_t* src, int64_t width, int64_t height,
                                                            int64_t y, const SmoothKernel& sk, float alpha,
                                                            uint8_t* out) {
  const int64_t stride = width * 3;
  const uint8_t* in0 = src + y * stride;
  if (width < 3 || height < 3 || y == 0 || y == height - 1) {
    for (int64_t e = 0; e < stride; ++e) out[e] = BlendAs<M>(alpha, in0[e], in0[e]);
    return;
  }
  const uint8_t* in_1 = in0 - stride;
  const uint8_t* in1 = in0 + stride;
  const float k0 = sk.k[0], k1 = sk.k[1], k2 = sk.k[2], k3 = sk.k[3], k4 = sk.k[4], k5 = sk.k[5];
  const float k6 = sk.k[6], k7 = sk.k[7], k8 = sk.k[8], off = sk.offset;
  for (int c = 0; c < 3; ++c) out[c] = BlendAs<M>(alpha, in0[c], in0[c]);
  for (int64_t e = 3; e < stride - 3; ++e) {
    float ss = off;
    ss += static_cast<float>(in1[e - 3]) * k0 + static_cast<float>(in1[e]) * k1 + static_cast<float>(in1[e + 3]) * k2;
    ss += static_cast<float>(in0[e - 3]) * k3 + static_cast<float>(in0[e]) * k4 + static_cast<float>(in0[e + 3]) * k5;
    ss += static_cast<float>(in_1[e - 3]) * k6 + static_cast<float>(in_1[e]) * k7 +
          static_cast<float>(in_1[e + 3]) * k8;
    out[e] = BlendAs<M>(alpha, ClipF(ss), in0[e]);
  }
  for (int64_t e = stride - 3; e < stride; ++e) out[e] = BlendAs<M>(alpha, in0[e], in0[e]);
}

template <BlendMode M>
void SharpnessRowsGeneric(const uint8_t* src, int64_t width, int64_t height, int64_t y0, int64_t y1,
                          const SmoothKernel& sk, float alpha, uint8_t* dst) {
  for (int64_t y = y0; y < y1; ++y) SharpnessRowBody<M>(src, width, height, y, sk, alpha, dst + y * width * 3);
}

#if defined(SSLINV_COLOR_X86)
// The same with AVX2 intrinsics, 8 values at a time (no fused multiply-adds: plain mul and add, in
// Pillow's order). clip8 and the casts are truncations of clamped values; (float)(in2 - in1) equals
// (float)in2 - (float)in1 for bytes.
__attribute__((target("avx2"), always_inline)) inline __m256 Load8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

__attribute__((target("avx2"), always_inline)) inline __m256 Trunc8(__m256 v) {
  return _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}

// (p[-3] * k0 + p[0] * k1) + p[3] * k2 for 8 consecutive values.
__attribute__((target("avx2"), always_inline)) inline __m256 SmoothRow8(const uint8_t* p, const __m256* k) {
  return _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(Load8(p - 3), k[0]), _mm256_mul_ps(Load8(p), k[1])),
                       _mm256_mul_ps(Load8(p + 3), k[2]));
}

template <BlendMode M>
__attribute__((target("avx2"))) void SharpnessRowsAvx2(const uint8_t* src, int64_t width, int64_t height,
                                                         int64_t y0, int64_t y1, const SmoothKernel& sk,
                                                         float alpha, uint8_t* dst) {
  const int64_t stride = width * 3;
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f), va = _mm256_set1_ps(alpha);
  const __m256 off = _mm256_set1_ps(sk.offset);
  __m256 k[9];
  for (int i = 0; i < 9; ++i) k[i] = _mm256_set1_ps(sk.k[i]);
  for (int64_t y = y0; y < y1; ++y) {
    uint8_t* out = dst + y * stride;
    if (width < 3 || height < 3 || y == 0 || y == height - 1 || stride < 14) {
      SharpnessRowBody<M>(src, width, height, y, sk, alpha, out);
      continue;
    }
    const uint8_t* in0 = src + y * stride;
    const uint8_t* in_1 = in0 - stride;
    const uint8_t* in1 = in0 + stride;
    for (int c = 0; c < 3; ++c) out[c] = BlendAs<M>(alpha, in0[c], in0[c]);
    int64_t e = 3;
    // The last vector reads in[e + 3 .. e + 10]: stay inside the row.
    for (; e + 11 <= stride; e += 8) {
      __m256 ss = _mm256_add_ps(off, SmoothRow8(in1 + e, k));
      ss = _mm256_add_ps(ss, SmoothRow8(in0 + e, k + 3));
      ss = _mm256_add_ps(ss, SmoothRow8(in_1 + e, k + 6));
      const __m256 sm = Trunc8(_mm256_min_ps(top, _mm256_max_ps(zero, ss)));
      __m256 r;
      if (M == BlendMode::kDegenerate) {
        r = sm;
      } else {
        const __m256 t = _mm256_add_ps(sm, _mm256_mul_ps(va, _mm256_sub_ps(Load8(in0 + e), sm)));
        r = M == BlendMode::kInterpolate ? Trunc8(t) : Trunc8(_mm256_min_ps(top, _mm256_max_ps(zero, t)));
      }
      const __m256i i32 = _mm256_cvttps_epi32(r);
      const __m128i i16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + e), _mm_packus_epi16(i16, i16));
    }
    const float k0 = sk.k[0], k1 = sk.k[1], k2 = sk.k[2], k3 = sk.k[3], k4 = sk.k[4], k5 = sk.k[5];
    const float k6 = sk.k[6], k7 = sk.k[7], k8 = sk.k[8];
    for (; e < stride - 3; ++e) {
      float ss = sk.offset;
      ss += static_cast<float>(in1[e - 3]) * k0 + static_cast<float>(in1[e]) * k1 + static_cast<float>(in1[e + 3]) * k2;
      ss += static_cast<float>(in0[e - 3]) * k3 + static_cast<float>(in0[e]) * k4 + static_cast<float>(in0[e + 3]) * k5;
      ss += static_cast<float>(in_1[e - 3]) * k6 + static_cast<float>(in_1[e]) * k7 +
            static_cast<float>(in_1[e + 3]) * k8;
      out[e] = BlendAs<M>(alpha, ClipF(ss), in0[e]);
    }
    for (; e < stride; ++e) out[e] = BlendAs<M>(alpha, in0[e], in0[e]);
  }
}
#endif

template <BlendMode M>
void SharpnessRows(const uint8_t* src, int64_t width, int64_t height, int64_t y0, int64_t y1, const SmoothKernel& sk,
                   float alpha, uint8_t* dst) {
#if defined(SSLINV_COLOR_X86)
  if (DetectCpuIsa() != CpuIsa::kGeneric) return SharpnessRowsAvx2<M>(src, width, height, y0, y1, sk, alpha, dst);
#endif
  SharpnessRowsGeneric<M>(src, width, height, y0, y1, sk, alpha, dst);
}

// ---------------------------------------------------------------------------------------------
// Pillow's rgb2hsv / hsv2rgb (Convert.c), with their C types.

// Quotients (float)a / (float)b for 0 <= a <= b <= 255, b > 0: every division rgb2hsv makes, computed
// once with the same float division (so identical), 256 KiB.
struct DivTable {
  float q[256][256];
  DivTable() {
    for (int b = 0; b < 256; ++b) {
      for (int a = 0; a < 256; ++a) q[b][a] = b == 0 ? 0.0f : static_cast<float>(a) / static_cast<float>(b);
    }
  }
};

const DivTable& GetDivTable() {
  static const DivTable t;
  return t;
}

inline void RgbToHsv(const uint8_t* p, const DivTable& div, uint8_t* hsv) {
  const uint8_t r = p[0], g = p[1], b = p[2];
  const uint8_t maxc = std::max(r, std::max(g, b));
  const uint8_t minc = std::min(r, std::min(g, b));
  if (minc == maxc) {
    hsv[0] = 0;
    hsv[1] = 0;
    hsv[2] = maxc;
    return;
  }
  const int cr = maxc - minc;                // cr = (float)(maxc - minc)
  const float s = div.q[maxc][cr];           // cr / (float)maxc
  const float rc = div.q[cr][maxc - r];      // (float)(maxc - r) / cr
  const float gc = div.q[cr][maxc - g];
  const float bc = div.q[cr][maxc - b];
  float h;
  if (r == maxc) {
    h = bc - gc;  // float
  } else if (g == maxc) {
    h = static_cast<float>(2.0 + static_cast<double>(rc) - static_cast<double>(bc));
  } else {
    h = static_cast<float>(4.0 + static_cast<double>(gc) - static_cast<double>(rc));
  }
  // fmod(h / 6.0 + 1.0, 1.0) in double, stored to a float. The argument lies in [5/6, 2), where
  // fmod is the exact subtraction of 1 from values >= 1.
  double t = static_cast<double>(h) / 6.0 + 1.0;
  if (t >= 1.0) t -= 1.0;
  h = static_cast<float>(t);
  hsv[0] = Clip8(static_cast<int>(static_cast<double>(h) * 255.0));
  hsv[1] = Clip8(static_cast<int>(static_cast<double>(s) * 255.0));
  hsv[2] = maxc;
}

// C's round() (half away from zero) of x >= 0: the fraction x - trunc(x) is exact in double.
inline int RoundHalfAway(double x) {
  const int i = static_cast<int>(x);
  return x - static_cast<double>(i) >= 0.5 ? i + 1 : i;
}

// Per-hue and per-saturation terms of hsv2rgb, computed once.
struct HsvTables {
  int sector[256];  // i = floor(h * 6.0 / 255.0), 0..6
  float frac[256];  // f = (float)(h * 6.0 / 255.0 - i)
  float fs[256];    // fs = (float)(s / 255.0)
  HsvTables() {
    for (int v = 0; v < 256; ++v) {
      const double hh = static_cast<double>(static_cast<float>(v)) * 6.0 / 255.0;
      const int i = static_cast<int>(std::floor(hh));
      sector[v] = i;
      frac[v] = static_cast<float>(hh - static_cast<double>(static_cast<float>(i)));
      fs[v] = static_cast<float>(static_cast<double>(static_cast<float>(v)) / 255.0);
    }
  }
};

const HsvTables& GetHsvTables() {
  static const HsvTables t;
  return t;
}

inline void HsvToRgb(uint8_t h, uint8_t s, uint8_t v, const HsvTables& t, uint8_t* out) {
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  const int i = t.sector[h];
  const float f = t.frac[h];
  const float fs = t.fs[s];
  const double vv = static_cast<double>(static_cast<float>(v));
  const int p = RoundHalfAway(vv * (1.0 - static_cast<double>(fs)));
  const float fsf = fs * f;  // float * float: a float product
  const int q = RoundHalfAway(vv * (1.0 - static_cast<double>(fsf)));
  const int tt = RoundHalfAway(vv * (1.0 - static_cast<double>(fs) * (1.0 - static_cast<double>(f))));
  const uint8_t up = Clip8(p), uq = Clip8(q), ut = Clip8(tt);
  switch (i % 6) {
    case 0: out[0] = v; out[1] = ut; out[2] = up; break;
    case 1: out[0] = uq; out[1] = v; out[2] = up; break;
    case 2: out[0] = up; out[1] = v; out[2] = ut; break;
    case 3: out[0] = up; out[1] = uq; out[2] = v; break;
    case 4: out[0] = ut; out[1] = up; out[2] = v; break;
    default: out[0] = v; out[1] = up; out[2] = uq; break;
  }
}

// ---------------------------------------------------------------------------------------------
// torch's _get_gaussian_kernel1d in float32, as torch 1.13's CPU kernels compute it:
//   x = linspace(-(k-1)/2, (k-1)/2, k)                           (exact: integers or halves)
//   pdf = exp(-0.5 * (x / float(sigma))^2)                       (float32 ops; pow(., 2) is x * x)
//   kernel = pdf / pdf.sum()
// exp is Sleef's expf (u10), which torch's vectorised exp calls; sum is torch's cascade sum with
// 8-lane vectors (the AVX2 build's Vectorized<float>).

// Sleef's u10 single-precision exp: Cody-Waite reduction by ln 2 in two parts, a degree-6
// polynomial evaluated with fused multiply-adds, and a two-step scaling by 2^q.
float SleefExpf(float d) {
  if (d < -104.0f) return 0.0f;
  if (d > 100.0f) return std::numeric_limits<float>::infinity();
  const float kRLn2 = 1.442695040888963407359924681001892137426645954152985934135449406931f;
  const float kL2U = 0.693145751953125f;
  const float kL2L = 1.428606765330187045e-06f;
  const int q = static_cast<int>(std::nearbyint(d * kRLn2));  // round half to even
  const float qf = static_cast<float>(q);
  float s = std::fma(qf, -kL2U, d);
  s = std::fma(qf, -kL2L, s);
  float u = 0.000198527617612853646278381f;
  u = std::fma(u, s, 0.00139304355252534151077271f);
  u = std::fma(u, s, 0.00833336077630519866943359f);
  u = std::fma(u, s, 0.0416664853692054748535156f);
  u = std::fma(u, s, 0.166666671633720397949219f);
  u = std::fma(u, s, 0.5f);
  const float s2 = s * s;
  u = 1.0f + std::fma(s2, u, s);
  const int q1 = q >> 1, q2 = q - (q >> 1);  // each in [-75, 75]: 2^q1, 2^q2 are normal floats
  u = u * std::ldexp(1.0f, q1);
  u = u * std::ldexp(1.0f, q2);
  return u;
}

// torch's cascade sum, generic over a "vector" of L float lanes (L = 1: scalars).
template <int L>
struct Lanes {
  float v[L];
  Lanes() { for (int i = 0; i < L; ++i) v[i] = 0.0f; }
  Lanes& operator+=(const Lanes& o) {
    for (int i = 0; i < L; ++i) v[i] += o.v[i];
    return *this;
  }
};

int64_t CeilLog2(int64_t x) {
  if (x <= 2) return 1;
  int64_t bits = 0;
  uint64_t y = static_cast<uint64_t>(x) - 1;
  while (y) {
    ++bits;
    y >>= 1;
  }
  return bits;
}

// multi_row_sum: sums `size` rows of NR columns, in levels of 16 rows (for these sizes).
template <typename T, int NR, typename Load>
std::array<T, NR> MultiRowSum(const Load& load, int64_t size) {
  constexpr int kLevels = 4;
  const int64_t level_power = std::max<int64_t>(4, CeilLog2(size) / kLevels);
  const int64_t level_step = int64_t{1} << level_power;
  const int64_t level_mask = level_step - 1;
  T acc[kLevels][NR];
  int64_t i = 0;
  while (i + level_step <= size) {
    for (int64_t j = 0; j < level_step; ++j, ++i) {
      for (int k = 0; k < NR; ++k) acc[0][k] += load(i, k);
    }
    for (int j = 1; j < kLevels; ++j) {
      for (int k = 0; k < NR; ++k) {
        acc[j][k] += acc[j - 1][k];
        acc[j - 1][k] = T();
      }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < size; ++i) {
    for (int k = 0; k < NR; ++k) acc[0][k] += load(i, k);
  }
  for (int j = 1; j < kLevels; ++j) {
    for (int k = 0; k < NR; ++k) acc[0][k] += acc[j][k];
  }
  std::array<T, NR> out;
  for (int k = 0; k < NR; ++k) out[k] = acc[0][k];
  return out;
}

// row_sum: 4 interleaved partial sums, then the remainder, then the partials.
template <typename T, typename Load>
T RowSum(const Load& load, int64_t size) {
  constexpr int kIlp = 4;
  const int64_t size_ilp = size / kIlp;
  auto partial = MultiRowSum<T, kIlp>([&](int64_t row, int k) { return load(row * kIlp + k); }, size_ilp);
  for (int64_t i = size_ilp * kIlp; i < size; ++i) partial[0] += load(i);
  for (int k = 1; k < kIlp; ++k) partial[0] += partial[k];
  return partial[0];
}

float TorchSum(const float* p, int64_t n) {
  constexpr int kVec = 8;
  if (n >= kVec) {
    // vectorized_inner_sum: whole vectors through row_sum, the tail and then the lanes added to 0.
    const int64_t nvec = n / kVec;
    Lanes<kVec> vacc = RowSum<Lanes<kVec>>(
        [&](int64_t i) {
          Lanes<kVec> v;
          for (int l = 0; l < kVec; ++l) v.v[l] = p[i * kVec + l];
          return v;
        },
        nvec);
    float acc = 0.0f;
    for (int64_t k = nvec * kVec; k < n; ++k) acc += p[k];
    for (int l = 0; l < kVec; ++l) acc += vacc.v[l];
    return 0.0f + acc;
  }
  struct F {
    float v = 0.0f;
    F& operator+=(const F& o) { v += o.v; return *this; }
  };
  F s = RowSum<F>([&](int64_t i) { F f; f.v = p[i]; return f; }, n);
  return 0.0f + s.v;
}

// ---------------------------------------------------------------------------------------------
// The depthwise convolution of the blur, as oneDNN's jit depthwise kernel accumulates it: per output
// value one fused multiply-add chain over the taps, kernel rows outer and columns inner, starting
// from 0. A tap whose weight is 0 leaves the chain unchanged (x * 0 + acc == acc for finite x >= 0),
// so such taps may be skipped or kept: only the order of the others matters.
//
// Layout: `pad` is the reflect-padded float image (HWC rows of pad_stride floats); an output row has
// n = W * C values, and value e of output row y reads pad[(y + i) * pad_stride + e + j * C] for tap
// (i, j). The vector kernels compute R output rows at once so that each loaded input vector serves
// the R chains it belongs to (row r of the padded image is tap row r - q of output row y + q); every
// chain still sees its taps in order.

struct BlurPlan {
  const float* pad = nullptr;
  int64_t pad_stride = 0, n = 0, kh = 0, kw = 0, channels = 0;
  // Weights with R_MAX - 1 zero rows above and below: wpad[(i + kRowPad) * kw + j] = kernel[i][j].
  std::vector<float> wpad;
  std::vector<int64_t> cols;     // j with kx[j] != 0 (other columns are all zero)
  std::vector<uint8_t> row_nz;   // ky[i] != 0
  static constexpr int64_t kRowPad = 3;  // R_MAX - 1
  const float* wrow(int64_t i) const { return wpad.data() + (i + kRowPad) * kw; }
  bool any_row(int64_t r, int rows) const {  // does padded row r meet a nonzero kernel row of rows y..y+rows-1?
    for (int q = 0; q < rows; ++q) {
      const int64_t i = r - q;
      if (i >= 0 && i < kh && row_nz[static_cast<size_t>(i)]) return true;
    }
    return false;
  }
};

inline uint8_t RoundToU8(float v) {
  const float r = std::nearbyint(v);  // torch.round: half to even
  return static_cast<uint8_t>(r <= 0.0f ? 0 : (r >= 255.0f ? 255 : static_cast<int>(r)));
}

// One output value, scalar (tails and the generic path). Always inlined so that in the FMA-target
// tail below std::fma becomes an instruction rather than a libm call.
__attribute__((always_inline)) inline float BlurChain(const BlurPlan& pl, int64_t y, int64_t e) {
  float acc = 0.0f;
  for (int64_t i = 0; i < pl.kh; ++i) {
    if (!pl.row_nz[static_cast<size_t>(i)]) continue;
    const float* in = pl.pad + (y + i) * pl.pad_stride + e;
    const float* w = pl.wrow(i);
    for (const int64_t j : pl.cols) acc = std::fma(in[j * pl.channels], w[j], acc);
  }
  return acc;
}

void BlurRowsGeneric(const BlurPlan& pl, int64_t y0, int64_t y1, uint8_t* dst) {
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t e = 0; e < pl.n; ++e) dst[y * pl.n + e] = RoundToU8(BlurChain(pl, y, e));
  }
}

#if defined(SSLINV_COLOR_X86)
// Vector kernels: output rows [y, y + R), the first `nfull` values of each row in blocks of U vectors.
#define SSLINV_BLUR_KERNEL(NAME, TARGET, VEC, V, ZERO, LOAD, SET1, FMA, STORE)                            \
  template <int R, int U>                                                                                \
  __attribute__((target(TARGET))) void NAME(const BlurPlan& pl, int64_t y, int64_t nfull, uint8_t* dst) { \
    constexpr int64_t kB = V * U;                                                                        \
    alignas(64) float tmp[R][kB];                                                                        \
    const int64_t nr = pl.kh + R - 1;                                                                    \
    for (int64_t e0 = 0; e0 + kB <= nfull; e0 += kB) {                                                   \
      VEC acc[R][U];                                                                                     \
      for (int q = 0; q < R; ++q)                                                                        \
        for (int u = 0; u < U; ++u) acc[q][u] = ZERO();                                                  \
      for (int64_t r = 0; r < nr; ++r) {                                                                 \
        if (!pl.any_row(r, R)) continue;                                                                 \
        const float* in = pl.pad + (y + r) * pl.pad_stride + e0;                                         \
        const float* w[R];                                                                               \
        for (int q = 0; q < R; ++q) w[q] = pl.wrow(r - q);                                               \
        for (const int64_t j : pl.cols) {                                                                \
          const float* p = in + j * pl.channels;                                                         \
          VEC x[U];                                                                                      \
          for (int u = 0; u < U; ++u) x[u] = LOAD(p + u * V);                                            \
          for (int q = 0; q < R; ++q) {                                                                  \
            const VEC wv = SET1(w[q][j]);                                                                \
            for (int u = 0; u < U; ++u) acc[q][u] = FMA(x[u], wv, acc[q][u]);                            \
          }                                                                                              \
        }                                                                                                \
      }                                                                                                  \
      for (int q = 0; q < R; ++q) {                                                                      \
        for (int u = 0; u < U; ++u) STORE(tmp[q] + u * V, acc[q][u]);                                    \
        uint8_t* out = dst + (y + q) * pl.n + e0;                                                        \
        for (int64_t e = 0; e < kB; ++e) out[e] = RoundToU8(tmp[q][e]);                                  \
      }                                                                                                  \
    }                                                                                                    \
  }

SSLINV_BLUR_KERNEL(BlurAvx2, "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps,
                   _mm256_fmadd_ps, _mm256_store_ps)
SSLINV_BLUR_KERNEL(BlurAvx512, "avx512f,fma", __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps,
                   _mm512_fmadd_ps, _mm512_store_ps)
#undef SSLINV_BLUR_KERNEL

// Values [from, n) of rows [y0, y1), one chain at a time (std::fma is an instruction here).
__attribute__((target("avx2,fma"))) void BlurTailFma(const BlurPlan& pl, int64_t y0, int64_t y1, int64_t from,
                                                      uint8_t* dst) {
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t e = from; e < pl.n; ++e) dst[y * pl.n + e] = RoundToU8(BlurChain(pl, y, e));
  }
}

template <int R, int U, int V, void (*K4)(const BlurPlan&, int64_t, int64_t, uint8_t*),
          void (*K1)(const BlurPlan&, int64_t, int64_t, uint8_t*)>
void BlurRowsVec(const BlurPlan& pl, int64_t y0, int64_t y1, uint8_t* dst) {
  const int64_t nfull = pl.n / (V * U) * (V * U);
  int64_t y = y0;
  for (; y + R <= y1; y += R) K4(pl, y, nfull, dst);
  for (; y < y1; ++y) K1(pl, y, nfull, dst);
  if (nfull < pl.n) BlurTailFma(pl, y0, y1, nfull, dst);
}

void BlurRowsAvx2(const BlurPlan& pl, int64_t y0, int64_t y1, uint8_t* dst) {
  BlurRowsVec<4, 2, 8, BlurAvx2<4, 2>, BlurAvx2<1, 2>>(pl, y0, y1, dst);
}

void BlurRowsAvx512(const BlurPlan& pl, int64_t y0, int64_t y1, uint8_t* dst) {
  BlurRowsVec<4, 3, 16, BlurAvx512<4, 3>, BlurAvx512<1, 3>>(pl, y0, y1, dst);
}
#endif

using BlurRowsFn = void (*)(const BlurPlan&, int64_t, int64_t, uint8_t*);

BlurRowsFn SelectBlurRows() {
#if defined(SSLINV_COLOR_X86)
  switch (DetectCpuIsa()) {
    case CpuIsa::kAvx512: return BlurRowsAvx512;
    case CpuIsa::kAvx2: return BlurRowsAvx2;
    default: break;
  }
#endif
  return BlurRowsGeneric;
}

inline int64_t Reflect(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// ---------------------------------------------------------------------------------------------
// Pillow's extended box blur (BoxBlur.c): one line of one channel is BoxBlurLine (ops/pil_integer.h,
// shared with the CUDA blur); the line constants (BoxLine, MakeBoxLine) are in ops/color.h.

// One horizontal box blur of rows [y0, y1) of a rows x cols x C image, `in` -> `out` (Pillow's
// in-place passes read the whole line before writing it, through a line buffer: the same thing).
void BoxBlurRows(const uint8_t* in, uint8_t* out, int64_t cols, int64_t channels, int64_t y0, int64_t y1,
                 const BoxLine& b) {
  const int lastx = static_cast<int>(cols - 1);
  for (int64_t y = y0; y < y1; ++y) {
    const int64_t off = y * cols * channels;
    for (int64_t c = 0; c < channels; ++c) BoxBlurLine(in + off + c, out + off + c, channels, lastx, b);
  }
}

void Transpose(const uint8_t* src, int64_t rows, int64_t cols, int64_t channels, uint8_t* dst, bool parallel) {
  ForRange(parallel, cols, GrainFor(rows * channels, 1 << 16), [&](int64_t x0, int64_t x1) {
    for (int64_t x = x0; x < x1; ++x) {
      uint8_t* out = dst + x * rows * channels;
      for (int64_t y = 0; y < rows; ++y) {
        const uint8_t* in = src + (y * cols + x) * channels;
        for (int64_t c = 0; c < channels; ++c) out[y * channels + c] = in[c];
      }
    }
  });
}

// A per-channel lookup table applied to every pixel.
void ApplyLut(const ImageU8View& src, const uint8_t (*lut)[256], uint8_t* dst, bool parallel) {
  const int64_t C = src.channels;
  const int64_t row = src.width * C;
  ForRange(parallel, src.height, GrainFor(row, 1 << 18), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* in = src.data + y * row;
      uint8_t* out = dst + y * row;
      for (int64_t x = 0; x < src.width; ++x) {
        for (int64_t c = 0; c < C; ++c) out[x * C + c] = lut[c][in[x * C + c]];
      }
    }
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Status RgbToGrayscaleU8(const ImageU8View& src, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, true, "rgb_to_grayscale"));
  ForRange(parallel, src.height, GrainFor(src.width * 3, 1 << 18), [&](int64_t y0, int64_t y1) {
    for (int64_t i = y0 * src.width; i < y1 * src.width; ++i) {
      const uint8_t l = Luma(src.data + i * 3);
      dst[i * 3] = dst[i * 3 + 1] = dst[i * 3 + 2] = l;
    }
  });
  return Status::Ok();
}

Status EnhanceU8(const ImageU8View& src, EnhanceKind kind, double factor, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, true, "enhance"));
  if (!std::isfinite(factor)) return InvalidArgument("enhance: the factor must be a finite number");
  const float alpha = static_cast<float>(factor);  // PyArg "f"
  if (!std::isfinite(alpha)) return InvalidArgument("enhance: the factor is outside the range of a C float");
  return Guard("enhance", [&]() -> Status {
    const int64_t W = src.width, H = src.height, row = W * 3;
    const size_t total = static_cast<size_t>(H * row);
    if (kind == EnhanceKind::kBrightness || kind == EnhanceKind::kContrast) {
      int degenerate = 0;
      if (kind == EnhanceKind::kContrast) {
        // ImageStat mean of the L image: sum of j * hist[j] in a double (exact), / count, and
        // int(mean + 0.5).
        std::vector<int64_t> hist(256, 0);
        for (int64_t i = 0; i < H * W; ++i) ++hist[Luma(src.data + i * 3)];
        double sum = 0.0;
        int64_t count = 0;
        for (int j = 0; j < 256; ++j) {
          sum += static_cast<double>(j * hist[static_cast<size_t>(j)]);
          count += hist[static_cast<size_t>(j)];
        }
        const double mean = sum / static_cast<double>(count);
        degenerate = static_cast<int>(mean + 0.5);
      }
      uint8_t lut[256];
      if (alpha == 0.0f) {
        std::memset(lut, degenerate, sizeof lut);
      } else if (alpha == 1.0f) {
        for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
      } else {
        const Blend blend(alpha);
        for (int v = 0; v < 256; ++v) lut[v] = blend(degenerate, v);
      }
      ForRange(parallel, H, GrainFor(row, 1 << 18), [&](int64_t y0, int64_t y1) {
        for (int64_t i = y0 * row; i < y1 * row; ++i) dst[i] = lut[src.data[i]];
      });
      return Status::Ok();
    }
    if (alpha == 1.0f) {
      std::memcpy(dst, src.data, total);
      return Status::Ok();
    }
    const Blend blend(alpha);
    if (kind == EnhanceKind::kColor) {
      ForRange(parallel, H, GrainFor(row, 1 << 17), [&](int64_t y0, int64_t y1) {
        for (int64_t i = y0 * W; i < y1 * W; ++i) {
          const uint8_t* p = src.data + i * 3;
          const int l = Luma(p);
          uint8_t* o = dst + i * 3;
          if (alpha == 0.0f) {
            o[0] = o[1] = o[2] = static_cast<uint8_t>(l);
          } else {
            o[0] = blend(l, p[0]);
            o[1] = blend(l, p[1]);
            o[2] = blend(l, p[2]);
          }
        }
      });
      return Status::Ok();
    }
    // Sharpness: blend with the SMOOTH-filtered image, computed row by row.
    static const SmoothKernel sk;
    ForRange(parallel, H, GrainFor(row * 4, 1 << 17), [&](int64_t y0, int64_t y1) {
      if (alpha == 0.0f) {
        SharpnessRows<BlendMode::kDegenerate>(src.data, W, H, y0, y1, sk, alpha, dst);
      } else if (blend.interpolate) {
        SharpnessRows<BlendMode::kInterpolate>(src.data, W, H, y0, y1, sk, alpha, dst);
      } else {
        SharpnessRows<BlendMode::kExtrapolate>(src.data, W, H, y0, y1, sk, alpha, dst);
      }
    });
    return Status::Ok();
  });
}

Status AdjustHueU8(const ImageU8View& src, double hue_factor, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, true, "adjust_hue"));
  if (!(hue_factor >= -0.5 && hue_factor <= 0.5)) {
    return InvalidArgument("adjust_hue: hue_factor (" + std::to_string(hue_factor) + ") is not in [-0.5, 0.5]");
  }
  // np.uint8(hue_factor * 255): the double product truncated toward zero, modulo 256.
  const uint8_t shift = static_cast<uint8_t>(static_cast<int>(std::trunc(hue_factor * 255.0)) & 0xff);
  const HsvTables& t = GetHsvTables();
  const DivTable& div = GetDivTable();
  ForRange(parallel, src.height, GrainFor(src.width * 40, 1 << 16), [&](int64_t y0, int64_t y1) {
    for (int64_t i = y0 * src.width; i < y1 * src.width; ++i) {
      uint8_t hsv[3];
      RgbToHsv(src.data + i * 3, div, hsv);
      HsvToRgb(static_cast<uint8_t>(hsv[0] + shift), hsv[1], hsv[2], t, dst + i * 3);
    }
  });
  return Status::Ok();
}

Status GaussianKernel1dTorch(int64_t kernel_size, double sigma, float* out) {
  if (kernel_size < 1 || kernel_size % 2 == 0 || kernel_size > (int64_t{1} << 20)) {
    return InvalidArgument("gaussian_blur: kernel_size must be odd and positive, got " + std::to_string(kernel_size));
  }
  if (!(sigma > 0.0) || !std::isfinite(sigma)) {
    return InvalidArgument("gaussian_blur: sigma must be a positive finite number");
  }
  if (out == nullptr) return InvalidArgument("gaussian_blur: null output");
  const float s = static_cast<float>(sigma);  // the Python float becomes a float32 scalar operand
  if (!(s > 0.0f)) return InvalidArgument("gaussian_blur: sigma underflows a float32");
  const int64_t half = (kernel_size - 1) / 2;
  std::vector<float> pdf(static_cast<size_t>(kernel_size));
  for (int64_t i = 0; i < kernel_size; ++i) {
    const float x = static_cast<float>(i - half);  // linspace(-half, half, k): integers, exact
    const float r = x / s;
    const float z = -0.5f * (r * r);
    pdf[static_cast<size_t>(i)] = SleefExpf(z);
  }
  const float sum = TorchSum(pdf.data(), kernel_size);
  for (int64_t i = 0; i < kernel_size; ++i) out[i] = pdf[static_cast<size_t>(i)] / sum;
  return Status::Ok();
}

Status GaussianBlurTorchU8(const ImageU8View& src, int64_t kernel_w, int64_t kernel_h, double sigma_x,
                           double sigma_y, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, false, "gaussian_blur"));
  if (kernel_w < 1 || kernel_h < 1 || kernel_w % 2 == 0 || kernel_h % 2 == 0) {
    return InvalidArgument("gaussian_blur: kernel sizes must be odd and positive, got " + std::to_string(kernel_w) +
                           "x" + std::to_string(kernel_h));
  }
  const int64_t px = kernel_w / 2, py = kernel_h / 2;
  if (px >= src.width || py >= src.height) {
    return InvalidArgument("gaussian_blur: the kernel (" + std::to_string(kernel_w) + "x" + std::to_string(kernel_h) +
                           ") needs reflect padding of at least the image side (" + std::to_string(src.width) + "x" +
                           std::to_string(src.height) + "); torch refuses it too");
  }
  return Guard("gaussian_blur", [&]() -> Status {
    std::vector<float> kx(static_cast<size_t>(kernel_w)), ky(static_cast<size_t>(kernel_h));
    SSLINV_RETURN_IF_ERROR(GaussianKernel1dTorch(kernel_w, sigma_x, kx.data()));
    SSLINV_RETURN_IF_ERROR(GaussianKernel1dTorch(kernel_h, sigma_y, ky.data()));
    const int64_t C = src.channels, W = src.width, H = src.height;
    const int64_t pw = W + 2 * px, ph = H + 2 * py, pad_stride = pw * C;
    // kernel2d = mm(ky[:, None], kx[None, :]): one float product per tap.
    BlurPlan pl;
    pl.pad_stride = pad_stride;
    pl.n = W * C;
    pl.kh = kernel_h;
    pl.kw = kernel_w;
    pl.channels = C;
    pl.wpad.assign(static_cast<size_t>((kernel_h + 2 * BlurPlan::kRowPad) * kernel_w), 0.0f);
    for (int64_t i = 0; i < kernel_h; ++i) {
      for (int64_t j = 0; j < kernel_w; ++j) {
        pl.wpad[static_cast<size_t>((i + BlurPlan::kRowPad) * kernel_w + j)] =
            ky[static_cast<size_t>(i)] * kx[static_cast<size_t>(j)];
      }
      pl.row_nz.push_back(ky[static_cast<size_t>(i)] != 0.0f ? 1 : 0);
    }
    for (int64_t j = 0; j < kernel_w; ++j) {
      if (kx[static_cast<size_t>(j)] != 0.0f) pl.cols.push_back(j);
    }
    std::vector<float> pad(static_cast<size_t>(ph * pad_stride));
    pl.pad = pad.data();
    ForRange(parallel, ph, GrainFor(pad_stride, 1 << 18), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* in = src.data + Reflect(r - py, H) * W * C;
        float* out = pad.data() + r * pad_stride;
        for (int64_t x = 0; x < pw; ++x) {
          const uint8_t* p = in + Reflect(x - px, W) * C;
          for (int64_t c = 0; c < C; ++c) out[x * C + c] = static_cast<float>(p[c]);
        }
      }
    });
    static const BlurRowsFn rows_fn = SelectBlurRows();
    const int64_t work = pl.n * static_cast<int64_t>(pl.cols.size()) * kernel_h;
    // Chunks of whole 4-row groups keep the vector kernels' row blocking.
    const int64_t groups = (H + 3) / 4;
    ForRange(parallel, groups, GrainFor(4 * work, 1 << 20), [&](int64_t g0, int64_t g1) {
      rows_fn(pl, g0 * 4, std::min(H, g1 * 4), dst);
    });
    return Status::Ok();
  });
}

Status InvertU8(const ImageU8View& src, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, false, "invert"));
  uint8_t lut[4][256];
  for (int c = 0; c < 4; ++c) for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<uint8_t>(255 - v);
  ApplyLut(src, lut, dst, parallel);
  return Status::Ok();
}

Status PosterizeU8(const ImageU8View& src, int64_t bits, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, false, "posterize"));
  if (bits < 0 || bits > 8) return InvalidArgument("posterize: bits must be 0 to 8, got " + std::to_string(bits));
  const int mask = ~((1 << (8 - bits)) - 1);
  uint8_t lut[4][256];
  for (int c = 0; c < 4; ++c) for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<uint8_t>(v & mask);
  ApplyLut(src, lut, dst, parallel);
  return Status::Ok();
}

Status EqualizeU8(const ImageU8View& src, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, false, "equalize"));
  const int64_t C = src.channels, n = src.height * src.width;
  std::vector<int64_t> hist(static_cast<size_t>(C * 256), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < C; ++c) ++hist[static_cast<size_t>(c * 256 + src.data[i * C + c])];
  }
  uint8_t lut[4][256];
  for (int64_t c = 0; c < C; ++c) EqualizeLut(hist.data() + c * 256, lut[c]);
  ApplyLut(src, lut, dst, parallel);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Pillow's Gaussian blur set-up, shared with the CUDA views (see ops/color.h). Defined here, under the
// fp-contract=off above, so the callers in native/cuda/*.cu get the same roundings whatever nvcc's
// host compiler would contract.

float PilBoxRadius(double radius) {
  // ImagingGaussianBlur(radius, passes = 3) in C float (sqrt and floor of doubles stored to floats).
  const float r = static_cast<float>(radius);
  constexpr int passes = 3;
  const float sigma2 = r * r / static_cast<float>(passes);
  const float L = static_cast<float>(std::sqrt(12.0 * static_cast<double>(sigma2) + 1.0));
  const float l = static_cast<float>(std::floor((static_cast<double>(L) - 1.0) / 2.0));
  float a = (2.0f * l + 1.0f) * (l * (l + 1.0f) - 3.0f * sigma2);
  a /= 6.0f * (sigma2 - (l + 1.0f) * (l + 1.0f));
  return l + a;
}

BoxLine MakeBoxLine(float float_radius, int64_t xsize) {
  BoxLine b;
  b.radius = static_cast<int32_t>(float_radius);
  // (UINT32)(1 << 24) / (floatRadius * 2 + 1): a float division, truncated to UINT32.
  b.ww = static_cast<uint32_t>(static_cast<float>(static_cast<uint32_t>(1u << 24)) / (float_radius * 2 + 1));
  b.fw = ((1u << 24) - static_cast<uint32_t>(b.radius * 2 + 1) * b.ww) / 2;
  b.edge_a = static_cast<int32_t>(std::min<int64_t>(b.radius + 1, xsize));
  b.edge_b = static_cast<int32_t>(std::max<int64_t>(xsize - b.radius - 1, 0));
  return b;
}

Status PilGaussianBlurU8(const ImageU8View& src, double radius, uint8_t* dst, bool parallel) {
  SSLINV_RETURN_IF_ERROR(CheckImage(src, dst, false, "GaussianBlur"));
  if (!(radius >= 0.0) || !std::isfinite(radius) || radius > 1e6) {
    return InvalidArgument("GaussianBlur: the radius must be a finite number from 0 to 1e6");
  }
  return Guard("GaussianBlur", [&]() -> Status {
    // ImagingGaussianBlur(radius, passes = 3): three box blurs of the same radius per direction.
    constexpr int passes = 3;
    const float box_radius = PilBoxRadius(radius);

    const int64_t C = src.channels, W = src.width, H = src.height;
    // Two work images (no allocation inside the parallel regions): rows src -> b -> a -> b, transpose
    // b -> a, then the columns (rows of the transposed image) a -> b -> a -> b, transpose b -> dst.
    std::vector<uint8_t> a_img(static_cast<size_t>(H * W * C)), b_img(a_img.size());
    auto passes_over = [&](const uint8_t* first, int64_t rows, int64_t cols, const BoxLine& bl) {
      const int64_t grain = GrainFor(cols * C * 4, 1 << 16);
      const uint8_t* in = first;
      for (int p = 0; p < passes; ++p) {
        uint8_t* out = (p % 2 == 0) ? b_img.data() : a_img.data();
        ForRange(parallel, rows, grain, [&](int64_t r0, int64_t r1) { BoxBlurRows(in, out, cols, C, r0, r1, bl); });
        in = out;
      }
    };
    static_assert(passes % 2 == 1, "the passes end in b_img");
    passes_over(src.data, H, W, MakeBoxLine(box_radius, W));
    Transpose(b_img.data(), H, W, C, a_img.data(), parallel);
    passes_over(a_img.data(), W, H, MakeBoxLine(box_radius, H));
    Transpose(b_img.data(), W, H, C, dst, parallel);
    return Status::Ok();
  });
}

}  // namespace sslinv
