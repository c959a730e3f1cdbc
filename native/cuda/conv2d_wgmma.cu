// The bf16 convolution on Hopper's warpgroup tensor cores (see conv2d_wgmma.cuh for shapes and
// conventions). Compiled for sm_90a only (native/sources.json "cuda_sm90a").
//
// Block: 256 threads = 2 warpgroups, a 128 x BN output tile (BN = 64, 128 or 256: the launcher picks
// the one that wastes fewest columns of K, ties to the wider); warpgroup g owns rows 64 g.. and all BN
// columns, one wgmma m64nBNk16 per k16 step, accumulators in registers (BN / 2 floats per thread).
//
// Shared memory: kStages stages of conv_tile's swizzled tiles (A [128][64 bytes], B [BN][64 bytes]),
// which are the PTX ISA's 64-byte-swizzle K-major layout: each warpgroup's wgmma reads its 64 A rows
// and the B tile straight from there through matrix descriptors (8-row groups 512 bytes apart; the
// second k16 step of a 64-byte row starts 32 bytes in, which the hardware swizzles like any other
// address). The stages start at a 1 KiB-aligned shared address so every swizzle atom is aligned.
// Loads: the same cp.async loader as the mma.sync kernel (conv_tile::TileLoader), by all 256 threads.
//
// Pipeline (per GEMM-K tile kt, S = kStages stages):
//   wait for this thread's copies of tile kt; fence.proxy.async (they become visible to the async
//   proxy wgmma reads through); __syncthreads (everyone's tile kt is in, and every warpgroup has
//   retired the wgmmas of tile kt - 2); issue the copies of tile kt + S - 2 into the stage tile kt - 2
//   used; then the two k16 wgmmas of tile kt, committed as one group, and wait until only that group
//   is in flight (so the wgmmas of tile kt - 1 have retired before the next barrier). S - 2 tiles of
//   copies and one tile of wgmmas are in flight while the threads issue the next.
// Epilogue: as the mma.sync kernel's (bias, residual, ReLU in fp32; one bf16 pair per store).
//
// Unverified on a GPU until bench/device has run it on an H100/H200: the emulator (cuda/wgmma.cuh)
// checks the indexing, the descriptors as the PTX ISA defines them and the synchronisation structure.
#include "cuda/conv2d_wgmma.cuh"

#include <cstdint>

#include "cuda/conv2d_tile.cuh"
#include "cuda/conv_launch_counts.h"
#include "cuda/kernel_util.cuh"
#include "cuda/mma.cuh"
#include "cuda/wgmma.cuh"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "conv2d_wgmma.cu must be compiled for sm_90a (wgmma.mma_async)"
#endif

