// Warp-level tensor-core and asynchronous-copy primitives (sm_80+ PTX) that compile two ways, as
// cuda_compat.h describes: inline PTX with nvcc; exact emulations in the host emulation build, so the
// kernels built on them are tested without a GPU.
//
//   ToTf32, PackBf16x2         fp32 -> tf32 (round to nearest, ties away, like cvt.rna.tf32.f32) and
//                              two fp32 -> one word of two bf16 (nearest even, like cvt.rn.bf16x2.f32)
//   MmaTf32_16x8x8             D = A B + C, mma.sync m16n8k8 .tf32, fp32 accumulate
//   MmaBf16_16x8x16            D = A B + C, mma.sync m16n8k16 .bf16, fp32 accumulate (emulated: the
//                              exact sum rounded toward zero, as tensor cores round; TensorCoreRound)
//   LdMatrixX4                 ldmatrix .x4: four 8 x 8 b16 matrices from shared memory into the
//                              fragment layout the MMAs take (lane i supplies row i % 8 of matrix i / 8)
//   ForEachAccumulatorPair     the epilogue's walk over a warp's accumulators, two columns at a time
//   CpAsync16 / CpAsyncCommit / CpAsyncWait<N>
//                              cp.async.cg 16-byte global -> shared copies (zero-filled when not
//                              valid), grouped, and a wait until at most N groups are in flight. The
//                              emulation defers each copy until a wait covers its group, so a kernel
//                              that reads a stage before waiting for it reads garbage there too.
// Fragment layouts follow the PTX ISA ("Matrix Fragments for mma.m16n8k8 / m16n8k16"); see
// GatherFragments. All 32 lanes of a warp must call the MMAs and LdMatrixX4 together.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/bf16_bits.h"
#include "cuda/cuda_compat.h"
#include "cuda/kernel_util.cuh"

namespace sslinv::cuda::mma {

struct __align__(16) Words4 { uint32_t x, y, z, w; };
struct __align__(8) Words2 { uint32_t x, y; };

#ifndef SSLINV_GPU_ONLY
// Bit casts for the emulation build (the GPU build uses the intrinsics / PTX directly).
inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
#endif

// ---------------------------------------------------------------------------------------------
// Precision conversions and the warp-level MMAs.

// fp32 -> tf32 (19 significant bits in the top of a 32-bit word), rounding to nearest, ties away
// from zero, like cvt.rna.tf32.f32.
__device__ __forceinline__ uint32_t ToTf32(float f) {
#ifdef SSLINV_GPU_ONLY
  uint32_t u;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(f));
  return u;
#else
  uint32_t u = FloatBits(f);
  if ((u & 0x7f800000u) == 0x7f800000u) return u;  // inf / NaN unchanged
  // Adding half an ulp to the magnitude bits and truncating rounds half away from zero; a carry into
  // the exponent is the correct rounding up to the next binade (or to infinity).
  return (u + 0x1000u) & 0xffffe000u;
#endif
}

#ifndef SSLINV_GPU_ONLY
// fp32 -> bf16 bits, round to nearest even (cvt.rn.bf16x2.f32). The emulation uses the one host
// rule of core/bf16_bits.h, NaN to 0x7FFF included; that cvt.rn.bf16.f32 gives the same on the
// hardware is what the op table's toBfloat16 case checks on a GPU (a NaN among its inputs).
inline uint32_t Bf16BitsRne(float f) { return ::sslinv::Float32ToBf16Bits(f); }
inline float Bf16Value(uint32_t bits16) { return BitsFloat(bits16 << 16); }

