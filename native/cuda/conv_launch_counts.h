// Per-process counts of convolution kernel launches, by the kernel that actually ran. The launchers
// resolve 'auto' and the fallbacks (the pipelined tf32 kernel hands odd shapes to the staged one)
// themselves, so this is where the choice is known; they count each launch that the runtime
// accepted. The device binding reads the counts (convKernelLaunches() in src/device.ts): tests
// assert that an algo reaches the kernel it names, and bench/device records which kernels a timed
// network ran, so that no timing is labelled with a kernel that did not run.
//
// Header-only (a function-local static per process, shared by every object of the addon), so the
// emulation test programs, which compile single kernel files, need nothing more.
#pragma once
#include <atomic>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

enum class ConvKernel : int {
  kSimtBk8 = 0,       // fp32 SIMT, 8 GEMM-K per stage
  kSimtBk16,          // fp32 SIMT, 16 GEMM-K per stage
  kTf32Staged,        // tf32 mma.sync, register-staged
  kTf32Pipelined,     // tf32 mma.sync, cp.async + ldmatrix
  kBf16Staged,        // bf16 mma.sync on float32 tensors (rounded as they are staged)
  kBf16Pipelined,     // bf16 mma.sync, bf16 in memory
  kBf16Wgmma,         // bf16 wgmma (sm_90a), bf16 in memory
  kCount
};

// The names the binding reports: precision, then the algo that names the kernel.
inline const char* ConvKernelName(ConvKernel k) {
  switch (k) {
    case ConvKernel::kSimtBk8: return "fp32 simt-bk8";
    case ConvKernel::kSimtBk16: return "fp32 simt-bk16";
    case ConvKernel::kTf32Staged: return "tf32 mma-staged";
    case ConvKernel::kTf32Pipelined: return "tf32 mma-pipelined";
    case ConvKernel::kBf16Staged: return "bf16 mma-staged";
    case ConvKernel::kBf16Pipelined: return "bf16 mma-pipelined";
    case ConvKernel::kBf16Wgmma: return "bf16 wgmma";
    default: return "?";
  }
}

inline std::atomic<uint64_t>* ConvLaunchCounters() {
  static std::atomic<uint64_t> counts[static_cast<int>(ConvKernel::kCount)];
  return counts;
}

// Counts one launch of `k` when `launched` (the launcher's cudaGetLastError()) is cudaSuccess, and
// returns it unchanged.
inline cudaError_t CountConvLaunch(ConvKernel k, cudaError_t launched) {
  if (launched == cudaSuccess) ConvLaunchCounters()[static_cast<int>(k)].fetch_add(1, std::memory_order_relaxed);
  return launched;
}

inline uint64_t ConvLaunchCount(ConvKernel k) { return ConvLaunchCounters()[static_cast<int>(k)].load(std::memory_order_relaxed); }

}  // namespace sslinv::cuda
