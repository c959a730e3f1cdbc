// Emulator tests of native/cuda/geometric.cu: every launcher, batched over views, against the CPU ops
// of native/cpu/geometric.cc (parallel = false), bit for bit, on small odd-sized images (37x23,
// 23x37, and 16x16 for the quarter-turn transposes) with C = 3, 1 and 4:
//   Pillow's nearest affine transform with matrices that select each of its three engines (the
//     scaling engine, 16.16 fixed point, and the double engine: huge coefficients, a tiny scale);
//   rotation over 0..360 including 0, 90, 180, 270, negative and > 360 angles;
//   torchvision affine: translations with fractional offsets, scales 0.25..2 with 1 degree of
//     shear, shears of +-160 degrees, rotations;
//   flips, and crop boxes partly or wholly outside the image (per-view sizes, strided dst).
// Each view's output is compared with the CPU op's, and the bytes around dst are checked untouched.
// Build and run (the emu-sources line is what test/cuda-emu/emu.test.ts adds):
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/geometric_emu_test.cc native/cuda/geometric.cu native/cpu/geometric.cc
//     native/cpu/resample.cc native/core/threadpool.cc native/core/status.cc
//     native/core/cpu_features.cc native/core/host_allocator.cc -o /tmp/geometric_emu
// emu-sources: native/cpu/geometric.cc native/cpu/resample.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/geometric.cuh"
#include "emu_buffers.h"
#include "emu_check.h"
#include "ops/geometric.h"

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


Image MakeImage(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  Image im{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h * w * c))};
  Rng r(seed);
  // Nonzero values, so that a wrongly zeroed pixel never matches by accident.
  for (auto& b : im.data) b = static_cast<uint8_t>(1 + r.Next() % 255);
  return im;
}




// The engine Pillow (and the CPU op) picks, recomputed here to show every engine is exercised.
enum Engine { kScaleEngine, kFixedEngine, kFloatEngine };
bool Fits(const double a[6], double x, double y) {
  const double px = x * a[0] + y * a[1] + a[2];
  const double py = x * a[3] + y * a[4] + a[5];
  return std::fabs(px) < 32768.0 && std::fabs(py) < 32768.0;
}
Engine EngineOf(const double a[6], int64_t oh, int64_t ow) {
  if (a[1] == 0 && a[3] == 0) return kScaleEngine;
  const double H = static_cast<double>(oh), W = static_cast<double>(ow);
  if (Fits(a, 0, 0) && Fits(a, W, H) && Fits(a, 0, H) && Fits(a, W, 0)) return kFixedEngine;
  return kFloatEngine;
}
int g_engine_hits[3] = {0, 0, 0};

// Runs a same-size launcher's views against `cpu(view index, dst)` and reports one line.
template <typename Gpu, typename Cpu>
void CheckViews(const std::string& what, const Image& im, int64_t views, int64_t oh, int64_t ow, Gpu gpu, Cpu cpu) {
  const size_t per = static_cast<size_t>(oh * ow * im.c);
  Out out(per * static_cast<size_t>(views));
  Workspace ws(cu::GeometricWorkspaceBytes(views, oh, ow));
  const cudaError_t e = gpu(out.data(), ws.ptr, ws.bytes);
  if (e != cudaSuccess) {
    Report(false, what + " " + Shape(im), "launch failed");
    return;
  }
  std::vector<uint8_t> ref(per);
  for (int64_t v = 0; v < views; ++v) {
    const sslinv::Status st = cpu(v, ref.data());
    if (!st.ok()) {
      Report(false, what + " " + Shape(im), "the CPU op failed for view " + std::to_string(v));
      return;
    }
    const std::string d = Diff(out.data() + per * static_cast<size_t>(v), ref.data(), per, ow, im.c);
    if (!d.empty()) {
      Report(false, what + " " + Shape(im) + " bit-exact", "view " + std::to_string(v) + ": " + d);
      return;
    }
  }
  if (!out.GuardsIntact()) {
    Report(false, what + " " + Shape(im), "wrote outside dst");
    return;
  }
  Report(true, what + " " + Shape(im) + " bit-exact (" + std::to_string(views) + " views)");
}

