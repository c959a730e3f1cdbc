// Emulator tests of native/cuda/elastic.cu against the CPU ops of native/cpu/geometric.cc
// (parallel = false), bit for bit:
//   GaussianBlur17FieldsF32 against GaussianBlur17F32: the float32 fields compared by their bits, on
//     sides of 1, 2, 5 and 17 or more (where the 17 taps reflect more than once) and sigmas from
//     0.05 (a kernel that is a single 1) to 120;
//   ElasticViewsU8 against ElasticU8, several views per launch, on 37x53x3, 29x23x1, 1x1x3, 1x29x1,
//     31x1x3, 2x2x4 and 5x3x2 (a side under 3 pixels makes albumentations' affine singular and the
//     warped image constant, which the CPU op reproduces; the blur checks cover those sides), with the
//     study's sigmas and others, alpha 0 (the warp alone), 1, negative and large (maps far outside
//     the image, so the reflect border is hit on every side, and beyond int32 so cvRound's INT_MIN is
//     used), affine offsets up to +-500 pixels, noise quantised to 1/64 with a one-tap kernel (maps on
//     exact half steps of 1/32 pixel: the round-half-to-even rule), noise planted where rounding the
//     alpha product before the index sum matters, and noise with NaN and infinities;
//   distinct source images per view (src_view_stride), the bytes around dst, and refused arguments.
// Build and run (the emu-sources line is what test/cuda-emu/emu.test.ts adds):
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/elastic_emu_test.cc native/cuda/elastic.cu native/cpu/geometric.cc
//     native/cpu/resample.cc native/core/threadpool.cc native/core/status.cc
//     native/core/cpu_features.cc native/core/host_allocator.cc -o /tmp/elastic_emu
// emu-sources: native/cpu/geometric.cc native/cpu/resample.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "cuda/elastic.cuh"
#include "emu_buffers.h"
#include "emu_check.h"
#include "ops/geometric.h"

namespace {

using emu_check::Diff;
using emu_check::Image;
using emu_check::Out;
using emu_check::Report;
using emu_check::Rng;
using emu_check::Shape;
using emu_check::Workspace;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

Image MakeImage(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  Image im{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h * w * c))};
  Rng r(seed);
  for (auto& b : im.data) b = static_cast<uint8_t>(r.Next() % 256);
  return im;
}

enum class Noise { kUniform, kQuantised, kSpecial, kSplitRounding };

// One view: its parameters and how its noise is drawn.
struct ViewCase {
  double sigma, alpha;
  float offset_range;  // affine offsets uniform in +-offset_range
  Noise noise;
};

// Whether map = index + d * alpha lands on different 1/32 pixels when the product is rounded before the
// sum (the CPU's arithmetic) and when both are fused into one rounding.
bool RoundingsDisagree(float d, float alpha, float index) {
  volatile float product = d * alpha;  // volatile: rounded here, never contracted into the sum
  const float twice = index + product;
  const float once = std::fmaf(d, alpha, index);
  return std::nearbyint(twice * 32.0f) != std::nearbyint(once * 32.0f);
}

// The two h x w noise fields of a view (dx then dy):
//   kUniform: rand() * 2 - 1 as float32;  kQuantised: multiples of 1/64 in [-1, 1);
//   kSpecial: uniform with a NaN, +inf and -inf planted;
//   kSplitRounding: uniform, except at up to 8 pixels per field (for a one-tap kernel, whose blur is
//     the identity) values for which RoundingsDisagree, found by search near -index / alpha: a map that
//     cancels most of its index exposes the product's rounding. Rare in random noise, so planted.
void FillNoise(Noise kind, Rng& r, float* f, int64_t h, int64_t w, float alpha) {
  const int64_t hw = h * w;
  for (int64_t i = 0; i < 2 * hw; ++i) {
    f[i] = kind == Noise::kQuantised ? static_cast<float>(static_cast<int64_t>(r.Next() % 128) - 64) / 64.0f
                                     : r.Uniform(-1.0f, 1.0f);
  }
  if (kind == Noise::kSpecial) {
    f[hw / 2] = std::numeric_limits<float>::quiet_NaN();
    f[2 * hw - 1] = std::numeric_limits<float>::infinity();
    f[0] = -std::numeric_limits<float>::infinity();
  }
  if (kind == Noise::kSplitRounding) {
    for (int field = 0; field < 2; ++field) {
      int planted = 0;
      for (int64_t i = 1; i < hw && planted < 8; i += 1 + hw / 8) {
        const float index = static_cast<float>(field == 0 ? i % w : i / w);
        if (index == 0.0f) continue;  // index + product is then exact either way
        for (int attempt = 0; attempt < 200000; ++attempt) {
          const float d = -index / alpha + r.Uniform(-1.0f, 1.0f) / alpha;
          if (d >= -1.0f && d <= 1.0f && RoundingsDisagree(d, alpha, index)) {
            f[field * hw + i] = d;
            ++planted;
            break;
          }
        }
      }
    }
  }
}

