// The pipelined tensor-core convolution (see conv2d_pipelined.cuh for shapes and conventions),
// templated on the element type in memory: Bf16Elems (bf16 x, w, residual, y; mma m16n8k16) or
// Tf32Elems (fp32 everywhere, rounded to tf32 as fragments are formed; mma m16n8k8). Both fill the
// same 64-byte tile rows, so everything but the MMA, the fragment rounding and the epilogue's loads
// and stores is shared.
//
// Block: 256 threads (8 warps) compute a 128 x BN output tile, BN = 64 or 128 (the launcher picks the
// one that wastes fewer columns of K, as conv2d.cu does). Warps are 2 x 4 of 64 x 32 (BN = 128) or
// 4 x 2 of 32 x 32 (BN = 64); a warp tile is kMT x kNT MMAs of 16 x 8 (x 16 bf16, x 8 tf32 along K).
//
// Shared memory: kStages stages, each an A tile [128 rows][64 bytes] and a B tile [BN rows][64 bytes],
// both GEMM-K contiguous: a row is 4 chunks of 16 bytes (8 bf16 or 4 fp32 channels of one tap). Chunk c
// of row r lives at r * 64 + (c ^ ((r >> 1) & 3)) * 16: the 8 rows an ldmatrix phase reads (one
// chunk column) then fall into 8 different 16-byte bank groups, and a cp.async store of a warp
// (8 rows x 4 chunks) covers all 32 banks four times, the minimum.
//
// Loads: thread t owns chunk t % 4 of rows t / 4 and t / 4 + 64 (A; B likewise, one row at BN = 64).
// Since its chunk never changes, one (r, s, c) cursor per thread follows GEMM-K from stage to stage
// without divisions. Taps outside the image, rows past M or K and GEMM-K past R*S*C are zero-filled
// by the copy itself (src-size 0).
//
// Pipeline (per GEMM-K tile kt): wait until tile kt's copies have landed (at most kStages - 2 groups
// in flight), __syncthreads (everyone's copies visible; everyone done with tile kt - 1), issue the
// copies of tile kt + kStages - 1 into the stage tile kt - 1 used, commit, then the MMAs of tile kt
// from its stage. One barrier per tile; the loads of two later tiles are in flight during the MMAs.
//
// ldmatrix serves both types: a 16-byte chunk row is 8 bf16 or 4 fp32, and the .b16 matrix layout
// hands lane i the 4 bytes at column i % 4 of row i / 4, which is exactly the m16n8k16 bf16 fragment
// (two values along K) and the m16n8k8 tf32 fragment (one value) alike.
//
// Epilogue: accumulator e of MMA tile (mt, nt) is row g + 8 (e / 2), columns 2t + e % 2; bias,
// residual and ReLU in fp32, then one store of the two columns (bf16 pair or float2).
#include "cuda/conv2d_pipelined.cuh"

#include <cstdint>
#include <cstring>

#include "cuda/kernel_util.cuh"
#include "cuda/mma.cuh"