void TestPilAffine(const Image& im) {
  const double H = static_cast<double>(im.h), W = static_cast<double>(im.w);
  std::vector<double> m;
  auto add = [&](std::initializer_list<double> a) { m.insert(m.end(), a.begin(), a.end()); };
  // Scaling engine: scales, flips, fractional offsets, steps whose running sums differ from k * a0.
  add({1.0, 0.0, 0.0, 0.0, 1.0, 0.0});
  add({0.1, 0.0, -0.05, 0.0, 0.3, 0.2});
  add({1.7, 0.0, -3.25, 0.0, 0.55, 1.5});
  add({-1.0, 0.0, W, 0.0, -0.7, H + 0.3});
  add({0.0, 0.0, 5.5, 0.0, 0.0, 7.5});  // every output pixel reads one source pixel
  // Fixed point: rotations, shears, coefficients that round at the 2^-16 boundary.
  add({0.8, 0.6, -5.0, -0.6, 0.8, 9.0});
  add({1.0, 0.3, -2.0, 0.0, 1.0, 0.0});
  add({1.0, 0.0, 0.0, -0.25, 1.0, 3.0});
  add({-0.5, 1.25, 10.0, 0.75, -0.33, 12.0});
  add({0.5 + 1.0 / 131072, 1.0 / 65536, 1.0 / 131072, -1.0 / 65536, 1.0 - 1.0 / 131072, 0.49999});
  // Double engine: a corner beyond 32768 (large coefficients, huge translations), and a row whose
  // x positions are a running sum of 0.1 (0.1 added ten times is 0.9999999999999999).
  add({0.1, 4000.0, -42000.05, 0.0, 1.0, 0.5});
  add({0.3, -3000.0, 30000.0 + 0.7, 0.01, 0.9, 0.25});
  add({16.0, 0.3, 0.5, 0.37, 0.9, 1.0});
  add({0.8, 0.6, 40000.0, -0.6, 0.8, -40000.0});
  add({1000.0, 0.01, -W * 500.0, 0.02, 1000.0, -H * 500.0});
  const int64_t views = static_cast<int64_t>(m.size() / 6);
  for (const auto& size : {std::pair<int64_t, int64_t>{im.h, im.w}, std::pair<int64_t, int64_t>{13, 41}}) {
    const int64_t oh = size.first, ow = size.second;
    for (int64_t v = 0; v < views; ++v) ++g_engine_hits[EngineOf(m.data() + 6 * v, oh, ow)];
    CheckViews(
        "pil affine nearest out " + std::to_string(oh) + "x" + std::to_string(ow), im, views, oh, ow,
        [&](uint8_t* dst, void* ws, size_t wsb) {
          return cu::PilAffineNearestViewsU8(im.data.data(), im.h, im.w, im.c, 0, m.data(), views, oh, ow, dst, ws,
                                             wsb, kStream);
        },
        [&](int64_t v, uint8_t* dst) { return sslinv::PilAffineNearestU8(im.View(), m.data() + 6 * v, oh, ow, dst, false); });
  }
  // A wide output so that a0 = 16 crosses 32768 at the far corner: double engine, several columns in.
  {
    const double a[6] = {0.017, 0.4, 0.3, 0.005, 7.1, 0.2};
    const double b[6] = {16.0 * 0.99, 0.01, 0.3, 0.005, 7.1, 0.2};
    std::vector<double> mm(a, a + 6);
    mm.insert(mm.end(), b, b + 6);
    const int64_t oh = 3, ow = 2100;
    for (int v = 0; v < 2; ++v) ++g_engine_hits[EngineOf(mm.data() + 6 * v, oh, ow)];
    CheckViews(
        "pil affine nearest wide out 3x2100", im, 2, oh, ow,
        [&](uint8_t* dst, void* ws, size_t wsb) {
          return cu::PilAffineNearestViewsU8(im.data.data(), im.h, im.w, im.c, 0, mm.data(), 2, oh, ow, dst, ws, wsb,
                                             kStream);
        },
        [&](int64_t v, uint8_t* dst) { return sslinv::PilAffineNearestU8(im.View(), mm.data() + 6 * v, oh, ow, dst, false); });
  }
}

