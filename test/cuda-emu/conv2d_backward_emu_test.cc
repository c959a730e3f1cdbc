// Emulation test of native/cuda/conv2d_backward.cu: the dgrad and wgrad launchers through the host
// CUDA emulator against float64 references computed here straight from the definitions
// (ops/conv2d_backward.h):
//   dx[n, ih, iw, c] = sum over (p, q, k, r, s) with ih = p*sh - ph + r, iw = q*sw - pw + s of
//                      dy[n, p, q, k] * w[k, c, r, s], then + residual, then the ReLU mask
//   dw[k, c, r, s]   = sum over (n, p, q) of dy[n, p, q, k] * x[n, p*sh - ph + r, q*sw - pw + s, c]
// Bound per element (docs/KERNELS.md section 6): |out - ref| <= 1e-5 * (sum |terms| + |residual|);
// masked elements must be +0 exactly. Outputs start as NaN inside guard zones of a sentinel, so an
// element no thread writes, or a store outside the output, fails. wgrad runs twice and must give
// the same bits; cases are chosen so several take more than one N*P*Q slice. Also: the scalar paths
// (odd C or K, misaligned pointers), empty stride phases (1x1 stride 2, stride larger than the
// kernel or the map), windows only in the padding, N = 0, bad arguments, and no misaligned vector
// access. wgrad is checked in both orientations of its GEMM (K or R*S*C on the tile's rows).
//
// emu-sources: native/cuda/conv2d_wgrad.cu
// Build and run from the repository root:
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++ test/cuda-emu/conv2d_backward_emu_test.cc
//     native/cuda/conv2d_backward.cu native/cuda/conv2d_wgrad.cu -o /tmp/cbw && /tmp/cbw
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/conv2d_backward.cuh"
#include "cuda/kernel_util.cuh"
#include "emu_check.h"

