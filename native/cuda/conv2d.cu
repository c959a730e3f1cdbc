// Forward convolution kernels: implicit GEMM over NHWC activations and KRSC filters (see conv2d.cuh
// for shapes and conventions).
//
// Shared structure of all three kernels:
//   - A block computes a 128 x BN tile of the [M = N*P*Q, K] output, BN = 64 or 128 (the launcher
//     picks the one that wastes fewer columns of K).
//   - The mainloop walks GEMM-K in tiles of BK. Each thread owns fixed float4 groups of 4 consecutive
//     GEMM-K elements of the A tile (im2col rows gathered from x on the fly) and of the B tile (filter
//     rows). With C % 4 == 0 a group never straddles two filter taps, so it is one 16-byte load; the
//     (r, s, c) of the group is tracked by an incremental cursor, so the loop has no divisions.
//     Out-of-image taps, rows past M, columns past K and GEMM-K past R*S*C load zeros.
//   - Double buffering: the next tile is loaded into registers while the current one is multiplied
//     from shared memory, then stored to the other buffer; one __syncthreads per tile.
//   - Fused epilogue: bias, residual and ReLU, then one store per output.
// The tensor-core kernels round their inputs while staging into shared memory (tf32 or packed bf16
// words), so the fragment loads in the inner loop are plain 32-bit shared loads. The MMA itself sits
// behind MmaTf32_16x8x8 / MmaBf16_16x8x16, which the host emulation build implements with warp
// shuffles following the PTX ISA fragment layouts, so the kernels' indexing is tested without a GPU.
#include <cstdint>
#include <cstring>

#include "cuda/conv2d.cuh"
#include "cuda/conv2d_pipelined.cuh"
#include "cuda/conv_launch_counts.h"
#include "cuda/kernel_util.cuh"
#include "cuda/mma.cuh"

namespace sslinv::cuda {
namespace {

constexpr int kThreads = 256;  // every kernel here uses 1-D blocks of 256 threads (8 warps)
constexpr int kBM = 128;       // output pixels per block tile

using namespace mma;  // NOLINT: the warp-level primitives and their word types

// Staging and MMA per tensor-core precision. A shared-memory row holds 16 words of GEMM-K per tile
// either way: 16 tf32 values or 32 bf16 values, and one MMA consumes 8 words (k8 tf32, k16 bf16).
struct Tf32Mma {
  static constexpr int kPerWord = 1;
  // Two blocks (16 warps) per SM: fits the resulting 128-register cap without spilling.
  static constexpr int MinBlocksPerSm(int) { return 2; }
  // Rounds 4 consecutive GEMM-K values and stores them as 4 words at dst (16-byte aligned).
  __device__ static void Stage(uint32_t* dst, float4 v) {
    SSLINV_CHECK_VEC_ALIGN(dst, 16);
    *reinterpret_cast<Words4*>(dst) = Words4{ToTf32(v.x), ToTf32(v.y), ToTf32(v.z), ToTf32(v.w)};
  }
  __device__ static void Mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    MmaTf32_16x8x8(d, a, b, c);
  }
};

struct Bf16Mma {
  static constexpr int kPerWord = 2;
  // The register prefetch of a 32-wide K tile needs more than 128 registers at BN = 128 (capping
  // there spills), so one block per SM at BN = 128 and two at BN = 64.
  static constexpr int MinBlocksPerSm(int block_n) { return block_n == 128 ? 1 : 2; }
  // Rounds 4 consecutive GEMM-K values and stores them as 2 words at dst (8-byte aligned).
  __device__ static void Stage(uint32_t* dst, float4 v) {
    SSLINV_CHECK_VEC_ALIGN(dst, 8);
    *reinterpret_cast<Words2*>(dst) = Words2{PackBf16x2(v.x, v.y), PackBf16x2(v.z, v.w)};
  }
  __device__ static void Mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    MmaBf16_16x8x16(d, a, b, c);
  }
};

// ---------------------------------------------------------------------------------------------
// Operand loaders (global -> registers), shared by the SIMT and tensor-core kernels.

// Where one output pixel's receptive field starts.
struct PixelOrigin {
  const float* img;  // x + n * H*W*C, or nullptr for GEMM rows past M (they load zeros)
  int ih0, iw0;      // p * stride_h - pad_h, q * stride_w - pad_w
};