void TestRotate(const Image& im) {
  std::vector<double> angles = {0.0, 90.0, 180.0, 270.0, 360.0, -90.0, 450.0, -180.0, 1.0, 15.5, 33.3, 45.0, 89.999,
                                90.0001, 135.0, 200.0, 268.7, 300.0, 359.5, -37.2, 720.0 + 12.25, 1e-7};
  const int64_t views = static_cast<int64_t>(angles.size());
  for (double a : angles) {
    double m[6];
    sslinv::PilRotateMatrix(a, im.w, im.h, m);
    const double r = std::fmod(std::fmod(a, 360.0) + 360.0, 360.0);
    if (!(r == 0 || r == 180 || ((r == 90 || r == 270) && im.w == im.h))) ++g_engine_hits[EngineOf(m, im.h, im.w)];
  }
  CheckViews(
      "rotate", im, views, im.h, im.w,
      [&](uint8_t* dst, void* ws, size_t wsb) {
        return cu::RotateViewsU8(im.data.data(), im.h, im.w, im.c, 0, angles.data(), views, dst, ws, wsb, kStream);
      },
      [&](int64_t v, uint8_t* dst) { return sslinv::RotateU8(im.View(), angles[static_cast<size_t>(v)], dst, false); });
}

void TestTorchvisionAffine(const Image& im) {
  std::vector<sslinv::AffineParams> ps;
  auto add = [&](double angle, double tx, double ty, double scale, double shx, double shy) {
    sslinv::AffineParams p;
    p.angle = angle;
    p.translate[0] = tx;
    p.translate[1] = ty;
    p.scale = scale;
    p.shear[0] = shx;
    p.shear[1] = shy;
    ps.push_back(p);
  };
  // Translations (the scaling engine), fractional offsets included.
  for (double t : {-7.5, -2.25, -0.5, 0.0, 0.3, 1.0, 3.7, 11.5}) add(0, t, -t * 0.6, 1, 0, 0);
  // Scales 0.25..2 with a 1-degree shear (fixed point).
  for (double s : {0.25, 0.5, 0.8, 1.0, 1.25, 1.6, 2.0}) add(0, 0, 0, s, 1.0, 0);
  // Shears +-160 degrees, both axes.
  for (double sh : {-160.0, -90.5, -45.0, -10.0, 10.0, 60.0, 160.0}) add(0, 0, 0, 1, sh, 0);
  add(0, 0, 0, 1, 0, 160.0);
  add(0, 0, 0, 1, 30.0, -20.0);
  // Rotations and combinations.
  for (double a : {-170.0, -33.0, 5.0, 90.0, 180.0, 270.0}) add(a, 1.5, -2.5, 1.1, 3.0, 0);
  // A tiny scale (inverse coefficients of 1000) and a huge translation: the double engine.
  add(10.0, 0, 0, 0.001, 0, 0);
  add(30.0, 50000.0, -1e5, 1, 0, 0);
  add(3.0, 2.5, 0.5, 0.02, 1.0, 0);
  const int64_t views = static_cast<int64_t>(ps.size());
  const double center[2] = {static_cast<double>(im.w) * 0.5, static_cast<double>(im.h) * 0.5};
  for (const auto& p : ps) {
    double m[6];
    sslinv::TorchvisionInverseAffineMatrix(center, p, m);
    ++g_engine_hits[EngineOf(m, im.h, im.w)];
  }
  CheckViews(
      "torchvision affine", im, views, im.h, im.w,
      [&](uint8_t* dst, void* ws, size_t wsb) {
        return cu::TorchvisionAffineViewsU8(im.data.data(), im.h, im.w, im.c, 0, ps.data(), views, dst, ws, wsb,
                                            kStream);
      },
      [&](int64_t v, uint8_t* dst) { return sslinv::TorchvisionAffineU8(im.View(), ps[static_cast<size_t>(v)], dst, false); });
}

