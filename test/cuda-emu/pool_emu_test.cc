// Emulator tests of native/cuda/pool.cu.
//   Max pool: bit-exact values and argmax indices against an independent reference (NaN: the last
//     NaN of the row-major scan wins; otherwise the first position of the maximum), with padding
//     borders on all-negative data (a padded zero must never win), stride 2 with odd H and W,
//     non-square kernels and strides, C = 3 and C % 4 == 0 (float4 channels), misaligned pointers,
//     windows of only -inf, and small grid caps.
//   Global average pool: within rel 1e-5 of a float64 reference (scaled by mean |x|, so cancelling
//     data cannot fail falsely), float4 and scalar channels, and bit-identical across two runs.
//   bf16 activations: both pools on bf16 equal the float32 pools of the widened values bit for bit
//     (the max stored back as bf16; NaN, -inf and padding included).
// Build and run:
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/pool_emu_test.cc native/cuda/pool.cu -o /tmp/pool_emu
//   /tmp/pool_emu
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "cuda/pool.cuh"
#include "emu_check.h"

namespace {

using emu_check::ExpectClose;
using emu_check::Report;
using emu_check::Rng;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

template <typename T>
bool SameBits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

float NanWithPayload(uint32_t payload) {
  const uint32_t u = 0x7fc00000u | (payload & 0x3fffffu);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct PoolCase {
  int64_t n, h, w, c, kh, kw, sh, sw, ph, pw;
  int xo, yo;       // element offsets of x and y from 16-byte-aligned storage
  int cap;          // grid cap (0 = default)
  bool negative;    // all-negative data (padding must not win)
  bool nans;        // sprinkle NaNs with distinct payloads
  bool neg_inf;     // some windows of only -inf
};

void TestMaxPool() {
  Rng rng(11);
  const PoolCase cases[] = {
      // n  h  w  c  kh kw sh sw ph pw xo yo cap neg   nan    -inf
      {2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 0, 0, 4, false, false, false},   // ResNet stem pool, odd H, C = 3
      {2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1, 2, 3, true, true, false},     // same, negative, NaN, misaligned
      {1, 9, 5, 8, 3, 3, 2, 2, 1, 1, 0, 0, 2, true, false, false},    // float4 channels, padding borders
      {1, 9, 5, 8, 3, 3, 2, 2, 1, 1, 1, 1, 2, true, true, false},     // C % 4 == 0 but misaligned: scalar
      {1, 9, 5, 8, 3, 3, 2, 2, 1, 1, 0, 2, 2, true, false, false},    // x aligned, y not: scalar
      {2, 5, 7, 4, 2, 2, 2, 2, 0, 0, 0, 0, 0, false, true, false},    // floor mode drops the last row/col
      {1, 6, 6, 5, 3, 3, 1, 1, 1, 1, 0, 0, 3, true, false, true},     // stride 1, C = 5, -inf windows
      {1, 8, 7, 12, 3, 2, 1, 2, 1, 1, 0, 0, 0, true, true, true},     // non-square kernel and stride
      {1, 3, 3, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0, false, false, false},   // 1x1: a copy
      {1, 11, 13, 16, 5, 4, 3, 2, 2, 2, 0, 0, 0, true, true, false},  // larger pads, float4
  };
  for (const PoolCase& k : cases) {
    sslinv::Pool2dParams p;
    p.n = k.n, p.h = k.h, p.w = k.w, p.c = k.c;
    p.kernel_h = k.kh, p.kernel_w = k.kw, p.stride_h = k.sh, p.stride_w = k.sw, p.pad_h = k.ph, p.pad_w = k.pw;
    const int64_t P = p.out_h(), Q = p.out_w();
    const int64_t nx = k.n * k.h * k.w * k.c, ny = k.n * P * Q * k.c;
    std::vector<float> xb(nx + 4);
    for (float& v : xb) v = k.negative ? rng.Uniform(-5.f, -1.f) : rng.Uniform(-2.f, 2.f);
    float* x = xb.data() + k.xo;
    if (k.nans) {
      for (int64_t i = 0; i < nx; i += 1 + static_cast<int64_t>(rng.Next() % 23)) {
        x[i] = NanWithPayload(static_cast<uint32_t>(i + 1));
      }
    }
    if (k.neg_inf) {
      // The first image's top-left 3x3 corner, all channels: windows inside it see only -inf.
      for (int64_t ih = 0; ih < 3; ++ih)
        for (int64_t iw = 0; iw < 3; ++iw)
          for (int64_t c = 0; c < k.c; ++c) x[(ih * k.w + iw) * k.c + c] = -INFINITY;
    }
    std::vector<float> yb(ny + 4, 123.f);
    std::vector<int64_t> idx(ny, -7);
    float* y = yb.data() + k.yo;
    const cudaError_t e = cu::MaxPool2dNHWC(p, x, y, idx.data(), kStream, k.cap);
    if (e != cudaSuccess) Report(false, "max pool launch", cudaGetErrorString(e));

    // Reference: gather each window's real elements in scan order.
    std::vector<float> ref(ny);
    std::vector<int64_t> ref_idx(ny);
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t op = 0; op < P; ++op)
        for (int64_t oq = 0; oq < Q; ++oq)
          for (int64_t c = 0; c < k.c; ++c) {
            int64_t last_nan = -1, best = -1;
            for (int64_t dh = 0; dh < k.kh; ++dh)
              for (int64_t dw = 0; dw < k.kw; ++dw) {
                const int64_t ih = op * k.sh - k.ph + dh, iw = oq * k.sw - k.pw + dw;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                const int64_t pos = ih * k.w + iw;
                const float v = x[((n * k.h + ih) * k.w + iw) * k.c + c];
                if (std::isnan(v)) last_nan = pos;
                if (best < 0) {
                  best = pos;
                } else {
                  const float b = x[(n * k.h * k.w + best) * k.c + c];
                  if (v > b) best = pos;
                }
              }
            const int64_t at = last_nan >= 0 ? last_nan : best;
            const int64_t o = ((n * P + op) * Q + oq) * k.c + c;
            ref[o] = x[(n * k.h * k.w + at) * k.c + c];
            ref_idx[o] = at;
          }
    char name[200];
    std::snprintf(name, sizeof name,
                  "max pool N%lld H%lld W%lld C%lld k%lldx%lld s%lldx%lld p%lldx%lld offsets x%d y%d%s%s%s",
                  (long long)k.n, (long long)k.h, (long long)k.w, (long long)k.c, (long long)k.kh, (long long)k.kw,
                  (long long)k.sh, (long long)k.sw, (long long)k.ph, (long long)k.pw, k.xo, k.yo,
                  k.negative ? " negative" : "", k.nans ? " NaN" : "", k.neg_inf ? " -inf windows" : "");
    int64_t bad = -1, bad_idx = -1;
    for (int64_t i = 0; i < ny && bad < 0; ++i)
      if (!SameBits(y[i], ref[i])) bad = i;
    for (int64_t i = 0; i < ny && bad_idx < 0; ++i)
      if (idx[i] != ref_idx[i]) bad_idx = i;
    char detail[200] = "";
    if (bad >= 0) std::snprintf(detail, sizeof detail, "value %lld: out %.9g ref %.9g", (long long)bad, y[bad], ref[bad]);
    Report(bad < 0, std::string(name) + ": values bit-exact (" + std::to_string(ny) + ")", detail);
    if (bad_idx >= 0) {
      std::snprintf(detail, sizeof detail, "index %lld: out %lld ref %lld", (long long)bad_idx,
                    (long long)idx[bad_idx], (long long)ref_idx[bad_idx]);
    }
    Report(bad_idx < 0, std::string(name) + ": argmax indices", detail);
    Report(yb[k.yo + ny] == 123.f && (k.yo == 0 || yb[0] == 123.f), std::string(name) + ": no writes outside y");

    // Without indices: the same values.
    std::vector<float> y2(ny + 4, 0.f);
    (void)cu::MaxPool2dNHWC(p, x, y2.data() + k.yo, nullptr, kStream, k.cap);
    Report(std::memcmp(y2.data() + k.yo, y, ny * sizeof(float)) == 0, std::string(name) + ": same without indices");
  }
}

struct GapCase {
  int64_t n, h, w, c;
  int xo;
  int cap;
  float lo, hi;
};

void TestGlobalAvgPool() {
  Rng rng(12);
  const GapCase cases[] = {
      {3, 7, 7, 3, 0, 0, 0.f, 4.f},       // C = 3: scalar channels
      {2, 7, 7, 64, 0, 0, -1.f, 3.f},     // float4 channels
      {2, 5, 3, 12, 2, 0, -2.f, 2.f},     // misaligned: scalar channels; cancelling data
      {3, 4, 5, 8, 0, 1, 100.f, 101.f},   // grid cap 1: one block row loops over the images
      {1, 1, 1, 5, 1, 0, -3.f, 3.f},      // 1x1
      {1, 56, 56, 4, 0, 0, 0.f, 1.f},     // many positions per thread
      {2, 3, 3, 36, 0, 0, -1e3f, 1e3f},   // 9 channel groups in one tile
  };
  for (const GapCase& k : cases) {
    const int64_t hw = k.h * k.w, nx = k.n * hw * k.c, ny = k.n * k.c;
    std::vector<float> xb(nx + 4);
    rng.Fill(xb, k.lo, k.hi);
    const float* x = xb.data() + k.xo;
    std::vector<float> y(ny, 0.f), y2(ny, 1.f);
    const cudaError_t e = cu::GlobalAvgPoolNHWC(k.n, k.h, k.w, k.c, x, y.data(), kStream, k.cap);
    if (e != cudaSuccess) Report(false, "global avg pool launch", cudaGetErrorString(e));
    (void)cu::GlobalAvgPoolNHWC(k.n, k.h, k.w, k.c, x, y2.data(), kStream, k.cap);
    std::vector<double> ref(ny, 0.0), mag(ny, 0.0);
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t t = 0; t < hw; ++t)
        for (int64_t c = 0; c < k.c; ++c) {
          const double v = x[(n * hw + t) * k.c + c];
          ref[n * k.c + c] += v;
          mag[n * k.c + c] += std::fabs(v);
        }
    for (int64_t i = 0; i < ny; ++i) {
      ref[i] /= static_cast<double>(hw);
      mag[i] /= static_cast<double>(hw);
    }
    char name[160];
    std::snprintf(name, sizeof name, "global avg pool N%lld H%lld W%lld C%lld x offset %d cap %d", (long long)k.n,
                  (long long)k.h, (long long)k.w, (long long)k.c, k.xo, k.cap);
    ExpectClose(std::string(name) + " vs float64", y.data(), ref.data(), ny, 1e-5, 0.0, mag.data());
    // The CPU op's order (sequential float32 sum over h, w, then / float(H*W)) differs by at most its
    // own rounding error, (H*W - 1) * 2^-24 * mean |x| for the sum plus one rounding for the divide,
    // plus half an ulp of ours (pool.cuh): within (H*W + 1) * 2^-24 * mean |x|.
    std::vector<double> cpu(ny), cpu_tol(ny);
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t c = 0; c < k.c; ++c) {
        float s = 0.f;
        for (int64_t t = 0; t < hw; ++t) s += x[(n * hw + t) * k.c + c];
        cpu[n * k.c + c] = s / static_cast<float>(hw);
        cpu_tol[n * k.c + c] = static_cast<double>(hw + 1) * mag[n * k.c + c];
      }
    ExpectClose(std::string(name) + " vs the CPU op's float32 order", y.data(), cpu.data(), ny, 0x1.0p-24, 0.0,
                cpu_tol.data());
    Report(std::memcmp(y.data(), y2.data(), ny * sizeof(float)) == 0, std::string(name) + " run-to-run bit-identical");
  }
}

}  // namespace

