// The pieces the cp.async tensor-core convolutions share (conv2d_pipelined.cu with mma.sync,
// conv2d_wgmma.cu with wgmma): the shared-memory tile layout, the element types in memory, the
// im2col tile loader and the fused epilogue's store of two output columns.
//
// Tile layout: a stage holds an A tile [BM rows][64 bytes] (output pixels x GEMM-K) and a B tile
// [BN rows][64 bytes] (output channels x GEMM-K), both GEMM-K contiguous: a row is 4 chunks of 16
// bytes (8 bf16 or 4 fp32 channels of one filter tap). Chunk c of row r lives at
// r * 64 + (c ^ ((r >> 1) & 3)) * 16. That is the "64-byte swizzle" K-major layout of the PTX ISA (the
// 16-byte chunk bits 4-5 of the offset XORed with bits 7-8), so wgmma reads it through a descriptor
// as it is, and ldmatrix reads of 8 rows of one chunk column hit 8 different bank groups.
//
// Loader: thread t of kThreads owns chunk t % 4 of tile rows t / 4 + (kThreads / 4) i. Its chunk never
// changes, so one (r, s, c) cursor per thread follows GEMM-K from tile to tile without divisions.
// Taps outside the image, rows past M or K and GEMM-K past R*S*C are zero-filled by the copy itself.
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda/bf16_compat.h"
#include "cuda/conv2d.cuh"
#include "cuda/kernel_util.cuh"
#include "cuda/mma.cuh"

