// Emulator tests of native/cuda/layout.cu.
//   NCHW <-> NHWC: bit-exact against index-by-index references on random 32-bit patterns (NaN
//     payloads included), partial tiles on both axes, C = 1 and 3, several tiles per image, grid caps
//     that make the tile and batch loops wrap, misaligned pointers, and the round trip.
//   uint8 HWC -> normalised float NHWC: bit-exact against float32 (v / 255.f - mean) / std computed
//     here in torchvision's order, within rel 1e-5 of float64, for C = 1, 3, 4, every byte value, all
//     16 combinations of x and y misalignment, and small grid caps.
//   GatherRows: bit-exact against a row-by-row memcpy, with repeated and omitted rows, rows of 16-,
//     4- and 1-byte multiples (each word size), misaligned bases (a narrower word), rows of several
//     blocks, and grid caps that make both the row loop and the word loop wrap; nothing written past y.
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

struct GatherCase {
  int64_t rows, out_rows, row_bytes;
  int off;  // byte offset of x and y from 16-byte alignment
  int cap;
};

void TestGatherRows() {
  Rng rng(33);
  const GatherCase cases[] = {
      {5, 8, 32, 0, 0},      // 16-byte words, rows repeated
      {7, 3, 12, 0, 0},      // 4-byte words, rows left out
      {4, 6, 5, 0, 0},       // bytes
      {3, 5, 48, 4, 0},      // 16-byte rows on a 4-byte-aligned base: 4-byte words
      {3, 4, 9, 1, 0},       // misaligned bytes
      {6, 9, 4096 * 4, 0, 0},  // rows of 4 blocks of 16-byte words
      {6, 9, 4096 * 4 + 8, 0, 3},  // 4-byte words, 17 blocks per row capped at 3; rows capped at 3
      {2, 7, 16, 0, 2},      // more rows than the cap of 2
  };
  for (const GatherCase& g : cases) {
    std::vector<unsigned char> xb(g.rows * g.row_bytes + 32), yb(g.out_rows * g.row_bytes + 48, 0xab);
    for (unsigned char& v : xb) v = static_cast<unsigned char>(rng.Next());
    const unsigned char* x = xb.data() + (16 - reinterpret_cast<uintptr_t>(xb.data()) % 16) % 16 + g.off;
    unsigned char* y = yb.data() + (16 - reinterpret_cast<uintptr_t>(yb.data()) % 16) % 16 + g.off;
    std::vector<int32_t> index(g.out_rows);
    for (int64_t r = 0; r < g.out_rows; ++r) index[r] = static_cast<int32_t>((r * 5 + 3) % g.rows);
    std::vector<unsigned char> want(g.out_rows * g.row_bytes);
    for (int64_t r = 0; r < g.out_rows; ++r) std::memcpy(want.data() + r * g.row_bytes, x + index[r] * g.row_bytes, g.row_bytes);
    const cudaError_t e = cu::GatherRows(x, y, index.data(), g.out_rows, g.row_bytes, kStream, g.cap);
    char name[160];
    std::snprintf(name, sizeof name, "gather %lld of %lld rows of %lld bytes, offset %d, cap %d", (long long)g.out_rows,
                  (long long)g.rows, (long long)g.row_bytes, g.off, g.cap);
    Report(e == cudaSuccess, std::string(name) + ": launched");
    Report(std::memcmp(y, want.data(), want.size()) == 0, std::string(name) + ": bit-exact");
    bool clean = true;
    for (const unsigned char* p = y + want.size(); p < yb.data() + yb.size(); ++p) clean = clean && *p == 0xab;
    for (const unsigned char* p = yb.data(); p < y; ++p) clean = clean && *p == 0xab;
    Report(clean, std::string(name) + ": nothing written outside y");
  }
  std::vector<int32_t> index{0};
  float a[4] = {}, b[4] = {};
  Report(cu::GatherRows(a, b, index.data(), 0, 16, kStream) == cudaSuccess, "gather of no rows launches nothing");
  Report(cu::GatherRows(nullptr, b, index.data(), 1, 16, kStream) == cudaErrorInvalidValue, "gather refuses a null x");
  Report(cu::GatherRows(a, b, index.data(), -1, 16, kStream) == cudaErrorInvalidValue, "gather refuses negative rows");
}

}  // namespace

int main() {
  TestTransposes();
  TestNormalize();
  TestGatherRows();
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector access (would fault on a GPU)",
         std::to_string(misaligned) + " misaligned accesses");
  return emu_check::Finish();
}
