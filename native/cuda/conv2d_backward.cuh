// Backward kernels of the NHWC convolution on the GPU, fp32: the device twins of
// ops/conv2d_backward.h (groups = 1, dilation = 1, zero padding, no bias gradient). dgrad is in
// conv2d_backward.cu, wgrad in conv2d_wgrad.cu, their shared block tile in conv2d_backward_tile.cuh.
//
//   forward: y[n, p, q, k] = sum_{c, r, s} x[n, p*sh - ph + r, q*sw - pw + s, c] * w[k, c, r, s]
//   dgrad:   dx[N, H, W, C] from dy[N, P, Q, K] and w[K, C, R, S] (PyTorch layout, not packed)
//   wgrad:   dw[K, C, R, S] from x[N, H, W, C] and dy[N, P, Q, K]
// P and Q as in Conv2dShape (floor division); with stride > 1 the last rows or columns of x may be
// touched by no window: their dx is 0 (then the epilogue).
//
// Both are shared-memory tiled implicit GEMMs on CUDA cores, fp32 FMA accumulation (no tensor
// cores), 256 threads per block, a 128 x 64 block tile, 8 x 4 outputs per thread, 8 GEMM-K per
// stage, register-staged double buffering. Every load is predicated (zeros outside the tensors,
// past the tile edges and past GEMM-K); element offsets are 64-bit. C % 4 == 0 and K % 4 == 0 with
// 16-byte aligned pointers take float4 loads and stores along channels, anything else scalar ones.
//
// dgrad, stride-phase split (the "sub-pixel" split of a transposed convolution, as the CPU op):
//   the dx pixels with ih = i*sh + a_h and iw = j*sw + a_w (a phase (a_h, a_w), a_h < min(sh, H))
//   are reached only by taps r = r0 + t*sh (r0 = (a_h + ph) mod sh, t < T = ceil((R - r0) / sh)) and
//   s likewise, from p = i + (a_h + ph) / sh - t, q = j + (a_w + pw) / sw - u. Per phase this is a
//   dense GEMM dx_phase[N*Hp*Wp, C] = dy_windows[N*Hp*Wp, T*U*K] x w_t[T*U*K, C] with no wasted
//   taps at any stride; only taps outside dy (borders) load zeros. All phases run in one launch
//   (grid.x = phases x row blocks). A phase with no taps (1x1 stride 2: odd pixels) has an empty
//   GEMM: its pixels get 0, then the epilogue. So every dx element is written exactly once, by one
//   thread, with no scatter-add. The B operand w_t is the filter reordered by a small kernel into
//   the workspace as [R*S*K, C] rows (channels contiguous), the taps grouped by phase
//   (r % sh, s % sw), so each phase's B is one contiguous [T*U*K, C] matrix read like a plain GEMM
//   operand (with stride 1 this is [R, S, K, C]); a 1x1 filter is already [K, C] and is used in
//   place (no workspace).
//   Fused epilogue (DgradEpilogue of ops/conv2d_backward.h): v = sum (+ residual), then where
//   relu_y is given, v if relu_y > 0 or relu_y is NaN, else +0.
//   Sum order per dx element: taps (t, u) ascending, k ascending within a tap, one fp32 FMA chain.
// wgrad, split-K with a deterministic reduction:
//   dw'[K, R*S*C] = dy^T[K, N*P*Q] x im2col(x)[N*P*Q, R*S*C], columns in (r, s, c) order so the
//   x gathers run along channels. The plan (Conv2dBackwardWeightPlan, a function of the shape
//   alone) puts K or R*S*C on the tile's 128-row side, whichever leaves less of the tiles padded
//   (ties: K), and cuts the N*P*Q reduction into slices of consecutive output pixels: enough blocks
//   to fill a big GPU, slices of at most 16384 pixels and at least 256, at most 256 slices and
//   256 MiB of partial sums. Slice z's block tiles write fp32 partial sums to workspace[z] (the
//   GEMM's [rows][cols]), then a reduction kernel adds the slices in order 0, 1, ... in fp64, rounds
//   once and writes dw in [K, C, R, S] order. No atomics: the same bits on every run and every GPU.
//   Sum order per dw element: output pixels ascending within a slice (one fp32 FMA chain), slices
//   ascending in fp64.
//   N = 0 (no slices) writes dw = 0.
//
// Preconditions (checked; violations return cudaErrorInvalidValue and launch nothing):
//   Conv2dBackwardShapeIsValid(shape); non-null tensors (dy, w, dx / x, dy, dw) when there is work;
//   workspace non-null and 16-byte aligned when its size is not 0 (a cudaMalloc'd one is); outputs
//   must not alias inputs. Pointers are device pointers. Launchers return cudaGetLastError() after
//   launching on `stream`; they never synchronize.
#pragma once
#include <climits>
#include <cstddef>
#include <cstdint>

#include "cuda/conv2d.cuh"
#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

// True when the backward launchers accept the shape: as Conv2dShapeIsValid, but N = 0 is allowed
// (nothing to do), and the backward GEMMs' sizes must also fit 32-bit indices: N*H*W (dgrad rows),
// K*R*S (dgrad GEMM-K), R*S*C (wgrad columns), with 256 of headroom for tile cursors.
inline bool Conv2dBackwardShapeIsValid(const Conv2dShape& sh) {
  if (sh.n < 0) return false;
  Conv2dShape one = sh;
  one.n = 1;
  if (!Conv2dShapeIsValid(one)) return false;
  const int64_t limit = INT_MAX - 256;
  const int64_t p = sh.p(), q = sh.q();
  return int64_t{sh.n} * p * q <= limit && int64_t{sh.n} * sh.h * sh.w <= limit &&
         int64_t{sh.k} * sh.r * sh.s <= limit && int64_t{sh.r} * sh.s * sh.c <= limit && sh.c <= 65535 * 64;
}

// Bytes of device workspace LaunchConv2dBackwardData needs: the reordered filter, 0 for 1x1.
size_t Conv2dBackwardDataWorkspaceBytes(const Conv2dShape& shape);

// dx[N, H, W, C] = epilogue(dgrad(dy, w)); residual and relu_y ([N, H, W, C]) may be null, neither
// may alias dx. N = 0 launches nothing.
cudaError_t LaunchConv2dBackwardData(const Conv2dShape& shape, const float* dy, const float* w, const float* residual,
                                     const float* relu_y, float* dx, void* workspace, cudaStream_t stream);

// How wgrad runs a shape (a function of the shape alone; see the header comment).
struct Conv2dWgradPlan {
  bool swap = false;  // the tile's 128-row side runs over R*S*C and its width over K (else the reverse)
  int splits = 0;     // slices of N*P*Q (0 when N = 0)
  int slice = 0;      // output pixels per slice, a multiple of 8; the last slice may be shorter
};
Conv2dWgradPlan Conv2dBackwardWeightPlan(const Conv2dShape& shape);

// Bytes of device workspace LaunchConv2dBackwardWeight needs: splits x K x R*S*C floats.
size_t Conv2dBackwardWeightWorkspaceBytes(const Conv2dShape& shape);

// dw[K, C, R, S] from x[N, H, W, C] and dy[N, P, Q, K]; fully written (0 when N = 0).
cudaError_t LaunchConv2dBackwardWeight(const Conv2dShape& shape, const float* x, const float* dy, float* dw,
                                       void* workspace, cudaStream_t stream);

}  // namespace sslinv::cuda
