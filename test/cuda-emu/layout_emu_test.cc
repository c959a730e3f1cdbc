// Emulator tests of native/cuda/layout.cu.
//   NCHW <-> NHWC: bit-exact against index-by-index references on random 32-bit patterns (NaN
//     payloads included), partial tiles on both axes, C = 1 and 3, several tiles per image, grid caps
//     that make the tile and batch loops wrap, misaligned pointers, and the round trip.
//   uint8 HWC -> normalised float NHWC: bit-exact against float32 (v / 255.f - mean) / std computed
//     here in torchvision's order, within rel 1e-5 of float64, for C = 1, 3, 4, every byte value, all
//     16 combinations of x and y misalignment, and small grid caps.
// Build and run:
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/layout_emu_test.cc native/cuda/layout.cu -o /tmp/layout_emu
//   /tmp/layout_emu
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "cuda/layout.cuh"
#include "emu_check.h"

namespace {

using emu_check::ExpectClose;
using emu_check::Report;
using emu_check::Rng;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

struct Shape {
  int64_t n, c, h, w;
  int off;  // element offset of x and y
  int cap;
};

void TestTransposes() {
  Rng rng(21);
  const Shape shapes[] = {
      {2, 3, 5, 7, 0, 0},    // C = 3, one partial tile per image
      {1, 33, 3, 11, 1, 0},  // rows and cols both past one tile, misaligned
      {3, 64, 2, 2, 0, 2},   // grid cap 2: the batch loop wraps
      {1, 1, 1, 1, 3, 0},    // a single element
      {2, 5, 9, 40, 2, 3},   // 12 tiles per image, cap 3: the tile loop wraps
      {1, 40, 6, 7, 0, 0},   // 2 x 2 tiles, all partial at the far edges
  };
  for (const Shape& s : shapes) {
    const int64_t count = s.n * s.c * s.h * s.w, hw = s.h * s.w;
    std::vector<uint32_t> xb(count + 4), yb(count + 4, 0xdeadbeefu), zb(count + 4, 0u);
    for (uint32_t& v : xb) v = static_cast<uint32_t>(rng.Next());
    const uint32_t* x = xb.data() + s.off;
    uint32_t* y = yb.data() + s.off;
    uint32_t* z = zb.data() + s.off;
    const cudaError_t e1 = cu::NchwToNhwc(x, y, s.n, s.c, s.h, s.w, kStream, s.cap);
    const cudaError_t e2 = cu::NhwcToNchw(y, z, s.n, s.c, s.h, s.w, kStream, s.cap);
    if (e1 != cudaSuccess || e2 != cudaSuccess) Report(false, "transpose launch", "error");
    int64_t bad = -1;
    for (int64_t n = 0; n < s.n && bad < 0; ++n)
      for (int64_t c = 0; c < s.c && bad < 0; ++c)
        for (int64_t t = 0; t < hw; ++t) {
          const int64_t i_nchw = (n * s.c + c) * hw + t, i_nhwc = (n * hw + t) * s.c + c;
          if (y[i_nhwc] != x[i_nchw]) {
            bad = i_nhwc;
            break;
          }
        }
    char name[160];
    std::snprintf(name, sizeof name, "N%lld C%lld H%lld W%lld offset %d cap %d", (long long)s.n, (long long)s.c,
                  (long long)s.h, (long long)s.w, s.off, s.cap);
    Report(bad < 0, std::string("nchw->nhwc ") + name + " bit-exact", "first mismatch at " + std::to_string(bad));
    Report(std::memcmp(z, x, count * 4) == 0, std::string("nhwc->nchw(nchw->nhwc(x)) == x ") + name);
    Report(yb[s.off + count] == 0xdeadbeefu && (s.off == 0 || yb[0] == 0xdeadbeefu),
           std::string("nchw->nhwc ") + name + " no writes outside y");
    // NHWC -> NCHW on its own, from independent data.
    std::vector<uint32_t> ub(count + 4), vb(count + 4, 0u);
    for (uint32_t& v : ub) v = static_cast<uint32_t>(rng.Next());
    const uint32_t* u = ub.data() + s.off;
    uint32_t* v = vb.data() + s.off;
    (void)cu::NhwcToNchw(u, v, s.n, s.c, s.h, s.w, kStream, s.cap);
    bad = -1;
    for (int64_t n = 0; n < s.n && bad < 0; ++n)
      for (int64_t t = 0; t < hw && bad < 0; ++t)
        for (int64_t c = 0; c < s.c; ++c) {
          const int64_t i_nchw = (n * s.c + c) * hw + t, i_nhwc = (n * hw + t) * s.c + c;
          if (v[i_nchw] != u[i_nhwc]) {
            bad = i_nchw;
            break;
          }
        }
    Report(bad < 0, std::string("nhwc->nchw ") + name + " bit-exact", "first mismatch at " + std::to_string(bad));
  }
}

void TestNormalize() {
  Rng rng(22);
  struct Case {
    int64_t n, h, w, c;
    int cap;
  };
  // ImageNet's statistics for C = 3; others arbitrary, one std negative.
  const float mean3[] = {0.485f, 0.456f, 0.406f}, std3[] = {0.229f, 0.224f, 0.225f};
  const float mean4[] = {0.5f, 0.1f, 0.9f, 0.33f}, std4[] = {0.25f, -0.7f, 3.f, 0.011f};
  const Case cases[] = {{2, 5, 7, 3, 2}, {1, 13, 11, 3, 0}, {3, 3, 5, 1, 1}, {1, 9, 9, 4, 3}};
  for (const Case& k : cases) {
    const float* mean = k.c == 3 ? mean3 : mean4;
    const float* stdv = k.c == 3 ? std3 : std4;
    const int64_t count = k.n * k.h * k.w * k.c;
    for (int xo = 0; xo < 4; ++xo) {
      for (int yo = 0; yo < 4; ++yo) {
        std::vector<uint8_t> xb(count + 4);
        for (size_t i = 0; i < xb.size(); ++i) {
          xb[i] = (i < 256 * 2) ? static_cast<uint8_t>(i * 7 + 3) : static_cast<uint8_t>(rng.Next());  // every byte
        }
        std::vector<float> yb(count + 4, -99.f);
        const uint8_t* x = xb.data() + xo;
        float* y = yb.data() + yo;
        if (cu::Uint8HwcToNormalizedNhwc(x, y, k.n, k.h, k.w, k.c, mean, stdv, kStream, k.cap) != cudaSuccess) {
          Report(false, "normalize launch", "error");
        }
        std::vector<float> ref(count);
        std::vector<double> ref64(count), mag(count);
        for (int64_t i = 0; i < count; ++i) {
          const int64_t c = i % k.c;
          const float t = static_cast<float>(x[i]) / 255.0f;  // ToTensor
          const float d = t - mean[c];                        // Normalize: sub_(mean)
          ref[i] = d / stdv[c];                               //            div_(std)
          ref64[i] = (x[i] / 255.0 - static_cast<double>(mean[c])) / static_cast<double>(stdv[c]);
          mag[i] = (x[i] / 255.0 + std::fabs(mean[c])) / std::fabs(static_cast<double>(stdv[c]));
        }
        char name[160];
        std::snprintf(name, sizeof name, "normalize N%lld H%lld W%lld C%lld offsets x%d y%d cap %d", (long long)k.n,
                      (long long)k.h, (long long)k.w, (long long)k.c, xo, yo, k.cap);
        Report(std::memcmp(y, ref.data(), count * 4) == 0, std::string(name) + " bit-exact vs float32 torchvision order");
        if (xo == 1 && yo == 1) ExpectClose(std::string(name) + " vs float64", y, ref64.data(), count, 1e-5, 0.0, mag.data());
        Report(yb[yo + count] == -99.f && (yo == 0 || yb[0] == -99.f), std::string(name) + " no writes outside y");
      }
    }
  }
  std::vector<uint8_t> x(5 * 4);
  std::vector<float> y(5 * 4);
  const float m5[5] = {}, s5[5] = {1, 1, 1, 1, 1};
  Report(cu::Uint8HwcToNormalizedNhwc(x.data(), y.data(), 1, 2, 2, 5, m5, s5, kStream) == cudaErrorInvalidValue,
         "normalize refuses C = 5");
}

}  // namespace

int main() {
  TestTransposes();
  TestNormalize();
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector access (would fault on a GPU)",
         std::to_string(misaligned) + " misaligned accesses");
  return emu_check::Finish();
}
