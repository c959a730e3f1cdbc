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
// Shared memory: kStages stages in conv2d_tile.cuh's swizzled layout (an A tile [128 rows][64 bytes]
// and a B tile [BN rows][64 bytes]): the 8 rows an ldmatrix phase reads (one chunk column) fall into 8
// different 16-byte bank groups, and a cp.async store of a warp (8 rows x 4 chunks) covers all 32
// banks four times, the minimum. Loads: conv_tile::TileLoader (two A rows and one or two B rows per
// thread).
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

#include "cuda/conv2d_tile.cuh"
#include "cuda/conv_launch_counts.h"
#include "cuda/kernel_util.cuh"
#include "cuda/mma.cuh"

namespace sslinv::cuda {
namespace {

using namespace mma;  // NOLINT: the warp-level primitives
using conv_tile::Bf16Elems;
using conv_tile::kRowBytes;
using conv_tile::Swizzle;
using conv_tile::Tf32Elems;

constexpr int kThreads = 256;
constexpr int kBM = 128;
constexpr int kStages = 3;

template <class E, int kBN>
__global__ void __launch_bounds__(kThreads, 2)
    ConvMmaPipelinedKernel(Conv2dShape sh, int P, int Q, int M, const typename E::Elem* __restrict__ x,
                           const typename E::Elem* __restrict__ w, const float* __restrict__ bias,
                           const typename E::Elem* residual, bool relu, typename E::Elem* y) {
  using Loader = conv_tile::TileLoader<E, kBM, kBN, kThreads>;
  constexpr int kWarpsN = kBN == 128 ? 4 : 2, kWarpsM = 8 / kWarpsN;
  constexpr int kWM = kBM / kWarpsM, kWN = kBN / kWarpsN;
  constexpr int kMT = kWM / 16, kNT = kWN / 8;
  static_assert(kNT % 2 == 0, "B fragments are loaded two MMA columns at a time");
  constexpr int kStageBytes = (kBM + kBN) * kRowBytes;
  SSLINV_DYNAMIC_SMEM(unsigned char, smem);

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32, lane = tid % 32;
  const int wm = warp % kWarpsM, wn = warp / kWarpsM;
  const int m0 = static_cast<int>(blockIdx.x) * kBM, n0 = static_cast<int>(blockIdx.y) * kBN;
  const int num_tiles = (sh.r * sh.s * sh.c + Loader::kBK - 1) / Loader::kBK;
  Loader loader(sh, P, Q, M, x, w, m0, n0, tid);
  auto load_tile = [&](int stage) {
    unsigned char* a_s = smem + stage * kStageBytes;
    loader.Load(a_s, a_s + kBM * kRowBytes, sh, x, w);
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

  ForEachAccumulatorPair(acc, m0 + wm * kWM, n0 + wn * kWN, M,
                         [&](int m, int n, float v0, float v1) { conv_tile::StoreOutputPair<E>(sh, bias, residual, relu, y, m, n, v0, v1); });
}

template <class E>
cudaError_t LaunchPipelined(const Conv2dShape& sh, const typename E::Elem* x, const typename E::Elem* w, const float* bias,
                            const typename E::Elem* residual, bool relu, typename E::Elem* y, cudaStream_t stream, int block_n) {
  if (!conv_tile::ArgumentsAreValid<E>(sh, x, w, residual, y)) return cudaErrorInvalidValue;
  if (block_n != 0 && block_n != 64 && block_n != 128) return cudaErrorInvalidValue;
  const int P = sh.p(), Q = sh.q();
  const int M = sh.n * P * Q;
  const int bn = block_n != 0 ? block_n : ConvPickBlockN(sh.k);
  const dim3 grid((M + kBM - 1) / kBM, (sh.k + bn - 1) / bn);
  // 3 stages x (128 + BN) rows x 64 bytes: 48 KiB at BN = 128, the most a launch gets without opt-in.
  const size_t smem = static_cast<size_t>(kStages) * (kBM + bn) * kRowBytes;
  if (bn == 128) SSLINV_LAUNCH((ConvMmaPipelinedKernel<E, 128>), grid, kThreads, smem, stream, sh, P, Q, M, x, w, bias, residual, relu, y);
  else SSLINV_LAUNCH((ConvMmaPipelinedKernel<E, 64>), grid, kThreads, smem, stream, sh, P, Q, M, x, w, bias, residual, relu, y);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchConv2dForwardBf16NhwcTile(const Conv2dShape& sh, const Bf16* x, const Bf16* w, const float* bias,
                                            const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream, int block_n) {
  return CountConvLaunch(ConvKernel::kBf16Pipelined, LaunchPipelined<Bf16Elems>(sh, x, w, bias, residual, relu, y, stream, block_n));
}

cudaError_t LaunchConv2dForwardTF32PipelinedTile(const Conv2dShape& sh, const float* x, const float* w, const float* bias,
                                                 const float* residual, bool relu, float* y, cudaStream_t stream, int block_n) {
  return CountConvLaunch(ConvKernel::kTf32Pipelined, LaunchPipelined<Tf32Elems>(sh, x, w, bias, residual, relu, y, stream, block_n));
}

cudaError_t LaunchConv2dForwardBf16Nhwc(const Conv2dShape& sh, const Bf16* x, const Bf16* w, const float* bias,
                                        const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream) {
  return LaunchConv2dForwardBf16NhwcTile(sh, x, w, bias, residual, relu, y, stream, 0);
}

cudaError_t LaunchConv2dForwardTF32Pipelined(const Conv2dShape& sh, const float* x, const float* w, const float* bias,
                                             const float* residual, bool relu, float* y, cudaStream_t stream) {
  return LaunchConv2dForwardTF32PipelinedTile(sh, x, w, bias, residual, relu, y, stream, 0);
}

}  // namespace sslinv::cuda
