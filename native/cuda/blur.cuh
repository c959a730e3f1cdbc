// CUDA Gaussian blurs on uint8 HWC images, batched over views: one launch blurs a source image with
// `views` different sigmas / radii. The device counterparts of ops/color.h's GaussianBlurTorchU8 and
// PilGaussianBlurU8, bit-identical to those CPU functions:
//
//   GaussianBlurTorchViewsU8   F.gaussian_blur on a PIL image (torchvision 0.14): torch's float32
//                              kernel, reflect padding, one fused multiply-add chain per output value
//                              (kernel rows outer, columns inner, from 0, as oneDNN's depthwise kernel
//                              and the CPU op accumulate), round half to even, clamp to uint8.
//   PilGaussianBlurViewsU8     img.filter(ImageFilter.GaussianBlur(radius)) (Pillow 9.4): three
//                              extended box blurs along rows, then three along columns, in Pillow's
//                              8.24 fixed point with its uint32 wrap-around arithmetic.
//
// Shapes and conventions:
// - src: device [h, w, c] uint8 (c = 1..4); view v reads src + v * src_view_stride bytes
//   (0 = every view blurs the same image). dst: device [views, h, w, c] uint8, overlapping neither
//   the sources nor the workspace.
// - Per-view sigmas / radii are HOST arrays. The host computes what is transcendental or must be
//   the CPU's exact float bits: the torch kernels (GaussianKernel1dTorch: Sleef-exact expf and
//   torch's summation order) and their float products ky[i] * kx[j], listed per view as the taps
//   with a nonzero weight in the CPU's chain order (a zero-weight tap leaves an FMA chain of
//   non-negative values unchanged, so skipping it changes no bit and makes tiny sigmas cheap);
//   Pillow's box radius (sqrt and floor in double, the rest in float) and the box-line constants.
//   These go to `workspace` (device memory, 16-byte aligned, at least the ...WorkspaceBytes size)
//   with one cudaMemcpyAsync on `stream` (pageable; the call returns once the host data is staged).
//   The workspace must not be in use by work pending on another stream.
// - The torch blur computes each output pixel (all channels) in one thread, its chain in the CPU's
//   order with explicit fmaf. The Pillow blur's running sums are sequential along a line, so each
//   (line, channel) is one thread; six launches (3 row passes, 3 column passes) alternate between
//   dst and a per-view temporary image in the workspace.
// - Invalid arguments (null pointers, c outside 1..4, sides outside 1..2^24 or over 2^34 pixels,
//   views outside 1..65535, even or non-positive kernel sizes, reflect padding of at least the image
//   side, sigmas that are not positive finite or underflow float32, radii outside [0, 1e6], a
//   workspace too small or not 16-byte aligned) return cudaErrorInvalidValue without launching;
//   otherwise cudaGetLastError() after the launches (asynchronous on `stream`).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

size_t GaussianBlurTorchWorkspaceBytes(int64_t views, int64_t kernel_w, int64_t kernel_h);

// kernel_w, kernel_h: odd (torchvision's GaussianBlur uses crop // 20 * 2 + 1 for both), each half
// below the image side. sigma_x: host [views]; sigma_y: host [views], or null for sigma_y = sigma_x
// (torchvision's GaussianBlur draws one sigma for both).
cudaError_t GaussianBlurTorchViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                     int64_t kernel_w, int64_t kernel_h, const double* sigma_x,
                                     const double* sigma_y, int64_t views, uint8_t* dst, void* workspace,
                                     size_t workspace_bytes, cudaStream_t stream);

size_t PilGaussianBlurWorkspaceBytes(int64_t views, int64_t h, int64_t w, int64_t c);

// radius: host [views] (each rounded to a C float, as Pillow receives it).
cudaError_t PilGaussianBlurViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                   const double* radius, int64_t views, uint8_t* dst, void* workspace,
                                   size_t workspace_bytes, cudaStream_t stream);

}  // namespace sslinv::cuda