// Loads the A tile (kRows im2col rows x kBK GEMM-K values) as float4 groups. Thread t owns groups
// i * kThreads + t (i < kIters): group g is row g / kGroups, GEMM-K offset 4 * (g % kGroups). Since
// kThreads is a multiple of kGroups, a thread's K offset is the same for all its rows, so one tap
// cursor (k, r, s, c) per thread suffices.
template <int kRows, int kBK, bool kVec>
struct ATileLoader {
  static constexpr int kGroups = kBK / 4;
  static constexpr int kIters = kRows * kGroups / kThreads;
  static_assert(kThreads % kGroups == 0 && kRows * kGroups % kThreads == 0, "A tile must split evenly");

  PixelOrigin origin[kIters];
  int k, r, s, c;  // GEMM-K index of this thread's group in the current tile and its (r, s, c)
  float4 v[kIters];

  __device__ static int Row(int i) { return (i * kThreads + static_cast<int>(threadIdx.x)) / kGroups; }
  __device__ static int Group() { return static_cast<int>(threadIdx.x) % kGroups; }

  __device__ void Init(const Conv2dShape& sh, int P, int Q, int M, const float* x, int m0) {
    for (int i = 0; i < kIters; ++i) {
      const int m = m0 + Row(i);
      origin[i] = PixelOrigin{nullptr, 0, 0};
      if (m < M) {
        const int img = m / (P * Q);
        const int pq = m - img * (P * Q);
        const int p = pq / Q, q = pq - (pq / Q) * Q;
        origin[i].img = x + static_cast<size_t>(img) * sh.h * sh.w * sh.c;
        origin[i].ih0 = p * sh.stride_h - sh.pad_h;
        origin[i].iw0 = q * sh.stride_w - sh.pad_w;
      }
    }
    k = 4 * Group();
    c = k % sh.c;
    s = (k / sh.c) % sh.s;
    r = k / (sh.c * sh.s);
  }

  // Moves to the next GEMM-K tile. The vector path keeps (r, s, c) in step without divisions.
  __device__ void Next(const Conv2dShape& sh) {
    k += kBK;
    if (kVec) {
      c += kBK;
      while (c >= sh.c) {
        c -= sh.c;
        if (++s == sh.s) {
          s = 0;
          ++r;
        }
      }
    }
  }

  __device__ void Load(const Conv2dShape& sh, int gemm_k) {
    for (int i = 0; i < kIters; ++i) {
      v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
      const PixelOrigin o = origin[i];
      if (o.img == nullptr) continue;
      if (kVec) {
        // C % 4 == 0 and k % 4 == 0: the 4 values are channels c..c+3 of one tap, all in range or
        // all past GEMM-K.
        const int ih = o.ih0 + r, iw = o.iw0 + s;
        if (k < gemm_k && static_cast<unsigned>(ih) < static_cast<unsigned>(sh.h) &&
            static_cast<unsigned>(iw) < static_cast<unsigned>(sh.w)) {
          const float* src = o.img + (static_cast<size_t>(ih) * sh.w + iw) * sh.c + c;
          SSLINV_CHECK_VEC_ALIGN(src, 16);
          v[i] = __ldg(reinterpret_cast<const float4*>(src));
        }
      } else {
        float e[4];
        for (int j = 0; j < 4; ++j) {
          e[j] = 0.f;
          const int kj = k + j;
          if (kj >= gemm_k) continue;
          const int cj = kj % sh.c, rs = kj / sh.c;
          const int ih = o.ih0 + rs / sh.s, iw = o.iw0 + rs % sh.s;
          if (static_cast<unsigned>(ih) < static_cast<unsigned>(sh.h) &&
              static_cast<unsigned>(iw) < static_cast<unsigned>(sh.w)) {
            e[j] = __ldg(o.img + (static_cast<size_t>(ih) * sh.w + iw) * sh.c + cj);
          }
        }
        v[i] = make_float4(e[0], e[1], e[2], e[3]);
      }
    }
  }
};

