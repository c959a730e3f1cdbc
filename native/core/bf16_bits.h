// float32 -> bfloat16 as bits, the rule of CUDA's __float2bfloat16_rn, for host code: the CPU ops
// (ops.toBfloat16) and the kernels' host emulator (cuda/bf16_compat.h), so both give the GPU's bits.
// Round to nearest, ties to even; overflow rounds to +-inf; every NaN becomes 0x7FFF.
#pragma once
#include <cstdint>
#include <cstring>

namespace sslinv {

inline uint16_t Float32ToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  // Adding 0x7FFF plus the lowest kept bit rounds half to even; a carry out of the mantissa bumps the
  // exponent, which is the correct rounding (up to +-inf past the largest finite bf16).
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace sslinv