namespace sslinv::cuda {
namespace {

using namespace mma;  // NOLINT: the warp-level primitives

constexpr int kThreads = 256;
constexpr int kBM = 128;
constexpr int kRowBytes = 64;              // GEMM-K bytes per tile row and stage
constexpr int kChunks = kRowBytes / 16;    // 16-byte chunks per tile row
constexpr int kStages = 3;

// Byte offset of chunk `chunk` of tile row `row` (the XOR swizzle above).
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
  __device__ static void Mma(float d[4], const uint32_t a[4], const uint32_t b[2]) { MmaBf16_16x8x16(d, a, b, d); }
  __device__ static void LoadPair(const Elem* p, float* v0, float* v1) {
    const uint32_t u = Bf16PairBits(p);
    *v0 = LowBf16(u), *v1 = HighBf16(u);
  }
  __device__ static void StorePair(Elem* p, float v0, float v1) { StoreBf16Pair(p, PackBf16x2(v0, v1)); }
};

// fp32 in memory: each fragment word is one fp32, rounded to tf32 (cvt.rna) once loaded, then k8 MMAs.
struct Tf32Elems {
  using Elem = float;
  static constexpr int kPerChunk = 4;
  __device__ static void Round(uint32_t* words, int n) {
    for (int i = 0; i < n; ++i) words[i] = ToTf32(__uint_as_float(words[i]));
  }
  __device__ static void Mma(float d[4], const uint32_t a[4], const uint32_t b[2]) { MmaTf32_16x8x8(d, a, b, d); }
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

template <class E, int kBN>
__global__ void __launch_bounds__(kThreads, 2)
    ConvMmaPipelinedKernel(Conv2dShape sh, int P, int Q, int M, const typename E::Elem* __restrict__ x,
                           const typename E::Elem* __restrict__ w, const float* __restrict__ bias,
                           const typename E::Elem* residual, bool relu, typename E::Elem* y) {
  using Elem = typename E::Elem;
  constexpr int kBK = kRowBytes / static_cast<int>(sizeof(Elem));  // GEMM-K per stage: 32 bf16 or 16 fp32
  constexpr int kWarpsN = kBN == 128 ? 4 : 2, kWarpsM = 8 / kWarpsN;
  constexpr int kWM = kBM / kWarpsM, kWN = kBN / kWarpsN;
  constexpr int kMT = kWM / 16, kNT = kWN / 8;
  static_assert(kNT % 2 == 0, "B fragments are loaded two MMA columns at a time");
  constexpr int kARows = kBM * kChunks / kThreads;  // 2 rows per thread
  constexpr int kBRows = kBN * kChunks / kThreads;  // 2 or 1
  constexpr int kStageBytes = (kBM + kBN) * kRowBytes;
  SSLINV_DYNAMIC_SMEM(unsigned char, smem);

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32, lane = tid % 32;
  const int wm = warp % kWarpsM, wn = warp / kWarpsM;
  const int m0 = static_cast<int>(blockIdx.x) * kBM, n0 = static_cast<int>(blockIdx.y) * kBN;
  const int gemm_k = sh.r * sh.s * sh.c;
  const int num_tiles = (gemm_k + kBK - 1) / kBK;

  // Loader state. Row i of this thread is tile row tid / kChunks + 64 i; its chunk is tid % kChunks.
  const int chunk = tid % kChunks;
  const Elem* a_img[kARows];
  int a_ih0[kARows], a_iw0[kARows];
  for (int i = 0; i < kARows; ++i) {
    const int m = m0 + tid / kChunks + 64 * i;
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
  const Elem* b_row[kBRows];
  for (int i = 0; i < kBRows; ++i) {
    const int n = n0 + tid / kChunks + 64 * i;
    b_row[i] = n < sh.k ? w + static_cast<size_t>(n) * gemm_k : nullptr;
  }
  // GEMM-K index of this thread's chunk in the next tile to load, and its (r, s, c).
  int k = chunk * E::kPerChunk;
  int c = k % sh.c, s = (k / sh.c) % sh.s, r = k / (sh.c * sh.s);

  auto load_tile = [&](int stage) {
    unsigned char* a_s = smem + stage * kStageBytes;
    unsigned char* b_s = a_s + kBM * kRowBytes;
    const bool k_ok = k < gemm_k;
    for (int i = 0; i < kARows; ++i) {
      const int ih = a_ih0[i] + r, iw = a_iw0[i] + s;
      const bool ok = k_ok && a_img[i] != nullptr && static_cast<unsigned>(ih) < static_cast<unsigned>(sh.h) &&
                      static_cast<unsigned>(iw) < static_cast<unsigned>(sh.w);
      const Elem* src = ok ? a_img[i] + (static_cast<size_t>(ih) * sh.w + iw) * sh.c + c : x;
      CpAsync16(a_s + Swizzle(tid / kChunks + 64 * i, chunk), src, ok);
    }
    for (int i = 0; i < kBRows; ++i) {
      const bool ok = k_ok && b_row[i] != nullptr;
      CpAsync16(b_s + Swizzle(tid / kChunks + 64 * i, chunk), ok ? b_row[i] + k : w, ok);
    }
    // Next tile: GEMM-K advances by kBK; C % kPerChunk == 0 keeps the chunk inside one tap.
    k += kBK;
    c += kBK;
    while (c >= sh.c) {
      c -= sh.c;
      if (++s == sh.s) {
        s = 0;
        ++r;
      }
    }
  };

  float acc[kMT][kNT][4];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  // Prologue: tiles 0 .. kStages - 2 in flight (empty groups past the last tile keep the count).
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < num_tiles) load_tile(st);
    CpAsyncCommit();
  }

  // ldmatrix row addresses within a stage (their chunk column is added per k16 step): A matrix j of
  // an x4 is rows (j % 2) * 8.. of the MMA tile, chunk j / 2; B matrix j is rows (j / 2) * 8.. of a
  // pair of MMA columns, chunk j % 2.
  const int a_lrow = wm * kWM + lane % 16, a_chunk = lane / 16;
  const int b_lrow = wn * kWN + lane % 8 + 8 * (lane / 16), b_chunk = (lane / 8) % 2;

