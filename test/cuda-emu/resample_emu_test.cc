// Emulator tests of native/cuda/resample.cu against the CPU ops of native/cpu/resample.cc (called
// with parallel = false), bit for bit:
//   ResampleViewsU8 vs ResampleU8 / ResampleRegionU8: every filter (NEAREST, BOX, BILINEAR, HAMMING,
//     BICUBIC, LANCZOS), shrink and enlarge, only-horizontal and only-vertical resizes (one side
//     unchanged), fractional and integral boxes (the latter a crop: copy), same-size (copy), windows
//     of the output, C = 1..4, 1xN and Nx1 images;
//   ResizeCropNormalizeViewsU8 vs ResizeCropNormalizeU8: the evaluation's Resize(short side) +
//     CenterCrop at small scale, BILINEAR and BICUBIC, crops larger than the resized image (zero
//     padding), a crop partly outside, a crop entirely outside, per-channel mean / std;
// each with several views of different content in one launch, small grid caps (the grid-stride loops
// wrap), and invalid arguments (cudaErrorInvalidValue).
// Build and run:
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/resample_emu_test.cc native/cuda/resample.cu native/cpu/resample.cc
//     native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc
//     native/core/host_allocator.cc -o /tmp/resample_emu
//   /tmp/resample_emu
// emu-sources: native/cpu/resample.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/resample.cuh"
#include "emu_check.h"
#include "ops/resample.h"

namespace {

using emu_check::ExpectBits;
using emu_check::Report;
using emu_check::Rng;
using sslinv::ResampleFilter;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

// Smooth gradients plus noise and hard edges, so that every tap weight matters and both clips
// (below 0 and above 255, from the negative lobes of BICUBIC / LANCZOS) are reached.
std::vector<uint8_t> Images(Rng& r, int64_t views, int64_t h, int64_t w, int64_t c) {
  std::vector<uint8_t> img(static_cast<size_t>(views * h * w * c));
  for (int64_t v = 0; v < views; ++v) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        for (int64_t k = 0; k < c; ++k) {
          int val = static_cast<int>((x * 37 + y * 11 + k * 50 + v * 90) % 256);
          if ((x / 3 + y / 2 + v) % 4 == 0) val = ((x + y) & 1) ? 255 : 0;
          if (r.Next() % 5 == 0) val = static_cast<int>(r.Next() % 256);
          img[static_cast<size_t>(((v * h + y) * w + x) * c + k)] = static_cast<uint8_t>(val);
        }
      }
    }
  }
  return img;
}

void ExpectOk(const std::string& what, cudaError_t e) {
  if (e != cudaSuccess) Report(false, what + " launch", cudaGetErrorString(e));
}

bool ExpectStatus(const std::string& what, const sslinv::Status& st) {
  if (!st.ok()) Report(false, what, st.message());
  return st.ok();
}

const char* ModeName(cu::ResamplePlan::Mode m) {
  switch (m) {
    case cu::ResamplePlan::Mode::kCopy: return "copy";
    case cu::ResamplePlan::Mode::kHorizontal: return "horizontal";
    case cu::ResamplePlan::Mode::kVertical: return "vertical";
    case cu::ResamplePlan::Mode::kBoth: return "both passes";
  }
  return "?";
}

struct Case {
  const char* name;
  int64_t h, w;
  int64_t oh, ow;
  ResampleFilter filter;
  bool has_box;
  float box[4];
  sslinv::Window region;  // height 0: the whole output
  cu::ResamplePlan::Mode expect;
};

