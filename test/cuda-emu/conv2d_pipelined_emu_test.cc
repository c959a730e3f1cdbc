// Emulation test of native/cuda/conv2d_pipelined.cu (cp.async pipeline, swizzled ldmatrix, mma.sync).
// bf16 in memory: conv_bf16_case.h's cases against the float64 reference from the same bf16 inputs,
// straight from the NHWC / KRSC definition:
//   y[n,p,q,k] = bf16( relu?( sum_{r,s,c} x[n, p*sh - ph + r, q*sw - pw + s, c] * w[k,r,s,c] + bias[k] + res[n,p,q,k] ) )
// within its per-element bound (the bf16 output rounding plus fp32 accumulation).
// tf32 (fp32 in memory): bit for bit the register-staged LaunchConv2dForwardTF32 (conv2d.cu), which
// rounds the same inputs the same way and sums the same k8 products in the same order, and within
// the issue's 2e-3 * sum |x||w| of the float64 sum.
// The emulated cp.async lands only when a wait covers it, so a read of a stage before its wait
// shows up; guard zones around y catch out-of-bounds stores.
//
// emu-sources: native/cuda/conv2d.cu
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++ test/cuda-emu/conv2d_pipelined_emu_test.cc
//       native/cuda/conv2d_pipelined.cu native/cuda/conv2d.cu -o /tmp/conv_pipe_emu && /tmp/conv_pipe_emu
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/conv2d_pipelined.cuh"
#include "cuda/kernel_util.cuh"
#include "conv_bf16_case.h"
#include "conv_reference.h"
#include "emu_check.h"

using sslinv::cuda::Bf16;
using sslinv::cuda::Conv2dShape;
using namespace conv_bf16;  // NOLINT: the shared cases and checks

