// Warpgroup-level tensor-core primitives of sm_90a (Hopper: H100, H200), which compile two ways as
// cuda_compat.h describes: inline PTX with nvcc, and emulations in the host build (so the kernels
// built on them are tested without a GPU). They need `-arch=sm_90a` (wgmma is not in plain sm_90 or
// in PTX for later cards), so only sources compiled for sm_90a include this header
// (native/sources.json "cuda_sm90a"); their launchers check that the device is compute capability 9.0.
//
//   SharedAddress              a generic pointer into shared memory -> its 32-bit shared-window address
//   KMajorDescriptor           the 64-bit matrix descriptor of a K-major operand tile in shared memory
//                              (PTX ISA "Matrix Descriptor Format"): rows of `swizzle` bytes (32, 64
//                              or 128) of GEMM-K, 8-row groups `group_bytes` apart, 16-byte chunks
//                              XOR-swizzled by the address bits above them (the layout the hardware
//                              reads; the tile must start at a multiple of 8 rows x `swizzle` bytes)
//   WgmmaBf16Async<N>          D[64 x N] += A[64 x 16] B[16 x N], wgmma.mma_async m64nNk16 .bf16 with
//                              fp32 accumulators, A and B both from shared memory (K-major), N = 64,
//                              128 or 256; issued by all 128 threads of a warpgroup together
//   WgmmaFence / WgmmaCommit / WgmmaWait<N>
//                              wgmma.fence (before the first wgmma and after the accumulators were
//                              touched), wgmma.commit_group, wgmma.wait_group N (at most N groups of
//                              this thread's wgmmas still in flight; only then may the accumulators be
//                              read or the operands' shared memory be overwritten)
//   FenceProxyAsyncShared      fence.proxy.async.shared::cta: this thread's completed writes to shared
//                              memory (st.shared, cp.async) become visible to the async proxy wgmma
//                              reads through; a __syncthreads() after it publishes everyone's
//   FenceOperands              a compiler-only fence on accumulator registers, so that no read of them
//                              is moved above the WgmmaWait that makes them final
//
// Accumulators: d[j][e] of a thread is row 16 w + g + 8 (e / 2), column 8 j + 2 t + e % 2 of the
// warpgroup's 64 x N tile (w = warp in the warpgroup, g = lane / 4, t = lane % 4): per warp, the
// layout of mma.sync m16n8's C fragments, so mma::ForEachAccumulatorPair walks them.
//
// The emulation checks that all 128 threads of a warpgroup execute each of these instructions
// together (with the same descriptors for wgmma.mma_async), and computes each thread's own
// accumulators from the shared memory the descriptors address, summing K in order and rounding toward
// zero (bit for bit what the emulated mma.sync m16n8k16 gives on the same data; on a GPU the two
// instructions need not agree to the bit, which the autotuner checks there). Operands are read when the wgmma is issued
// and again when a WgmmaWait covers it; if they changed in between (a stage overwritten while a wgmma
// still reads it) the emulation aborts, as it does when a cp.async is issued into shared memory an
// in-flight wgmma reads (on a GPU the copy may land at once); the accumulators change only at that
// wait. test/cuda-emu/wgmma_layout_emu_test.cc holds the descriptor fields, the swizzle and the
// accumulator layout of this emulation to a second source (CUTLASS CuTe's GmmaDescriptor, K-major
// SW64 atom and CLayout_64xN). All of this is unverified on a GPU until bench/device has run it on an
// H100/H200.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "cuda/cuda_compat.h"
#include "cuda/mma.cuh"

namespace sslinv::cuda::wgmma {

enum class Swizzle : uint32_t { k32B = 3, k64B = 2, k128B = 1 };  // the descriptor's layout-type codes

__device__ __forceinline__ uint32_t SharedAddress(const void* p) {
#ifdef SSLINV_GPU_ONLY
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
#else
  return ::sslinv_emu::SharedWindowAddress(p);
#endif
}

// Start address, leading-dimension offset (unused by swizzled K-major layouts: 1 by convention),
// stride between 8-row groups, base offset 0 (the tile is aligned to its swizzle pattern), layout type.
__device__ __forceinline__ uint64_t KMajorDescriptor(uint32_t smem_addr, uint32_t group_bytes, Swizzle swizzle) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFFu) >> 4) | (uint64_t{1} << 16) |
         (static_cast<uint64_t>((group_bytes & 0x3FFFFu) >> 4) << 32) | (static_cast<uint64_t>(swizzle) << 62);
}

#ifndef SSLINV_GPU_ONLY
namespace emu {
// The emulation's check that all 128 threads of the warpgroup execute a wgmma instruction together,
// with the same (warpgroup-uniform) operands.
template <typename T>
inline void ExpectUniform(const T& v, const char* what) {
  T all[128];
  ::sslinv_emu::WarpgroupGatherAll(v, all, what);
  for (const T& u : all) {
    if (std::memcmp(&u, &v, sizeof(T)) != 0) {
      std::fprintf(stderr, "wgmma emulation: at %s the threads of a warpgroup differ in operands or in the instruction they reached "
                           "(all 128 must execute it together, with warpgroup-uniform operands)\n",
                   what);
      std::abort();
    }
  }
}
}  // namespace emu
#endif

