// Emulator tests of native/cuda/color.cu: every launcher against the CPU ops of native/cpu/color.cc
// (called with parallel = false), bit for bit, on odd-sized images (37x23, 16x9, 1xN, Nx1, 2x2, 3x3),
// C = 3 and, where the op allows, C = 1 and 4, with per-view parameters spanning the evaluation's
// grids and their edges: brightness / contrast / saturation 0 .. 5 (0 and 1 are special cases),
// sharpness 0 .. 30, hue -0.5 .. 0.5 including 0 and both extremes, posterize 0 .. 8 bits. Also: more
// than 16 views (several view groups along grid.y), more than 256 views (chunked launches), small
// grid caps (the grid-stride loops wrap), a batch of images for grayscale / invert / equalize, and
// invalid arguments (cudaErrorInvalidValue), and the RGB triples whose luma is a rounding tie.
// (hsv2rgb's round-half-away never meets an exact tie: an exhaustive search of (h, s, v) finds none,
// so its tie rule cannot be tested, nor can it matter.)
// Build and run:
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/color_emu_test.cc native/cuda/color.cu native/cpu/color.cc native/core/threadpool.cc
//     native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc -o /tmp/color_emu
//   /tmp/color_emu
// emu-sources: native/cpu/color.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/color.cuh"
#include "emu_check.h"
#include "ops/color.h"

namespace {

using emu_check::Report;
using emu_check::Rng;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

struct Size {
  int64_t h, w;
};
const Size kSizes[] = {{37, 23}, {16, 9}, {1, 7}, {6, 1}, {2, 2}, {3, 3}};

std::string Name(const Size& s, int64_t c) {
  return std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(c);
}

// Random bytes, with some gray pixels (hue's s == 0 path), saturated extremes and a few constant runs.
std::vector<uint8_t> Image(Rng& r, int64_t h, int64_t w, int64_t c) {
  std::vector<uint8_t> img(static_cast<size_t>(h * w * c));
  for (int64_t i = 0; i < h * w; ++i) {
    const uint64_t kind = r.Next() % 8;
    const uint8_t g = static_cast<uint8_t>(r.Next());
    for (int64_t k = 0; k < c; ++k) {
      uint8_t v = static_cast<uint8_t>(r.Next());
      if (kind == 0) v = g;                                    // gray
      if (kind == 1) v = (r.Next() & 1) ? 255 : 0;             // extremes
      img[static_cast<size_t>(i * c + k)] = v;
    }
  }
  return img;
}

void ExpectOk(const std::string& what, cudaError_t e) {
  if (e != cudaSuccess) Report(false, what + " launch", cudaGetErrorString(e));
}

void ExpectStatus(const std::string& what, const sslinv::Status& st) {
  if (!st.ok()) Report(false, what + " CPU reference", st.message());
}

void ExpectBytes(const std::string& what, const uint8_t* out, const uint8_t* ref, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (out[i] != ref[i]) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "first mismatch at %zu of %zu (out %d, ref %d)", i, n, out[i], ref[i]);
      Report(false, what + " bit-exact", buf);
      return;
    }
  }
  Report(true, what + " bit-exact (" + std::to_string(n) + " bytes)");
}

sslinv::ImageU8View View(const std::vector<uint8_t>& img, int64_t h, int64_t w, int64_t c, int64_t index = 0) {
  sslinv::ImageU8View v;
  v.data = img.data() + index * h * w * c;
  v.height = h;
  v.width = w;
  v.channels = c;
  return v;
}

const char* KindName(sslinv::EnhanceKind k) {
  switch (k) {
    case sslinv::EnhanceKind::kBrightness: return "brightness";
    case sslinv::EnhanceKind::kContrast: return "contrast";
    case sslinv::EnhanceKind::kColor: return "saturation";
    case sslinv::EnhanceKind::kSharpness: return "sharpness";
  }
  return "?";
}

