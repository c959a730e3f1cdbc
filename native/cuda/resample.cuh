// CUDA Pillow-exact resampling of a batch of uint8 views, and the fused final step of the evaluation
// transform (Resize -> CenterCrop -> ToTensor -> Normalize); the device counterparts of
// ops/resample.h's ResampleRegionU8 / ResampleU8 and ResizeCropNormalizeU8, bit-identical to them.
//
// Shapes: src [views, H, W, C] uint8 (device, HWC rows packed), every view the same size and
// resampled with the same spec;
//   ResampleViewsU8            -> dst [views, region.height, region.width, C] uint8: the window
//                                 `region` of each view's resize (the whole output for ResampleU8);
//   ResizeCropNormalizeViewsU8 -> dst [views, C, crop.height, crop.width] float32:
//                                 (v / 255 - mean[c]) / std[c] of the crop window of each resize,
//                                 with v = 0 where the crop extends past the resized image.
//
// Two steps. On the host, Plan*() decides what Pillow would do for this (size, spec, window) exactly
// as the CPU op decides it (a crop when the box is integral and unscaled; otherwise the horizontal
// and/or vertical convolution passes, skipped where Pillow skips them; NEAREST as 1-tap passes of
// weight 2^22, which reproduce its indices exactly) and computes the fixed-point filter taps with the
// CPU's own ComputeResampleTaps (ops/resample.h): the coefficients are doubles and libm calls (sin,
// cos for LANCZOS / HAMMING) that the device must not recompute, and sharing the function makes the
// tables identical by construction. Only the output positions of the window get taps (like
// ResampleRegionU8). The caller uploads plan.table to the device (int32, 4-byte aligned) and passes
// that copy to the launchers; one plan serves any number of launches with the same sizes.
// On the device: when both passes are needed, a first kernel computes the horizontal pass of the
// source rows the window's vertical taps read, stored as uint8 in `workspace` (Pillow's intermediate
// image, [views, tmp_rows, region.width, C]); the second kernel computes each output pixel's vertical
// taps (or the single pass, or the copy) and writes it, converting through a per-block float32 LUT of
// the 256 normalised values per channel for the fused variant (computed with correctly rounded
// division and subtraction, as the CPU op's LUT). All sums are int32 from a bias of 2^21, shifted by
// 22 and clipped, so the order of the taps does not matter.
//
// Conventions: launchers return cudaErrorInvalidValue without launching for inconsistent arguments
// (null pointers, views < 1, a plan of the other kind, a workspace below plan.WorkspaceBytes(views),
// mean / std not finite or std == 0), else cudaGetLastError() after the launches. dst must not
// overlap src or the workspace. grid_cap (0 = default 1024) bounds the blocks of the grid-stride
// kernels; results never depend on it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "cuda/cuda_compat.h"
#include "ops/resample.h"  // ResampleSpec, Window, ComputeResampleTaps

namespace sslinv::cuda {

struct ResamplePlan {
  enum class Mode : int32_t {
    kCopy = 0,        // the window is copied from the source (Pillow's crop, or nothing to resample)
    kHorizontal = 1,  // only the horizontal pass (the height and vertical box are unchanged)
    kVertical = 2,    // only the vertical pass
    kBoth = 3,        // horizontal pass into the workspace, then the vertical pass
  };
  bool normalize = false;  // made by PlanResizeCropNormalize (else PlanResampleRegion)
  int64_t in_height = 0, in_width = 0, channels = 0;
  Window region;  // the window of the resized image that is computed (empty: all padding)
  Window crop;    // normalize only: the crop window, in resized-image coordinates
  Mode mode = Mode::kCopy;
  int64_t copy_top = 0, copy_left = 0;  // kCopy: source position of the window's (0, 0)
  int64_t tmp_first = 0, tmp_rows = 0;  // kBoth: the source rows the horizontal pass computes
  int32_t kx = 0, ky = 0;               // taps per position of each axis
  // Offsets (int32 elements) into table: per window column 2 bounds and kx weights, per window row 2
  // bounds and ky weights (see ResampleTaps).
  int64_t x_bounds = 0, x_weights = 0, y_bounds = 0, y_weights = 0;
  std::vector<int32_t> table;  // upload as is; may be empty (kCopy)

  // Device workspace the launch needs (0 unless mode == kBoth).
  size_t WorkspaceBytes(int64_t views) const;
};

// The window `region` of the resize of an in_height x in_width x channels image by `spec`, as
// ResampleRegionU8 computes it (same validation: Pillow's checks, channels 1..4, window inside the
// output).
Status PlanResampleRegion(int64_t in_height, int64_t in_width, int64_t channels, const ResampleSpec& spec,
                          const Window& region, ResamplePlan* plan);
// Resize by `spec`, then the crop window `crop` (resized-image coordinates; it may extend past the
// image, which pads with zeros) normalised, as ResizeCropNormalizeU8.
Status PlanResizeCropNormalize(int64_t in_height, int64_t in_width, int64_t channels, const ResampleSpec& spec,
                               const Window& crop, ResamplePlan* plan);

// `table`: the device copy of plan.table (may be null when plan.table is empty). `workspace`: device
// memory of plan.WorkspaceBytes(views) bytes (null when that is 0).
cudaError_t ResampleViewsU8(const uint8_t* src, int64_t views, const ResamplePlan& plan, const int32_t* table,
                            void* workspace, size_t workspace_bytes, uint8_t* dst, cudaStream_t stream,
                            int grid_cap = 0);
// mean, std: host arrays of plan.channels float32 values.
cudaError_t ResizeCropNormalizeViewsU8(const uint8_t* src, int64_t views, const ResamplePlan& plan,
                                       const int32_t* table, const float* mean, const float* std, void* workspace,
                                       size_t workspace_bytes, float* dst, cudaStream_t stream, int grid_cap = 0);

}  // namespace sslinv::cuda