namespace sslinv::cuda {
namespace {

using conv_tile::Bf16Elems;
using conv_tile::kRowBytes;

constexpr int kThreads = 256;
constexpr int kBM = 128;
constexpr int kStages = 6;  // 4 tiles of copies in flight (the H200 has room: see Launch)
constexpr uint32_t kAlign = 1024;           // shared-address alignment of the stages
constexpr uint32_t kGroupBytes = 8 * kRowBytes;  // descriptor stride between 8-row groups

// 128 x BN output tile per block (see the header comment).
template <int kBN>
__global__ void __launch_bounds__(kThreads, kBN == 256 ? 1 : 2)
    ConvWgmmaKernel(Conv2dShape sh, int P, int Q, int M, const Bf16* __restrict__ x, const Bf16* __restrict__ w,
                    const float* __restrict__ bias, const Bf16* residual, bool relu, Bf16* y) {
  using Loader = conv_tile::TileLoader<Bf16Elems, kBM, kBN, kThreads>;
  constexpr int kStageBytes = (kBM + kBN) * kRowBytes;
  SSLINV_DYNAMIC_SMEM(unsigned char, smem_raw);
  const uint32_t raw_addr = wgmma::SharedAddress(smem_raw);
  const uint32_t pad = (kAlign - raw_addr % kAlign) % kAlign;
  unsigned char* smem = smem_raw + pad;
  const uint32_t smem_addr = raw_addr + pad;

  const int tid = static_cast<int>(threadIdx.x);
  const int wg = tid / 128, warp_in_wg = (tid % 128) / 32;
  const int m0 = static_cast<int>(blockIdx.x) * kBM, n0 = static_cast<int>(blockIdx.y) * kBN;
  const int num_tiles = (sh.r * sh.s * sh.c + Loader::kBK - 1) / Loader::kBK;
  Loader loader(sh, P, Q, M, x, w, m0, n0, tid);
  auto load_tile = [&](int stage) {
    unsigned char* a_s = smem + stage * kStageBytes;
    loader.Load(a_s, a_s + kBM * kRowBytes, sh, x, w);
  };

  float acc[1][kBN / 8][4];
#pragma unroll
  for (int j = 0; j < kBN / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[0][j][e] = 0.f;

  // Prologue: tiles 0 .. kStages - 3 in flight (empty groups past the last tile keep the count).
#pragma unroll
  for (int st = 0; st < kStages - 2; ++st) {
    if (st < num_tiles) load_tile(st);
    mma::CpAsyncCommit();
  }

  for (int kt = 0; kt < num_tiles; ++kt) {
    mma::CpAsyncWait<kStages - 3>();
    wgmma::FenceProxyAsyncShared();
    __syncthreads();
    if (kt + kStages - 2 < num_tiles) load_tile((kt + kStages - 2) % kStages);
    mma::CpAsyncCommit();

    const uint32_t stage_addr = smem_addr + static_cast<uint32_t>((kt % kStages) * kStageBytes);
    const uint32_t a_addr = stage_addr + static_cast<uint32_t>(wg * 64 * kRowBytes), b_addr = stage_addr + kBM * kRowBytes;
    // The accumulators are fenced for the compiler on both sides of each batch (as CUTLASS's
    // warpgroup_fence_operand): no access to them may move between wgmma.fence and the wgmmas or
    // before the wait, which the PTX ISA leaves undefined and the emulator cannot see.
    wgmma::FenceOperands(acc[0]);
    wgmma::WgmmaFence();
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {  // two k16 steps of 32 bytes per 64-byte row
      wgmma::WgmmaBf16Async<kBN>(acc[0], wgmma::KMajorDescriptor(a_addr + 32 * ks, kGroupBytes, wgmma::Swizzle::k64B),
                                 wgmma::KMajorDescriptor(b_addr + 32 * ks, kGroupBytes, wgmma::Swizzle::k64B));
    }
    wgmma::WgmmaCommit();
    wgmma::WgmmaWait<1>();
    wgmma::FenceOperands(acc[0]);
  }
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(acc[0]);
  mma::CpAsyncWait<0>();  // nothing is left in flight when the block exits (only empty groups remain)

  mma::ForEachAccumulatorPair(acc, m0 + 64 * wg + 16 * warp_in_wg, n0, M, [&](int m, int n, float v0, float v1) {
    conv_tile::StoreOutputPair<Bf16Elems>(sh, bias, residual, relu, y, m, n, v0, v1);
  });
}

template <int kBN>
cudaError_t Launch(const Conv2dShape& sh, int P, int Q, int M, const Bf16* x, const Bf16* w, const float* bias, const Bf16* residual,
                   bool relu, Bf16* y, cudaStream_t stream) {
  // 6 stages x (128 + BN) rows x 64 bytes + the alignment slack: 73 KiB (BN = 64) to 145 KiB (BN = 256),
  // past the 48 KiB a launch gets without opting in; two blocks per SM fit at BN <= 128 (227 KiB),
  // where the registers allow two as well, one at BN = 256.
  const size_t smem = static_cast<size_t>(kStages) * (kBM + kBN) * kRowBytes + kAlign;
  const cudaError_t err = cudaFuncSetAttribute(ConvWgmmaKernel<kBN>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid((M + kBM - 1) / kBM, (sh.k + kBN - 1) / kBN);
  SSLINV_LAUNCH((ConvWgmmaKernel<kBN>), grid, kThreads, smem, stream, sh, P, Q, M, x, w, bias, residual, relu, y);
  return cudaGetLastError();
}

}  // namespace

// 64, 128 or 256 output channels per block: the fewest padded columns of K, ties to the wider tile.
int WgmmaPickBlockN(int K) {
  int best = 256, best_waste = (K + 255) / 256 * 256 - K;
  for (int bn : {128, 64}) {
    const int waste = (K + bn - 1) / bn * bn - K;
    if (waste < best_waste) best = bn, best_waste = waste;
  }
  return best;
}

cudaError_t LaunchConv2dForwardBf16Wgmma(const Conv2dShape& sh, const Bf16* x, const Bf16* w, const float* bias,
                                         const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream) {
  return LaunchConv2dForwardBf16WgmmaTile(sh, x, w, bias, residual, relu, y, stream, 0);
}

cudaError_t LaunchConv2dForwardBf16WgmmaTile(const Conv2dShape& sh, const Bf16* x, const Bf16* w, const float* bias,
                                             const Bf16* residual, bool relu, Bf16* y, cudaStream_t stream, int block_n) {
  if (!conv_tile::ArgumentsAreValid<Bf16Elems>(sh, x, w, residual, y)) return cudaErrorInvalidValue;
  if (block_n != 0 && block_n != 64 && block_n != 128 && block_n != 256) return cudaErrorInvalidValue;
  int device = 0, major = 0, minor = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (err != cudaSuccess) return err;
  if (major != 9 || minor != 0) return cudaErrorNoKernelImageForDevice;  // sm_90a code runs on 9.0 only
  const int P = sh.p(), Q = sh.q();
  const int M = sh.n * P * Q;
  switch (block_n != 0 ? block_n : WgmmaPickBlockN(sh.k)) {
    case 64: return CountConvLaunch(ConvKernel::kBf16Wgmma, Launch<64>(sh, P, Q, M, x, w, bias, residual, relu, y, stream));
    case 128: return CountConvLaunch(ConvKernel::kBf16Wgmma, Launch<128>(sh, P, Q, M, x, w, bias, residual, relu, y, stream));
    default: return CountConvLaunch(ConvKernel::kBf16Wgmma, Launch<256>(sh, P, Q, M, x, w, bias, residual, relu, y, stream));
  }
}

}  // namespace sslinv::cuda
