// The bf16-in-memory convolution emulation tests' shared cases and checks (conv2d_pipelined_emu_test.cc
// for the mma.sync kernel, conv2d_wgmma_emu_test.cc for the wgmma one): random bf16 inputs, the
// float64 reference from the same bf16 values (conv_reference.h), a launch into a guarded buffer, and
// the per-element bound
//   |y - ref| <= 2^-8 |ref| (the output's rounding to bf16) + 2e-5 * (sum |x||w| + |bias| + |res|)
// (fp32 accumulation), far inside the issue's bf16 tolerance of 1.5e-2 * that sum.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/bf16_compat.h"
#include "cuda/conv2d.cuh"
#include "conv_reference.h"
#include "emu_check.h"

namespace conv_bf16 {

using sslinv::cuda::Bf16;
using sslinv::cuda::Bf16ToF32;
using sslinv::cuda::Conv2dShape;
using sslinv::cuda::F32ToBf16Rn;

struct Case {
  const char* name;
  Conv2dShape shape;  // n, h, w, c, k, r, s, stride_h, stride_w, pad_h, pad_w
  bool bias, residual, relu;
};

// Shapes that exercise both kernels' edges: partial M and K tiles, GEMM-K tiles straddling taps,
// padding borders, strides, the padded stem, a pipeline that wraps.
inline const Case kCases[] = {
    {"1x1 s1, C=8, K=16 (BN=64), bias+relu", {2, 5, 5, 8, 16, 1, 1, 1, 1, 0, 0}, true, false, true},
    {"3x3 s1 p1, C=16, K=80 (BN=128, partial), odd H/W, bias+res+relu", {2, 9, 7, 16, 80, 3, 3, 1, 1, 1, 1}, true, true, true},
    {"3x3 s2 p1, odd H, C=8, K=36, residual only", {1, 13, 13, 8, 36, 3, 3, 2, 2, 1, 1}, false, true, false},
    {"7x7 s2 p3, C=8 (a padded stem), K=64", {1, 15, 13, 8, 64, 7, 7, 2, 2, 3, 3}, true, false, true},
    {"1x1 s1, C=64, K=192 (3 BN=64 tiles), M=288 (3 M tiles)", {2, 12, 12, 64, 192, 1, 1, 1, 1, 0, 0}, true, false, true},
    {"3x3 p1, C=40 (GEMM-K tiles straddle taps), K=130 (3 BN=64 tiles)", {1, 10, 11, 40, 130, 3, 3, 1, 1, 1, 1}, true, true, true},
    {"1x1, C=256 (8 GEMM-K tiles: the pipeline wraps), K=128, M=144", {1, 12, 12, 256, 128, 1, 1, 1, 1, 0, 0}, true, true, false},
    {"3x5 stride (2,1) pad (1,2), C=24", {1, 11, 9, 24, 12, 3, 5, 2, 1, 1, 2}, true, false, true},
};

inline constexpr size_t kGuard = 64;  // elements of sentinel on each side of y
inline constexpr uint16_t kSentinel = 0x7f7f;

struct Data {
  Conv2dShape sh;
  int P, Q, M;
  std::vector<Bf16> x, w, res;
  std::vector<float> bias;
};

inline std::vector<Bf16> RandomBf16(emu_check::Rng& rng, size_t n) {
  std::vector<float> f(n);
  rng.Fill(f, -1.f, 1.f);
  std::vector<Bf16> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = F32ToBf16Rn(f[i]);
  return b;
}

inline Data MakeData(const Case& cs, uint64_t seed) {
  Data d;
  d.sh = cs.shape;
  d.P = d.sh.p();
  d.Q = d.sh.q();
  d.M = d.sh.n * d.P * d.Q;
  emu_check::Rng rng(seed);
  const Conv2dShape& s = d.sh;
  d.x = RandomBf16(rng, size_t(s.n) * s.h * s.w * s.c);
  d.w = RandomBf16(rng, size_t(s.k) * s.r * s.s * s.c);
  if (cs.bias) {
    d.bias.resize(s.k);
    rng.Fill(d.bias, -1.f, 1.f);
  }
  if (cs.residual) d.res = RandomBf16(rng, size_t(d.M) * s.k);
  return d;
}

inline void Reference(const Data& d, bool relu, std::vector<double>& ref, std::vector<double>& scale) {
  emu_check::ConvReference(
      d.sh, [&](size_t i) { return double(Bf16ToF32(d.x[i])); }, [&](size_t i) { return double(Bf16ToF32(d.w[i])); },
      !d.bias.empty(), [&](int k) { return double(d.bias[k]); }, !d.res.empty(),
      [&](size_t i) { return double(Bf16ToF32(d.res[i])); }, relu, ref, scale);
}

using Bf16Launcher = cudaError_t (*)(const Conv2dShape&, const Bf16*, const Bf16*, const float*, const Bf16*, bool, Bf16*,
                                     cudaStream_t);

// Runs the launcher into a guarded buffer; returns y as floats, checking the guards. residual_override
// (any non-null) makes the residual y itself, filled from *y_inout first.
inline std::vector<float> Run(Bf16Launcher launch, const Case& cs, const Data& d, const std::string& what,
                              const Bf16* residual_override = nullptr, std::vector<Bf16>* y_inout = nullptr) {
  const size_t count = size_t(d.M) * d.sh.k;
  std::vector<Bf16> buf(kGuard + count + 128 * size_t(d.sh.k) + kGuard, Bf16{kSentinel});
  Bf16* y = buf.data() + kGuard;
  if (y_inout) std::memcpy(y, y_inout->data(), count * sizeof(Bf16));
  const Bf16* res = residual_override ? y : (d.res.empty() ? nullptr : d.res.data());
  const cudaError_t err = launch(d.sh, d.x.data(), d.w.data(), d.bias.empty() ? nullptr : d.bias.data(), res, cs.relu, y, nullptr);
  emu_check::Report(err == cudaSuccess, what + ": launch returns cudaSuccess", cudaGetErrorString(err));
  bool guards_ok = true;
  for (size_t i = 0; i < buf.size(); ++i) {
    const bool inside = i >= kGuard && i < kGuard + count;
    if (!inside && buf[i].bits != kSentinel) guards_ok = false;
  }
  emu_check::Report(guards_ok, what + ": no stores outside y", "guard zone overwritten");
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = Bf16ToF32(y[i]);
  return out;
}

// |y - ref| <= 2^-8 |ref| + 2e-5 scale, element by element.
inline void ExpectBf16Close(const std::string& what, const std::vector<float>& y, const std::vector<double>& ref,
                     const std::vector<double>& scale, double* worst_of_issue_tol) {
  bool ok = true;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double err = std::fabs(y[i] - ref[i]);
    const double bound = std::ldexp(std::fabs(ref[i]), -8) + 2e-5 * scale[i];
    if (!(err <= bound)) ok = false;
    const double rel = err / (bound > 0 ? bound : 1.0);
    if (!(rel <= worst)) worst = rel, at = i;
    const double issue = err / (1.5e-2 * (scale[i] > 0 ? scale[i] : 1.0));
    if (!(issue <= *worst_of_issue_tol)) *worst_of_issue_tol = issue;
  }
  char buf[200];
  std::snprintf(buf, sizeof buf, "worst error %.3g of the bound at %zu (out %.9g, ref %.9g)", worst, at,
                y.empty() ? 0.0 : y[at], y.empty() ? 0.0 : ref[at]);
  emu_check::Report(ok, what + " (" + buf + ")", buf);
}

