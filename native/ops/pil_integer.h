// Integer steps of Pillow's algorithms that the CPU ops (native/cpu/color.cc) and the CUDA view
// kernels (native/cuda/blur.cu, color.cu) run alike: one definition of each, compiled for both, so
// the two paths cannot drift apart.
//
//   BoxBlurLine   one line of one channel of Pillow's extended box blur (BoxBlur.c);
//   EqualizeLut   one channel's lookup table of ImageOps.equalize from its 256-bin histogram.
#pragma once
#include <cstdint>

#include "core/host_device.h"
#include "ops/color.h"  // BoxLine

namespace sslinv {

// `in` and `out` are strided by `step` bytes; lastx = length - 1; b the line's constants
// (MakeBoxLine). acc and bulk are UINT32 with C's wrap-around arithmetic, as in Pillow.
SSLINV_HOST_DEVICE inline void BoxBlurLine(const uint8_t* in, uint8_t* out, int64_t step, int32_t lastx, const BoxLine& b) {
  const int32_t radius = b.radius;
  const uint32_t ww = b.ww, fw = b.fw;
  auto px = [&](int32_t x) -> uint32_t { return in[static_cast<int64_t>(x) * step]; };
  auto move = [&](uint32_t& acc, int32_t sub, int32_t add) {
    acc += static_cast<uint32_t>(static_cast<int32_t>(px(add)) - static_cast<int32_t>(px(sub)));
  };
  auto save = [&](int32_t x, uint32_t acc, int32_t left, int32_t right) {
    const uint32_t bulk = acc * ww + (px(left) + px(right)) * fw;
    out[static_cast<int64_t>(x) * step] = static_cast<uint8_t>((bulk + (1u << 23)) >> 24);
  };
  uint32_t acc = px(0) * static_cast<uint32_t>(radius + 1);
  for (int32_t x = 0; x < b.edge_a - 1; ++x) acc += px(x);
  acc += px(lastx) * static_cast<uint32_t>(radius - b.edge_a + 1);
  if (b.edge_a <= b.edge_b) {
    for (int32_t x = 0; x < b.edge_a; ++x) {
      move(acc, 0, x + radius);
      save(x, acc, 0, x + radius + 1);
    }
    for (int32_t x = b.edge_a; x < b.edge_b; ++x) {
      move(acc, x - radius - 1, x + radius);
      save(x, acc, x - radius - 1, x + radius + 1);
    }
    for (int32_t x = b.edge_b; x <= lastx; ++x) {
      move(acc, x - radius - 1, lastx);
      save(x, acc, x - radius - 1, lastx);
    }
  } else {
    for (int32_t x = 0; x < b.edge_b; ++x) {
      move(acc, 0, x + radius);
      save(x, acc, 0, x + radius + 1);
    }
    for (int32_t x = b.edge_b; x < b.edge_a; ++x) {
      move(acc, 0, lastx);
      save(x, acc, 0, lastx);
    }
    for (int32_t x = b.edge_a; x <= lastx; ++x) {
      move(acc, x - radius - 1, lastx);
      save(x, acc, x - radius - 1, lastx);
    }
  }
}

// Pillow's equalize LUT from one channel's histogram h[256] (any integer count type):
//   step = (total - count of the last nonzero bin) / 255 (0 when at most one bin is nonzero);
//   step == 0: the identity; else lut[v] = min(255, (step / 2 + sum of h[0 .. v-1]) / step)
// (point() clips table entries to 0..255).
template <typename Count>
SSLINV_HOST_DEVICE inline void EqualizeLut(const Count* h, uint8_t* lut) {
  int64_t nonzero = 0, total = 0, last = 0;
  for (int v = 0; v < 256; ++v) {
    if (h[v]) {
      ++nonzero;
      last = static_cast<int64_t>(h[v]);
    }
    total += static_cast<int64_t>(h[v]);
  }
  const int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
  if (step == 0) {
    for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
    return;
  }
  int64_t acc = step / 2;
  for (int v = 0; v < 256; ++v) {
    const int64_t e = acc / step;
    lut[v] = static_cast<uint8_t>(e > 255 ? 255 : e);
    acc += static_cast<int64_t>(h[v]);
  }
}

}  // namespace sslinv