// Runs ElasticViewsU8 over `cases` (one view each) on `im` and compares each view with ElasticU8.
// With distinct_sources, view v deforms its own image (src_view_stride = one image).
void CheckElastic(const std::string& what, const Image& im, const std::vector<ViewCase>& cases, uint64_t seed,
                  bool distinct_sources = false) {
  const int64_t views = static_cast<int64_t>(cases.size()), hw = im.h * im.w;
  const size_t per = static_cast<size_t>(hw * im.c);
  Rng r(seed);
  std::vector<Image> sources;
  for (int64_t v = 0; v < (distinct_sources ? views : 1); ++v) sources.push_back(MakeImage(im.h, im.w, im.c, seed + 100 + v));
  if (!distinct_sources) sources[0] = im;
  std::vector<uint8_t> src_all;
  for (const Image& s : sources) src_all.insert(src_all.end(), s.data.begin(), s.data.end());
  std::vector<float> noise(static_cast<size_t>(views * 2 * hw));
  std::vector<cu::ElasticViewParams> params(static_cast<size_t>(views));
  for (int64_t v = 0; v < views; ++v) {
    const ViewCase& vc = cases[static_cast<size_t>(v)];
    cu::ElasticViewParams& p = params[static_cast<size_t>(v)];
    p.sigma = vc.sigma;
    p.alpha = vc.alpha;
    for (float& o : p.affine_offsets) o = r.Uniform(-vc.offset_range, vc.offset_range);
    FillNoise(vc.noise, r, noise.data() + v * 2 * hw, im.h, im.w, static_cast<float>(vc.alpha));
  }
  Out out(per * static_cast<size_t>(views));
  Workspace ws(cu::ElasticWorkspaceBytes(views, im.h, im.w, im.c));
  const int64_t stride = distinct_sources ? static_cast<int64_t>(per) : 0;
  const std::string name = what + " " + Shape(im) + " (" + std::to_string(views) + " views)";
  if (cu::ElasticViewsU8(src_all.data(), im.h, im.w, im.c, stride, noise.data(), params.data(), views, out.data(),
                         ws.ptr, ws.bytes, kStream) != cudaSuccess) {
    Report(false, name, "launch refused");
    return;
  }
  std::vector<uint8_t> ref(per);
  for (int64_t v = 0; v < views; ++v) {
    const cu::ElasticViewParams& p = params[static_cast<size_t>(v)];
    sslinv::ElasticSpec spec;
    spec.sigma = p.sigma;
    spec.alpha = p.alpha;
    for (int i = 0; i < 6; ++i) spec.affine_offsets[i] = p.affine_offsets[i];
    spec.noise_x = noise.data() + v * 2 * hw;
    spec.noise_y = spec.noise_x + hw;
    if (!sslinv::ElasticU8(sources[distinct_sources ? static_cast<size_t>(v) : 0].View(), spec, ref.data(), false).ok()) {
      Report(false, name, "the CPU op failed for view " + std::to_string(v));
      return;
    }
    const std::string d = Diff(out.data() + per * static_cast<size_t>(v), ref.data(), per, im.w, im.c);
    if (!d.empty()) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "view %lld (sigma %g, alpha %g): ", static_cast<long long>(v), p.sigma, p.alpha);
      Report(false, name + " bit-exact", buf + d);
      return;
    }
  }
  Report(out.GuardsIntact() ? true : false, name + " bit-exact, nothing written outside dst", "wrote outside dst");
}

