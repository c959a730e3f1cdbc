// Backward kernels of the NHWC convolution of ops/conv2d.h (groups = 1, dilation = 1, zero padding,
// no bias): the gradients PyTorch's conv2d computes, on the CPU, in float32.
//
//   forward:  y[n, p, q, k] = sum_{c, r, s} x[n, p*sh - ph + r, q*sw - pw + s, c] * w[k, c, r, s]
//   dgrad:    dx[N, H, W, C] = dL/dx given dy[N, P, Q, K] and w[K, C, R, S] (PyTorch layout, unpacked)
//   wgrad:    dw[K, C, R, S] = dL/dw given x[N, H, W, C] and dy[N, P, Q, K]
//
// P and Q follow Conv2dParams (floor division), so with stride > 1 the last rows or columns of x may
// be touched by no window; their dx is 0. The bias gradient (a column sum of dy) is not here.
//
// Both kernels are GEMMs on the shared BLIS-style driver (ops/gemm.h) with custom packers that
// gather straight from the NHWC tensors, so no im2col/col2im buffer is ever written:
//   dgrad: one implicit GEMM per stride phase (the "sub-pixel" split of a transposed convolution):
//          for dx pixels whose (ih + ph) mod sh and (iw + pw) mod sw are fixed, only every sh-th
//          kernel row and sw-th column contributes, and what is left is a stride-1 correlation of dy
//          with those (flipped) taps: dx_phase[M, C] = dy_windows[M, T*U*K] x w_phase[T*U*K, C].
//          No scatter-add: every dx pixel is written once. With stride 1 (one phase) the GEMM writes
//          dx in place; otherwise chunks of phase rows go through a small per-thread buffer to their
//          pixels, the chunks handed out to the threads one at a time.
//   wgrad: dw'[K, R*S*C] = dy^T[K, N*P*Q] x col[N*P*Q, R*S*C], col being the im2col of x packed
//          straight from x as the GEMM's B panels (runs of consecutive channels: plain copies); the
//          images are split into a fixed number of groups (by shape, 1 to 8) summed on one thread
//          each into partial sums that are then added in order, and dw' is reordered to [K, C, R, S].
//   Windows at the border of small maps have taps in the padding; both kernels then split the
//   border off into regions whose GEMMs skip those taps (dgrad: when K is a multiple of the GEMM's
//   K block, so the skipped taps are whole packed blocks; wgrad: when that saves work counting each
//   GEMM pass's output traffic, which few images per region cannot repay).
//   Weights: dgrad packs every phase's B straight from w, 16 channels x R*S taps per register
//   transposition (AVX-512), each weight read once; wgrad's partial sums are reordered to
//   [K, C, R, S] the same way, and a 1x1 filter's single group is written to dw directly.
// Every output element is summed in an order fixed by the shape, so results do not depend on the
// thread count. Scratch memory does not grow with the batch: a few weight-sized buffers (reordered
// and packed weights, dw's partial sums: at most 16 MB of them beyond one), and a few MB of panels
// and per-thread buffers.
#pragma once
#include "core/status.h"
#include "ops/conv2d.h"

namespace sslinv {

// What dgrad does to each dx element before storing it (a ResNet block's gradient bookkeeping, fused
// so that it costs no pass of its own): with `residual` ([N, H, W, C], the identity branch's
// gradient) v = dgrad + residual, the same float32 sum as adding afterwards; with `relu_y` ([N, H, W,
// C], the output of the ReLU that produced x) v is then masked as threshold_backward does: v where
// relu_y > 0 or NaN, else +0. Either may be null; neither may alias dx.
struct DgradEpilogue {
  const float* residual = nullptr;
  const float* relu_y = nullptr;
  bool empty() const { return residual == nullptr && relu_y == nullptr; }
};

// dx[N, H, W, C] from dy[N, P, Q, K] and w[K, C, R, S]; p describes the forward convolution (x's
// sizes, K, R, S, strides and padding). dx is fully written (untouched pixels get 0, then the
// epilogue).
Status Conv2dBackwardDataNHWC(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                              const DgradEpilogue& ep = DgradEpilogue{});

// dw[K, C, R, S] from x[N, H, W, C] and dy[N, P, Q, K]; dw is fully written (0 when N = 0).
Status Conv2dBackwardWeightNHWC(const Conv2dParams& p, const float* x, const float* dy, float* dw);

}  // namespace sslinv