// The fp32 result of one tensor-core MMA from its exact sum, rounded as the hardware rounds: toward
// zero, not to nearest (Fasi, Higham, Mikaitis, Pranesh, PeerJ CS 7:e330, 2021, measured on V100/
// A100; the same model is used for H100). The emulation sums c and the products in double, which
// holds tf32 and bf16 products exactly, and then truncates. Real tensor cores also truncate the
// products' alignment to the largest term, so this is the optimistic side of the hardware; what it
// catches is the bias: a long chain of MMAs into one accumulator of same-signed terms (a sum of
// squares) loses up to an ulp per MMA, always downward, where round-to-nearest errors would cancel.
inline float TensorCoreRound(double s) {
  float f = static_cast<float>(s);
  if (std::isnan(s)) return f;
  if (std::isinf(f) && !std::isinf(s)) return std::copysign(FLT_MAX, static_cast<float>(s));
  if (std::fabs(static_cast<double>(f)) > std::fabs(s)) f = std::nextafter(f, 0.f);
  return f;
}
#endif

// Two floats -> one word of two bf16: lo in bits 0-15 (the lower GEMM-K index), hi in bits 16-31,
// the order the mma fragments expect.
__device__ __forceinline__ uint32_t PackBf16x2(float lo, float hi) {
#ifdef SSLINV_GPU_ONLY
  uint32_t u;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(u) : "f"(hi), "f"(lo));  // first source -> upper half
  return u;
#else
  return Bf16BitsRne(lo) | (Bf16BitsRne(hi) << 16);
#endif
}

#ifndef SSLINV_GPU_ONLY
// Emulation helpers: gather the rows of A and columns of B that this lane's accumulators need.
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k8 / m16n8k16"), with
// g = lane / 4 and t = lane % 4, at the level of 32-bit words (one tf32, or two bf16 along K):
//   A 16 x 8 words: a0 = (g, t), a1 = (g + 8, t), a2 = (g, t + 4), a3 = (g + 8, t + 4)
//   B 8 words x 8:  b0 = (k = t, n = g), b1 = (k = t + 4, n = g)
//   C/D 16 x 8:     c0 = (g, 2t), c1 = (g, 2t + 1), c2 = (g + 8, 2t), c3 = (g + 8, 2t + 1)
// So row g's words are a0/a2 of lanes 4g..4g+3, and column n's words are b0/b1 of lanes 4n..4n+3.
struct EmuFragments {
  uint32_t a[2][8];  // [row g, row g + 8][word 0..7 along K]
  uint32_t b[2][8];  // [column 2t, column 2t + 1][word 0..7 along K]
};

struct EmuLaneWords {
  uint32_t a[4], b[2];
};

inline EmuFragments GatherFragments(const uint32_t a[4], const uint32_t b[2]) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int g = lane / 4, t = lane % 4;
  EmuLaneWords all[32];
  ::sslinv_emu::WarpGatherAll(EmuLaneWords{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}}, all);
  EmuFragments f;
  for (int j = 0; j < 4; ++j) {
    const EmuLaneWords& v = all[4 * g + j];  // its a holds words j and j + 4 of rows g and g + 8
    f.a[0][j] = v.a[0];
    f.a[1][j] = v.a[1];
    f.a[0][j + 4] = v.a[2];
    f.a[1][j + 4] = v.a[3];
  }
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      const EmuLaneWords& v = all[4 * (2 * t + h) + j];
      f.b[h][j] = v.b[0];
      f.b[h][j + 4] = v.b[1];
    }
  }
  return f;
}
#endif

// D = A (16 x 8, row-major) * B (8 x 8, column-major) + C, tf32 inputs, fp32 accumulate. All 32
// lanes of the warp must call it together.
__device__ __forceinline__ void MmaTf32_16x8x8(float d[4], const uint32_t a[4], const uint32_t b[2],
                                               const float c[4]) {
#ifdef SSLINV_GPU_ONLY
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#else
  const EmuFragments f = GatherFragments(a, b);
  float out[4];
  for (int i = 0; i < 4; ++i) {
    double acc = c[i];
    for (int k = 0; k < 8; ++k) acc += static_cast<double>(BitsFloat(f.a[i / 2][k])) * BitsFloat(f.b[i % 2][k]);
    out[i] = TensorCoreRound(acc);
  }
  for (int i = 0; i < 4; ++i) d[i] = out[i];
#endif
}