void RunResample(Rng& rng, const Case& k, int64_t channels, int64_t views, int grid_cap) {
  sslinv::ResampleSpec spec;
  spec.out_height = k.oh;
  spec.out_width = k.ow;
  spec.filter = k.filter;
  spec.has_box = k.has_box;
  std::memcpy(spec.box, k.box, sizeof spec.box);
  sslinv::Window region = k.region;
  if (region.height == 0) {
    region.top = region.left = 0;
    region.height = k.oh;
    region.width = k.ow;
  }
  const std::string what = std::string(k.name) + " " + std::to_string(k.h) + "x" + std::to_string(k.w) + "x" +
                           std::to_string(channels) + " -> " + std::to_string(k.oh) + "x" + std::to_string(k.ow) +
                           " window " + std::to_string(region.height) + "x" + std::to_string(region.width) + "+" +
                           std::to_string(region.top) + "+" + std::to_string(region.left) + ", " +
                           std::to_string(views) + " views";
  const std::vector<uint8_t> src = Images(rng, views, k.h, k.w, channels);
  const size_t out_n = static_cast<size_t>(region.height * region.width * channels);
  std::vector<uint8_t> ref(out_n * views), out(out_n * views, 0xcd);
  for (int64_t v = 0; v < views; ++v) {
    sslinv::ImageU8View view;
    view.data = src.data() + v * k.h * k.w * channels;
    view.height = k.h;
    view.width = k.w;
    view.channels = channels;
    if (!ExpectStatus(what + " CPU reference", sslinv::ResampleRegionU8(view, spec, region, ref.data() + v * out_n, false))) {
      return;
    }
  }
  cu::ResamplePlan plan;
  if (!ExpectStatus(what + " plan", cu::PlanResampleRegion(k.h, k.w, channels, spec, region, &plan))) return;
  if (plan.mode != k.expect) {
    Report(false, what + " plan mode", std::string("got ") + ModeName(plan.mode) + ", expected " + ModeName(k.expect));
  }
  std::vector<uint8_t> ws(plan.WorkspaceBytes(views));
  ExpectOk(what, cu::ResampleViewsU8(src.data(), views, plan, plan.table.data(), ws.data(), ws.size(), out.data(),
                                     kStream, grid_cap));
  ExpectBits(what + " (" + ModeName(plan.mode) + ")", out.data(), ref.data(), out.size());
}

void TestResample(Rng& rng) {
  using M = cu::ResamplePlan::Mode;
  const Case cases[] = {
      {"bilinear shrink", 37, 23, 16, 11, ResampleFilter::kBilinear, false, {}, {}, M::kBoth},
      {"bilinear enlarge", 16, 9, 41, 30, ResampleFilter::kBilinear, false, {}, {}, M::kBoth},
      {"bicubic shrink", 37, 23, 13, 9, ResampleFilter::kBicubic, false, {}, {}, M::kBoth},
      {"bicubic enlarge", 16, 9, 27, 31, ResampleFilter::kBicubic, false, {}, {}, M::kBoth},
      {"lanczos shrink", 37, 23, 11, 17, ResampleFilter::kLanczos, false, {}, {}, M::kBoth},
      {"hamming mixed", 16, 9, 7, 20, ResampleFilter::kHamming, false, {}, {}, M::kBoth},
      {"box shrink", 37, 23, 12, 7, ResampleFilter::kBox, false, {}, {}, M::kBoth},
      {"nearest mixed", 37, 23, 14, 40, ResampleFilter::kNearest, false, {}, {}, M::kBoth},
      {"nearest box", 16, 9, 10, 12, ResampleFilter::kNearest, true, {0.5f, 1.25f, 8.75f, 15.0f}, {}, M::kBoth},
      {"bilinear only-horizontal", 16, 9, 16, 5, ResampleFilter::kBilinear, false, {}, {}, M::kHorizontal},
      {"bicubic only-vertical", 16, 9, 30, 9, ResampleFilter::kBicubic, false, {}, {}, M::kVertical},
      {"bilinear same size", 16, 9, 16, 9, ResampleFilter::kBilinear, false, {}, {}, M::kCopy},
      {"bilinear fractional box", 37, 23, 20, 15, ResampleFilter::kBilinear, true, {1.5f, 2.25f, 21.0f, 33.5f}, {},
       M::kBoth},
      {"bicubic integral-box crop", 37, 23, 20, 15, ResampleFilter::kBicubic, true, {3.0f, 5.0f, 18.0f, 25.0f}, {},
       M::kCopy},
      {"bilinear box same width", 37, 23, 30, 23, ResampleFilter::kBilinear, true, {0.0f, 2.0f, 23.0f, 31.0f}, {},
       M::kVertical},
      {"bilinear box, output height = source height", 37, 23, 37, 15, ResampleFilter::kBilinear, true,
       {1.5f, 3.0f, 21.0f, 30.0f}, {}, M::kBoth},
      {"bicubic box from 0, output width = source width", 16, 9, 20, 9, ResampleFilter::kBicubic, true,
       {0.0f, 1.0f, 7.5f, 15.0f}, {}, M::kBoth},
      {"bilinear 1xN", 1, 23, 3, 10, ResampleFilter::kBilinear, false, {}, {}, M::kBoth},
      {"bicubic Nx1", 23, 1, 9, 4, ResampleFilter::kBicubic, false, {}, {}, M::kBoth},
      {"bilinear window", 37, 23, 41, 29, ResampleFilter::kBilinear, false, {}, {5, 3, 30, 20}, M::kBoth},
      {"lanczos window", 37, 23, 15, 11, ResampleFilter::kLanczos, false, {}, {2, 1, 9, 7}, M::kBoth},
      {"nearest window", 16, 9, 31, 17, ResampleFilter::kNearest, false, {}, {4, 6, 20, 9}, M::kBoth},
  };
  int i = 0;
  for (const Case& k : cases) {
    const int64_t channels = (i % 4) + 1;  // C = 1, 2, 3, 4 across the cases
    RunResample(rng, k, channels, 3, i % 3 == 0 ? 2 : 0);
    if (channels != 3) RunResample(rng, k, 3, 2, 0);
    ++i;
  }
}

