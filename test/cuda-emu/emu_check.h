// Shared helpers for the CUDA-emulation test programs (test/cuda-emu/*_emu_test.cc).
//
// Each program is one main() that runs kernels through the host emulator (native/cuda/emu) against
// float64 references and prints one line per check: "ok - <what>" or "not ok - <what>: <detail>".
// It exits with status 0 when every check passed, 1 otherwise. test/cuda-emu/emu.test.ts compiles
// each program with the host C++ compiler and turns the lines into tap assertions.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace emu_check {

inline int& Failures() {
  static int f = 0;
  return f;
}

inline void Report(bool ok, const std::string& what, const std::string& detail = "") {
  if (ok) {
    std::printf("ok - %s\n", what.c_str());
  } else {
    ++Failures();
    std::printf("not ok - %s: %s\n", what.c_str(), detail.c_str());
  }
  std::fflush(stdout);
}

// Elementwise |out - ref| <= atol + rtol * |scale| (scale defaults to |ref|; pass |A|.|B|-style
// magnitudes for products so cancellation cannot cause false failures, see docs/KERNELS.md).
inline void ExpectClose(const std::string& what, const float* out, const double* ref, size_t n, double rtol,
                        double atol = 0.0, const double* scale = nullptr) {
  double worst = 0.0;
  size_t worst_i = 0;
  bool ok = true;
  for (size_t i = 0; i < n; ++i) {
    const double s = scale ? std::fabs(scale[i]) : std::fabs(ref[i]);
    const double err = std::fabs(static_cast<double>(out[i]) - ref[i]);
    const double bound = atol + rtol * s;
    if (!(err <= bound)) {  // NaN fails too
      ok = false;
    }
    const double rel = err / (s > 0 ? s : 1.0);
    // A NaN stays the reported worst: the first NaN is what a reader needs to see.
    if (!std::isnan(worst) && (std::isnan(rel) || rel > worst)) {
      worst = rel;
      worst_i = i;
    }
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "worst relative error %.3g at %zu (out %.9g, ref %.9g)", worst, worst_i,
                n ? static_cast<double>(out[worst_i]) : 0.0, n ? ref[worst_i] : 0.0);
  Report(ok, what + " (" + buf + ")", buf);
}

// Bit-for-bit equality of n values (floats compared by their bits, so NaN payloads and -0 count).
template <typename T>
void ExpectBits(const std::string& what, const T* out, const T* ref, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&out[i], &ref[i], sizeof(T)) != 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "first mismatch at %zu of %zu (out %.9g, ref %.9g)", i, n,
                    static_cast<double>(out[i]), static_cast<double>(ref[i]));
      Report(false, what + " bit-exact", buf);
      return;
    }
  }
  Report(true, what + " bit-exact (" + std::to_string(n) + " values)");
}

// A small deterministic generator (splitmix64) for test inputs.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>((Next() >> 40) * 0x1.0p-24); }
  void Fill(std::vector<float>& v, float lo, float hi) {
    for (float& x : v) x = Uniform(lo, hi);
  }
};

inline int Finish() {
  std::printf("# %d failure(s)\n", Failures());
  return Failures() ? 1 : 0;
}

}  // namespace emu_check