// D = A (16 x 16, row-major) * B (16 x 8, column-major) + C, bf16 inputs packed two per word along
// K (lower K index in the low half), fp32 accumulate. All 32 lanes must call it together.
__device__ __forceinline__ void MmaBf16_16x8x16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                const float c[4]) {
#ifdef SSLINV_GPU_ONLY
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#else
  // The word layout is the tf32 one: word j holds K elements 2j (low half) and 2j + 1 (high half).
  const EmuFragments f = GatherFragments(a, b);
  float out[4];
  for (int i = 0; i < 4; ++i) {
    double acc = c[i];
    for (int k = 0; k < 8; ++k) {
      const uint32_t wa = f.a[i / 2][k], wb = f.b[i % 2][k];
      acc += static_cast<double>(Bf16Value(wa & 0xffffu)) * Bf16Value(wb & 0xffffu);
      acc += static_cast<double>(Bf16Value(wa >> 16)) * Bf16Value(wb >> 16);
    }
    out[i] = TensorCoreRound(acc);
  }
  for (int i = 0; i < 4; ++i) d[i] = out[i];
#endif
}

// Four 8 x 8 matrices of 16-bit elements from shared memory: lane i passes the address of row i % 8 of
// matrix i / 8 (16-byte aligned, 16 contiguous bytes); r[j] of lane i receives elements 2 (i % 4) and
// 2 (i % 4) + 1 of row i / 4 of matrix j (the lower column in the low half).
__device__ __forceinline__ void LdMatrixX4(uint32_t r[4], const void* smem_row) {
#ifdef SSLINV_GPU_ONLY
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
#else
  SSLINV_CHECK_VEC_ALIGN(smem_row, 16);
  const int lane = static_cast<int>(threadIdx.x % 32);
  const unsigned char* rows[32];
  ::sslinv_emu::WarpGatherAll(static_cast<const unsigned char*>(smem_row), rows);
  for (int j = 0; j < 4; ++j) std::memcpy(&r[j], rows[8 * j + lane / 4] + 4 * (lane % 4), 4);
#endif
}

// 16 bytes from global memory to shared memory, asynchronously; when !valid the 16 shared bytes are
// zero-filled and nothing is read (gmem must still be a valid address: pass the tensor's base).
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, bool valid) {
#ifdef SSLINV_GPU_ONLY
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0) : "memory");
#else
  SSLINV_CHECK_VEC_ALIGN(smem, 16);
  SSLINV_CHECK_VEC_ALIGN(gmem, 16);
  ::sslinv_emu::CpAsyncEnqueue(smem, gmem, 16, valid ? 16 : 0);
#endif
}

// Closes the group of this thread's copies issued since the last commit (an empty group is fine).
__device__ __forceinline__ void CpAsyncCommit() {
#ifdef SSLINV_GPU_ONLY
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  ::sslinv_emu::CpAsyncCommit();
#endif
}

// Waits until at most N of this thread's committed groups are still in flight. Other threads' copies
// are visible only after a __syncthreads() that follows their waits.
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
#ifdef SSLINV_GPU_ONLY
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  ::sslinv_emu::CpAsyncWait(N);
#endif
}

// ---------------------------------------------------------------------------------------------
// Epilogue walk: the accumulators of a warp's kMT x kNT tiles of m16n8 MMAs (acc[mt][nt][e]), pair by
// pair. Accumulators e = 2h and 2h + 1 of tile (mt, nt) are row row0 + 16 mt + g + 8h, columns
// col0 + 8 nt + 2t and + 1 (g = lane / 4, t = lane % 4). store(m, n, v0, v1) is called for each pair
// whose row is below `rows`; columns are the caller's to check.
template <int kMT, int kNT, class Store>
__device__ __forceinline__ void ForEachAccumulatorPair(const float (&acc)[kMT][kNT][4], int row0, int col0, int rows,
                                                       Store&& store) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = row0 + mt * 16 + g + 8 * half;
      if (m >= rows) continue;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) store(m, col0 + nt * 8 + 2 * t, acc[mt][nt][2 * half], acc[mt][nt][2 * half + 1]);
    }
  }
}

}  // namespace sslinv::cuda::mma
