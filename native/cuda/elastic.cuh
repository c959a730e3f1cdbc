// CUDA elastic deformation on uint8 HWC images, batched over views: one launch sequence deforms a
// source image with `views` different sigmas, alphas and random draws. The device counterpart of
// ops/geometric.h's ElasticU8 (albumentations 1.0.3 elastic_transform, approximate=True, INTER_LINEAR,
// BORDER_REFLECT_101, on OpenCV 4.6's arithmetic), bit-identical to that CPU function:
//
//   ElasticViewsU8            per view: cv::warpAffine of the source by the random affine, both noise
//                             fields blurred by cv::GaussianBlur(17x17, sigma) in float32, scaled by
//                             alpha, added to the pixel indices, and cv::remap of the warped image.
//   GaussianBlur17FieldsF32   the blur step alone (cv::GaussianBlur(17x17, sigma) of float32 fields,
//                             one sigma per field), the same kernels; the device counterpart of
//                             GaussianBlur17F32, for tests and diagnostics.
//
// Shapes and conventions:
// - src: device [h, w, c] uint8 (c = 1..4, rows packed); view v reads src + v * src_view_stride bytes
//   (0 = every view deforms the same image). dst: device [views, h, w, c] uint8.
// - noise: device [views, 2, h, w] float32: view v's rand(h, w) * 2 - 1 for dx, then for dy, as the
//   host drew them (numpy's legacy RandomState, src/transforms/geometric.ts). The random draws stay on
//   the host: they are sequential and must be numpy's exact numbers.
// - params: HOST [views]. The host does, per view, what is in double, transcendental or the CPU's
//   exact bits: cv::getAffineTransform (ElasticAffineMatrix), warpAffine's inversion and fixed-point
//   tables (CvWarpAffineTables) and the Gaussian kernel (CvGaussianKernel17), all the CPU op's own
//   functions. These go to `workspace` (device memory, 16-byte aligned, at least the ...WorkspaceBytes
//   size) with one cudaMemcpyAsync on `stream` (pageable; the call returns once the host data is
//   staged), followed by the blur's intermediate fields and the warped images. The workspace must not
//   be in use by work pending on another stream; dst overlaps neither it nor src nor noise.
// - Arithmetic as the CPU's: the blur accumulates with explicit fmaf in the CPU's order (rows: 17
//   taps left to right from 0; columns: centre tap, then each symmetric pair summed first); the alpha
//   scaling and index addition round each step; the map's 1/32-pixel rounding is cvRound's (half to
//   even, INT_MIN out of range); positions and bilinear weights are integer.
// - Invalid arguments (null pointers, c outside 1..4, sides outside 1..32767 (OpenCV's remap indexes
//   with int16), views outside 1..65535, sigma not positive and finite, alpha or affine offsets not
//   finite, a workspace too small or not 16-byte aligned) return cudaErrorInvalidValue without
//   launching; otherwise cudaGetLastError() after the launches (asynchronous on `stream`).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

// One view's parameters (ElasticSpec's, less the noise, which is on the device).
struct ElasticViewParams {
  double sigma = 50.0;
  double alpha = 1.0;                               // applied as float32(alpha)
  float affine_offsets[6] = {0, 0, 0, 0, 0, 0};     // uniform(-a, a, (3, 2)).astype(float32)
};

size_t ElasticWorkspaceBytes(int64_t views, int64_t h, int64_t w, int64_t c);

cudaError_t ElasticViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                           const float* noise, const ElasticViewParams* params, int64_t views, uint8_t* dst,
                           void* workspace, size_t workspace_bytes, cudaStream_t stream);

size_t GaussianBlur17WorkspaceBytes(int64_t fields, int64_t h, int64_t w);

// src, dst: device [fields, h, w] float32 (distinct); sigmas: host [fields]; fields 1..65535.
cudaError_t GaussianBlur17FieldsF32(const float* src, int64_t h, int64_t w, const double* sigmas, int64_t fields,
                                    float* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace sslinv::cuda