namespace {

using emu_check::Report;
using emu_check::Rng;
using sslinv::cuda::Conv2dShape;
namespace cu = sslinv::cuda;

constexpr double kRtol = 1e-5;
constexpr size_t kGuard = 64;
constexpr float kSentinel = -12345.0f;

enum Epi : unsigned { kNoEpi = 0, kRes = 1, kRelu = 2, kBoth = 3 };

struct Case {
  std::string name;
  Conv2dShape sh;  // n, h, w, c, k, r, s, stride_h, stride_w, pad_h, pad_w
  unsigned epi;
  bool misalign;   // every tensor one float past 16-byte alignment: the scalar paths
};

// Floats at a 16-byte aligned address plus `off`, inside guard zones of kSentinel.
struct Buf {
  std::vector<float> mem;
  size_t base = 0, n = 0;
  Buf(size_t count, int off, float fill) : n(count) {
    mem.assign(count + 2 * kGuard + 8, kSentinel);
    const uintptr_t p = reinterpret_cast<uintptr_t>(mem.data() + kGuard);
    base = kGuard + ((16 - p % 16) % 16) / sizeof(float) + off;
    for (size_t i = 0; i < n; ++i) mem[base + i] = fill;
  }
  float* data() { return mem.data() + base; }
  const float* data() const { return mem.data() + base; }
  bool GuardsIntact() const {
    for (size_t i = 0; i < mem.size(); ++i)
      if ((i < base || i >= base + n) && std::memcmp(&mem[i], &kSentinel, sizeof(float)) != 0) return false;
    return true;
  }
};

// 16-byte aligned device workspace (as cudaMalloc gives), filled with garbage (NaN) to catch reads
// of partial sums no block wrote, with a guard zone of kSentinel after it.
struct Workspace {
  std::vector<float> mem;
  void* ptr = nullptr;
  size_t floats = 0, first = 0;
  explicit Workspace(size_t bytes) : floats(bytes / sizeof(float)) {
    mem.assign(floats + 4 + kGuard, kSentinel);
    const uintptr_t p = reinterpret_cast<uintptr_t>(mem.data());
    first = ((16 - p % 16) % 16) / sizeof(float);
    for (size_t i = 0; i < floats; ++i) mem[first + i] = std::numeric_limits<float>::quiet_NaN();
    if (bytes) ptr = mem.data() + first;
  }
  bool GuardIntact() const {
    for (size_t i = first + floats; i < mem.size(); ++i)
      if (std::memcmp(&mem[i], &kSentinel, sizeof(float)) != 0) return false;
    return true;
  }
};

struct Inputs {
  Buf x, w, dy, res, relu_y;
};

Inputs MakeInputs(const Case& cs, uint64_t seed) {
  const Conv2dShape& s = cs.sh;
  const int off = cs.misalign ? 1 : 0;
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, nw = size_t(s.k) * s.c * s.r * s.s;
  const size_t ndy = size_t(s.n) * s.p() * s.q() * s.k;
  Inputs in{Buf(nx, off, 0), Buf(nw, off, 0), Buf(ndy, off, 0), Buf(nx, off, 0), Buf(nx, off, 0)};
  Rng rng(seed);
  for (size_t i = 0; i < nx; ++i) in.x.data()[i] = rng.Uniform(-1.f, 1.f);
  for (size_t i = 0; i < nw; ++i) in.w.data()[i] = rng.Uniform(-1.f, 1.f);
  for (size_t i = 0; i < ndy; ++i) in.dy.data()[i] = rng.Uniform(-1.f, 1.f);
  for (size_t i = 0; i < nx; ++i) in.res.data()[i] = rng.Uniform(-1.f, 1.f);
  // relu_y: positive, +0, -0, negative and NaN (NaN keeps the gradient, as threshold_backward).
  const float kinds[] = {0.5f, 0.f, -0.f, -1.f, std::numeric_limits<float>::quiet_NaN(), 2.f};
  for (size_t i = 0; i < nx; ++i) in.relu_y.data()[i] = kinds[rng.Next() % 6];
  return in;
}

// float64 dgrad (with the epilogue) and its error scale.
void DgradRef(const Case& cs, const Inputs& in, std::vector<double>& ref, std::vector<double>& scale) {
  const Conv2dShape& s = cs.sh;
  const int P = s.p(), Q = s.q();
  const size_t nx = size_t(s.n) * s.h * s.w * s.c;
  ref.assign(nx, 0.0);
  scale.assign(nx, 0.0);
  const float *dy = in.dy.data(), *w = in.w.data();
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q)
        for (int k = 0; k < s.k; ++k) {
          const double g = dy[((size_t(n) * P + p) * Q + q) * s.k + k];
          for (int r = 0; r < s.r; ++r) {
            const int ih = p * s.stride_h - s.pad_h + r;
            if (ih < 0 || ih >= s.h) continue;
            for (int t = 0; t < s.s; ++t) {
              const int iw = q * s.stride_w - s.pad_w + t;
              if (iw < 0 || iw >= s.w) continue;
              const size_t o = ((size_t(n) * s.h + ih) * s.w + iw) * s.c;
              for (int c = 0; c < s.c; ++c) {
                const double term = g * w[((size_t(k) * s.c + c) * s.r + r) * s.s + t];
                ref[o + c] += term;
                scale[o + c] += std::fabs(term);
              }
            }
          }
        }
  for (size_t i = 0; i < nx; ++i) {
    if (cs.epi & kRes) {
      ref[i] += in.res.data()[i];
      scale[i] += std::fabs(in.res.data()[i]);
    }
    if (cs.epi & kRelu) {
      const float y = in.relu_y.data()[i];
      if (!(y > 0.f || std::isnan(y))) ref[i] = 0.0;
    }
  }
}

