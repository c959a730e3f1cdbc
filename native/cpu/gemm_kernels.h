// Micro-kernels of the GEMM (internal to native/cpu/gemm.cc).
//
// A micro-kernel computes one mr x nr tile of C from an mr x kc micro-panel of A (a[k*mr + i]) and
// a kc x nr micro-panel of B (b[k*nr + j]), then applies the tile's epilogue in registers:
//   acc (+ C if accumulate) + bias[j] + residual[i][j], then ReLU.
// Tiles narrower than nr are handled by the driver through a scratch tile.
#pragma once
#include <cstdint>

namespace sslinv {

template <typename T>
struct TileArgsT {
  const T* bias = nullptr;      // nr values for the tile's columns, or null
  const T* residual = nullptr;  // the tile's top-left element in the residual, or null
  int64_t ld_residual = 0;
  bool relu = false;
  bool accumulate = false;
};
using TileArgs = TileArgsT<float>;

template <typename T>
using MicroKernelFnT = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, const TileArgsT<T>& t);

constexpr int kMaxMR = 14;

template <typename T>
struct MicroKernelT {
  const char* name;
  int mr, nr, kc, mc;
  // rows[r] computes only the first r rows (1 <= r <= mr) of the tile, so short products (a few
  // images at the last ResNet stage) do not pay for a full mr-row tile; rows[mr] is the full kernel.
  MicroKernelFnT<T> rows[kMaxMR + 1];
};
using MicroKernel = MicroKernelT<float>;

template <typename T>
const MicroKernelT<T>& SelectMicroKernelT();
template <>
const MicroKernelT<float>& SelectMicroKernelT<float>();
template <>
const MicroKernelT<double>& SelectMicroKernelT<double>();
inline const MicroKernel& SelectMicroKernel() { return SelectMicroKernelT<float>(); }

}  // namespace sslinv
