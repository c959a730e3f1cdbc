// bfloat16 for kernel sources that build both with nvcc and against the host emulator (see
// cuda_compat.h). With nvcc, and in the addon's host C++ files that call the launchers
// (SSLINV_REAL_CUDA_RUNTIME), Bf16 is CUDA's __nv_bfloat16 (so the launchers' signatures match
// across the two compilers) and the conversions are its intrinsics (cvt.rn.bf16.f32 on sm_80+). In
// the emulation builds (test programs, the emulated-device addon) Bf16 is a 2-byte struct with the
// same layout and the conversions are the integer rounding below, which give the same bits as the
// hardware.
//
// Rounding: float32 -> bf16 rounds to nearest, ties to even; overflow rounds to +-inf; every NaN
// becomes the canonical NaN 0x7FFF (CUDA's rule; PyTorch's CPU c10::BFloat16 writes 0x7FC0, also a
// quiet NaN, so the two agree on values but not on NaN payload bits). bf16 -> float32 is exact.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/bf16_bits.h"
#include "cuda/cuda_compat.h"

#if defined(SSLINV_REAL_CUDA_RUNTIME)
#include <cuda_bf16.h>
#endif

namespace sslinv::cuda {

#if defined(SSLINV_REAL_CUDA_RUNTIME)

using Bf16 = __nv_bfloat16;

__host__ __device__ __forceinline__ Bf16 F32ToBf16Rn(float f) { return __float2bfloat16_rn(f); }
__host__ __device__ __forceinline__ float Bf16ToF32(Bf16 b) { return __bfloat162float(b); }
__host__ __device__ __forceinline__ uint16_t Bf16Bits(Bf16 b) { return __bfloat16_as_ushort(b); }
__host__ __device__ __forceinline__ Bf16 Bf16FromBits(uint16_t u) { return __ushort_as_bfloat16(u); }

#else

struct alignas(2) Bf16 {
  uint16_t bits;
};

inline uint16_t Bf16Bits(Bf16 b) { return b.bits; }
inline Bf16 Bf16FromBits(uint16_t u) { return Bf16{u}; }
inline Bf16 F32ToBf16Rn(float f) { return Bf16{Float32ToBf16Bits(f)}; }
inline float Bf16ToF32(Bf16 b) {
  const uint32_t u = static_cast<uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

#endif

static_assert(sizeof(Bf16) == 2, "bf16 must be 2 bytes");

}  // namespace sslinv::cuda