void WgradRef(const Conv2dShape& s, const Inputs& in, std::vector<double>& ref, std::vector<double>& scale) {
  const int P = s.p(), Q = s.q();
  ref.assign(size_t(s.k) * s.c * s.r * s.s, 0.0);
  scale.assign(ref.size(), 0.0);
  const float *x = in.x.data(), *dy = in.dy.data();
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q)
        for (int r = 0; r < s.r; ++r) {
          const int ih = p * s.stride_h - s.pad_h + r;
          if (ih < 0 || ih >= s.h) continue;
          for (int t = 0; t < s.s; ++t) {
            const int iw = q * s.stride_w - s.pad_w + t;
            if (iw < 0 || iw >= s.w) continue;
            const float* xp = x + ((size_t(n) * s.h + ih) * s.w + iw) * s.c;
            const float* gp = dy + ((size_t(n) * P + p) * Q + q) * s.k;
            for (int k = 0; k < s.k; ++k)
              for (int c = 0; c < s.c; ++c) {
                const double term = double(gp[k]) * xp[c];
                const size_t o = ((size_t(k) * s.c + c) * s.r + r) * s.s + t;
                ref[o] += term;
                scale[o] += std::fabs(term);
              }
          }
        }
}

std::string ShapeText(const Conv2dShape& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "N%d %dx%d C%d K%d %dx%d s(%d,%d) p(%d,%d)", s.n, s.h, s.w, s.c, s.k, s.r, s.s,
                s.stride_h, s.stride_w, s.pad_h, s.pad_w);
  return buf;
}

double g_worst_dgrad = 0, g_worst_wgrad = 0;       // elementwise |err| / sum |terms|
double g_worst_dgrad_nw = 0, g_worst_wgrad_nw = 0;  // max |err| / max |ref|
int g_cases = 0;
int g_orientation[2][2] = {};  // wgrad cases by [swapped][more than one slice]

// Elementwise bound, then the worst errors for the summary.
void Compare(const std::string& what, const float* out, const std::vector<double>& ref, const std::vector<double>& scale,
             double& worst, double& worst_nw) {
  emu_check::ExpectClose(what, out, ref.data(), ref.size(), kRtol, 0.0, scale.data());
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(out[i] - ref[i]);
    max_err = std::max(max_err, err);
    max_ref = std::max(max_ref, std::fabs(ref[i]));
    if (scale[i] > 0) worst = std::max(worst, err / scale[i]);
  }
  if (max_ref > 0) worst_nw = std::max(worst_nw, max_err / max_ref);
}

void CheckDgrad(const Case& cs, const Inputs& in) {
  const Conv2dShape& s = cs.sh;
  const std::string what = "dgrad " + cs.name + " [" + ShapeText(s) + "]" + (cs.epi & kRes ? " +res" : "") +
                           (cs.epi & kRelu ? " +relu" : "") + (cs.misalign ? " misaligned" : "");
  const size_t nx = size_t(s.n) * s.h * s.w * s.c;
  Buf dx(nx, cs.misalign ? 1 : 0, std::numeric_limits<float>::quiet_NaN());
  Workspace ws(cu::Conv2dBackwardDataWorkspaceBytes(s));
  const cudaError_t err = cu::LaunchConv2dBackwardData(s, in.dy.data(), in.w.data(), cs.epi & kRes ? in.res.data() : nullptr,
                                                       cs.epi & kRelu ? in.relu_y.data() : nullptr, dx.data(), ws.ptr, nullptr);
  Report(err == cudaSuccess, what + ": launch returns cudaSuccess", cudaGetErrorString(err));
  Report(dx.GuardsIntact() && ws.GuardIntact(), what + ": no stores outside dx and the workspace", "guard zone overwritten");
  std::vector<double> ref, scale;
  DgradRef(cs, in, ref, scale);
  Compare(what, dx.data(), ref, scale, g_worst_dgrad, g_worst_dgrad_nw);
  if (cs.epi & kRelu) {  // masked elements are +0 exactly, whatever the sum
    size_t bad = 0;
    for (size_t i = 0; i < nx; ++i) {
      const float y = in.relu_y.data()[i], v = dx.data()[i];
      if (!(y > 0.f || std::isnan(y)) && (std::signbit(v) || v != 0.f)) ++bad;
    }
    Report(bad == 0, what + ": masked elements are +0", std::to_string(bad) + " are not");
  }
}

