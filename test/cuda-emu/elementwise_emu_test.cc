// Emulator tests of native/cuda/elementwise.cu: every launcher against references computed here, with
// odd sizes, C = 3, scalar heads and tails, misaligned and mutually misaligned pointers, in-place
// calls and small grid caps (so the grid-stride loops wrap).
//   relu, add, scale-shift, batch-norm inference and fold: bit-exact against a float32 re-computation
//     in the CPU op's order, and within rel 1e-5 of float64;
//   batch-norm statistics: rel 1e-5 of a float64 two-pass reference on N(100, 1) data (and harder),
//     and bit-identical across two runs;
//   conversions: exact (bf16 rounding against an independent nearest-even reference).
// Build and run:
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/elementwise_emu_test.cc native/cuda/elementwise.cu -o /tmp/elementwise_emu
//   /tmp/elementwise_emu
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/elementwise.cuh"
#include "cuda/kernel_util.cuh"
#include "emu_check.h"

namespace {

using emu_check::ExpectClose;
using emu_check::ExpectBits;
using emu_check::Report;
using emu_check::Rng;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

void ExpectOk(const std::string& what, cudaError_t e) {
  if (e != cudaSuccess) Report(false, what + " launch", cudaGetErrorString(e));
}

float Normal(Rng& r, float mu, float sigma) {
  const double u1 = (static_cast<double>(r.Next() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(r.Next() >> 11) * 0x1.0p-53;
  return static_cast<float>(mu + sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// Values that exercise the relu / add edge cases: NaN, signed zeros, infinities, subnormals.
void FillSpecial(std::vector<float>& v, Rng& r) {
  const float special[] = {std::numeric_limits<float>::quiet_NaN(), -0.0f, 0.0f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           1e-40f, -1e-40f};
  for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 11 == 5) ? special[(i / 11) % 7] : r.Uniform(-3.f, 3.f);
}

// Correctly rounded float32 ops for the references (double then one rounding: exact for + - * / sqrt,
// and immune to FMA contraction by the host compiler).
float Mul(float a, float b) { return static_cast<float>(static_cast<double>(a) * b); }
float Add(float a, float b) { return static_cast<float>(static_cast<double>(a) + b); }
float Sub(float a, float b) { return static_cast<float>(static_cast<double>(a) - b); }

void CpuFold(float gamma, float beta, float mean, float var, double eps, float& scale, float& shift) {
  const float invstd = 1.f / std::sqrt(Add(var, static_cast<float>(eps)));
  scale = Mul(invstd, gamma);
  shift = Sub(beta, Mul(mean, scale));
}

struct Offsets {
  int a, b, y;
};
const Offsets kOffsets[] = {{0, 0, 0}, {1, 1, 1}, {3, 3, 3}, {2, 2, 2}, {1, 2, 3}, {0, 1, 0}, {2, 2, 1}};

void TestRelu() {
  Rng rng(1);
  for (int64_t n : {0, 1, 3, 4, 7, 1029}) {
    for (const Offsets& o : kOffsets) {
      std::vector<float> xb(n + 8), yb(n + 8, 7.f);
      FillSpecial(xb, rng);
      float* x = xb.data() + o.a;
      float* y = yb.data() + o.y;
      ExpectOk("relu", cu::ReluF32(x, y, n, kStream, 3));
      std::vector<float> ref(n);
      for (int64_t i = 0; i < n; ++i) ref[i] = (x[i] > 0.f || std::isnan(x[i])) ? x[i] : 0.f;
      const std::string what = "relu n=" + std::to_string(n) + " offsets x" + std::to_string(o.a) + " y" +
                               std::to_string(o.y);
      ExpectBits(what, y, ref.data(), n);
      bool guard = yb[o.y + n] == 7.f && (o.y == 0 || yb[0] == 7.f);
      if (!guard) Report(false, what + " writes outside [0, n)", "guard overwritten");
    }
  }
  // In place.
  std::vector<float> v(1001);
  FillSpecial(v, rng);
  std::vector<float> ref(v.size());
  for (size_t i = 0; i < v.size(); ++i) ref[i] = (v[i] > 0.f || std::isnan(v[i])) ? v[i] : 0.f;
  ExpectOk("relu in place", cu::ReluF32(v.data() + 1, v.data() + 1, 1000, kStream, 2));
  ExpectBits("relu in place, offset 1", v.data() + 1, ref.data() + 1, 1000);
}

void TestAdd() {
  Rng rng(2);
  for (bool relu : {false, true}) {
    for (int64_t n : {1, 5, 1027}) {
      for (const Offsets& o : kOffsets) {
        std::vector<float> ab(n + 8), bb(n + 8), yb(n + 8);
        FillSpecial(ab, rng);
        rng.Fill(bb, -2.f, 2.f);
        const float* a = ab.data() + o.a;
        const float* b = bb.data() + o.b;
        float* y = yb.data() + o.y;
        ExpectOk("add", cu::AddF32(a, b, y, n, relu, kStream, 3));
        std::vector<float> ref(n);
        std::vector<double> ref64(n), scale(n);
        for (int64_t i = 0; i < n; ++i) {
          const float s = a[i] + b[i];
          ref[i] = relu ? ((s > 0.f || std::isnan(s)) ? s : 0.f) : s;
          const double s64 = static_cast<double>(a[i]) + b[i];
          ref64[i] = relu ? (s64 > 0 || std::isnan(s64) ? s64 : 0.0) : s64;
          scale[i] = std::fabs(a[i]) + std::fabs(b[i]);
        }
        const std::string what = std::string(relu ? "add+relu" : "add") + " n=" + std::to_string(n) + " offsets a" +
                                 std::to_string(o.a) + " b" + std::to_string(o.b) + " y" + std::to_string(o.y);
        ExpectBits(what, y, ref.data(), n);
        if (n > 100 && o.a == 1) {
          // Float64 comparison on the finite part (the special values are covered bit-exactly above).
          std::vector<float> yf;
          std::vector<double> rf, sf;
          for (int64_t i = 0; i < n; ++i) {
            if (std::isfinite(ref64[i]) && std::isfinite(scale[i])) {
              yf.push_back(y[i]);
              rf.push_back(ref64[i]);
              sf.push_back(scale[i]);
            }
          }
          ExpectClose(what + " vs float64", yf.data(), rf.data(), yf.size(), 1e-5, 0.0, sf.data());
        }
      }
    }
  }
  // In place into the second operand.
  std::vector<float> a(515), b(515);
  rng.Fill(a, -1.f, 1.f);
  rng.Fill(b, -1.f, 1.f);
  std::vector<float> ref(515);
  for (size_t i = 0; i < a.size(); ++i) ref[i] = a[i] + b[i];
  ExpectOk("add in place", cu::AddF32(a.data(), b.data(), b.data(), 515, false, kStream, 2));
  ExpectBits("add in place (y == b)", b.data(), ref.data(), 515);
}

void TestScaleShift() {
  Rng rng(3);
  struct Case {
    int64_t rows, c;
    int xo, yo;
  };
  for (const Case& k : {Case{37, 3, 0, 0}, Case{37, 3, 1, 1}, Case{9, 1, 2, 2}, Case{21, 5, 3, 3}, Case{13, 64, 0, 0},
                        Case{13, 64, 1, 2}, Case{11, 2, 1, 1}, Case{6, 7, 0, 0}}) {
    const int64_t n = k.rows * k.c;
    std::vector<float> xb(n + 4), yb(n + 4), scale(k.c), shift(k.c);
    rng.Fill(xb, -4.f, 4.f);
    rng.Fill(scale, -2.f, 2.f);
    rng.Fill(shift, -1.f, 1.f);
    const float* x = xb.data() + k.xo;
    float* y = yb.data() + k.yo;
    ExpectOk("scale-shift", cu::ScaleShiftF32(x, scale.data(), shift.data(), y, k.rows, k.c, kStream, 2));
    std::vector<float> ref(n);
    std::vector<double> ref64(n), mag(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % k.c;
      ref[i] = Add(Mul(x[i], scale[c]), shift[c]);
      ref64[i] = static_cast<double>(x[i]) * scale[c] + shift[c];
      mag[i] = std::fabs(static_cast<double>(x[i]) * scale[c]) + std::fabs(shift[c]);
    }
    const std::string what = "scale-shift rows=" + std::to_string(k.rows) + " C=" + std::to_string(k.c) +
                             " offsets x" + std::to_string(k.xo) + " y" + std::to_string(k.yo);
    ExpectBits(what, y, ref.data(), n);
    ExpectClose(what + " vs float64", y, ref64.data(), n, 1e-5, 0.0, mag.data());
  }
}

void TestBatchNormInference() {
  Rng rng(4);
  struct Case {
    int64_t rows, c;
    int xo, yo;
  };
  // C = 4100 exceeds the shared-memory stage (4096 channels): the per-element fold path.
  for (const Case& k : {Case{41, 3, 0, 0}, Case{41, 3, 1, 3}, Case{17, 64, 0, 0}, Case{17, 64, 2, 2},
                        Case{5, 7, 1, 1}, Case{3, 4100, 0, 0}, Case{3, 4100, 1, 1}}) {
    const int64_t n = k.rows * k.c;
    const double eps = 1e-5;
    std::vector<float> xb(n + 4), yb(n + 4), gamma(k.c), beta(k.c), mean(k.c), var(k.c);
    rng.Fill(xb, -3.f, 5.f);
    rng.Fill(gamma, 0.2f, 2.f);
    rng.Fill(beta, -1.f, 1.f);
    rng.Fill(mean, -1.f, 2.f);
    rng.Fill(var, 1e-4f, 3.f);
    const float* x = xb.data() + k.xo;
    float* y = yb.data() + k.yo;
    ExpectOk("bn inference", cu::BatchNormInferenceF32(x, gamma.data(), beta.data(), mean.data(), var.data(), eps, y,
                                                       k.rows, k.c, kStream, 3));
    std::vector<float> s(k.c), t(k.c), ref(n);
    for (int64_t c = 0; c < k.c; ++c) CpuFold(gamma[c], beta[c], mean[c], var[c], eps, s[c], t[c]);
    std::vector<double> ref64(n), mag(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % k.c;
      ref[i] = Add(Mul(x[i], s[c]), t[c]);
      const double inv = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
      ref64[i] = (static_cast<double>(x[i]) - mean[c]) * inv * gamma[c] + beta[c];
      mag[i] = (std::fabs(x[i]) + std::fabs(mean[c])) * inv * gamma[c] + std::fabs(beta[c]);
    }
    const std::string what = "batch-norm inference rows=" + std::to_string(k.rows) + " C=" + std::to_string(k.c) +
                             " offsets x" + std::to_string(k.xo) + " y" + std::to_string(k.yo);
    ExpectBits(what + " vs the CPU formula", y, ref.data(), n);
    ExpectClose(what + " vs float64", y, ref64.data(), n, 1e-5, 0.0, mag.data());
  }
  // The fold alone.
  const int64_t c = 67;
  std::vector<float> gamma(c), beta(c), mean(c), var(c), scale(c), shift(c), rs(c), rt(c);
  rng.Fill(gamma, -2.f, 2.f);
  rng.Fill(beta, -1.f, 1.f);
  rng.Fill(mean, -5.f, 5.f);
  rng.Fill(var, 0.f, 4.f);
  var[0] = 0.f;  // sqrt(eps) only
  ExpectOk("bn fold", cu::BatchNormFoldF32(gamma.data(), beta.data(), mean.data(), var.data(), 1e-3, scale.data(),
                                           shift.data(), c, kStream));
  for (int64_t j = 0; j < c; ++j) CpuFold(gamma[j], beta[j], mean[j], var[j], 1e-3, rs[j], rt[j]);
  ExpectBits("batch-norm fold scale C=67", scale.data(), rs.data(), c);
  ExpectBits("batch-norm fold shift C=67", shift.data(), rt.data(), c);
}

void TestBatchNormStats() {
  Rng rng(5);
  struct Case {
    int64_t rows, c;
    int xo;
    int cap;
    float mu, sigma;
  };
  const Case cases[] = {
      {2000, 3, 0, 8, 100.f, 1.f},     // C = 3: scalar channels, ~16 rows per thread, 2 row blocks
      {9000, 3, 0, 0, 100.f, 1.f},     // 9 row blocks: the finalize loop wraps (8 y threads)
      {777, 64, 0, 0, 100.f, 1.f},     // float4 channels, default grid
      {777, 64, 1, 6, 100.f, 1.f},     // misaligned x: scalar channels; 6 blocks = 2 channel tiles x 3
      {300, 36, 0, 2, -50.f, 0.01f},   // float4, 9 channel groups; mean / sigma = 5000
      {5, 8, 0, 0, 1e4f, 3.f},         // fewer rows than threads: most threads empty
      {1, 5, 0, 0, 2.f, 1.f},          // one row: var 0, unbiased NaN
      {100, 1, 0, 3, 0.f, 1.f},        // one channel
  };
  for (const Case& k : cases) {
    const int64_t n = k.rows * k.c;
    std::vector<float> xb(n + 4);
    for (float& v : xb) v = Normal(rng, k.mu, k.sigma);
    // Per-channel offsets so channels differ.
    for (int64_t i = 0; i < n; ++i) xb[k.xo + i] += static_cast<float>(i % k.c) * k.sigma;
    const float* x = xb.data() + k.xo;
    const size_t ws_bytes = cu::BatchNormStatsWorkspaceBytes(k.rows, k.c, k.cap);
    std::vector<double> ws(ws_bytes / sizeof(double) + 1);
    std::vector<float> mean(k.c), vb(k.c), vu(k.c), mean2(k.c), vb2(k.c), vu2(k.c);
    ExpectOk("bn stats", cu::BatchNormStatsF32(x, k.rows, k.c, mean.data(), vb.data(), vu.data(), ws.data(), ws_bytes,
                                               kStream, k.cap));
    std::fill(ws.begin(), ws.end(), std::nan(""));
    ExpectOk("bn stats", cu::BatchNormStatsF32(x, k.rows, k.c, mean2.data(), vb2.data(), vu2.data(), ws.data(),
                                               ws_bytes, kStream, k.cap));
    // Float64 two-pass reference.
    std::vector<double> rm(k.c, 0.0), rvb(k.c, 0.0), rvu(k.c, 0.0);
    for (int64_t r = 0; r < k.rows; ++r)
      for (int64_t c = 0; c < k.c; ++c) rm[c] += x[r * k.c + c];
    for (int64_t c = 0; c < k.c; ++c) rm[c] /= static_cast<double>(k.rows);
    for (int64_t r = 0; r < k.rows; ++r)
      for (int64_t c = 0; c < k.c; ++c) {
        const double d = x[r * k.c + c] - rm[c];
        rvb[c] += d * d;
      }
    for (int64_t c = 0; c < k.c; ++c) {
      const double m2 = rvb[c];
      rvb[c] = m2 / static_cast<double>(k.rows);
      rvu[c] = k.rows > 1 ? m2 / static_cast<double>(k.rows - 1) : std::nan("");
    }
    char name[160];
    std::snprintf(name, sizeof name, "batch-norm stats rows=%lld C=%lld x offset %d cap %d, N(%g, %g)",
                  static_cast<long long>(k.rows), static_cast<long long>(k.c), k.xo, k.cap, k.mu, k.sigma);
    // Absolute floor for variances that are exactly 0 (one row).
    ExpectClose(std::string(name) + " mean", mean.data(), rm.data(), k.c, 1e-5);
    ExpectClose(std::string(name) + " biased var", vb.data(), rvb.data(), k.c, 1e-5, 1e-30);
    if (k.rows > 1) {
      ExpectClose(std::string(name) + " unbiased var", vu.data(), rvu.data(), k.c, 1e-5);
    } else {
      bool all_nan = true;
      for (float v : vu) all_nan = all_nan && std::isnan(v);
      Report(all_nan, std::string(name) + " unbiased var is NaN for one row");
    }
    ExpectBits(std::string(name) + " mean, run-to-run", mean2.data(), mean.data(), k.c);
    ExpectBits(std::string(name) + " biased var, run-to-run", vb2.data(), vb.data(), k.c);
    ExpectBits(std::string(name) + " unbiased var, run-to-run", vu2.data(), vu.data(), k.c);
  }
  // Null outputs are skipped; a short workspace is refused without launching.
  std::vector<float> x(64 * 4, 1.f), mean(4, -1.f);
  const size_t need = cu::BatchNormStatsWorkspaceBytes(64, 4);
  std::vector<double> ws(need / sizeof(double));
  ExpectOk("bn stats mean only", cu::BatchNormStatsF32(x.data(), 64, 4, mean.data(), nullptr, nullptr, ws.data(), need,
                                                       kStream));
  Report(mean[0] == 1.f && mean[3] == 1.f, "batch-norm stats with only the mean requested");
  Report(cu::BatchNormStatsF32(x.data(), 64, 4, mean.data(), nullptr, nullptr, ws.data(), need - 8, kStream) ==
             cudaErrorInvalidValue,
         "batch-norm stats refuses a short workspace");
}

// Independent float32 -> bf16 reference: the nearer of the two bf16 neighbours by value, ties to the
// even one, treating the bf16 pattern past the largest finite value as 2^128 (IEEE overflow rule).
uint16_t RefBf16(float f) {
  if (std::isnan(f)) return 0x7fff;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = u & 0x80000000u, mag = u & 0x7fffffffu;
  if (mag >= 0x7f800000u) return static_cast<uint16_t>((sign | mag) >> 16);  // inf
  const uint16_t lo = static_cast<uint16_t>(mag >> 16), hi = static_cast<uint16_t>(lo + 1);
  auto value = [](uint16_t b) {
    if (b == 0x7f80) return std::ldexp(1.0, 128);
    const uint32_t w = static_cast<uint32_t>(b) << 16;
    float g;
    std::memcpy(&g, &w, 4);
    return static_cast<double>(g);
  };
  const double v = std::fabs(static_cast<double>(f));
  const double dlo = v - value(lo), dhi = value(hi) - v;
  const uint16_t pick = dlo < dhi ? lo : (dhi < dlo ? hi : ((lo & 1) ? hi : lo));
  return static_cast<uint16_t>(pick | (sign >> 16));
}

void TestConversions() {
  Rng rng(6);
  const uint32_t special_bits[] = {
      0x3f808000u,  // tie, lower is even -> 0x3f80
      0x3f818000u,  // tie, lower is odd -> 0x3f82
      0x3f808001u,  // just above a tie -> up
      0x3f807fffu,  // just below a tie -> down
      0x7f7fffffu,  // largest float -> inf
      0x7f7f7fffu,  // stays finite
      0x7f7f8000u,  // tie at the top, lower odd -> inf
      0xff7f8000u,  // its negative
      0x00000001u,  // smallest subnormal
      0x80008000u,  // negative subnormal tie
      0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x80000000u, 0x00000000u,
  };
  for (int64_t n : {1, 3, 6, 1031}) {
    for (int xo : {0, 1, 2, 3}) {
      for (int yo : {0, 1, 2}) {
        std::vector<float> xb(n + 8);
        for (size_t i = 0; i < xb.size(); ++i) {
          if (i % 5 == 2) {
            std::memcpy(&xb[i], &special_bits[(i / 5) % (sizeof special_bits / 4)], 4);
          } else {
            xb[i] = rng.Uniform(-3.f, 3.f) * std::ldexp(1.f, static_cast<int>(rng.Next() % 60) - 30);
          }
        }
        const float* x = xb.data() + xo;
        std::vector<cu::Bf16> yb(n + 8, cu::Bf16FromBits(0x1234));
        cu::Bf16* y = yb.data() + yo;
        ExpectOk("f32->bf16", cu::F32ToBf16(x, y, n, kStream, 3));
        std::vector<uint16_t> out(n), ref(n);
        for (int64_t i = 0; i < n; ++i) {
          out[i] = cu::Bf16Bits(y[i]);
          ref[i] = RefBf16(x[i]);
        }
        const std::string tag = " n=" + std::to_string(n) + " offsets x" + std::to_string(xo) + " y" + std::to_string(yo);
        ExpectBits("f32->bf16 round to nearest even" + tag, out.data(), ref.data(), n);
        Report(cu::Bf16Bits(yb[yo + n]) == 0x1234, "f32->bf16 stays in range" + tag);

        // bf16 -> f32 of the same bits (exact: the bits shifted up), y offsets 0..2 on the float side.
        std::vector<float> fb(n + 8, 9.f), fref(n);
        float* f = fb.data() + yo;
        const cu::Bf16* src = yb.data() + xo % 3;
        ExpectOk("bf16->f32", cu::Bf16ToF32(src, f, n, kStream, 3));
        for (int64_t i = 0; i < n; ++i) {
          const uint32_t w = static_cast<uint32_t>(cu::Bf16Bits(src[i])) << 16;
          std::memcpy(&fref[i], &w, 4);
        }
        ExpectBits("bf16->f32 exact" + tag, f, fref.data(), n);

        std::vector<double> db(n + 8, 5.0), dref(n);
        double* d = db.data() + yo;
        ExpectOk("f32->f64", cu::F32ToF64(x, d, n, kStream, 3));
        for (int64_t i = 0; i < n; ++i) dref[i] = static_cast<double>(x[i]);
        ExpectBits("f32->f64 exact" + tag, d, dref.data(), n);
        Report(db[yo + n] == 5.0 && (yo == 0 || db[0] == 5.0), "f32->f64 stays in range" + tag);
      }
    }
  }
  // Rows padded with zero channels (a 3-channel input to 8, a filter's C to a multiple of 8).
  for (const auto [rows, c, c_pad] : {std::array<int64_t, 3>{5, 3, 8}, {7, 16, 16}, {1, 13, 24}, {300, 3, 8}}) {
    std::vector<float> xr(size_t(rows * c));
    for (size_t i = 0; i < xr.size(); ++i) {
      if (i % 7 == 3) std::memcpy(&xr[i], &special_bits[i % (sizeof special_bits / 4)], 4);
      else xr[i] = rng.Uniform(-3.f, 3.f);
    }
    std::vector<cu::Bf16> yr(size_t(rows * c_pad) + 4, cu::Bf16FromBits(0x1234));
    ExpectOk("f32->bf16 padded rows", cu::F32ToBf16PaddedRows(xr.data(), rows, c, c_pad, yr.data(), kStream, 2));
    std::vector<uint16_t> out(size_t(rows * c_pad)), ref(out.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < c_pad; ++j) {
        out[r * c_pad + j] = cu::Bf16Bits(yr[r * c_pad + j]);
        ref[r * c_pad + j] = j < c ? RefBf16(xr[r * c + j]) : 0;
      }
    const std::string tag = " rows=" + std::to_string(rows) + " c=" + std::to_string(c) + " c_pad=" + std::to_string(c_pad);
    ExpectBits("f32->bf16 padded rows" + tag, out.data(), ref.data(), out.size());
    Report(cu::Bf16Bits(yr[rows * c_pad]) == 0x1234, "f32->bf16 padded rows stays in range" + tag);
  }
  Report(cu::F32ToBf16PaddedRows(nullptr, 1, 4, 3, nullptr, kStream) == cudaErrorInvalidValue,
         "f32->bf16 padded rows refuses c_pad < c");
}

}  // namespace

int main() {
  TestRelu();
  TestAdd();
  TestScaleShift();
  TestBatchNormInference();
  TestBatchNormStats();
  TestConversions();
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector access (would fault on a GPU)",
         std::to_string(misaligned) + " misaligned accesses");
  return emu_check::Finish();
}
