// Buffers shared by the image-kernel emulation tests: a host uint8 HWC image with its ImageU8View (to
// call the CPU ops on the same pixels), an output buffer with guard bytes on both sides (to catch
// stores outside the output), and a 16-byte-aligned workspace.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ops/resample.h"  // ImageU8View

namespace emu_check {

struct Image {
  int64_t h, w, c;
  std::vector<uint8_t> data;
  sslinv::ImageU8View View() const {
    sslinv::ImageU8View v;
    v.data = data.data();
    v.height = h;
    v.width = w;
    v.channels = c;
    return v;
  }
};

constexpr int kGuard = 64;
constexpr uint8_t kGuardByte = 0xA5;

// A device output buffer of n bytes with kGuard guard bytes on both sides.
struct Out {
  std::vector<uint8_t> buf;
  explicit Out(size_t n) : buf(n + 2 * kGuard, kGuardByte) {}
  uint8_t* data() { return buf.data() + kGuard; }
  bool GuardsIntact() const {
    for (int i = 0; i < kGuard; ++i) {
      if (buf[static_cast<size_t>(i)] != kGuardByte || buf[buf.size() - 1 - static_cast<size_t>(i)] != kGuardByte) {
        return false;
      }
    }
    return true;
  }
};

// n bytes of workspace at a 16-byte-aligned address (the launchers require it).
struct Workspace {
  std::vector<double> mem;
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Workspace(size_t n) : mem(n / sizeof(double) + 4) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(mem.data());
    ptr = reinterpret_cast<void*>((p + 15) / 16 * 16);
    bytes = n;
  }
};

// "" when the n bytes agree, else where the first difference is (row, column, channel of a w-wide,
// c-channel image).
inline std::string Diff(const uint8_t* out, const uint8_t* ref, size_t n, int64_t w, int64_t c) {
  for (size_t i = 0; i < n; ++i) {
    if (out[i] != ref[i]) {
      const int64_t px = static_cast<int64_t>(i) / c;
      char buf[160];
      std::snprintf(buf, sizeof buf, "first mismatch at byte %zu (row %lld col %lld ch %lld): gpu %d cpu %d", i,
                    static_cast<long long>(px / w), static_cast<long long>(px % w),
                    static_cast<long long>(static_cast<int64_t>(i) % c), out[i], ref[i]);
      return buf;
    }
  }
  return "";
}

inline std::string Shape(const Image& im) {
  return std::to_string(im.h) + "x" + std::to_string(im.w) + "x" + std::to_string(im.c);
}

}  // namespace emu_check