void CheckWgrad(const Case& cs, const Inputs& in) {
  const Conv2dShape& s = cs.sh;
  const cu::Conv2dWgradPlan plan = cu::Conv2dBackwardWeightPlan(s);
  ++g_orientation[plan.swap][plan.splits > 1];
  const std::string what = "wgrad " + cs.name + " [" + ShapeText(s) + "], " + std::to_string(plan.splits) + " slice(s)" +
                           (plan.swap ? ", R*S*C rows" : ", K rows") + (cs.misalign ? " misaligned" : "");
  const size_t nw = size_t(s.k) * s.c * s.r * s.s;
  std::vector<float> runs[2];
  for (int run = 0; run < 2; ++run) {
    Buf dw(nw, cs.misalign ? 1 : 0, std::numeric_limits<float>::quiet_NaN());
    Workspace ws(cu::Conv2dBackwardWeightWorkspaceBytes(s));
    const cudaError_t err = cu::LaunchConv2dBackwardWeight(s, in.x.data(), in.dy.data(), dw.data(), ws.ptr, nullptr);
    if (run == 0) {
      Report(err == cudaSuccess, what + ": launch returns cudaSuccess", cudaGetErrorString(err));
      Report(dw.GuardsIntact() && ws.GuardIntact(), what + ": no stores outside dw and the workspace",
             "guard zone overwritten");
    }
    runs[run].assign(dw.data(), dw.data() + nw);
  }
  std::vector<double> ref, scale;
  WgradRef(s, in, ref, scale);
  Compare(what, runs[0].data(), ref, scale, g_worst_wgrad, g_worst_wgrad_nw);
  emu_check::ExpectBits(what + ": two runs", runs[1].data(), runs[0].data(), nw);
}

void RunCase(const Case& cs, uint64_t seed) {
  const Inputs in = MakeInputs(cs, seed);
  CheckDgrad(cs, in);
  CheckWgrad(cs, in);
  ++g_cases;
}

Conv2dShape Shape(int n, int h, int w, int c, int k, int r, int s, int sh, int sw, int ph, int pw) {
  return Conv2dShape{n, h, w, c, k, r, s, sh, sw, ph, pw};
}

// Random small valid shapes (fixed seed): any kernel, stride and padding the CPU op accepts.
std::vector<Case> RandomCases(int count) {
  std::vector<Case> out;
  Rng rng(2024);
  auto pick = [&](int lo, int hi) { return lo + static_cast<int>(rng.Next() % uint64_t(hi - lo + 1)); };
  while (static_cast<int>(out.size()) < count) {
    const Conv2dShape s = Shape(pick(1, 3), pick(1, 12), pick(1, 12), pick(1, 20), pick(1, 20), pick(1, 5), pick(1, 5),
                                pick(1, 3), pick(1, 3), pick(0, 2), pick(0, 2));
    if (!cu::Conv2dBackwardShapeIsValid(s)) continue;  // kernel larger than the padded input
    const int i = static_cast<int>(out.size());
    out.push_back({"random " + std::to_string(i), s, static_cast<unsigned>(i % 4), i % 5 == 4});
  }
  return out;
}