namespace {

const Bf16Launcher kLaunch = sslinv::cuda::LaunchConv2dForwardBf16Nhwc;
double g_worst_issue = 0;

// --- tf32: fp32 in memory ------------------------------------------------------------------------

struct F32Data {
  Conv2dShape sh;
  int M;
  std::vector<float> x, w, bias, res;
};

F32Data MakeF32Data(const Case& cs, uint64_t seed) {
  F32Data d;
  d.sh = cs.shape;
  d.M = d.sh.n * d.sh.p() * d.sh.q();
  emu_check::Rng rng(seed);
  const Conv2dShape& s = d.sh;
  d.x.resize(size_t(s.n) * s.h * s.w * s.c);
  d.w.resize(size_t(s.k) * s.r * s.s * s.c);
  rng.Fill(d.x, -1.f, 1.f);
  rng.Fill(d.w, -1.f, 1.f);
  if (cs.bias) d.bias.resize(s.k), rng.Fill(d.bias, -1.f, 1.f);
  if (cs.residual) d.res.resize(size_t(d.M) * s.k), rng.Fill(d.res, -1.f, 1.f);
  return d;
}

using F32Launcher = cudaError_t (*)(const Conv2dShape&, const float*, const float*, const float*, const float*, bool, float*,
                                    cudaStream_t);

std::vector<float> RunF32(F32Launcher launch, const Case& cs, const F32Data& d, const std::string& what) {
  const size_t count = size_t(d.M) * d.sh.k;
  std::vector<float> buf(kGuard + count + 128 * size_t(d.sh.k) + kGuard, -12345.f);
  float* y = buf.data() + kGuard;
  const cudaError_t err = launch(d.sh, d.x.data(), d.w.data(), d.bias.empty() ? nullptr : d.bias.data(),
                                 d.res.empty() ? nullptr : d.res.data(), cs.relu, y, nullptr);
  emu_check::Report(err == cudaSuccess, what + ": launch returns cudaSuccess", cudaGetErrorString(err));
  bool guards_ok = true;
  for (size_t i = 0; i < buf.size(); ++i)
    if ((i < kGuard || i >= kGuard + count) && buf[i] != -12345.f) guards_ok = false;
  emu_check::Report(guards_ok, what + ": no stores outside y", "guard zone overwritten");
  return std::vector<float>(y, y + count);
}

void CheckTf32Case(const Case& cs, uint64_t seed) {
  const F32Data d = MakeF32Data(cs, seed);
  const std::string what = std::string("tf32 ") + cs.name;
  const std::vector<float> pipe = RunF32(sslinv::cuda::LaunchConv2dForwardTF32Pipelined, cs, d, what);
  const std::vector<float> staged = RunF32(sslinv::cuda::LaunchConv2dForwardTF32, cs, d, what + " (staged kernel)");
  emu_check::ExpectBits(what + ": pipelined equals staged", pipe.data(), staged.data(), pipe.size());
  std::vector<double> ref, scale;
  emu_check::ConvReference(
      d.sh, [&](size_t i) { return double(d.x[i]); }, [&](size_t i) { return double(d.w[i]); }, !d.bias.empty(),
      [&](int k) { return double(d.bias[k]); }, !d.res.empty(), [&](size_t i) { return double(d.res[i]); }, cs.relu, ref, scale);
  emu_check::ExpectClose(what + " vs float64", pipe.data(), ref.data(), pipe.size(), 2e-3, 0.0, scale.data());
}

void CheckInvalid() {
  CheckInvalidArguments(kLaunch);
  const Conv2dShape good{1, 4, 4, 8, 4, 1, 1, 1, 1, 0, 0};
  Conv2dShape k3 = good;
  k3.k = 3;
  // tf32: C % 4, and float pairs for y and the residual.
  std::vector<float> f(4096, 0.f);
  float* q = f.data();
  auto launch_f = [&](const Conv2dShape& s, const float* x, const float* w, const float* res, float* y) {
    return sslinv::cuda::LaunchConv2dForwardTF32Pipelined(s, x, w, nullptr, res, false, y, nullptr);
  };
  Conv2dShape c4 = good, c6 = good;
  c4.c = 4;
  c6.c = 6;
  bool ok_f = launch_f(c4, q, q + 512, nullptr, q + 1024) == cudaSuccess;
  ok_f = ok_f && launch_f(c6, q, q + 512, nullptr, q + 1024) == cudaErrorInvalidValue;
  ok_f = ok_f && launch_f(k3, q, q + 512, nullptr, q + 1024) == cudaErrorInvalidValue;
  ok_f = ok_f && launch_f(good, q + 2, q + 512, nullptr, q + 1024) == cudaErrorInvalidValue;  // x 8-byte aligned
  ok_f = ok_f && launch_f(good, q, q + 512, nullptr, q + 1025) == cudaErrorInvalidValue;      // y not float2-aligned
  ok_f = ok_f && launch_f(good, q, q + 512, q + 2049, q + 1024) == cudaErrorInvalidValue;     // residual
  emu_check::Report(ok_f, "tf32 rejects C % 4 != 0, odd K, misaligned tensors");
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  CheckInvalid();
  uint64_t seed = 1;
  for (const Case& cs : kCases) CheckCase(kLaunch, cs, seed++, &g_worst_issue);
  CheckDeterminismAndInPlace(kLaunch);
  for (const Case& cs : kCases) CheckTf32Case(cs, seed++);
  CheckTf32Case({"(tf32 only) 3x3 s1 p1, C=4, K=20", {1, 9, 9, 4, 20, 3, 3, 1, 1, 1, 1}, true, true, true}, seed++);
  CheckTf32Case({"(tf32 only) 1x1 s2, C=12, K=66 (one BN=128 tile)", {2, 9, 9, 12, 66, 1, 1, 2, 2, 0, 0}, false, true, false}, seed++);
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  emu_check::Report(misaligned == 0, "no misaligned vector accesses (cp.async, ldmatrix, bf16 pairs)",
                    std::to_string(misaligned) + " misaligned");
  std::printf("# worst error / the issue's bf16 tolerance (1.5e-2 * sum|x||w|): %.3g\n", g_worst_issue);
  std::printf("# total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return emu_check::Finish();
}
