// Emulator tests of native/cuda/blur.cu: both blurs, batched over views, against the CPU ops of
// native/cpu/color.cc (parallel = false), bit for bit, on small odd-sized images (37x23, 23x37,
// 16x16) with C = 3, 1 and 4:
//   GaussianBlurTorchViewsU8: sigmas 1e-5..20 per view, kernel sizes 3 (torchvision's crop // 20 * 2
//     + 1 at these sizes), 5, 9, and the largest the reflect padding allows (2 * side - 1, every tap
//     reflected), non-square kernels and separate sigma_y; the CPU op's FMA chain is reproduced, so
//     rounding half to even and the reflect padding are checked exactly;
//   PilGaussianBlurViewsU8: radii 0, 0.1..2, and radii beyond the image (Pillow's edge_a > edge_b
//     branch).
// Plus a per-view source (src_view_stride), guard bytes around dst, and refused arguments.
// Build and run (the emu-sources line is what test/cuda-emu/emu.test.ts adds):
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/blur_emu_test.cc native/cuda/blur.cu native/cpu/color.cc native/core/threadpool.cc
//     native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc -o /tmp/blur_emu
// emu-sources: native/cpu/color.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/blur.cuh"
#include "emu_buffers.h"
#include "emu_check.h"
#include "ops/color.h"

namespace {

using emu_check::Diff;
using emu_check::Image;
using emu_check::Shape;
using emu_check::kGuard;
using emu_check::Out;
using emu_check::Report;
using emu_check::Workspace;
using emu_check::Rng;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;


// Smooth gradients plus noise and a few hard edges: blurred values then land near .5 often enough
// to exercise the rounding, and the borders differ from their reflections.
Image MakeImage(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  Image im{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h * w * c))};
  Rng r(seed);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t k = 0; k < c; ++k) {
        int v = static_cast<int>((x * 7 + y * 3 + k * 50) % 256);
        if ((x + y) % 5 == 0) v = 255 - v;
        v += static_cast<int>(r.Next() % 31) - 15;
        im.data[static_cast<size_t>((y * w + x) * c + k)] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
      }
    }
  }
  return im;
}




// Compares `views` outputs in `out` with cpu(v, ref); reports one line.
template <typename Cpu>
void CompareViews(const std::string& what, const Image& im, int64_t views, Out& out, Cpu cpu) {
  const size_t per = static_cast<size_t>(im.h * im.w * im.c);
  std::vector<uint8_t> ref(per);
  for (int64_t v = 0; v < views; ++v) {
    if (!cpu(v, ref.data()).ok()) {
      Report(false, what, "the CPU op failed for view " + std::to_string(v));
      return;
    }
    const std::string d = Diff(out.data() + per * static_cast<size_t>(v), ref.data(), per, im.w, im.c);
    if (!d.empty()) {
      Report(false, what + " bit-exact", "view " + std::to_string(v) + ": " + d);
      return;
    }
  }
  if (!out.GuardsIntact()) {
    Report(false, what, "wrote outside dst");
    return;
  }
  Report(true, what + " bit-exact (" + std::to_string(views) + " views)");
}

void TestTorchBlur(const Image& im, int64_t kw, int64_t kh, const std::vector<double>& sx,
                   const std::vector<double>* sy) {
  const int64_t views = static_cast<int64_t>(sx.size());
  const std::string what = "torch gaussian blur " + Shape(im) + " kernel " + std::to_string(kw) + "x" +
                           std::to_string(kh) + (sy ? " (sigma_y separate)" : "");
  Out out(static_cast<size_t>(im.h * im.w * im.c * views));
  Workspace ws(cu::GaussianBlurTorchWorkspaceBytes(views, kw, kh));
  if (cu::GaussianBlurTorchViewsU8(im.data.data(), im.h, im.w, im.c, 0, kw, kh, sx.data(), sy ? sy->data() : nullptr,
                                   views, out.data(), ws.ptr, ws.bytes, kStream) != cudaSuccess) {
    Report(false, what, "launch failed");
    return;
  }
  CompareViews(what, im, views, out, [&](int64_t v, uint8_t* ref) {
    const double a = sx[static_cast<size_t>(v)], b = sy ? (*sy)[static_cast<size_t>(v)] : a;
    return sslinv::GaussianBlurTorchU8(im.View(), kw, kh, a, b, ref, false);
  });
}

void TestPilBlur(const Image& im, const std::vector<double>& radii) {
  const int64_t views = static_cast<int64_t>(radii.size());
  const std::string what = "pil gaussian blur " + Shape(im);
  Out out(static_cast<size_t>(im.h * im.w * im.c * views));
  Workspace ws(cu::PilGaussianBlurWorkspaceBytes(views, im.h, im.w, im.c));
  if (cu::PilGaussianBlurViewsU8(im.data.data(), im.h, im.w, im.c, 0, radii.data(), views, out.data(), ws.ptr,
                                 ws.bytes, kStream) != cudaSuccess) {
    Report(false, what, "launch failed");
    return;
  }
  CompareViews(what, im, views, out, [&](int64_t v, uint8_t* ref) {
    return sslinv::PilGaussianBlurU8(im.View(), radii[static_cast<size_t>(v)], ref, false);
  });
}