void CheckEdgeCases() {
  // N = 0: dgrad launches nothing, wgrad writes zeros.
  const Conv2dShape empty = Shape(0, 5, 5, 4, 6, 3, 3, 1, 1, 1, 1);
  Buf dw(6 * 4 * 9, 0, std::numeric_limits<float>::quiet_NaN());
  Report(cu::Conv2dBackwardWeightPlan(empty).splits == 0 && cu::Conv2dBackwardWeightWorkspaceBytes(empty) == 0,
         "N = 0: no wgrad slices, no workspace");
  Report(cu::LaunchConv2dBackwardWeight(empty, nullptr, nullptr, dw.data(), nullptr, nullptr) == cudaSuccess,
         "N = 0: wgrad returns cudaSuccess");
  bool zeros = true;
  for (size_t i = 0; i < dw.n; ++i) zeros = zeros && dw.data()[i] == 0.f && !std::signbit(dw.data()[i]);
  Report(zeros && dw.GuardsIntact(), "N = 0: dw is all +0");
  Report(cu::LaunchConv2dBackwardData(empty, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) == cudaSuccess,
         "N = 0: dgrad returns cudaSuccess and launches nothing");

  // Bad arguments: cudaErrorInvalidValue, nothing written.
  const Conv2dShape ok = Shape(1, 5, 5, 4, 6, 3, 3, 1, 1, 1, 1);
  Buf x(100, 0, 1.f), w(6 * 4 * 9, 0, 1.f), dy(150, 0, 1.f), out(6 * 4 * 9, 0, 7.f);
  Workspace ws(cu::Conv2dBackwardDataWorkspaceBytes(ok) + cu::Conv2dBackwardWeightWorkspaceBytes(ok));
  Conv2dShape big_kernel = ok;
  big_kernel.r = 8;  // larger than the padded input
  Conv2dShape zero_stride = ok;
  zero_stride.stride_w = 0;
  Conv2dShape neg_n = ok;
  neg_n.n = -1;
  for (const Conv2dShape& bad : {big_kernel, zero_stride, neg_n}) {
    Report(!cu::Conv2dBackwardShapeIsValid(bad) &&
               cu::LaunchConv2dBackwardData(bad, dy.data(), w.data(), nullptr, nullptr, out.data(), ws.ptr, nullptr) ==
                   cudaErrorInvalidValue &&
               cu::LaunchConv2dBackwardWeight(bad, x.data(), dy.data(), out.data(), ws.ptr, nullptr) == cudaErrorInvalidValue,
           "invalid shape " + ShapeText(bad) + ": cudaErrorInvalidValue");
  }
  auto* misaligned_ws = static_cast<void*>(static_cast<char*>(ws.ptr) + 4);
  Report(cu::LaunchConv2dBackwardData(ok, nullptr, w.data(), nullptr, nullptr, out.data(), ws.ptr, nullptr) == cudaErrorInvalidValue,
         "dgrad with dy null: cudaErrorInvalidValue");
  Report(cu::LaunchConv2dBackwardData(ok, dy.data(), w.data(), nullptr, nullptr, out.data(), nullptr, nullptr) == cudaErrorInvalidValue,
         "dgrad 3x3 without workspace: cudaErrorInvalidValue");
  Report(cu::LaunchConv2dBackwardWeight(ok, x.data(), dy.data(), out.data(), misaligned_ws, nullptr) == cudaErrorInvalidValue,
         "wgrad with a misaligned workspace: cudaErrorInvalidValue");
  Report(cu::LaunchConv2dBackwardWeight(ok, x.data(), nullptr, out.data(), ws.ptr, nullptr) == cudaErrorInvalidValue,
         "wgrad with dy null: cudaErrorInvalidValue");
  bool untouched = true;
  for (size_t i = 0; i < out.n; ++i) untouched = untouched && out.data()[i] == 7.f;
  Report(untouched, "rejected calls write nothing");
  Report(cu::Conv2dBackwardDataWorkspaceBytes(Shape(2, 5, 5, 8, 8, 1, 1, 2, 2, 0, 0)) == 0,
         "dgrad of a 1x1 filter needs no workspace");
}

}  // namespace

