// Micro-kernels of the SGEMM (internal to native/cpu/gemm.cc).
//
// A micro-kernel computes one full mr x nr tile of C from an mr x kc micro-panel of A (a[k*mr + i])
// and a kc x nr micro-panel of B (b[k*nr + j]), then applies the tile's epilogue in registers:
//   acc (+ C if accumulate) + bias[j] + residual[i][j], then ReLU.
// Tiles narrower than nr are handled by the driver through a scratch tile.
#pragma once
#include <cstdint>

namespace sslinv {

struct TileArgs {
  const float* bias = nullptr;      // nr values for the tile's columns, or null
  const float* residual = nullptr;  // the tile's top-left element in the residual, or null
  int64_t ld_residual = 0;
  bool relu = false;
  bool accumulate = false;
};

using MicroKernelFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                               const TileArgs& t);

constexpr int kMaxMR = 14;

struct MicroKernel {
  const char* name;
  int mr, nr, kc, mc;
  // rows[r] computes only the first r rows (1 <= r <= mr) of the tile, so short products (a few
  // images at the last ResNet stage) do not pay for a full mr-row tile; rows[mr] is the full kernel.
  MicroKernelFn rows[kMaxMR + 1];
};

const MicroKernel& SelectMicroKernel();

}  // namespace sslinv
