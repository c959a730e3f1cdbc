// Layout conversions between PyTorch's NCHW and the NHWC the kernels use, for any 4-byte or 8-byte
// element (the copy is bit-exact).
//   NchwToNhwc: x [N, C, H, W] -> y [N, H, W, C];  NhwcToNchw: x [N, H, W, C] -> y [N, C, H, W]
#pragma once
#include <cstddef>
#include <cstdint>

namespace sslinv {

void NchwToNhwc(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem);
void NhwcToNchw(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem);

}  // namespace sslinv