int main() {
  const std::vector<Case> cases = {
      {"ResNet stem 7x7 s2 p3, C=3, odd H", Shape(1, 15, 13, 3, 16, 7, 7, 2, 2, 3, 3), kNoEpi, false},
      {"3x3 s1 p1, odd H/W", Shape(2, 9, 7, 12, 20, 3, 3, 1, 1, 1, 1), kBoth, false},
      {"3x3 s2 p1, odd H", Shape(1, 13, 13, 8, 36, 3, 3, 2, 2, 1, 1), kBoth, false},
      {"3x3 s2 p1, even H", Shape(2, 8, 8, 16, 8, 3, 3, 2, 2, 1, 1), kRelu, false},
      {"1x1 s1, K=80 (partial tile)", Shape(2, 7, 7, 32, 80, 1, 1, 1, 1, 0, 0), kRes, false},
      {"1x1 s2, odd H (phases without taps)", Shape(2, 9, 9, 16, 24, 1, 1, 2, 2, 0, 0), kBoth, false},
      {"1x1 s2, no epilogue", Shape(1, 6, 7, 8, 12, 1, 1, 2, 2, 0, 0), kNoEpi, false},
      {"C=136: 3 channel tiles of 64", Shape(1, 6, 6, 136, 8, 3, 3, 1, 1, 1, 1), kRes, false},
      {"C=128: two channel tiles of 64", Shape(1, 5, 5, 128, 12, 3, 3, 1, 1, 1, 1), kNoEpi, false},
      {"K=136: 2 row tiles of wgrad", Shape(1, 6, 6, 8, 136, 3, 3, 1, 1, 1, 1), kNoEpi, false},
      {"K=3 (scalar dy gather)", Shape(2, 6, 5, 8, 3, 3, 3, 1, 1, 1, 1), kBoth, false},
      {"3x2 kernel, stride (2,1), pad (1,0)", Shape(2, 9, 6, 6, 7, 3, 2, 2, 1, 1, 0), kRelu, false},
      {"1x3 kernel, stride (1,3), pad (0,2)", Shape(2, 4, 11, 5, 3, 1, 3, 1, 3, 0, 2), kRes, false},
      {"2x2/4 pad 2 on 4x2: no window meets the image along W", Shape(3, 4, 2, 8, 8, 2, 2, 4, 4, 2, 2), kBoth, false},
      {"3x3/3 pad 1", Shape(2, 10, 9, 4, 6, 3, 3, 3, 3, 1, 1), kNoEpi, false},
      {"stride 5 on a 3x3 map", Shape(1, 3, 3, 4, 4, 3, 3, 5, 5, 1, 1), kBoth, false},
      {"1x1 pad 1 (padding wider than the kernel)", Shape(2, 5, 4, 7, 9, 1, 1, 1, 1, 1, 1), kNoEpi, false},
      {"5x5 s2 p2, odd sizes", Shape(1, 11, 9, 5, 7, 5, 5, 2, 2, 2, 2), kBoth, false},
      {"3x3 s1 p1, 5 wgrad slices", Shape(2, 24, 24, 16, 32, 3, 3, 1, 1, 1, 1), kNoEpi, false},
      {"3x3 s1 p1, N*P*Q = 429: 2 slices, ragged last", Shape(3, 11, 13, 8, 12, 3, 3, 1, 1, 1, 1), kRes, false},
      {"1x1 s1, 1 image of 40x40: 7 slices", Shape(1, 40, 40, 8, 16, 1, 1, 1, 1, 0, 0), kNoEpi, false},
      {"1x1 s1, K=256 on C=16: K rows, 2 slices", Shape(2, 16, 16, 16, 256, 1, 1, 1, 1, 0, 0), kRes, false},
      {"3x3 s1 p1, K=128 on C=8: K rows, 3 slices", Shape(1, 24, 24, 8, 128, 3, 3, 1, 1, 1, 1), kNoEpi, false},
      {"3x3 s1 p1, all tensors misaligned", Shape(1, 7, 7, 8, 16, 3, 3, 1, 1, 1, 1), kBoth, true},
      {"1x1 s1, all tensors misaligned", Shape(2, 5, 6, 8, 12, 1, 1, 1, 1, 0, 0), kBoth, true},
  };
  uint64_t seed = 1;
  for (const Case& cs : cases) RunCase(cs, seed++);
  for (const Case& cs : RandomCases(16)) RunCase(cs, seed++);
  CheckEdgeCases();

  for (int swap = 0; swap < 2; ++swap) {
    for (int multi = 0; multi < 2; ++multi) {
      const int n = g_orientation[swap][multi];
      Report(n >= 2, std::string("wgrad cases with ") + (swap ? "R*S*C" : "K") + " rows and " + (multi ? "several slices" : "one slice") +
                         ": " + std::to_string(n));
    }
  }
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector accesses", std::to_string(misaligned) + " misaligned");
  std::printf("# %d cases; worst |err| / sum|terms|: dgrad %.3g, wgrad %.3g; max|err| / max|ref|: dgrad %.3g, wgrad %.3g\n",
              g_cases, g_worst_dgrad, g_worst_wgrad, g_worst_dgrad_nw, g_worst_wgrad_nw);
  return emu_check::Finish();
}
