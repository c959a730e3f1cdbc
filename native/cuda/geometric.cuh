// CUDA geometric ops on uint8 HWC images, batched over views: one launch produces `views` transformed
// copies ("views") of a source image, each with its own parameters. The device counterparts of
// ops/geometric.h, bit-identical to those CPU functions (Pillow 9.4 / torchvision 0.14 semantics):
//
//   PilAffineNearestViewsU8     Image.transform(size, AFFINE, a, NEAREST), fill 0, with Pillow's three
//                               engines (scaling with running double sums, 16.16 fixed point, double
//                               stepping), the engine chosen per view exactly as the CPU chooses it.
//   RotateViewsU8               Image.rotate(angle, NEAREST, expand=False, fillcolor=0) per view: the
//                               angle reduced with Python's float % 360; 0 copies, 180 flips both ways,
//                               90 / 270 on a square image transpose, anything else transforms.
//   TorchvisionAffineViewsU8    F.affine on a PIL image (per-view AffineParams, NEAREST, fill 0).
//   FlipViewsU8                 Image.transpose(FLIP_LEFT_RIGHT / FLIP_TOP_BOTTOM), chosen per view.
//   CropBoxesViewsU8            Image.crop(box) after Pillow's rounding (integer boxes, outside = 0),
//                               the first half of F.resized_crop (the resize is a separate kernel).
//
// Shapes and conventions (all launchers):
// - src: device pointer to a [h, w, c] uint8 image (c = 1..4, rows packed). View v reads
//   src + v * src_view_stride (bytes); src_view_stride = 0 makes every view read the same image.
// - dst: device pointer to [views, out_h, out_w, c] uint8, views packed (for the crops, view v is a
//   packed crop at dst + v * dst_view_stride bytes, as the boxes may differ in size). dst overlaps
//   neither the sources nor the workspace.
// - Per-view parameters are HOST arrays. The host does the per-view math the CPU op does in double
//   with the C library's trigonometry (Pillow's / torchvision's matrices via PilRotateMatrix and
//   TorchvisionInverseAffineMatrix, the engine choice, the fixed-point coefficients, and the
//   sequential double sums of the scaling engine and of the double engine's row starts): these are
//   either transcendental or inherently sequential, cheap, and must be the CPU's exact bits. The
//   resulting per-view plans and position tables are copied into `workspace` (device memory, 16-byte
//   aligned, at least the ...WorkspaceBytes size) with one cudaMemcpyAsync on `stream` (from pageable
//   memory, so the call returns once the host data is staged). The workspace must not be in use by
//   work still pending on another stream.
// - The device computes every output pixel independently, except the double engine, whose column
//   positions are a running double sum: one thread walks a whole output row, adding as Pillow does.
//   The fixed-point engine's int32 stepping wraps modulo 2^32, so y * a1 + x * a0 (uint32) is its
//   exact closed form.
// - Invalid arguments (null pointers, c outside 1..4, sides outside 1..2^24, images, outputs or
//   crops over 2^34 pixels, views outside 1..65535, non-finite parameters, a workspace too small or
//   not 16-byte aligned) return cudaErrorInvalidValue without launching; otherwise the launcher
//   returns cudaGetLastError() after its launch (execution is asynchronous on `stream`).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"
#include "ops/geometric.h"  // AffineParams

namespace sslinv::cuda {

// Workspace bytes for `views` views of out_h x out_w outputs (affine, rotate, torchvision affine,
// flips: out_h x out_w is the output size; for the crops pass out_h = out_w = 0).
size_t GeometricWorkspaceBytes(int64_t views, int64_t out_h, int64_t out_w);

// matrices: host [views][6], Pillow's `data` (output (x, y) -> input (a0 x + a1 y + a2, a3 x + a4 y + a5)).
cudaError_t PilAffineNearestViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                    const double* matrices, int64_t views, int64_t out_h, int64_t out_w,
                                    uint8_t* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream);

// angles: host [views], degrees. dst: [views, h, w, c].
cudaError_t RotateViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                          const double* angles, int64_t views, uint8_t* dst, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream);

// params: host [views]. dst: [views, h, w, c].
cudaError_t TorchvisionAffineViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                                     const AffineParams* params, int64_t views, uint8_t* dst, void* workspace,
                                     size_t workspace_bytes, cudaStream_t stream);

// horizontal: host [views], nonzero = FLIP_LEFT_RIGHT, 0 = FLIP_TOP_BOTTOM. dst: [views, h, w, c].
cudaError_t FlipViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                        const uint8_t* horizontal, int64_t views, uint8_t* dst, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream);

// boxes: host [views][4] = (x0, y0, x1, y1) as CropBoxU8 takes them (ResizedCropBox gives them for
// F.resized_crop): non-empty, sides and offsets up to 2^24. View v's crop, (y1 - y0) x (x1 - x0) x c
// packed, goes to dst + v * dst_view_stride; dst_view_stride must hold the largest crop.
// Workspace: GeometricWorkspaceBytes(views, 0, 0).
cudaError_t CropBoxesViewsU8(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t src_view_stride,
                             const int64_t* boxes, int64_t views, uint8_t* dst, int64_t dst_view_stride,
                             void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace sslinv::cuda