void TestFlip(const Image& im) {
  const std::vector<uint8_t> horizontal = {1, 0, 0, 1, 1};
  const int64_t views = static_cast<int64_t>(horizontal.size());
  CheckViews(
      "flip", im, views, im.h, im.w,
      [&](uint8_t* dst, void* ws, size_t wsb) {
        return cu::FlipViewsU8(im.data.data(), im.h, im.w, im.c, 0, horizontal.data(), views, dst, ws, wsb, kStream);
      },
      [&](int64_t v, uint8_t* dst) { return sslinv::FlipU8(im.View(), horizontal[static_cast<size_t>(v)] != 0, dst, false); });
}

void TestCrop(const Image& im) {
  // Boxes inside, overlapping each border, containing the image, and wholly outside; plus those
  // ResizedCropBox makes from fractional torchvision arguments.
  std::vector<int64_t> boxes = {0, 0, im.w, im.h, 3, 2, 20, 15, -5, -3, 10, 8, im.w - 4, im.h - 6, im.w + 7, im.h + 2,
                                -9, -11, im.w + 9, im.h + 11, im.w + 1, 0, im.w + 5, 4, 5, -20, 9, -2, 1, 1, 2, 2};
  const double specs[][4] = {{2.5, 3.5, 10.2, 7.7}, {-1.5, 0.49, 30.0, 30.0}, {0.5, 1.5, 3.0, 2.0}};
  for (const auto& s : specs) {
    sslinv::ResizedCropSpec spec;
    spec.top = s[0];
    spec.left = s[1];
    spec.height = s[2];
    spec.width = s[3];
    int64_t b[4];
    if (sslinv::ResizedCropBox(spec, b).ok()) boxes.insert(boxes.end(), b, b + 4);
  }
  const int64_t views = static_cast<int64_t>(boxes.size() / 4);
  int64_t largest = 0;
  for (int64_t v = 0; v < views; ++v) {
    largest = std::max(largest, (boxes[4 * v + 2] - boxes[4 * v]) * (boxes[4 * v + 3] - boxes[4 * v + 1]) * im.c);
  }
  const int64_t stride = largest + 3;  // odd, so the views' starts are unaligned
  Out out(static_cast<size_t>(stride * views));
  Workspace ws(cu::GeometricWorkspaceBytes(views, 0, 0));
  const std::string what = "crop boxes " + Shape(im);
  if (cu::CropBoxesViewsU8(im.data.data(), im.h, im.w, im.c, 0, boxes.data(), views, out.data(), stride, ws.ptr,
                           ws.bytes, kStream) != cudaSuccess) {
    Report(false, what, "launch failed");
    return;
  }
  for (int64_t v = 0; v < views; ++v) {
    const int64_t* b = boxes.data() + 4 * v;
    const int64_t ow = b[2] - b[0], oh = b[3] - b[1];
    std::vector<uint8_t> ref(static_cast<size_t>(oh * ow * im.c));
    if (!sslinv::CropBoxU8(im.View(), b[0], b[1], b[2], b[3], ref.data(), false).ok()) {
      Report(false, what, "the CPU op failed");
      return;
    }
    const std::string d = Diff(out.data() + v * stride, ref.data(), ref.size(), ow, im.c);
    if (!d.empty()) {
      Report(false, what + " bit-exact", "view " + std::to_string(v) + ": " + d);
      return;
    }
  }
  Report(out.GuardsIntact(), what + " bit-exact (" + std::to_string(views) + " views)", "wrote outside dst");
}

