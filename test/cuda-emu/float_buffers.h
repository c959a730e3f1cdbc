// Float32 test buffers for the emulation tests that compare device kernels with the CPU ops
// (layer_backward_emu_test.cc, sgd_emu_test.cc): a buffer placed at a chosen element offset from
// 16-byte alignment with guard values on both sides (to catch stores outside it), and the norm-wise
// and bit-level comparisons those tests report.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "emu_check.h"

namespace emu_check {

// n floats at `offset` elements past a 16-byte boundary, kFloatGuard floats of a guard pattern on
// each side. The storage of std::vector<float> is 16-byte aligned (operator new), and the guard is a
// multiple of 4 floats, so offset 0 is aligned.
class FloatBuf {
 public:
  static constexpr size_t kFloatGuard = 16;
  explicit FloatBuf(size_t n, int offset = 0)
      : n_(n), off_(static_cast<size_t>(offset)), mem_(n + 2 * kFloatGuard + 4, Guard()) {}
  float* data() { return mem_.data() + kFloatGuard + off_; }
  const float* data() const { return mem_.data() + kFloatGuard + off_; }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return data()[i]; }
  std::vector<float> Copy() const { return std::vector<float>(data(), data() + n_); }
  bool GuardsIntact() const {
    const float g = Guard();
    for (size_t i = 0; i < mem_.size(); ++i) {
      if (i >= kFloatGuard + off_ && i < kFloatGuard + off_ + n_) continue;
      if (std::memcmp(&mem_[i], &g, sizeof g) != 0) return false;
    }
    return true;
  }

 private:
  static float Guard() {
    const uint32_t u = 0x7fa5a5a5u;  // a signalling-NaN pattern nobody computes
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  size_t n_, off_;
  std::vector<float> mem_;
};

// The share of the n values whose bits agree.
inline double BitsEqualShare(const float* a, const float* b, size_t n) {
  if (n == 0) return 1.0;
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) same += std::memcmp(&a[i], &b[i], 4) == 0;
  return static_cast<double>(same) / static_cast<double>(n);
}

// Whether the n values agree bit for bit, except that any NaN matches any NaN: a NaN's sign and
// payload are not part of IEEE's results (x86 passes an operand's NaN on, in whichever operand
// order the compiler chose; a GPU returns its one canonical NaN), so only where NaNs are is compared.
inline bool SameBitsOrNaN(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], 4) != 0) return false;
  }
  return true;
}

// Norm-wise |out - ref|_2 <= rtol * |ref|_2 (the CPU op's result as ref), reporting the relative error
// and how many values are bit-identical. Returns the relative error (NaN fails).
inline double ExpectNormClose(const std::string& what, const float* out, const float* ref, size_t n, double rtol) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
    num += d * d;
    den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  char buf[160];
  std::snprintf(buf, sizeof buf, "normwise rel %.3g, %.1f%% bit-identical to the CPU", rel,
                100.0 * BitsEqualShare(out, ref, n));
  Report(rel <= rtol, what + " (" + buf + ")", buf);
  return rel;
}

}  // namespace emu_check
