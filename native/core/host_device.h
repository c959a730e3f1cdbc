// SSLINV_HOST_DEVICE marks a small function that both the CPU ops and the CUDA kernels call: nvcc
// compiles it for the host and the device; g++ (the CPU ops, and the kernels' host emulator) sees a
// plain inline function. For integer code, or float code whose roundings do not depend on contraction.
#pragma once

#if defined(__CUDACC__)
#define SSLINV_HOST_DEVICE __host__ __device__
#else
#define SSLINV_HOST_DEVICE
#endif
