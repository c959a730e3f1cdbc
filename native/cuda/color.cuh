// CUDA photometric ops on uint8 HWC images: the device counterparts of ops/color.h (torchvision 0.14
// + Pillow 9.4 semantics), bit-identical to the CPU ops, batched so that one launch produces every
// view of a source image (the synthetic-invariance evaluation builds k views per image, one per
// parameter value of a grid).
//
// Shapes (all device pointers, rows packed: row stride = width * channels):
//   per-view ops   src [H, W, C] -> dst [views, H, W, C]; view v uses parameter value v.
//   batch ops      src [N, H, W, C] -> dst [N, H, W, C]; image n is transformed on its own
//                  (grayscale, invert and equalize take no parameter; equalize's LUT is per image).
// Per-view parameters are small host arrays (one double or int per view, as the CPU API takes
// them). The launcher validates them, converts each to what the kernel needs (the float32 blend
// factor, the uint8 hue shift, the posterize mask) and passes up to kMaxViewsPerLaunch of them by
// value in the kernel's parameter block (1 KiB), so no device allocation or copy is needed; more
// views are launched in chunks of that many.
//
// Conventions: every launcher returns cudaErrorInvalidValue without launching for invalid sizes or
// parameters (sides 1 .. 2^24 and at most 2^31 - 1 pixels per image, channels as noted, views / N
// >= 1, non-null pointers, parameters in the CPU op's range), else cudaGetLastError() after its
// launches (execution is asynchronous on `stream`). dst must not overlap src. grid_cap (0 = default
// 1024) bounds the blocks along the pixel dimension of the grid-stride kernels; results never depend
// on it.
//
// Arithmetic: the same types and operation order as native/cpu/color.cc (Pillow's C float / double
// steps), with correctly rounded float and double operations and no FMA (the addon compiles CUDA with
// -fmad=false; the float blend uses the explicitly rounded helpers of kernel_util.cuh anyway). No
// transcendental is involved (hue uses only +, -, *, /, floor and truncations), so nothing has to be
// precomputed on the host beyond the per-view constants above. The contrast degenerate (the rounded
// mean of the L image) is an integer sum computed on the device by one block, so it is exact and
// deterministic; equalize's histograms use integer shared-memory atomics (order-independent).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"
#include "ops/color.h"  // EnhanceKind

namespace sslinv::cuda {

// Views per kernel launch (the per-view parameters travel in the kernel's parameter block).
constexpr int64_t kMaxViewsPerLaunch = 256;

// F.rgb_to_grayscale(img, 3) of N RGB images: Pillow's L, replicated to 3 channels. C = 3.
cudaError_t RgbToGrayscaleBatchU8(const uint8_t* src, int64_t images, int64_t height, int64_t width, uint8_t* dst,
                                  cudaStream_t stream, int grid_cap = 0);

// ImageOps.invert of N images, channels 1..4.
cudaError_t InvertBatchU8(const uint8_t* src, int64_t images, int64_t height, int64_t width, int64_t channels,
                          uint8_t* dst, cudaStream_t stream, int grid_cap = 0);

// ImageEnhance.{Brightness, Contrast, Color, Sharpness}(img).enhance(factors[v]) for each view v, of
// one RGB image (C = 3). factors: `views` host doubles, each finite and finite as a float32 (it is
// rounded to a float, as Pillow's blend receives it). Sharpness blends with ImageFilter.SMOOTH
// (Pillow's 3x3 float kernel, 1-pixel border copied unfiltered).
// kContrast needs `workspace`: device memory of at least EnhanceWorkspaceBytes() bytes, 4-byte
// aligned, where a one-block kernel leaves int(mean(L) + 0.5) before the views are written; the other
// kinds ignore it (null allowed).
size_t EnhanceWorkspaceBytes();
cudaError_t EnhanceViewsU8(const uint8_t* src, int64_t height, int64_t width, EnhanceKind kind, const double* factors,
                           int64_t views, uint8_t* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                           int grid_cap = 0);

// F.adjust_hue(img, hue_factors[v]) for each view v, of one RGB image (C = 3); each factor in
// [-0.5, 0.5] (host doubles). The shift uint8(trunc(h * 255)) is computed on the host per view.
cudaError_t AdjustHueViewsU8(const uint8_t* src, int64_t height, int64_t width, const double* hue_factors,
                             int64_t views, uint8_t* dst, cudaStream_t stream, int grid_cap = 0);

// ImageOps.posterize(img, bits[v]) for each view v; bits 0..8 (host int64s); channels 1..4.
cudaError_t PosterizeViewsU8(const uint8_t* src, int64_t height, int64_t width, int64_t channels, const int64_t* bits,
                             int64_t views, uint8_t* dst, cudaStream_t stream, int grid_cap = 0);

// ImageOps.equalize of N images, channels 1..4: per image and channel a 256-bin histogram (one block
// per image, shared-memory integer atomics), Pillow's LUT from it (int64 arithmetic, as the CPU op),
// then the LUT applied. `workspace`: device memory of at least EqualizeWorkspaceBytes(images,
// channels) bytes (the LUTs, images * channels * 256 bytes).
size_t EqualizeWorkspaceBytes(int64_t images, int64_t channels);
cudaError_t EqualizeBatchU8(const uint8_t* src, int64_t images, int64_t height, int64_t width, int64_t channels,
                            uint8_t* dst, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                            int grid_cap = 0);

}  // namespace sslinv::cuda
