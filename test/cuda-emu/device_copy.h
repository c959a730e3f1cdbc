// Device buffers for the emulation test programs that also build with nvcc (a "// gpu-build:" line,
// see emu.test.ts): through the CUDA runtime, which the emulator provides as host memory.
#pragma once
#include <cstddef>

#include "cuda/cuda_compat.h"

namespace emu_check {

// Allocates n elements on the device into *p and, when `host` is given, copies them there; does
// nothing when `err` already holds an error, so a chain of calls reports the first failure.
template <typename T>
cudaError_t ToDevice(const T* host, size_t n, T** p, cudaError_t err) {
  if (err == cudaSuccess) err = cudaMalloc(reinterpret_cast<void**>(p), n * sizeof(T));
  if (err == cudaSuccess && host) err = cudaMemcpy(*p, host, n * sizeof(T), cudaMemcpyHostToDevice);
  return err;
}

}  // namespace emu_check