// GaussianBlur17FieldsF32 against GaussianBlur17F32, one sigma per field, float bits compared.
void CheckBlur(int64_t h, int64_t w, const std::vector<double>& sigmas, uint64_t seed) {
  const int64_t fields = static_cast<int64_t>(sigmas.size()), n = h * w;
  Rng r(seed);
  std::vector<float> src(static_cast<size_t>(fields * n));
  r.Fill(src, -1.0f, 1.0f);
  // dst with guard values on both sides, to catch stores outside it.
  const float guard = -12345.5f;
  std::vector<float> dst(static_cast<size_t>(fields * n + 2 * emu_check::kGuard), guard);
  float* d = dst.data() + emu_check::kGuard;
  Workspace ws(cu::GaussianBlur17WorkspaceBytes(fields, h, w));
  const std::string name = "gaussian blur 17x17 " + std::to_string(h) + "x" + std::to_string(w) + " (" +
                           std::to_string(fields) + " fields)";
  if (cu::GaussianBlur17FieldsF32(src.data(), h, w, sigmas.data(), fields, d, ws.ptr, ws.bytes, kStream) != cudaSuccess) {
    Report(false, name, "launch refused");
    return;
  }
  std::vector<float> ref(static_cast<size_t>(fields * n));
  for (int64_t f = 0; f < fields; ++f) {
    if (!sslinv::GaussianBlur17F32(src.data() + f * n, h, w, sigmas[static_cast<size_t>(f)], ref.data() + f * n, false).ok()) {
      Report(false, name, "the CPU op failed");
      return;
    }
  }
  bool guards = true;
  for (int i = 0; i < emu_check::kGuard; ++i) guards = guards && dst[static_cast<size_t>(i)] == guard && dst[dst.size() - 1 - i] == guard;
  if (!guards) {
    Report(false, name, "wrote outside dst");
    return;
  }
  emu_check::ExpectBits(name, d, ref.data(), ref.size());
}

void TestInvalid() {
  const Image im = MakeImage(7, 9, 3, 5);
  std::vector<float> noise(2 * 7 * 9, 0.25f);
  cu::ElasticViewParams p;
  p.sigma = 10;
  Out out(7 * 9 * 3);
  Workspace ws(cu::ElasticWorkspaceBytes(1, 7, 9, 3));
  auto call = [&](const cu::ElasticViewParams& q, int64_t h, int64_t w, int64_t c, size_t ws_bytes, void* wsp,
                  const float* nz) {
    return cu::ElasticViewsU8(im.data.data(), h, w, c, 0, nz, &q, 1, out.data(), wsp, ws_bytes, kStream);
  };
  auto refused = [&](cudaError_t e, const std::string& what) { Report(e == cudaErrorInvalidValue, what + " is refused", "accepted"); };
  refused(call(p, 7, 9, 3, ws.bytes - 1, ws.ptr, noise.data()), "a too-small workspace");
  refused(call(p, 7, 9, 3, ws.bytes - 1, static_cast<uint8_t*>(ws.ptr) + 1, noise.data()), "a misaligned workspace");
  refused(call(p, 7, 9, 3, ws.bytes, ws.ptr, nullptr), "missing noise");
  refused(call(p, 7, 9, 5, ws.bytes, ws.ptr, noise.data()), "a 5-channel image");
  refused(call(p, 0, 9, 3, ws.bytes, ws.ptr, noise.data()), "a height of 0");
  refused(call(p, 32768, 1, 1, ws.bytes, ws.ptr, noise.data()), "a side of 32768");
  cu::ElasticViewParams q = p;
  q.sigma = 0;
  refused(call(q, 7, 9, 3, ws.bytes, ws.ptr, noise.data()), "sigma 0");
  q.sigma = std::nan("");
  refused(call(q, 7, 9, 3, ws.bytes, ws.ptr, noise.data()), "a NaN sigma");
  q = p;
  q.alpha = std::numeric_limits<double>::infinity();
  refused(call(q, 7, 9, 3, ws.bytes, ws.ptr, noise.data()), "an infinite alpha");
  q = p;
  q.affine_offsets[4] = std::numeric_limits<float>::quiet_NaN();
  refused(call(q, 7, 9, 3, ws.bytes, ws.ptr, noise.data()), "a NaN affine offset");
  refused(cu::ElasticViewsU8(im.data.data(), 7, 9, 3, 0, noise.data(), &p, 0, out.data(), ws.ptr, ws.bytes, kStream),
          "zero views");
  Report(out.GuardsIntact(), "refused launches leave dst's surroundings untouched", "wrote outside dst");
  std::vector<float> f(6, 0.5f), g(6);
  const double bad = -1.0;
  Workspace bws(cu::GaussianBlur17WorkspaceBytes(1, 2, 3));
  refused(cu::GaussianBlur17FieldsF32(f.data(), 2, 3, &bad, 1, g.data(), bws.ptr, bws.bytes, kStream), "a negative blur sigma");
}

}  // namespace