  for (int kt = 0; kt < num_tiles; ++kt) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();
    if (kt + kStages - 1 < num_tiles) load_tile((kt + kStages - 1) % kStages);
    CpAsyncCommit();

    const unsigned char* a_s = smem + (kt % kStages) * kStageBytes;
    const unsigned char* b_s = a_s + kBM * kRowBytes;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {  // two MMA K-steps per 64-byte row: k16 bf16 or k8 tf32
      uint32_t af[kMT][4], bf[kNT][2];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        LdMatrixX4(af[mt], a_s + Swizzle(a_lrow + mt * 16, 2 * ks + a_chunk));
        E::Round(af[mt], 4);
      }
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t q4[4];
        LdMatrixX4(q4, b_s + Swizzle(b_lrow + np * 16, 2 * ks + b_chunk));
        bf[2 * np][0] = q4[0];
        bf[2 * np][1] = q4[1];
        bf[2 * np + 1][0] = q4[2];
        bf[2 * np + 1][1] = q4[3];
        E::Round(bf[2 * np], 2);
        E::Round(bf[2 * np + 1], 2);
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) E::Mma(acc[mt][nt], af[mt], bf[nt]);
    }
  }
  CpAsyncWait<0>();  // nothing is left in flight when the block exits (only empty groups remain)

  ForEachAccumulatorPair(acc, m0 + wm * kWM, n0 + wn * kWN, M, [&](int m, int n, float v0, float v1) {
    if (n >= sh.k) return;  // K even: n + 1 < K as well
    const size_t off = static_cast<size_t>(m) * sh.k + n;
    if (bias) v0 += __ldg(bias + n), v1 += __ldg(bias + n + 1);
    if (residual) {  // read before the store below: residual may alias y
      float r0, r1;
      E::LoadPair(residual + off, &r0, &r1);
      v0 += r0, v1 += r1;
    }
    if (relu) v0 = fmaxf(v0, 0.f), v1 = fmaxf(v1, 0.f);
    E::StorePair(y + off, v0, v1);
  });
}

template <class E>
cudaError_t LaunchPipelined(const Conv2dShape& sh, const typename E::Elem* x, const typename E::Elem* w, const float* bias,
                            const typename E::Elem* residual, bool relu, typename E::Elem* y, cudaStream_t stream) {
  constexpr size_t kPair = 2 * sizeof(typename E::Elem);
  if (!Conv2dShapeIsValid(sh) || sh.c % E::kPerChunk != 0 || sh.k % 2 != 0 || x == nullptr || w == nullptr || y == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (!detail::IsAligned(x, 16) || !detail::IsAligned(w, 16) || !detail::IsAligned(y, kPair) ||
      (residual != nullptr && !detail::IsAligned(residual, kPair))) {
    return cudaErrorInvalidValue;
  }
  const int P = sh.p(), Q = sh.q();
  const int M = sh.n * P * Q;
  const int bn = ConvPickBlockN(sh.k);
  const dim3 grid((M + kBM - 1) / kBM, (sh.k + bn - 1) / bn);
  // 3 stages x (128 + BN) rows x 64 bytes: 48 KiB at BN = 128, the most a launch gets without opt-in.
  const size_t smem = static_cast<size_t>(kStages) * (kBM + bn) * kRowBytes;
  if (bn == 128) SSLINV_LAUNCH((ConvMmaPipelinedKernel<E, 128>), grid, kThreads, smem, stream, sh, P, Q, M, x, w, bias, residual, relu, y);
  else SSLINV_LAUNCH((ConvMmaPipelinedKernel<E, 64>), grid, kThreads, smem, stream, sh, P, Q, M, x, w, bias, residual, relu, y);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchConv2dForwardBf16Nhwc(const Conv2dShape& sh, const Bf16* x, const Bf16* w, const float* bias,
                                        const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream) {
  return LaunchPipelined<Bf16Elems>(sh, x, w, bias, residual, relu, y, stream);
}

cudaError_t LaunchConv2dForwardTF32Pipelined(const Conv2dShape& sh, const float* x, const float* w, const float* bias,
                                             const float* residual, bool relu, float* y, cudaStream_t stream) {
  return LaunchPipelined<Tf32Elems>(sh, x, w, bias, residual, relu, y, stream);
}

}  // namespace sslinv::cuda