// Per-view sources for both blurs.
void TestSourceStride() {
  const int64_t h = 16, w = 16, c = 3, views = 3, stride = h * w * c + 7;
  std::vector<uint8_t> srcs(static_cast<size_t>(stride * views));
  for (int64_t v = 0; v < views; ++v) {
    const Image im = MakeImage(h, w, c, 100 + static_cast<uint64_t>(v));
    std::memcpy(srcs.data() + v * stride, im.data.data(), im.data.size());
  }
  auto view_of = [&](int64_t v) {
    sslinv::ImageU8View iv;
    iv.data = srcs.data() + v * stride;
    iv.height = h;
    iv.width = w;
    iv.channels = c;
    return iv;
  };
  const std::vector<double> sig = {0.7, 1.9, 4.0};
  const size_t per = static_cast<size_t>(h * w * c);
  {
    Out out(per * views);
    Workspace ws(cu::GaussianBlurTorchWorkspaceBytes(views, 5, 5));
    bool ok = cu::GaussianBlurTorchViewsU8(srcs.data(), h, w, c, stride, 5, 5, sig.data(), nullptr, views, out.data(),
                                           ws.ptr, ws.bytes, kStream) == cudaSuccess;
    std::string d = ok ? "" : "launch failed";
    std::vector<uint8_t> ref(per);
    for (int64_t v = 0; ok && v < views; ++v) {
      sslinv::GaussianBlurTorchU8(view_of(v), 5, 5, sig[v], sig[v], ref.data(), false);
      d = Diff(out.data() + per * v, ref.data(), per, w, c);
      ok = d.empty();
    }
    Report(ok && out.GuardsIntact(), "torch gaussian blur with a per-view source bit-exact", d);
  }
  {
    Out out(per * views);
    Workspace ws(cu::PilGaussianBlurWorkspaceBytes(views, h, w, c));
    bool ok = cu::PilGaussianBlurViewsU8(srcs.data(), h, w, c, stride, sig.data(), views, out.data(), ws.ptr,
                                         ws.bytes, kStream) == cudaSuccess;
    std::string d = ok ? "" : "launch failed";
    std::vector<uint8_t> ref(per);
    for (int64_t v = 0; ok && v < views; ++v) {
      sslinv::PilGaussianBlurU8(view_of(v), sig[v], ref.data(), false);
      d = Diff(out.data() + per * v, ref.data(), per, w, c);
      ok = d.empty();
    }
    Report(ok && out.GuardsIntact(), "pil gaussian blur with a per-view source bit-exact", d);
  }
}

void TestInvalid() {
  const Image im = MakeImage(5, 7, 3, 9);
  Out out(5 * 7 * 3);
  Workspace ws(1 << 16);
  const double good[1] = {1.0}, bad[1] = {-1.0}, tiny[1] = {1e-50};
  auto torch = [&](int64_t kw, int64_t kh, const double* s, size_t wsb) {
    return cu::GaussianBlurTorchViewsU8(im.data.data(), 5, 7, 3, 0, kw, kh, s, nullptr, 1, out.data(), ws.ptr, wsb,
                                        kStream);
  };
  Report(torch(4, 3, good, ws.bytes) == cudaErrorInvalidValue, "an even kernel size is refused");
  Report(torch(15, 3, good, ws.bytes) == cudaErrorInvalidValue, "padding of the image side is refused");
  Report(torch(3, 3, bad, ws.bytes) == cudaErrorInvalidValue, "a negative sigma is refused");
  Report(torch(3, 3, tiny, ws.bytes) == cudaErrorInvalidValue, "a sigma underflowing float32 is refused");
  Report(torch(3, 3, good, 8) == cudaErrorInvalidValue, "a too-small torch-blur workspace is refused");
  Report(cu::PilGaussianBlurViewsU8(im.data.data(), 5, 7, 3, 0, bad, 1, out.data(), ws.ptr, ws.bytes, kStream) ==
             cudaErrorInvalidValue,
         "a negative radius is refused");
  Report(cu::PilGaussianBlurViewsU8(im.data.data(), 5, 7, 3, 0, good, 1, out.data(), ws.ptr,
                                    cu::PilGaussianBlurWorkspaceBytes(1, 5, 7, 3) - 1, kStream) ==
             cudaErrorInvalidValue,
         "a too-small pil-blur workspace is refused");
  Report(out.GuardsIntact(), "refused calls write nothing", "guard overwritten");
}

}  // namespace

int main() {
  const Image images[] = {MakeImage(23, 37, 3, 1), MakeImage(37, 23, 1, 2), MakeImage(16, 16, 4, 3)};
  const std::vector<double> sigmas = {1e-5, 0.1, 0.5, 0.8, 1.0, 1.37, 2.0, 5.0, 20.0};
  const std::vector<double> radii = {0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 7.5, 30.0};
  for (const Image& im : images) {
    const int64_t kmax_w = 2 * im.w - 1, kmax_h = 2 * im.h - 1;
    TestTorchBlur(im, 3, 3, sigmas, nullptr);
    TestTorchBlur(im, 9, 9, sigmas, nullptr);
    // A dense sweep at small kernels: more outputs that fall on (or within an FMA rounding of) .5.
    std::vector<double> sweep;
    for (int i = 0; i < 32; ++i) sweep.push_back(0.2 * std::pow(1.09, i));
    TestTorchBlur(im, 5, 5, sweep, nullptr);
    TestTorchBlur(im, kmax_w, kmax_h, {1e-5, 0.6, 3.0, 20.0}, nullptr);
    const std::vector<double> sy = {2.0, 0.3, 20.0};
    TestTorchBlur(im, 5, 11, {0.4, 7.0, 1e-5}, &sy);
    TestPilBlur(im, radii);
  }
  TestSourceStride();
  TestInvalid();
  return emu_check::Finish();
}