void TestEnhance(Rng& rng) {
  const std::vector<double> blend_factors = {0.0, 0.25, 0.5, 0.999, 1.0, 1.37, 2.3, 5.0, 0.1 + 0.2, 3.75};
  const std::vector<double> sharp_factors = {0.0, 1.0, 0.5, 1.7, 5.0, 12.5, 30.0, 2.0, 19.25};
  const sslinv::EnhanceKind kinds[] = {sslinv::EnhanceKind::kBrightness, sslinv::EnhanceKind::kContrast,
                                       sslinv::EnhanceKind::kColor, sslinv::EnhanceKind::kSharpness};
  std::vector<int32_t> ws(4, -1);
  for (const auto kind : kinds) {
    const std::vector<double>& f = kind == sslinv::EnhanceKind::kSharpness ? sharp_factors : blend_factors;
    for (const Size& s : kSizes) {
      const std::vector<uint8_t> img = Image(rng, s.h, s.w, 3);
      const size_t n = img.size();
      std::vector<uint8_t> out(n * f.size(), 0xab), ref(n * f.size());
      for (size_t v = 0; v < f.size(); ++v) {
        ExpectStatus(KindName(kind), sslinv::EnhanceU8(View(img, s.h, s.w, 3), kind, f[v], ref.data() + v * n, false));
      }
      const int cap = s.h == 37 ? 2 : 0;  // 37x23: 4 blocks of pixels, capped to 2 (the loop wraps)
      ExpectOk(KindName(kind), cu::EnhanceViewsU8(img.data(), s.h, s.w, kind, f.data(), static_cast<int64_t>(f.size()),
                                                  out.data(), ws.data(), ws.size() * 4, kStream, cap));
      ExpectBytes(std::string(KindName(kind)) + " " + Name(s, 3) + " " + std::to_string(f.size()) + " views",
                  out.data(), ref.data(), out.size());
    }
  }
  // More views than one group of 16 (grid.y > 1), and an image whose mean L rounds at .5 boundaries.
  {
    const int64_t h = 5, w = 7;
    std::vector<double> f;
    for (int i = 0; i < 21; ++i) f.push_back(0.25 + 0.2375 * i);  // 0.25 .. 5
    for (const auto kind : kinds) {
      const std::vector<uint8_t> img = Image(rng, h, w, 3);
      const size_t n = img.size();
      std::vector<uint8_t> out(n * f.size()), ref(n * f.size());
      for (size_t v = 0; v < f.size(); ++v) {
        ExpectStatus("enhance", sslinv::EnhanceU8(View(img, h, w, 3), kind, f[v], ref.data() + v * n, false));
      }
      ExpectOk("enhance", cu::EnhanceViewsU8(img.data(), h, w, kind, f.data(), static_cast<int64_t>(f.size()),
                                             out.data(), ws.data(), 16, kStream));
      ExpectBytes(std::string(KindName(kind)) + " 21 views (2 view groups)", out.data(), ref.data(), out.size());
    }
  }
  // Contrast of uniform images: the mean is exact and the degenerate is the value itself.
  for (const int g : {0, 128, 255}) {
    const std::vector<uint8_t> img(4 * 3 * 3, static_cast<uint8_t>(g));
    const double f[] = {0.25, 0.0, 5.0};
    std::vector<uint8_t> out(img.size() * 3), ref(img.size() * 3);
    for (int v = 0; v < 3; ++v) {
      ExpectStatus("contrast", sslinv::EnhanceU8(View(img, 4, 3, 3), sslinv::EnhanceKind::kContrast, f[v],
                                                 ref.data() + v * img.size(), false));
    }
    ExpectOk("contrast", cu::EnhanceViewsU8(img.data(), 4, 3, sslinv::EnhanceKind::kContrast, f, 3, out.data(),
                                            ws.data(), 16, kStream));
    ExpectBytes("contrast uniform " + std::to_string(g), out.data(), ref.data(), out.size());
  }
}

