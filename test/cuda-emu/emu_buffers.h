// Buffers shared by the image-kernel emulation tests: a host uint8 HWC image with its ImageU8View (to
// call the CPU ops on the same pixels), an output buffer with guard bytes on both sides (to catch
// stores outside the output), and a 16-byte-aligned workspace.
#pragma once
#include <cstddef>
#include <cstdint>
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

}  // namespace emu_check