void RunNormalize(Rng& rng, const char* name, int64_t h, int64_t w, int64_t channels, int64_t oh, int64_t ow,
                  ResampleFilter filter, const sslinv::Window& crop, int64_t views, int grid_cap) {
  sslinv::ResampleSpec spec;
  spec.out_height = oh;
  spec.out_width = ow;
  spec.filter = filter;
  const std::string what = std::string(name) + " " + std::to_string(h) + "x" + std::to_string(w) + "x" +
                           std::to_string(channels) + " -> " + std::to_string(oh) + "x" + std::to_string(ow) +
                           " crop " + std::to_string(crop.height) + "x" + std::to_string(crop.width) + " at (" +
                           std::to_string(crop.top) + ", " + std::to_string(crop.left) + "), " +
                           std::to_string(views) + " views";
  const float mean[4] = {0.485f, 0.456f, 0.406f, 0.5f};
  const float std_[4] = {0.229f, 0.224f, 0.225f, 0.25f};
  const std::vector<uint8_t> src = Images(rng, views, h, w, channels);
  const size_t out_n = static_cast<size_t>(channels * crop.height * crop.width);
  std::vector<float> ref(out_n * views), out(out_n * views, -1234.5f);
  for (int64_t v = 0; v < views; ++v) {
    sslinv::ImageU8View view;
    view.data = src.data() + v * h * w * channels;
    view.height = h;
    view.width = w;
    view.channels = channels;
    if (!ExpectStatus(what + " CPU reference",
                      sslinv::ResizeCropNormalizeU8(view, spec, crop, mean, std_, ref.data() + v * out_n, false))) {
      return;
    }
  }
  cu::ResamplePlan plan;
  if (!ExpectStatus(what + " plan", cu::PlanResizeCropNormalize(h, w, channels, spec, crop, &plan))) return;
  std::vector<uint8_t> ws(plan.WorkspaceBytes(views));
  ExpectOk(what, cu::ResizeCropNormalizeViewsU8(src.data(), views, plan, plan.table.data(), mean, std_, ws.data(),
                                                ws.size(), out.data(), kStream, grid_cap));
  ExpectBits(what + " (" + ModeName(plan.mode) + ")", out.data(), ref.data(), out.size());
}

// torchvision's Resize(s) (short side s, the long side int(s * long / short)) and CenterCrop(c)
// offsets: int(round((side - c) / 2.0)).
sslinv::Window CenterCrop(int64_t oh, int64_t ow, int64_t c) {
  sslinv::Window w;
  w.height = w.width = c;
  w.top = static_cast<int64_t>(std::nearbyint((oh - c) / 2.0));
  w.left = static_cast<int64_t>(std::nearbyint((ow - c) / 2.0));
  return w;
}

