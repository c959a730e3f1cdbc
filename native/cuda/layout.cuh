// CUDA layout conversions and input normalisation; device counterparts of ops/layout.h and of the
// ToTensor + Normalize step of ops/resample.h (CropNormalizeU8).
//
// NchwToNhwc: x [N, C, H, W] -> y [N, H, W, C];  NhwcToNchw: x [N, H, W, C] -> y [N, C, H, W].
//   4-byte elements of any type (float32, int32): each image is a [rows, cols] matrix transposed in
//   32 x 32 tiles through shared memory (rows padded to 33 words so the column reads hit 32 different
//   banks); both global sides are coalesced. Bit-exact copies. x and y must not overlap.
//
// Uint8HwcToNormalizedNhwc: x [N, H, W, C] uint8 (C = 3 for RGB; 1 <= C <= 4) -> y [N, H, W, C]
//   float32, y = (float(v) / 255 - mean[c]) / std[c], every operation a correctly rounded float32
//   one in torchvision's order (ToTensor's div(255), then Normalize's sub_(mean).div_(std)). Bit-
//   identical to the CPU path (CropNormalizeU8), which builds the same per-channel table of 256 values;
//   this kernel builds it in shared memory per block. mean and std are HOST arrays of C floats, read
//   during the call; callers check std finite and non-zero and mean finite, as the CPU op does.
//   Any alignment: 4 pixels-channels at a time (one 4-byte load, one float4 store) where x and y are
//   aligned together, scalar elsewhere.
//
// Pointers are device pointers, element counts fit int64; grid_cap (0 = default) bounds the blocks of
// the grid-stride normalisation and the images per launch of the transposes (results do not depend on
// it). Each launcher returns cudaGetLastError() after launching on `stream`.
#pragma once
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

cudaError_t NchwToNhwc(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, cudaStream_t stream,
                       int grid_cap = 0);
cudaError_t NhwcToNchw(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, cudaStream_t stream,
                       int grid_cap = 0);

// y[r] = x[index[r]] for r < out_rows, rows of row_bytes bytes; index is a DEVICE array of out_rows
// int32 already checked to lie in x's rows. 16-byte copies when row_bytes and both pointers allow,
// else 4-byte, else bytes. Grid: y over the rows (stride loop), x over each row's words (stride loop).
cudaError_t GatherRows(const void* x, void* y, const int32_t* index, int64_t out_rows, int64_t row_bytes,
                       cudaStream_t stream, int grid_cap = 0);

cudaError_t Uint8HwcToNormalizedNhwc(const uint8_t* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c,
                                     const float* mean, const float* std, cudaStream_t stream, int grid_cap = 0);

}  // namespace sslinv::cuda