void TestHue(Rng& rng) {
  const std::vector<double> f = {-0.5, -0.37, -0.25, -0.1, -0.0001, 0.0, 0.002, 0.0039, 0.1, 0.2, 0.3333, 0.5};
  for (const Size& s : kSizes) {
    const std::vector<uint8_t> img = Image(rng, s.h, s.w, 3);
    const size_t n = img.size();
    std::vector<uint8_t> out(n * f.size()), ref(n * f.size());
    for (size_t v = 0; v < f.size(); ++v) {
      ExpectStatus("hue", sslinv::AdjustHueU8(View(img, s.h, s.w, 3), f[v], ref.data() + v * n, false));
    }
    ExpectOk("hue", cu::AdjustHueViewsU8(img.data(), s.h, s.w, f.data(), static_cast<int64_t>(f.size()), out.data(),
                                         kStream, s.h == 37 ? 3 : 0));
    ExpectBytes("hue " + Name(s, 3) + " " + std::to_string(f.size()) + " views", out.data(), ref.data(), out.size());
  }
  // Every RGB triple's hue conversion is covered by a 64x64 image of a strided walk through the RGB
  // cube (4096 pixels, two shifts).
  {
    const int64_t h = 64, w = 64;
    std::vector<uint8_t> img(static_cast<size_t>(h * w * 3));
    for (int64_t i = 0; i < h * w; ++i) {
      const uint32_t x = static_cast<uint32_t>(i) * 4099u + 17u;
      img[static_cast<size_t>(i * 3)] = static_cast<uint8_t>(x);
      img[static_cast<size_t>(i * 3 + 1)] = static_cast<uint8_t>(x >> 8 ^ x);
      img[static_cast<size_t>(i * 3 + 2)] = static_cast<uint8_t>(x >> 16 ^ (x * 7));
    }
    const double g[] = {-0.5, 0.5, 0.123};
    const size_t n = img.size();
    std::vector<uint8_t> out(n * 3), ref(n * 3);
    for (int v = 0; v < 3; ++v) {
      ExpectStatus("hue", sslinv::AdjustHueU8(View(img, h, w, 3), g[v], ref.data() + v * n, false));
    }
    ExpectOk("hue", cu::AdjustHueViewsU8(img.data(), h, w, g, 3, out.data(), kStream, 4));
    ExpectBytes("hue 64x64 RGB-cube walk", out.data(), ref.data(), out.size());
  }
}

void TestPosterize(Rng& rng) {
  const std::vector<int64_t> bits = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  for (const int64_t c : {1, 3, 4}) {
    for (const Size& s : kSizes) {
      const std::vector<uint8_t> img = Image(rng, s.h, s.w, c);
      const size_t n = img.size();
      std::vector<uint8_t> out(n * bits.size()), ref(n * bits.size());
      for (size_t v = 0; v < bits.size(); ++v) {
        ExpectStatus("posterize", sslinv::PosterizeU8(View(img, s.h, s.w, c), bits[v], ref.data() + v * n, false));
      }
      ExpectOk("posterize", cu::PosterizeViewsU8(img.data(), s.h, s.w, c, bits.data(),
                                                 static_cast<int64_t>(bits.size()), out.data(), kStream, 1));
      ExpectBytes("posterize " + Name(s, c), out.data(), ref.data(), out.size());
    }
  }
  // 300 views: two launches (256 + 44), views cycling through the bit counts.
  {
    const int64_t h = 1, w = 3, c = 3;
    const std::vector<uint8_t> img = Image(rng, h, w, c);
    std::vector<int64_t> many(300);
    for (size_t v = 0; v < many.size(); ++v) many[v] = static_cast<int64_t>((v * 5) % 9);
    const size_t n = img.size();
    std::vector<uint8_t> out(n * many.size()), ref(n * many.size());
    for (size_t v = 0; v < many.size(); ++v) {
      ExpectStatus("posterize", sslinv::PosterizeU8(View(img, h, w, c), many[v], ref.data() + v * n, false));
    }
    ExpectOk("posterize", cu::PosterizeViewsU8(img.data(), h, w, c, many.data(), 300, out.data(), kStream));
    ExpectBytes("posterize 300 views (chunked launches)", out.data(), ref.data(), out.size());
  }
}