// Loads the B tile (kRows filter rows x kBK GEMM-K values) with the same group ownership as the A
// loader. When the tile has fewer groups than threads (BN = 64 in the SIMT kernel) the extra
// threads own nothing (Active() is false).
template <int kRows, int kBK, bool kVec>
struct BTileLoader {
  static constexpr int kGroups = kBK / 4;
  static constexpr int kIters = (kRows * kGroups + kThreads - 1) / kThreads;
  static_assert(kThreads % kGroups == 0, "B tile groups must divide the block");

  const float* row_ptr[kIters];  // filter row n0 + Row(i), or nullptr past K or when not Active
  int k;
  float4 v[kIters];

  __device__ static int Row(int i) { return (i * kThreads + static_cast<int>(threadIdx.x)) / kGroups; }
  __device__ static int Group() { return static_cast<int>(threadIdx.x) % kGroups; }
  __device__ static bool Active(int i) { return i * kThreads + static_cast<int>(threadIdx.x) < kRows * kGroups; }

  __device__ void Init(const float* w, int K, int gemm_k, int n0) {
    for (int i = 0; i < kIters; ++i) {
      const int n = n0 + Row(i);
      row_ptr[i] = Active(i) && n < K ? w + static_cast<size_t>(n) * gemm_k : nullptr;
    }
    k = 4 * Group();
  }

  __device__ void Next() { k += kBK; }

