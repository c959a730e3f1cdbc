// Layout conversions between PyTorch's NCHW and the NHWC the kernels use, for any 4-byte or 8-byte
// element (the copy is bit-exact).
//   NchwToNhwc: x [N, C, H, W] -> y [N, H, W, C];  NhwcToNchw: x [N, H, W, C] -> y [N, C, H, W]
#pragma once
#include <cstddef>
#include <cstdint>

namespace sslinv {

void NchwToNhwc(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem);
void NhwcToNchw(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem);

// y[r] = x[index[r]] for r < out_rows, rows of row_bytes bytes (torch's x[index] along dim 0, e.g.
// MoCo's shuffle of the key images). Indices must already be checked to lie in x's rows; x and y
// must not overlap. Parallel over rows when there is enough to copy.
void GatherRows(const void* x, void* y, const int32_t* index, int64_t out_rows, size_t row_bytes);

}  // namespace sslinv
