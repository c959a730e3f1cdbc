// One header for CUDA kernel sources that compile two ways: with nvcc into the addon, and with a host
// C++ compiler against the emulator (emu/cuda_emu.h) for logic tests on machines without a GPU.
// Kernel files use only what both provide: SSLINV_LAUNCH instead of <<<...>>>, SSLINV_DYNAMIC_SMEM
// instead of `extern __shared__`, and SSLINV_GPU_ONLY around inline PTX (tensor-core paths), which the
// emulation build replaces with emulated equivalents or leaves out.
//
// Four cases:
//   nvcc (__CUDACC__): the real thing.
//   The addon's host C++ files (SSL_INV_WITH_CUDA set by CMake, no __CUDACC__): the runtime's
//     declarations, to call the launchers. SSLINV_REAL_CUDA_RUNTIME is set in these two cases.
//   The emulated-device addon (SSL_INV_WITH_CUDA and SSL_INV_CUDA_EMU, CMake's -DSSL_INV_CUDA_EMU=ON):
//     every file, kernels included, is host C++ against the emulator and its runtime (emu/runtime_emu.h),
//     so the whole CUDA backend, bindings and all, runs from Node on a machine without a GPU.
//   Anything else: a host-only emulation test program (test/cuda-emu).
#pragma once
#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define SSLINV_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define SSLINV_DYNAMIC_SMEM(type, name) extern __shared__ __align__(16) unsigned char name##_raw_[]; \
  type* name = reinterpret_cast<type*>(name##_raw_)
#define SSLINV_GPU_ONLY 1
#define SSLINV_REAL_CUDA_RUNTIME 1
#elif defined(SSL_INV_WITH_CUDA) && !defined(SSL_INV_CUDA_EMU)
#include <cuda_runtime.h>
#define SSLINV_REAL_CUDA_RUNTIME 1
#else
#include "cuda/emu/cuda_emu.h"
#endif
