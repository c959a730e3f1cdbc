// Whether this build's kernels can run on the current device: the runtime's answer for one trivial
// kernel compiled like all the others (the same architecture list). runtime.cc asks once per device,
// before its first stream, so a card the build has no code for fails with one clear error instead of
// "no kernel image is available" from whichever kernel runs first.
#pragma once
#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

// cudaSuccess when the kernels have code for the current device; cudaErrorNoKernelImageForDevice (or
// cudaErrorInvalidDeviceFunction on older drivers) when they have none; other errors as the runtime
// gives them.
cudaError_t ProbeKernelImage();

}  // namespace cuda
}  // namespace sslinv
