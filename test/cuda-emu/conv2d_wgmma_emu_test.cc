// Emulation test of native/cuda/conv2d_wgmma.cu (wgmma.mma_async from swizzled shared memory through
// matrix descriptors, cp.async pipeline, sm_90a). conv_bf16_case.h's cases and three more for the
// 256-wide tile, against the float64 reference from the same bf16 inputs (per-element bound: the bf16
// output rounding plus fp32 accumulation), and bit for bit the mma.sync kernel
// (LaunchConv2dForwardBf16Nhwc): in emulation both sum each output's K terms in order, so any
// difference is an indexing or layout error in one of them. (On a GPU the two may differ in the last
// bits; bench/device compares each with the reference.)
// The emulated wgmma completes only at the wgmma.wait_group that covers it and aborts if the shared
// memory under it changed while in flight; cp.async lands only at its wait; guard zones around y
// catch out-of-bounds stores.
//
// emu-sources: native/cuda/conv2d_pipelined.cu
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++ test/cuda-emu/conv2d_wgmma_emu_test.cc
//       native/cuda/conv2d_wgmma.cu native/cuda/conv2d_pipelined.cu -o /tmp/conv_wgmma_emu && /tmp/conv_wgmma_emu
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/conv2d_pipelined.cuh"
#include "cuda/conv2d_wgmma.cuh"
#include "cuda/kernel_util.cuh"
#include "conv_bf16_case.h"
#include "emu_check.h"

using namespace conv_bf16;  // NOLINT: the shared cases and checks

namespace {

const Bf16Launcher kWgmma = sslinv::cuda::LaunchConv2dForwardBf16Wgmma;
const Bf16Launcher kMmaSync = sslinv::cuda::LaunchConv2dForwardBf16Nhwc;

// Wide outputs: the BN = 256 tile (K = 256 and 512), K = 300, where 64-wide tiles waste least, and a
// long GEMM-K.
const Case kWideCases[] = {
    {"1x1 s1, C=32, K=256 (one BN=256 tile), M=200 (2 M tiles), bias+res+relu", {2, 10, 10, 32, 256, 1, 1, 1, 1, 0, 0}, true, true, true},
    {"3x3 s2 p1, C=16, K=512 (two BN=256 tiles), odd H", {1, 11, 11, 16, 512, 3, 3, 2, 2, 1, 1}, true, false, true},
    {"1x1, C=72, K=300 (5 BN=64 tiles), residual only", {1, 7, 9, 72, 300, 1, 1, 1, 1, 0, 0}, false, true, false},
    {"3x3 p1, C=64, K=256 (18 GEMM-K tiles: the 6 stages wrap three times)", {1, 6, 6, 64, 256, 3, 3, 1, 1, 1, 1}, true, true, true},
};

double g_worst_issue = 0;

void CheckCaseAndBits(const Case& cs, uint64_t seed) {
  CheckCase(kWgmma, cs, seed, &g_worst_issue);
  const Data d = MakeData(cs, seed);
  const std::vector<float> a = Run(kWgmma, cs, d, std::string(cs.name) + " (wgmma again)");
  const std::vector<float> b = Run(kMmaSync, cs, d, std::string(cs.name) + " (mma.sync kernel)");
  emu_check::ExpectBits(std::string(cs.name) + ": wgmma equals the mma.sync kernel", a.data(), b.data(), a.size());
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  CheckInvalidArguments(kWgmma);
  uint64_t seed = 101;
  for (const Case& cs : kCases) CheckCaseAndBits(cs, seed++);
  for (const Case& cs : kWideCases) CheckCaseAndBits(cs, seed++);
  CheckDeterminismAndInPlace(kWgmma);
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  emu_check::Report(misaligned == 0, "no misaligned vector accesses (cp.async, bf16 pairs)", std::to_string(misaligned) + " misaligned");
  std::printf("# worst error / the issue's bf16 tolerance (1.5e-2 * sum|x||w|): %.3g\n", g_worst_issue);
  std::printf("# total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return emu_check::Finish();
}