// Each view reading its own source image (src_view_stride), for rotate.
void TestSourceStride() {
  const int64_t h = 16, w = 16, c = 3, views = 4;
  const int64_t stride = h * w * c + 5;
  std::vector<uint8_t> srcs(static_cast<size_t>(stride * views));
  Rng r(77);
  for (auto& b : srcs) b = static_cast<uint8_t>(1 + r.Next() % 255);
  const std::vector<double> angles = {90.0, 33.0, 0.0, 270.0};
  Out out(static_cast<size_t>(h * w * c * views));
  Workspace ws(cu::GeometricWorkspaceBytes(views, h, w));
  bool ok = cu::RotateViewsU8(srcs.data(), h, w, c, stride, angles.data(), views, out.data(), ws.ptr, ws.bytes,
                              kStream) == cudaSuccess;
  std::string detail = ok ? "" : "launch failed";
  for (int64_t v = 0; ok && v < views; ++v) {
    sslinv::ImageU8View view;
    view.data = srcs.data() + v * stride;
    view.height = h;
    view.width = w;
    view.channels = c;
    std::vector<uint8_t> ref(static_cast<size_t>(h * w * c));
    sslinv::RotateU8(view, angles[static_cast<size_t>(v)], ref.data(), false);
    detail = Diff(out.data() + v * h * w * c, ref.data(), ref.size(), w, c);
    ok = detail.empty();
  }
  Report(ok && out.GuardsIntact(), "rotate with a per-view source (src_view_stride) bit-exact", detail);
}

void TestInvalid() {
  const Image im = MakeImage(5, 7, 3, 9);
  const double angles[1] = {10.0};
  Out out(5 * 7 * 3);
  Workspace ws(cu::GeometricWorkspaceBytes(1, 5, 7));
  // The rotation by 10 degrees uses the fixed-point engine: plans only, so a workspace one byte short
  // of the plans must be refused. A generous size passes.
  Report(cu::RotateViewsU8(im.data.data(), 5, 7, 3, 0, angles, 1, out.data(), ws.ptr, 8, kStream) ==
             cudaErrorInvalidValue,
         "a too-small workspace is refused");
  Report(cu::RotateViewsU8(im.data.data(), 5, 7, 5, 0, angles, 1, out.data(), ws.ptr, ws.bytes, kStream) ==
             cudaErrorInvalidValue,
         "5 channels are refused");
  const double nan_angle[1] = {std::nan("")};
  Report(cu::RotateViewsU8(im.data.data(), 5, 7, 3, 0, nan_angle, 1, out.data(), ws.ptr, ws.bytes, kStream) ==
             cudaErrorInvalidValue,
         "a NaN angle is refused");
  const int64_t empty_box[4] = {3, 3, 3, 5};
  Report(cu::CropBoxesViewsU8(im.data.data(), 5, 7, 3, 0, empty_box, 1, out.data(), 100, ws.ptr, ws.bytes,
                              kStream) == cudaErrorInvalidValue,
         "an empty crop box is refused");
  Report(out.GuardsIntact(), "refused calls write nothing", "guard overwritten");
}

}  // namespace

int main() {
  const Image images[] = {MakeImage(23, 37, 3, 1), MakeImage(37, 23, 1, 2), MakeImage(16, 16, 4, 3),
                          MakeImage(16, 16, 3, 4)};
  for (const Image& im : images) {
    TestPilAffine(im);
    TestRotate(im);
    TestTorchvisionAffine(im);
    TestFlip(im);
    TestCrop(im);
  }
  TestSourceStride();
  TestInvalid();
  char buf[128];
  std::snprintf(buf, sizeof buf, "scaling %d, fixed point %d, double %d views", g_engine_hits[0], g_engine_hits[1],
                g_engine_hits[2]);
  Report(g_engine_hits[0] > 0 && g_engine_hits[1] > 0 && g_engine_hits[2] > 0,
         std::string("every affine engine is exercised (") + buf + ")", buf);
  return emu_check::Finish();
}