  __device__ void Load(int gemm_k) {
    for (int i = 0; i < kIters; ++i) {
      v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
      const float* row = row_ptr[i];
      if (row == nullptr) continue;
      if (kVec) {  // gemm_k % 4 == 0 here, so the group is all in range or all out
        if (k < gemm_k) {
          SSLINV_CHECK_VEC_ALIGN(row + k, 16);
          v[i] = __ldg(reinterpret_cast<const float4*>(row + k));
        }
      } else {
        float e[4];
        for (int j = 0; j < 4; ++j) e[j] = k + j < gemm_k ? __ldg(row + k + j) : 0.f;
        v[i] = make_float4(e[0], e[1], e[2], e[3]);
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Epilogue.

struct Epilogue {
  const float* bias;      // [K] or nullptr
  const float* residual;  // [M, K] or nullptr; may alias y (each element is read before it is written)
  float* y;               // [M, K]
  bool relu;
  bool vec;  // K % 4 == 0 (K % 2 for the tensor-core kernels) and y/bias/residual aligned for it:
             // Store4 / Store2 instead of Apply per element

  __device__ float Apply(float acc, size_t off, int n) const {
    if (bias) acc += __ldg(bias + n);
    if (residual) acc += residual[off];  // a plain load, not __ldg: residual may alias y
    return relu ? fmaxf(acc, 0.f) : acc;
  }

  // Columns n..n+3 of row offset off (vec path, SIMT): same arithmetic, 16-byte accesses.
  __device__ void Store4(float4 acc, size_t off, int n) const {
    if (bias) {
      SSLINV_CHECK_VEC_ALIGN(bias + n, 16);
      const float4 b = __ldg(reinterpret_cast<const float4*>(bias + n));
      acc.x += b.x, acc.y += b.y, acc.z += b.z, acc.w += b.w;
    }
    if (residual) {
      SSLINV_CHECK_VEC_ALIGN(residual + off, 16);
      const float4 r = *reinterpret_cast<const float4*>(residual + off);
      acc.x += r.x, acc.y += r.y, acc.z += r.z, acc.w += r.w;
    }
    if (relu) acc = make_float4(fmaxf(acc.x, 0.f), fmaxf(acc.y, 0.f), fmaxf(acc.z, 0.f), fmaxf(acc.w, 0.f));
    SSLINV_CHECK_VEC_ALIGN(y + off, 16);
    *reinterpret_cast<float4*>(y + off) = acc;
  }

  // Columns n, n+1 (vec path, tensor-core kernels): 8-byte accesses.
  __device__ void Store2(float2 acc, size_t off, int n) const {
    if (bias) {
      SSLINV_CHECK_VEC_ALIGN(bias + n, 8);
      const float2 b = __ldg(reinterpret_cast<const float2*>(bias + n));
      acc.x += b.x, acc.y += b.y;
    }
    if (residual) {
      SSLINV_CHECK_VEC_ALIGN(residual + off, 8);
      const float2 r = *reinterpret_cast<const float2*>(residual + off);
      acc.x += r.x, acc.y += r.y;
    }
    if (relu) acc = make_float2(fmaxf(acc.x, 0.f), fmaxf(acc.y, 0.f));
    SSLINV_CHECK_VEC_ALIGN(y + off, 8);
    *reinterpret_cast<float2*>(y + off) = acc;
  }
};

// ---------------------------------------------------------------------------------------------
// fp32 SIMT kernel. 16 x 16 threads; thread (tx, ty) owns rows {ty*4 + i, 64 + ty*4 + i} (i < 4)
// and columns {tx*4 + j, 64 + tx*4 + j} (j < 4, the second set only when BN = 128). Splitting the
// micro-tile into two 4-wide halves 64 apart makes the float4 shared loads of a warp contiguous.
// Shared memory holds A and B transposed, [BK][BM + 4] and [BK][BN + 4]: the inner product reads a
// row of each along M / N; the +4 padding makes the transposing stores conflict-free at BK = 8
// (2-way at BK = 16, once per tile).
// kBK is GEMM-K per stage: 8 reads 32 bytes of each im2col row per stage, 16 reads 64 (twice the
// bytes in flight and twice the FMAs to hide them behind; see SimtBk below). kMinBlocks is the
// occupancy the register allocation must allow (2 caps it at 128 registers per thread).
template <int kBN, int kBK, int kMinBlocks, bool kVec>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    ConvFwdSimtKernel(Conv2dShape sh, int P, int Q, int M, const float* __restrict__ x,
                      const float* __restrict__ w, Epilogue ep) {
  constexpr int kTN = kBN / 16;  // 4 or 8 columns per thread
  constexpr int kAStride = kBM + 4, kBStride = kBN + 4;
  SSLINV_DYNAMIC_SMEM(float, smem);
  float* const a_smem = smem;                            // [2][kBK][kAStride]
  float* const b_smem = smem + 2 * kBK * kAStride;       // [2][kBK][kBStride]

  const int tx = static_cast<int>(threadIdx.x) % 16, ty = static_cast<int>(threadIdx.x) / 16;
  const int m0 = static_cast<int>(blockIdx.x) * kBM, n0 = static_cast<int>(blockIdx.y) * kBN;
  const int gemm_k = sh.r * sh.s * sh.c;
  const int num_tiles = (gemm_k + kBK - 1) / kBK;

  ATileLoader<kBM, kBK, kVec> a;
  BTileLoader<kBN, kBK, kVec> b;
  a.Init(sh, P, Q, M, x, m0);
  b.Init(w, sh.k, gemm_k, n0);

  auto store = [&](int buf) {
    float* as = a_smem + buf * kBK * kAStride;
    for (int i = 0; i < a.kIters; ++i) {
      const int row = a.Row(i), k4 = 4 * a.Group();
      as[(k4 + 0) * kAStride + row] = a.v[i].x;
      as[(k4 + 1) * kAStride + row] = a.v[i].y;
      as[(k4 + 2) * kAStride + row] = a.v[i].z;
      as[(k4 + 3) * kAStride + row] = a.v[i].w;
    }
    float* bs = b_smem + buf * kBK * kBStride;
    for (int i = 0; i < b.kIters; ++i) {
      if (!b.Active(i)) continue;
      const int row = b.Row(i), k4 = 4 * b.Group();
      bs[(k4 + 0) * kBStride + row] = b.v[i].x;
      bs[(k4 + 1) * kBStride + row] = b.v[i].y;
      bs[(k4 + 2) * kBStride + row] = b.v[i].z;
      bs[(k4 + 3) * kBStride + row] = b.v[i].w;
    }
  };

  float acc[8][kTN];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0.f;

  a.Load(sh, gemm_k);
  b.Load(gemm_k);
  store(0);
  __syncthreads();

  for (int kt = 0; kt < num_tiles; ++kt) {
    const bool more = kt + 1 < num_tiles;
    if (more) {  // global loads for the next tile overlap the FMAs below
      a.Next(sh);
      b.Next();
      a.Load(sh, gemm_k);
      b.Load(gemm_k);
    }
    const float* as = a_smem + (kt & 1) * kBK * kAStride;
    const float* bs = b_smem + (kt & 1) * kBK * kBStride;
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float av[8], bv[kTN];
      SSLINV_CHECK_VEC_ALIGN(as + kk * kAStride + ty * 4, 16);
      const float4 a_lo = *reinterpret_cast<const float4*>(as + kk * kAStride + ty * 4);
      const float4 a_hi = *reinterpret_cast<const float4*>(as + kk * kAStride + 64 + ty * 4);
      av[0] = a_lo.x, av[1] = a_lo.y, av[2] = a_lo.z, av[3] = a_lo.w;
      av[4] = a_hi.x, av[5] = a_hi.y, av[6] = a_hi.z, av[7] = a_hi.w;
#pragma unroll
      for (int h = 0; h < kTN / 4; ++h) {
        SSLINV_CHECK_VEC_ALIGN(bs + kk * kBStride + h * 64 + tx * 4, 16);
        const float4 bq = *reinterpret_cast<const float4*>(bs + kk * kBStride + h * 64 + tx * 4);
        bv[4 * h + 0] = bq.x, bv[4 * h + 1] = bq.y, bv[4 * h + 2] = bq.z, bv[4 * h + 3] = bq.w;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) store((kt + 1) & 1);  // the other buffer: everyone finished reading it last iteration
    __syncthreads();
  }

  // Epilogue: each thread writes 8 rows x kTN/4 runs of 4 columns; a warp's float4 stores to one row
  // cover 256 contiguous bytes.
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
    if (m >= M) continue;
#pragma unroll
    for (int h = 0; h < kTN / 4; ++h) {
      const int n = n0 + h * 64 + tx * 4;
      const size_t off = static_cast<size_t>(m) * sh.k + n;
      if (ep.vec) {
        if (n < sh.k)  // K % 4 == 0: all four columns are in range
          ep.Store4(make_float4(acc[i][4 * h], acc[i][4 * h + 1], acc[i][4 * h + 2], acc[i][4 * h + 3]), off, n);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (n + j < sh.k) ep.y[off + j] = ep.Apply(acc[i][4 * h + j], off + j, n + j);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor-core kernel (mma.sync), templated on the input precision. 8 warps: 2 x 4 warps of 64 x 32
// for BN = 128, 4 x 2 warps of 32 x 32 for BN = 64; each warp tile is kMT x kNT MMAs of 16 x 8.
// Shared memory holds both operands K-contiguous, [rows][16 data words + 4 padding words] per
// buffer, so a fragment load (row g + ..., word t + ...) hits 32 distinct banks: row stride 20
// words puts rows g = 0..7 at banks 0, 20, 8, 28, 16, 4, 24, 12 and t adds 0..3.
template <class Prec, int kBN, bool kVec>
__global__ void __launch_bounds__(kThreads, Prec::MinBlocksPerSm(kBN))
    ConvFwdMmaKernel(Conv2dShape sh, int P, int Q, int M, const float* __restrict__ x,
                     const float* __restrict__ w, Epilogue ep) {
  constexpr int kWords = 16;                     // 32-bit words of GEMM-K per tile row
  constexpr int kRowWords = kWords + 4;          // padded shared row
  constexpr int kBK = kWords * Prec::kPerWord;   // GEMM-K per tile: 16 (tf32) or 32 (bf16)
  constexpr int kWarpsN = kBN == 128 ? 4 : 2, kWarpsM = 8 / kWarpsN;
  constexpr int kWM = kBM / kWarpsM, kWN = kBN / kWarpsN;
  constexpr int kMT = kWM / 16, kNT = kWN / 8;
  SSLINV_DYNAMIC_SMEM(uint32_t, smem);
  uint32_t* const a_smem = smem;                           // [2][kBM][kRowWords]
  uint32_t* const b_smem = smem + 2 * kBM * kRowWords;     // [2][kBN][kRowWords]

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = warp % kWarpsM, wn = warp / kWarpsM;
  const int m0 = static_cast<int>(blockIdx.x) * kBM, n0 = static_cast<int>(blockIdx.y) * kBN;
  const int gemm_k = sh.r * sh.s * sh.c;
  const int num_tiles = (gemm_k + kBK - 1) / kBK;

  ATileLoader<kBM, kBK, kVec> a;
  BTileLoader<kBN, kBK, kVec> b;
  static_assert(kBN * (kBK / 4) % kThreads == 0, "tensor-core B tile must split evenly");
  a.Init(sh, P, Q, M, x, m0);
  b.Init(w, sh.k, gemm_k, n0);

  // Group j of a row holds GEMM-K values 4j..4j+3, i.e. words 4j / kPerWord onward.
  auto store = [&](int buf) {
    uint32_t* as = a_smem + buf * kBM * kRowWords;
    for (int i = 0; i < a.kIters; ++i)
      Prec::Stage(as + a.Row(i) * kRowWords + 4 * a.Group() / Prec::kPerWord, a.v[i]);
    uint32_t* bs = b_smem + buf * kBN * kRowWords;
    for (int i = 0; i < b.kIters; ++i)
      Prec::Stage(bs + b.Row(i) * kRowWords + 4 * b.Group() / Prec::kPerWord, b.v[i]);
  };

  float acc[kMT][kNT][4];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  a.Load(sh, gemm_k);
  b.Load(gemm_k);
  store(0);
  __syncthreads();

  for (int kt = 0; kt < num_tiles; ++kt) {
    const bool more = kt + 1 < num_tiles;
    if (more) {
      a.Next(sh);
      b.Next();
      a.Load(sh, gemm_k);
      b.Load(gemm_k);
    }
    const uint32_t* as = a_smem + (kt & 1) * kBM * kRowWords + (wm * kWM + g) * kRowWords + t;
    const uint32_t* bs = b_smem + (kt & 1) * kBN * kRowWords + (wn * kWN + g) * kRowWords + t;
#pragma unroll
    for (int ks = 0; ks < kWords / 8; ++ks) {
      uint32_t af[kMT][4], bf[kNT][2];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        const uint32_t* p = as + mt * 16 * kRowWords + ks * 8;
        af[mt][0] = p[0];                   // (g,     t)
        af[mt][1] = p[8 * kRowWords];       // (g + 8, t)
        af[mt][2] = p[4];                   // (g,     t + 4)
        af[mt][3] = p[8 * kRowWords + 4];   // (g + 8, t + 4)
      }
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        const uint32_t* p = bs + nt * 8 * kRowWords + ks * 8;
        bf[nt][0] = p[0];  // (k = t,     n = g)
        bf[nt][1] = p[4];  // (k = t + 4, n = g)
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) Prec::Mma(acc[mt][nt], af[mt], bf[nt], acc[mt][nt]);
    }
    if (more) store((kt + 1) & 1);
    __syncthreads();
  }

  // Epilogue: columns n and n + 1 of row m.
  ForEachAccumulatorPair(acc, m0 + wm * kWM, n0 + wn * kWN, M, [&](int m, int n, float v0, float v1) {
    const size_t off = static_cast<size_t>(m) * sh.k + n;
    if (ep.vec) {
      if (n < sh.k) ep.Store2(make_float2(v0, v1), off, n);  // K even: both columns are in range
    } else {
      if (n < sh.k) ep.y[off] = ep.Apply(v0, off, n);
      if (n + 1 < sh.k) ep.y[off + 1] = ep.Apply(v1, off + 1, n + 1);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Filter packing: [K, C, R, S] -> [K, R, S, C], times scale[k]. One-off per model, so a plain
// grid-stride loop (coalesced writes, strided reads) is enough.
__global__ void __launch_bounds__(kThreads)
    PackFilterKernel(const float* __restrict__ w_kcrs, const float* __restrict__ scale, int K, int C, int R, int S,
                     float* __restrict__ w_krsc) {
  const size_t total = static_cast<size_t>(K) * R * S * C;
  const size_t step = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t o = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    size_t rest = o;
    const int c = static_cast<int>(rest % C);
    rest /= C;
    const int s = static_cast<int>(rest % S);
    rest /= S;
    const int r = static_cast<int>(rest % R);
    const int k = static_cast<int>(rest / R);
    const float v = __ldg(w_kcrs + ((static_cast<size_t>(k) * C + c) * R + r) * S + s);
    w_krsc[o] = scale ? v * __ldg(scale + k) : v;
  }
}

// ---------------------------------------------------------------------------------------------
// Launchers.

// The fp32 paths are the SIMT kernel at 8 or 16 GEMM-K per stage; tf32 and bf16 the MMA kernel.
enum class Path { kF32Bk8, kF32Bk16, kTf32, kBf16 };

bool IsSimt(Path path) { return path == Path::kF32Bk8 || path == Path::kF32Bk16; }


template <int kBN, int kBK, int kMinBlocks, bool kVec>
void LaunchSimt(dim3 grid, cudaStream_t stream, const Conv2dShape& sh, int P, int Q, int M, const float* x,
                const float* w, const Epilogue& ep) {
  auto kernel = ConvFwdSimtKernel<kBN, kBK, kMinBlocks, kVec>;
  // 16.5 KiB (BK 8) or 33 KiB (BK 16) at BN = 128: under the 48 KiB that needs no opt-in.
  const size_t smem = sizeof(float) * 2 * kBK * ((kBM + 4) + (kBN + 4));
  SSLINV_LAUNCH(kernel, grid, kThreads, smem, stream, sh, P, Q, M, x, w, ep);
}

template <int kBN, bool kVec>
void LaunchOne(Path path, dim3 grid, cudaStream_t stream, const Conv2dShape& sh, int P, int Q, int M, const float* x,
               const float* w, const Epilogue& ep) {
  if (path == Path::kF32Bk8) {
    LaunchSimt<kBN, 8, 2, kVec>(grid, stream, sh, P, Q, M, x, w, ep);
  } else if (path == Path::kF32Bk16) {
    // Two blocks per SM (128 registers) fit without spilling except for the scalar gather at BN = 128
    // (the C = 3 stem: ptxas spills 100 bytes there), which gets one block per SM and 167 registers.
    LaunchSimt<kBN, 16, kVec || kBN == 64 ? 2 : 1, kVec>(grid, stream, sh, P, Q, M, x, w, ep);
  } else {
    const size_t smem = sizeof(uint32_t) * 2 * (kBM + kBN) * 20;  // 40 KiB at BN = 128: no opt-in needed
    if (path == Path::kTf32) {
      auto kernel = ConvFwdMmaKernel<Tf32Mma, kBN, kVec>;
      SSLINV_LAUNCH(kernel, grid, kThreads, smem, stream, sh, P, Q, M, x, w, ep);
    } else {
      auto kernel = ConvFwdMmaKernel<Bf16Mma, kBN, kVec>;
      SSLINV_LAUNCH(kernel, grid, kThreads, smem, stream, sh, P, Q, M, x, w, ep);
    }
  }
}

cudaError_t LaunchConv(Path path, const Conv2dShape& sh, const float* x, const float* w, const float* bias,
                       const float* residual, bool relu, float* y, cudaStream_t stream) {
  if (!Conv2dShapeIsValid(sh) || x == nullptr || w == nullptr || y == nullptr) return cudaErrorInvalidValue;
  const int P = sh.p(), Q = sh.q();
  const int M = sh.n * P * Q;
  // Vector gathers need whole float4 groups inside one tap and 16-byte aligned rows.
  const bool vec_in = sh.c % 4 == 0 && detail::IsAligned(x, 16) && detail::IsAligned(w, 16);
  // Vector epilogue: float4 (SIMT) or float2 (tensor cores) runs of columns.
  const int out_width = IsSimt(path) ? 4 : 2;
  const size_t out_align = sizeof(float) * out_width;
  Epilogue ep{bias, residual, y, relu, false};
  ep.vec = sh.k % out_width == 0 && detail::IsAligned(y, out_align) &&
           (bias == nullptr || detail::IsAligned(bias, out_align)) &&
           (residual == nullptr || detail::IsAligned(residual, out_align));
  const int bn = ConvPickBlockN(sh.k);
  const dim3 grid((M + kBM - 1) / kBM, (sh.k + bn - 1) / bn);
  if (bn == 128) {
    if (vec_in) LaunchOne<128, true>(path, grid, stream, sh, P, Q, M, x, w, ep);
    else LaunchOne<128, false>(path, grid, stream, sh, P, Q, M, x, w, ep);
  } else {
    if (vec_in) LaunchOne<64, true>(path, grid, stream, sh, P, Q, M, x, w, ep);
    else LaunchOne<64, false>(path, grid, stream, sh, P, Q, M, x, w, ep);
  }
  const ConvKernel counted = path == Path::kF32Bk8    ? ConvKernel::kSimtBk8
                            : path == Path::kF32Bk16 ? ConvKernel::kSimtBk16
                            : path == Path::kTf32    ? ConvKernel::kTf32Staged
                                                     : ConvKernel::kBf16Staged;
  return CountConvLaunch(counted, cudaGetLastError());
}

}  // namespace

// BK = 8 is the tuning measured on the H200 (ResNet-50 fp32 1.08x of cuDNN,
// bench/results/2026-12-04-nvidia-h200.json). BK = 16 is the candidate for the 1x1 convolutions over
// wide C that ran at 0.17x-0.45x of cuDNN in that run; the run-time tuning (conv_autotune.cuh) times
// it beside BK = 8 per shape, and bench/device/conv-tune.ts side by side.
ConvAlgo F32DefaultAlgo(const Conv2dShape&) { return ConvAlgo::kSimtBk8; }

cudaError_t LaunchConv2dForwardF32(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                   const float* residual, bool relu, float* y, cudaStream_t stream) {
  return LaunchConv2dForwardF32Algo(ConvAlgo::kAuto, shape, x, w, bias, residual, relu, y, stream);
}

cudaError_t LaunchConv2dForwardF32Algo(ConvAlgo algo, const Conv2dShape& shape, const float* x, const float* w,
                                       const float* bias, const float* residual, bool relu, float* y,
                                       cudaStream_t stream) {
  Path path;
  switch (algo) {
    case ConvAlgo::kAuto: path = F32DefaultAlgo(shape) == ConvAlgo::kSimtBk16 ? Path::kF32Bk16 : Path::kF32Bk8; break;
    case ConvAlgo::kSimtBk8: path = Path::kF32Bk8; break;
    case ConvAlgo::kSimtBk16: path = Path::kF32Bk16; break;
    default: return cudaErrorInvalidValue;
  }
  return LaunchConv(path, shape, x, w, bias, residual, relu, y, stream);
}

bool Tf32PipelinedTakes(const Conv2dShape& shape, const float* x, const float* w, const float* residual, const float* y) {
  return shape.c % 4 == 0 && shape.k % 2 == 0 && detail::IsAligned(x, 16) && detail::IsAligned(w, 16) && detail::IsAligned(y, 8) &&
         (residual == nullptr || detail::IsAligned(residual, 8));
}

cudaError_t LaunchConv2dForwardTF32Algo(ConvAlgo algo, const Conv2dShape& shape, const float* x, const float* w,
                                        const float* bias, const float* residual, bool relu, float* y,
                                        cudaStream_t stream) {
  switch (algo) {
    case ConvAlgo::kAuto:  // the staged kernel: measured (H200, 2026-12-04); tuning times the pipelined one per shape
    case ConvAlgo::kMmaStaged: return LaunchConv(Path::kTf32, shape, x, w, bias, residual, relu, y, stream);
    case ConvAlgo::kMmaPipelined:
      // Shapes it cannot take (the C = 3 stem) run staged, which gives the same bits.
      if (Tf32PipelinedTakes(shape, x, w, residual, y)) return LaunchConv2dForwardTF32Pipelined(shape, x, w, bias, residual, relu, y, stream);
      return LaunchConv(Path::kTf32, shape, x, w, bias, residual, relu, y, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchConv2dForwardTF32(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                    const float* residual, bool relu, float* y, cudaStream_t stream) {
  return LaunchConv2dForwardTF32Algo(ConvAlgo::kAuto, shape, x, w, bias, residual, relu, y, stream);
}

cudaError_t LaunchConv2dForwardBF16(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                                    const float* residual, bool relu, float* y, cudaStream_t stream) {
  return LaunchConv(Path::kBf16, shape, x, w, bias, residual, relu, y, stream);
}

cudaError_t LaunchPackFilterKRSC(const float* w_kcrs, const float* scale, int k, int c, int r, int s, float* w_krsc,
                                 cudaStream_t stream) {
  if (w_kcrs == nullptr || w_krsc == nullptr || k < 1 || c < 1 || r < 1 || s < 1) return cudaErrorInvalidValue;
  const size_t total = static_cast<size_t>(k) * c * r * s;
  // Enough blocks to fill the GPU; the grid-stride loop covers the rest.
  const unsigned grid = detail::GridFor(static_cast<int64_t>(total), kThreads, 0);
  SSLINV_LAUNCH(PackFilterKernel, grid, kThreads, 0, stream, w_kcrs, scale, k, c, r, s, w_krsc);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