void TestNormalize(Rng& rng) {
  // 37x23 -> Resize(16): 25x16, CenterCrop(14) (the evaluation's 256 / 224 at small scale).
  RunNormalize(rng, "eval-style bilinear", 37, 23, 3, 25, 16, ResampleFilter::kBilinear, CenterCrop(25, 16, 14), 4, 2);
  RunNormalize(rng, "eval-style bicubic", 37, 23, 3, 25, 16, ResampleFilter::kBicubic, CenterCrop(25, 16, 14), 3, 0);
  // Enlarge: 16x9 -> Resize(20): 35x20, CenterCrop(18).
  RunNormalize(rng, "enlarge bilinear", 16, 9, 3, 35, 20, ResampleFilter::kBilinear, CenterCrop(35, 20, 18), 3, 0);
  // Crop larger than the resized image: zero padding on every side of one dimension, or both.
  RunNormalize(rng, "crop larger (width)", 37, 23, 3, 25, 16, ResampleFilter::kBilinear, CenterCrop(25, 16, 21), 2, 0);
  RunNormalize(rng, "crop larger (both)", 16, 9, 3, 12, 7, ResampleFilter::kBicubic, CenterCrop(12, 7, 15), 2, 0);
  // Only one pass, and no resize at all (copy), with padding.
  RunNormalize(rng, "only-vertical", 16, 9, 3, 21, 9, ResampleFilter::kBilinear, CenterCrop(21, 9, 11), 2, 0);
  RunNormalize(rng, "only-horizontal", 16, 9, 1, 16, 13, ResampleFilter::kBilinear, CenterCrop(16, 13, 12), 2, 0);
  RunNormalize(rng, "same size", 16, 9, 4, 16, 9, ResampleFilter::kBilinear, CenterCrop(16, 9, 12), 2, 0);
  // 1xN: the crop pads above and below.
  RunNormalize(rng, "1xN", 1, 23, 3, 1, 16, ResampleFilter::kBilinear, CenterCrop(1, 16, 8), 2, 0);
  // Hand-made windows: partly outside (negative offsets), and entirely outside (all padding).
  sslinv::Window partly;
  partly.top = -3;
  partly.left = 4;
  partly.height = 9;
  partly.width = 17;
  RunNormalize(rng, "crop partly outside", 37, 23, 2, 15, 11, ResampleFilter::kLanczos, partly, 2, 0);
  sslinv::Window outside;
  outside.top = 40;
  outside.left = 0;
  outside.height = 5;
  outside.width = 6;
  RunNormalize(rng, "crop entirely outside", 37, 23, 3, 15, 11, ResampleFilter::kBilinear, outside, 2, 0);
  RunNormalize(rng, "nearest", 37, 23, 3, 25, 16, ResampleFilter::kNearest, CenterCrop(25, 16, 14), 2, 0);
}

void TestInvalid() {
  sslinv::ResampleSpec spec;
  spec.out_height = 8;
  spec.out_width = 6;
  spec.filter = ResampleFilter::kBilinear;
  sslinv::Window all;
  all.height = 8;
  all.width = 6;
  cu::ResamplePlan plan, nplan;
  bool ok = cu::PlanResampleRegion(16, 9, 3, spec, all, &plan).ok();
  ok &= cu::PlanResizeCropNormalize(16, 9, 3, spec, CenterCrop(8, 6, 4), &nplan).ok();
  sslinv::Window bad = all;
  bad.height = 9;
  ok &= !cu::PlanResampleRegion(16, 9, 3, spec, bad, &plan).ok();  // window outside the output
  ok &= !cu::PlanResampleRegion(16, 9, 5, spec, all, &plan).ok();  // channels
  ok &= cu::PlanResampleRegion(16, 9, 3, spec, all, &plan).ok();
  std::vector<uint8_t> src(16 * 9 * 3), dst(8 * 6 * 3 * 2), ws(plan.WorkspaceBytes(2));
  std::vector<float> fdst(4 * 4 * 3);
  const float mean[3] = {0, 0, 0}, good_std[3] = {1, 1, 1}, zero_std[3] = {1, 0, 1};
  ok &= cu::ResampleViewsU8(src.data(), 2, plan, plan.table.data(), ws.data(), ws.size() - 1, dst.data(), kStream) ==
        cudaErrorInvalidValue;  // workspace too small
  ok &= cu::ResampleViewsU8(src.data(), 2, plan, nullptr, ws.data(), ws.size(), dst.data(), kStream) ==
        cudaErrorInvalidValue;  // no table
  ok &= cu::ResampleViewsU8(src.data(), 0, plan, plan.table.data(), ws.data(), ws.size(), dst.data(), kStream) ==
        cudaErrorInvalidValue;
  ok &= cu::ResampleViewsU8(src.data(), 1, nplan, nplan.table.data(), ws.data(), ws.size(), dst.data(), kStream) ==
        cudaErrorInvalidValue;  // a normalize plan
  std::vector<uint8_t> nws(nplan.WorkspaceBytes(1));
  ok &= cu::ResizeCropNormalizeViewsU8(src.data(), 1, nplan, nplan.table.data(), mean, zero_std, nws.data(), nws.size(),
                                       fdst.data(), kStream) == cudaErrorInvalidValue;
  ok &= cu::ResizeCropNormalizeViewsU8(src.data(), 1, plan, plan.table.data(), mean, good_std, ws.data(), ws.size(),
                                       fdst.data(), kStream) == cudaErrorInvalidValue;  // not a normalize plan
  Report(ok, "invalid plans and arguments are refused");
}

}  // namespace

int main() {
  Rng rng(7);
  TestResample(rng);
  TestNormalize(rng);
  TestInvalid();
  return emu_check::Finish();
}