// bf16 pooling is float32 pooling of the exactly widened values.
void TestBf16() {
  using cu::Bf16;
  Rng rng(77);
  struct Shape { int64_t n, h, w, c; };
  for (const Shape sh : {Shape{2, 9, 7, 64}, Shape{1, 5, 6, 3}, Shape{3, 4, 4, 8}}) {
    const size_t count = size_t(sh.n * sh.h * sh.w * sh.c);
    std::vector<float> f(count);
    rng.Fill(f, -3.f, 3.f);
    f[3] = std::nanf("");
    f[count / 2] = -std::numeric_limits<float>::infinity();
    std::vector<Bf16> b(count);
    for (size_t i = 0; i < count; ++i) b[i] = cu::F32ToBf16Rn(f[i]), f[i] = cu::Bf16ToF32(b[i]);
    const std::string name = "bf16 " + std::to_string(sh.n) + "x" + std::to_string(sh.h) + "x" + std::to_string(sh.w) + "x" +
                             std::to_string(sh.c);
    sslinv::Pool2dParams p{};
    p.n = sh.n, p.h = sh.h, p.w = sh.w, p.c = sh.c;
    p.kernel_h = 3, p.kernel_w = 3, p.stride_h = 2, p.stride_w = 2, p.pad_h = 1, p.pad_w = 1;
    const size_t out = size_t(sh.n * p.out_h() * p.out_w() * sh.c);
    std::vector<float> yf(out);
    std::vector<Bf16> yb(out);
    std::vector<int64_t> i_f(out), i_b(out);
    const bool ok = cu::MaxPool2dNHWC(p, f.data(), yf.data(), i_f.data(), kStream) == cudaSuccess &&
                    cu::MaxPool2dNHWC(p, b.data(), yb.data(), i_b.data(), kStream) == cudaSuccess;
    bool same = ok && i_f == i_b;
    for (size_t i = 0; same && i < out; ++i) {
      const float v = cu::Bf16ToF32(yb[i]);
      same = std::isnan(v) ? std::isnan(yf[i]) : SameBits(v, yf[i]);
    }
    Report(same, name + ": max pool of bf16 equals the float32 max pool of the widened values (values and indices)");
    std::vector<float> af(size_t(sh.n * sh.c)), ab(af.size());
    f[3] = 0.f, b[3] = cu::F32ToBf16Rn(0.f);  // finite data for the average
    f[count / 2] = 1.f, b[count / 2] = cu::F32ToBf16Rn(1.f);
    const bool ok2 = cu::GlobalAvgPoolNHWC(sh.n, sh.h, sh.w, sh.c, f.data(), af.data(), kStream) == cudaSuccess &&
                     cu::GlobalAvgPoolNHWC(sh.n, sh.h, sh.w, sh.c, b.data(), ab.data(), kStream) == cudaSuccess;
    // The two paths split the positions between threads differently (float4 or scalar channels), but
    // float64 sums of so few bf16 values (8 significant bits) are exact, so the order cannot matter.
    Report(ok2 && std::memcmp(af.data(), ab.data(), af.size() * sizeof(float)) == 0,
           name + ": average pool of bf16 equals the float32 one of the widened values");
  }
}

int main() {
  TestMaxPool();
  TestGlobalAvgPool();
  TestBf16();
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector access (would fault on a GPU)",
         std::to_string(misaligned) + " misaligned accesses");
  return emu_check::Finish();
}