__device__ __forceinline__ void WgmmaFence() {
#ifdef SSLINV_GPU_ONLY
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  emu::ExpectUniform(0, "wgmma.fence");
  ::sslinv_emu::WgmmaFence();
#endif
}

__device__ __forceinline__ void WgmmaCommit() {
#ifdef SSLINV_GPU_ONLY
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  emu::ExpectUniform(0, "wgmma.commit_group");
  ::sslinv_emu::WgmmaCommit();
#endif
}

template <int N>
__device__ __forceinline__ void WgmmaWait() {
#ifdef SSLINV_GPU_ONLY
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#else
  emu::ExpectUniform(N, "wgmma.wait_group");
  ::sslinv_emu::WgmmaWait(N);
#endif
}

__device__ __forceinline__ void FenceProxyAsyncShared() {
#ifdef SSLINV_GPU_ONLY
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#else
  ::sslinv_emu::FenceProxyAsyncShared();
#endif
}

template <int kRows>
__device__ __forceinline__ void FenceOperands(float (&d)[kRows][4]) {
#ifdef SSLINV_GPU_ONLY
#pragma unroll
  for (int j = 0; j < kRows; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
#endif
}

#ifdef SSLINV_GPU_ONLY
// The PTX, one function per N (an asm statement's operand list is fixed): scale-d = 1 (accumulate),
// A and B unscaled and not transposed (both K-major).
__device__ __forceinline__ void WgmmaBf16Async_64x64(float (&d)[8][4], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
        "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
        "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}

__device__ __forceinline__ void WgmmaBf16Async_64x128(float (&d)[16][4], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
        "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
        "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]),
        "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]),
        "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]),
        "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]),
        "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}

__device__ __forceinline__ void WgmmaBf16Async_64x256(float (&d)[32][4], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
        "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
        "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]),
        "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]),
        "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]),
        "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]),
        "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3]),
        "+f"(d[16][0]), "+f"(d[16][1]), "+f"(d[16][2]), "+f"(d[16][3]), "+f"(d[17][0]), "+f"(d[17][1]), "+f"(d[17][2]), "+f"(d[17][3]),
        "+f"(d[18][0]), "+f"(d[18][1]), "+f"(d[18][2]), "+f"(d[18][3]), "+f"(d[19][0]), "+f"(d[19][1]), "+f"(d[19][2]), "+f"(d[19][3]),
        "+f"(d[20][0]), "+f"(d[20][1]), "+f"(d[20][2]), "+f"(d[20][3]), "+f"(d[21][0]), "+f"(d[21][1]), "+f"(d[21][2]), "+f"(d[21][3]),
        "+f"(d[22][0]), "+f"(d[22][1]), "+f"(d[22][2]), "+f"(d[22][3]), "+f"(d[23][0]), "+f"(d[23][1]), "+f"(d[23][2]), "+f"(d[23][3]),
        "+f"(d[24][0]), "+f"(d[24][1]), "+f"(d[24][2]), "+f"(d[24][3]), "+f"(d[25][0]), "+f"(d[25][1]), "+f"(d[25][2]), "+f"(d[25][3]),
        "+f"(d[26][0]), "+f"(d[26][1]), "+f"(d[26][2]), "+f"(d[26][3]), "+f"(d[27][0]), "+f"(d[27][1]), "+f"(d[27][2]), "+f"(d[27][3]),
        "+f"(d[28][0]), "+f"(d[28][1]), "+f"(d[28][2]), "+f"(d[28][3]), "+f"(d[29][0]), "+f"(d[29][1]), "+f"(d[29][2]), "+f"(d[29][3]),
        "+f"(d[30][0]), "+f"(d[30][1]), "+f"(d[30][2]), "+f"(d[30][3]), "+f"(d[31][0]), "+f"(d[31][1]), "+f"(d[31][2]), "+f"(d[31][3])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}

#else
namespace emu {

// A decoded K-major descriptor: where row `row`, element k (bf16) of the operand lives.
struct KMajorOperand {
  uint32_t start, group_bytes, row_bytes;
};

inline KMajorOperand Decode(uint64_t desc) {
  const uint32_t layout = static_cast<uint32_t>(desc >> 62), base_offset = static_cast<uint32_t>(desc >> 49) & 7u;
  const uint32_t row_bytes = layout == 1 ? 128 : layout == 2 ? 64 : layout == 3 ? 32 : 0;
  if (row_bytes == 0 || base_offset != 0) {
    std::fprintf(stderr, "wgmma emulation: descriptor 0x%016llx has layout type %u and base offset %u; only swizzled "
                         "K-major tiles aligned to their pattern are emulated\n",
                 static_cast<unsigned long long>(desc), layout, base_offset);
    std::abort();
  }
  return {static_cast<uint32_t>(desc & 0x3FFFu) << 4, static_cast<uint32_t>((desc >> 32) & 0x3FFFu) << 4, row_bytes};
}

// Element k (< 16) of row `row`, as bits: the canonical K-major address, then the swizzle (the 16-byte
// chunk bits 4.. XORed with the bits from 7 up: 1, 2 or 3 of them for 32, 64 or 128-byte rows).
inline uint32_t Address(const KMajorOperand& op, int row, int k) {
  uint32_t addr = op.start + static_cast<uint32_t>(row / 8) * op.group_bytes + static_cast<uint32_t>(row % 8) * op.row_bytes +
                  2u * static_cast<uint32_t>(k);
  return addr ^ (((addr >> 7) & (op.row_bytes / 16 - 1)) << 4);
}

inline uint16_t ReadBits(const KMajorOperand& op, int row, int k, std::vector<uint32_t>* addrs) {
  const uint32_t addr = Address(op, row, k);
  if (addrs) addrs->push_back(addr);
  uint16_t bits;
  std::memcpy(&bits, ::sslinv_emu::SharedWindowPointer(addr, 2), 2);
  return bits;
}

// The rows of A (2 of them) and columns of B (N / 4) a thread's accumulators need, 16 K each.
template <int kN>
struct Operands {
  uint16_t a[2][16];
  uint16_t b[kN / 4][16];
};

// Reads them; `addrs` (when given) collects the shared-window address of every element read.
template <int kN>
inline void Read(const KMajorOperand& a, const KMajorOperand& b, int row0, int col0, Operands<kN>* out, std::vector<uint32_t>* addrs) {
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 16; ++k) out->a[h][k] = ReadBits(a, row0 + 8 * h, k, addrs);
  for (int j = 0; j < kN / 8; ++j)
    for (int e = 0; e < 2; ++e)
      for (int k = 0; k < 16; ++k) out->b[2 * j + e][k] = ReadBits(b, col0 + 8 * j + e, k, addrs);
}

}  // namespace emu
#endif

// D += A B for one k16 step of a warpgroup's 64 x N tile (see the header for the layouts).
template <int kN>
__device__ __forceinline__ void WgmmaBf16Async(float (&d)[kN / 8][4], uint64_t desc_a, uint64_t desc_b) {
  static_assert(kN == 64 || kN == 128 || kN == 256, "wgmma N: 64, 128 or 256");
#ifdef SSLINV_GPU_ONLY
  if constexpr (kN == 64) WgmmaBf16Async_64x64(d, desc_a, desc_b);
  else if constexpr (kN == 128) WgmmaBf16Async_64x128(d, desc_a, desc_b);
  else WgmmaBf16Async_64x256(d, desc_a, desc_b);
#else
  struct Issue {
    uint64_t a, b;
  };
  emu::ExpectUniform(Issue{desc_a, desc_b}, "wgmma.mma_async");
  const int t = static_cast<int>(threadIdx.x % 128);
  const int row0 = 16 * (t / 32) + (t % 32) / 4, col0 = 2 * (t % 4);
  const emu::KMajorOperand a = emu::Decode(desc_a), b = emu::Decode(desc_b);
  auto issued = std::make_shared<emu::Operands<kN>>();
  auto addrs = std::make_shared<std::vector<uint32_t>>();
  emu::Read<kN>(a, b, row0, col0, issued.get(), addrs.get());
  ::sslinv_emu::CheckWgmmaIssue(*addrs);  // wgmma.fence before it; fence.proxy.async after the copies it reads
  ::sslinv_emu::CountAsyncReaders(*addrs, +1);  // a cp.async into these words before the wait is a race
  float* acc = &d[0][0];
  ::sslinv_emu::WgmmaEnqueue([=] {
    ::sslinv_emu::CountAsyncReaders(*addrs, -1);
    emu::Operands<kN> now;
    emu::Read<kN>(a, b, row0, col0, &now, nullptr);
    if (std::memcmp(&now, issued.get(), sizeof now) != 0) {
      std::fprintf(stderr, "wgmma emulation: the shared memory under an in-flight wgmma.mma_async changed before the "
                           "wgmma.wait_group that covers it (thread %u)\n",
                   static_cast<unsigned>(threadIdx.x));
      std::abort();
    }
    for (int j = 0; j < kN / 8; ++j)
      for (int e = 0; e < 4; ++e) {
        double sum = acc[4 * j + e];
        const uint16_t* ar = now.a[e / 2];
        const uint16_t* bc = now.b[2 * j + e % 2];
        for (int k = 0; k < 16; ++k) sum += static_cast<double>(mma::Bf16Value(ar[k])) * mma::Bf16Value(bc[k]);
        acc[4 * j + e] = mma::TensorCoreRound(sum);
      }
  });
#endif
}

}  // namespace sslinv::cuda::wgmma