void TestBatchOps(Rng& rng) {
  const int64_t images = 3;
  for (const Size& s : kSizes) {
    // Grayscale (RGB only).
    {
      const std::vector<uint8_t> img = Image(rng, s.h * images, s.w, 3);  // 3 images stacked
      const size_t n = static_cast<size_t>(s.h * s.w * 3);
      std::vector<uint8_t> out(img.size()), ref(img.size());
      for (int64_t k = 0; k < images; ++k) {
        ExpectStatus("grayscale", sslinv::RgbToGrayscaleU8(View(img, s.h, s.w, 3, k), ref.data() + k * n, false));
      }
      ExpectOk("grayscale", cu::RgbToGrayscaleBatchU8(img.data(), images, s.h, s.w, out.data(), kStream, 1));
      ExpectBytes("grayscale " + std::to_string(images) + " x " + Name(s, 3), out.data(), ref.data(), out.size());
    }
    for (const int64_t c : {1, 2, 3, 4}) {
      const std::vector<uint8_t> img = Image(rng, s.h * images, s.w, c);
      const size_t n = static_cast<size_t>(s.h * s.w * c);
      std::vector<uint8_t> out(img.size()), ref(img.size());
      for (int64_t k = 0; k < images; ++k) {
        ExpectStatus("invert", sslinv::InvertU8(View(img, s.h, s.w, c, k), ref.data() + k * n, false));
      }
      ExpectOk("invert", cu::InvertBatchU8(img.data(), images, s.h, s.w, c, out.data(), kStream));
      ExpectBytes("invert " + std::to_string(images) + " x " + Name(s, c), out.data(), ref.data(), out.size());

      std::vector<uint8_t> ws(cu::EqualizeWorkspaceBytes(images, c));
      for (int64_t k = 0; k < images; ++k) {
        ExpectStatus("equalize", sslinv::EqualizeU8(View(img, s.h, s.w, c, k), ref.data() + k * n, false));
      }
      ExpectOk("equalize", cu::EqualizeBatchU8(img.data(), images, s.h, s.w, c, out.data(), ws.data(), ws.size(),
                                               kStream, 1));
      ExpectBytes("equalize " + std::to_string(images) + " x " + Name(s, c), out.data(), ref.data(), out.size());
    }
  }
  // Equalize's edge cases: a constant image (one nonzero bin: identity), two values, and a skewed
  // histogram whose LUT saturates at 255; one image of each in one batch.
  {
    const int64_t h = 9, w = 11, c = 2, n = h * w * c;
    std::vector<uint8_t> img(static_cast<size_t>(3 * n));
    for (int64_t i = 0; i < n; ++i) {
      img[static_cast<size_t>(i)] = 77;
      img[static_cast<size_t>(n + i)] = (i % 3) ? 10 : 200;
      img[static_cast<size_t>(2 * n + i)] = (i % 17 == 0) ? static_cast<uint8_t>(rng.Next()) : 255;
    }
    std::vector<uint8_t> out(img.size()), ref(img.size()), ws(cu::EqualizeWorkspaceBytes(3, c));
    for (int64_t k = 0; k < 3; ++k) {
      ExpectStatus("equalize", sslinv::EqualizeU8(View(img, h, w, c, k), ref.data() + k * n, false));
    }
    ExpectOk("equalize", cu::EqualizeBatchU8(img.data(), 3, h, w, c, out.data(), ws.data(), ws.size(), kStream));
    ExpectBytes("equalize constant / two-valued / skewed images", out.data(), ref.data(), out.size());
  }
  // A larger image (4096 pixels), where the LUT step (total - last) / 255 is large enough that its
  // rounding and every accumulated bin matter.
  {
    const int64_t h = 64, w = 64, c = 3;
    std::vector<uint8_t> img = Image(rng, h, w, c);
    for (size_t i = 0; i < img.size(); i += 2) img[i] = static_cast<uint8_t>(img[i] / 3 + 40);  // a skewed histogram
    // One 255 per channel: total - last = 4095, where / 255 and / 256 differ (15 vs 16).
    for (uint8_t& v : img) v = v == 255 ? 254 : v;
    for (int64_t k = 0; k < c; ++k) img[static_cast<size_t>(k)] = 255;
    std::vector<uint8_t> out(img.size()), ref(img.size()), ws(cu::EqualizeWorkspaceBytes(1, c));
    ExpectStatus("equalize", sslinv::EqualizeU8(View(img, h, w, c), ref.data(), false));
    ExpectOk("equalize", cu::EqualizeBatchU8(img.data(), 1, h, w, c, out.data(), ws.data(), ws.size(), kStream, 8));
    ExpectBytes("equalize 64x64x3", out.data(), ref.data(), out.size());
  }
}