namespace sslinv::cuda::conv_tile {

constexpr int kRowBytes = 64;            // GEMM-K bytes per tile row and stage
constexpr int kChunks = kRowBytes / 16;  // 16-byte chunks per tile row

// Byte offset of chunk `chunk` of tile row `row` (the swizzle above).
__device__ __forceinline__ int Swizzle(int row, int chunk) { return row * kRowBytes + ((chunk ^ ((row >> 1) & 3)) << 4); }

// Two adjacent bf16 as one 32-bit word (p 4-byte aligned), and the store of one.
__device__ __forceinline__ uint32_t Bf16PairBits(const Bf16* p) {
  SSLINV_CHECK_VEC_ALIGN(p, 4);
#ifdef SSLINV_GPU_ONLY
  return *reinterpret_cast<const uint32_t*>(p);
#else
  uint32_t u;
  std::memcpy(&u, p, 4);
  return u;
#endif
}

__device__ __forceinline__ void StoreBf16Pair(Bf16* p, uint32_t u) {
  SSLINV_CHECK_VEC_ALIGN(p, 4);
#ifdef SSLINV_GPU_ONLY
  *reinterpret_cast<uint32_t*>(p) = u;
#else
  std::memcpy(p, &u, 4);
#endif
}

__device__ __forceinline__ float LowBf16(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float HighBf16(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

// bf16 in memory: fragments are used as loaded (Round is nothing); two values per 32-bit fragment
// word (k16 MMAs).
struct Bf16Elems {
  using Elem = Bf16;
  static constexpr int kPerChunk = 8;
  __device__ static void Round(uint32_t*, int) {}
  __device__ static void Mma(float d[4], const uint32_t a[4], const uint32_t b[2]) { mma::MmaBf16_16x8x16(d, a, b, d); }
  __device__ static void LoadPair(const Elem* p, float* v0, float* v1) {
    const uint32_t u = Bf16PairBits(p);
    *v0 = LowBf16(u), *v1 = HighBf16(u);
  }
  __device__ static void StorePair(Elem* p, float v0, float v1) { StoreBf16Pair(p, mma::PackBf16x2(v0, v1)); }
};

// fp32 in memory: each fragment word is one fp32, rounded to tf32 (cvt.rna) once loaded, then k8 MMAs.
struct Tf32Elems {
  using Elem = float;
  static constexpr int kPerChunk = 4;
  __device__ static void Round(uint32_t* words, int n) {
    for (int i = 0; i < n; ++i) words[i] = mma::ToTf32(__uint_as_float(words[i]));
  }
  __device__ static void Mma(float d[4], const uint32_t a[4], const uint32_t b[2]) { mma::MmaTf32_16x8x8(d, a, b, d); }
  __device__ static void LoadPair(const Elem* p, float* v0, float* v1) {
    SSLINV_CHECK_VEC_ALIGN(p, 8);
    const float2 v = *reinterpret_cast<const float2*>(p);
    *v0 = v.x, *v1 = v.y;
  }
  __device__ static void StorePair(Elem* p, float v0, float v1) {
    SSLINV_CHECK_VEC_ALIGN(p, 8);
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  }
};

// One thread's part of filling stage after stage with the A tile (kBM im2col rows from m0) and the B
// tile (kBN filter rows from n0), 64 bytes of GEMM-K per tile.
template <class E, int kBM, int kBN, int kThreads>
struct TileLoader {
  using Elem = typename E::Elem;
  static constexpr int kRowsPerPass = kThreads / kChunks;
  static constexpr int kARows = kBM / kRowsPerPass, kBRows = kBN / kRowsPerPass;
  static constexpr int kBK = kRowBytes / static_cast<int>(sizeof(Elem));  // GEMM-K per tile: 32 bf16 or 16 fp32
  static_assert(kBM % kRowsPerPass == 0 && kBN % kRowsPerPass == 0, "tile rows split evenly over the threads");

  const Elem* a_img[kARows];
  int a_ih0[kARows], a_iw0[kARows];
  const Elem* b_row[kBRows];
  int row, chunk, gemm_k;
  int k, c, s, r;  // GEMM-K index of this thread's chunk in the next tile, and its (r, s, c)

  __device__ TileLoader(const Conv2dShape& sh, int P, int Q, int M, const Elem* x, const Elem* w, int m0, int n0, int tid) {
    row = tid / kChunks;
    chunk = tid % kChunks;
    gemm_k = sh.r * sh.s * sh.c;
    for (int i = 0; i < kARows; ++i) {
      const int m = m0 + row + kRowsPerPass * i;
      a_img[i] = nullptr;
      a_ih0[i] = a_iw0[i] = 0;
      if (m < M) {
        const int img = m / (P * Q), pq = m - img * (P * Q);
        const int p = pq / Q, q = pq - p * Q;
        a_img[i] = x + static_cast<size_t>(img) * sh.h * sh.w * sh.c;
        a_ih0[i] = p * sh.stride_h - sh.pad_h;
        a_iw0[i] = q * sh.stride_w - sh.pad_w;
      }
    }
    for (int i = 0; i < kBRows; ++i) {
      const int n = n0 + row + kRowsPerPass * i;
      b_row[i] = n < sh.k ? w + static_cast<size_t>(n) * gemm_k : nullptr;
    }
    k = chunk * E::kPerChunk;
    c = k % sh.c;
    s = (k / sh.c) % sh.s;
    r = k / (sh.c * sh.s);
  }

  // Issues this thread's cp.async copies of the next GEMM-K tile into a_s / b_s (not committed),
  // then advances the cursor by kBK; C % kPerChunk == 0 keeps a chunk inside one tap.
  __device__ void Load(unsigned char* a_s, unsigned char* b_s, const Conv2dShape& sh, const Elem* x, const Elem* w) {
    const bool k_ok = k < gemm_k;
    for (int i = 0; i < kARows; ++i) {
      const int ih = a_ih0[i] + r, iw = a_iw0[i] + s;
      const bool ok = k_ok && a_img[i] != nullptr && static_cast<unsigned>(ih) < static_cast<unsigned>(sh.h) &&
                      static_cast<unsigned>(iw) < static_cast<unsigned>(sh.w);
      const Elem* src = ok ? a_img[i] + (static_cast<size_t>(ih) * sh.w + iw) * sh.c + c : x;
      mma::CpAsync16(a_s + Swizzle(row + kRowsPerPass * i, chunk), src, ok);
    }
    for (int i = 0; i < kBRows; ++i) {
      const bool ok = k_ok && b_row[i] != nullptr;
      mma::CpAsync16(b_s + Swizzle(row + kRowsPerPass * i, chunk), ok ? b_row[i] + k : w, ok);
    }
    k += kBK;
    c += kBK;
    while (c >= sh.c) {
      c -= sh.c;
      if (++s == sh.s) {
        s = 0;
        ++r;
      }
    }
  }
};

// The fused epilogue for output row m, columns n and n + 1 (K even, so n < K means n + 1 < K too):
// bias, residual and ReLU in fp32, then one store of the pair. residual may alias y: it is read first.
template <class E>
__device__ __forceinline__ void StoreOutputPair(const Conv2dShape& sh, const float* __restrict__ bias, const typename E::Elem* residual,
                                                bool relu, typename E::Elem* y, int m, int n, float v0, float v1) {
  if (n >= sh.k) return;
  const size_t off = static_cast<size_t>(m) * sh.k + n;
  if (bias) v0 += __ldg(bias + n), v1 += __ldg(bias + n + 1);
  if (residual) {
    float r0, r1;
    E::LoadPair(residual + off, &r0, &r1);
    v0 += r0, v1 += r1;
  }
  if (relu) v0 = fmaxf(v0, 0.f), v1 = fmaxf(v1, 0.f);
  E::StorePair(y + off, v0, v1);
}

// The launch checks both kernels share: a valid shape, C a whole number of 16-byte chunks, K even,
// x and w 16-byte aligned (cp.async), y and residual aligned to a pair of elements.
template <class E>
bool ArgumentsAreValid(const Conv2dShape& sh, const typename E::Elem* x, const typename E::Elem* w, const typename E::Elem* residual,
                       const typename E::Elem* y) {
  constexpr size_t kPair = 2 * sizeof(typename E::Elem);
  if (!Conv2dShapeIsValid(sh) || sh.c % E::kPerChunk != 0 || sh.k % 2 != 0 || x == nullptr || w == nullptr || y == nullptr) return false;
  return detail::IsAligned(x, 16) && detail::IsAligned(w, 16) && detail::IsAligned(y, kPair) &&
         (residual == nullptr || detail::IsAligned(residual, kPair));
}

}  // namespace sslinv::cuda::conv_tile