int main() {
  // The blur alone: sides of 1 (the identity pass), 2 and 5 (17 taps reflected several times), odd
  // larger fields; sigmas from a one-tap kernel to one flatter than 17 taps.
  const std::vector<double> sigmas = {0.05, 0.3, 0.6, 1.0, 2.5, 10.0, 27.0, 50.0, 120.0};
  CheckBlur(37, 53, sigmas, 1);
  CheckBlur(1, 29, sigmas, 2);
  CheckBlur(31, 1, sigmas, 3);
  CheckBlur(1, 1, {0.5, 10.0}, 4);
  CheckBlur(2, 5, sigmas, 5);
  CheckBlur(17, 19, {0.6, 3.3, 10.0}, 6);

  // The study's deform: sigmas trunc(linspace(10, 50, 8)), alpha 1, affine offsets +-50.
  std::vector<ViewCase> study;
  for (double s : {10.0, 15.0, 21.0, 27.0, 32.0, 38.0, 44.0, 50.0}) study.push_back({s, 1.0, 50.0f, Noise::kUniform});
  // Everything else: the warp alone, negative and large alphas (maps far outside the image), int32
  // overflow of the map, far affine offsets, one-tap kernels on 1/64 noise (exact half steps), NaN
  // and infinite noise, small and large sigmas.
  const std::vector<ViewCase> edge = {
      {10.0, 0.0, 50.0f, Noise::kUniform},      {3.3, 34.0, 50.0f, Noise::kUniform},
      {0.7, -20.0, 5.0f, Noise::kUniform},      {21.0, 1e4, 50.0f, Noise::kUniform},
      {44.0, 3e5, 0.5f, Noise::kUniform},       {15.0, 3e9, 50.0f, Noise::kUniform},
      {27.0, 1.0, 500.0f, Noise::kUniform},     {0.05, 1.0, 0.0f, Noise::kQuantised},
      {0.05, -3.0, 20.0f, Noise::kQuantised},   {10.0, 200.0, 50.0f, Noise::kSpecial},
      {120.0, 1.0, 50.0f, Noise::kUniform},     {0.3, 5.0, 50.0f, Noise::kUniform},
      {32.0, 2e3, 50.0f, Noise::kUniform},      {50.0, -7e4, 50.0f, Noise::kUniform},
      {0.05, 60.0, 50.0f, Noise::kSplitRounding},
  };
  // (Each emulated block runs 256 OS threads: the many-view checks use small images.)
  CheckElastic("elastic, the study's sigmas", MakeImage(37, 53, 3, 11), study, 21);
  CheckElastic("elastic, edge cases", MakeImage(37, 53, 3, 12), edge, 22);
  CheckElastic("elastic, edge cases", MakeImage(29, 23, 1, 13), edge, 23);
  CheckElastic("elastic, edge cases", MakeImage(1, 1, 3, 14), edge, 24);
  CheckElastic("elastic, edge cases", MakeImage(1, 29, 1, 15), edge, 25);
  CheckElastic("elastic, edge cases", MakeImage(31, 1, 3, 16), edge, 26);
  CheckElastic("elastic, edge cases", MakeImage(2, 2, 4, 17), edge, 27);
  CheckElastic("elastic, edge cases", MakeImage(5, 3, 2, 18), edge, 28);
  CheckElastic("elastic, a source image per view", MakeImage(19, 23, 3, 19), edge, 29, /*distinct_sources=*/true);
  TestInvalid();
  return emu_check::Finish();
}