// The 274 RGB triples whose luma sum lies exactly on a rounding tie ((R*19595 + G*38470 + B*7471)
// mod 2^16 == 0x8000), padded to a 17x17 image: grayscale and saturation must round them as Pillow.
void TestLumaTies(Rng& rng) {
  std::vector<uint8_t> img;
  for (int r = 0; r < 256; ++r)
    for (int g = 0; g < 256; ++g)
      for (int b = 0; b < 256; ++b)
        if (((r * 19595 + g * 38470 + b * 7471) & 0xffff) == 0x8000) {
          img.push_back(static_cast<uint8_t>(r));
          img.push_back(static_cast<uint8_t>(g));
          img.push_back(static_cast<uint8_t>(b));
        }
  const size_t ties = img.size() / 3;
  while (img.size() < 17 * 17 * 3) img.push_back(static_cast<uint8_t>(rng.Next()));
  std::vector<uint8_t> out(img.size()), ref(img.size());
  ExpectStatus("grayscale", sslinv::RgbToGrayscaleU8(View(img, 17, 17, 3), ref.data(), false));
  ExpectOk("grayscale", cu::RgbToGrayscaleBatchU8(img.data(), 1, 17, 17, out.data(), kStream));
  ExpectBytes("grayscale of the " + std::to_string(ties) + " luma rounding ties", out.data(), ref.data(), out.size());
  const double f[] = {0.0, 0.5, 2.0};
  std::vector<uint8_t> out3(img.size() * 3), ref3(img.size() * 3);
  for (int v = 0; v < 3; ++v) {
    ExpectStatus("saturation", sslinv::EnhanceU8(View(img, 17, 17, 3), sslinv::EnhanceKind::kColor, f[v],
                                                 ref3.data() + v * img.size(), false));
  }
  ExpectOk("saturation", cu::EnhanceViewsU8(img.data(), 17, 17, sslinv::EnhanceKind::kColor, f, 3, out3.data(),
                                            nullptr, 0, kStream));
  ExpectBytes("saturation of the luma rounding ties", out3.data(), ref3.data(), out3.size());
}

void TestInvalid() {
  std::vector<uint8_t> a(64), b(64 * 4);
  std::vector<int32_t> ws(4);
  const double ok_f[] = {1.5};
  const double inf_f[] = {1e300};  // finite double, infinite float
  const double bad_hue[] = {0.51};
  const int64_t bad_bits[] = {9};
  const int64_t good_bits[] = {4};
  using K = sslinv::EnhanceKind;
  bool all = true;
  all &= cu::EnhanceViewsU8(a.data(), 2, 2, K::kBrightness, inf_f, 1, b.data(), nullptr, 0, kStream) ==
         cudaErrorInvalidValue;
  all &= cu::EnhanceViewsU8(a.data(), 2, 2, K::kContrast, ok_f, 1, b.data(), nullptr, 0, kStream) ==
         cudaErrorInvalidValue;  // contrast needs the workspace
  all &= cu::EnhanceViewsU8(a.data(), 2, 2, static_cast<K>(4), ok_f, 1, b.data(), ws.data(), 16, kStream) ==
         cudaErrorInvalidValue;
  all &= cu::EnhanceViewsU8(a.data(), 0, 2, K::kColor, ok_f, 1, b.data(), nullptr, 0, kStream) == cudaErrorInvalidValue;
  all &= cu::EnhanceViewsU8(a.data(), 2, 2, K::kColor, ok_f, 0, b.data(), nullptr, 0, kStream) == cudaErrorInvalidValue;
  all &= cu::AdjustHueViewsU8(a.data(), 2, 2, bad_hue, 1, b.data(), kStream) == cudaErrorInvalidValue;
  all &= cu::PosterizeViewsU8(a.data(), 2, 2, 3, bad_bits, 1, b.data(), kStream) == cudaErrorInvalidValue;
  all &= cu::PosterizeViewsU8(a.data(), 2, 2, 5, good_bits, 1, b.data(), kStream) == cudaErrorInvalidValue;
  all &= cu::InvertBatchU8(a.data(), 1, 2, 2, 0, b.data(), kStream) == cudaErrorInvalidValue;
  all &= cu::RgbToGrayscaleBatchU8(nullptr, 1, 2, 2, b.data(), kStream) == cudaErrorInvalidValue;
  all &= cu::EqualizeBatchU8(a.data(), 1, 2, 2, 3, b.data(), b.data(), 767, kStream) == cudaErrorInvalidValue;
  all &= cu::EqualizeBatchU8(a.data(), 1, int64_t{1} << 25, 1, 1, b.data(), b.data(), 256, kStream) ==
         cudaErrorInvalidValue;
  Report(all, "invalid sizes and parameters return cudaErrorInvalidValue");
}

}  // namespace

int main() {
  Rng rng(20240611);
  TestEnhance(rng);
  TestHue(rng);
  TestPosterize(rng);
  TestBatchOps(rng);
  TestLumaTies(rng);
  TestInvalid();
  return emu_check::Finish();
}