// One case: the launcher's output against the reference; prints the time it took.
inline void CheckCase(Bf16Launcher launch, const Case& cs, uint64_t seed, double* worst_of_issue_tol) {
  const Data d = MakeData(cs, seed);
  std::vector<double> ref, scale;
  Reference(d, cs.relu, ref, scale);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> y = Run(launch, cs, d, cs.name);
  ExpectBf16Close(cs.name, y, ref, scale, worst_of_issue_tol);
  std::printf("# %s: %.2f s\n", cs.name, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Two runs give the same bits, and a residual that is y itself (each element read before it is
// written) gives the bits of a separate one.
inline void CheckDeterminismAndInPlace(Bf16Launcher launch) {
  const Case& cs = kCases[1];
  const Data d = MakeData(cs, 77);
  const std::vector<float> a = Run(launch, cs, d, "determinism (run 1)");
  const std::vector<float> b = Run(launch, cs, d, "determinism (run 2)");
  emu_check::Report(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0, "two runs give the same bits");
  std::vector<double> ref, scale;
  Reference(d, cs.relu, ref, scale);
  std::vector<Bf16> y0 = d.res;
  const std::vector<float> in_place = Run(launch, cs, d, "in-place residual", d.res.data(), &y0);
  double unused = 0;
  ExpectBf16Close("in-place residual (residual == y)", in_place, ref, scale, &unused);
  emu_check::Report(std::memcmp(in_place.data(), a.data(), a.size() * sizeof(float)) == 0,
                    "in-place residual gives the bits of the separate one");
}

// The launch checks: C % 8 != 0, odd K, a zero stride, misaligned and null tensors each give
// cudaErrorInvalidValue and launch nothing; a good shape runs.
inline void CheckInvalidArguments(Bf16Launcher launch) {
  std::vector<Bf16> buf(4096, Bf16{0});
  Bf16* p = buf.data();
  auto run = [&](const Conv2dShape& s, const Bf16* x, const Bf16* w, const Bf16* res, Bf16* y) {
    return launch(s, x, w, nullptr, res, false, y, nullptr);
  };
  const Conv2dShape good{1, 4, 4, 8, 4, 1, 1, 1, 1, 0, 0};
  Conv2dShape c12 = good, k3 = good, stride0 = good;
  c12.c = 12;
  k3.k = 3;
  stride0.stride_h = 0;
  bool ok = run(good, p, p + 512, nullptr, p + 1024) == cudaSuccess;
  ok = ok && run(c12, p, p + 512, nullptr, p + 1024) == cudaErrorInvalidValue;
  ok = ok && run(k3, p, p + 512, nullptr, p + 1024) == cudaErrorInvalidValue;
  ok = ok && run(stride0, p, p + 512, nullptr, p + 1024) == cudaErrorInvalidValue;
  ok = ok && run(good, p + 1, p + 512, nullptr, p + 1024) == cudaErrorInvalidValue;  // x 2-byte aligned
  ok = ok && run(good, p, p + 513, nullptr, p + 1024) == cudaErrorInvalidValue;      // w
  ok = ok && run(good, p, p + 512, nullptr, p + 1025) == cudaErrorInvalidValue;      // y
  ok = ok && run(good, p, p + 512, p + 2049, p + 1024) == cudaErrorInvalidValue;     // residual
  ok = ok && run(good, nullptr, p + 512, nullptr, p + 1024) == cudaErrorInvalidValue;
  emu_check::Report(ok, "rejects C % 8 != 0, odd K, bad shapes, misaligned and null tensors");
}

}  // namespace conv_bf16
