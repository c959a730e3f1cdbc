// NCHW <-> NHWC transposes (see ops/layout.h), blocked so both sides stream through the cache.
#include "ops/layout.h"

#include <algorithm>
#include <cstring>

#include "core/threadpool.h"

namespace sslinv {

namespace {

// Transposes each of `batch` [rows, cols] matrices into [cols, rows], in 32 x 32 blocks.
void BatchedTranspose(const char* x, char* y, int64_t batch, int64_t rows, int64_t cols, size_t elem) {
  constexpr int64_t kBlock = 32;
  const int64_t row_blocks = (rows + kBlock - 1) / kBlock;
  ThreadPool::Get().ParallelFor(batch * row_blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t i = t / row_blocks, r0 = (t % row_blocks) * kBlock;
      const char* xi = x + i * rows * cols * elem;
      char* yi = y + i * rows * cols * elem;
      const int64_t r1 = std::min(rows, r0 + kBlock);
      for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
        const int64_t c1 = std::min(cols, c0 + kBlock);
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) {
            std::memcpy(yi + (c * rows + r) * elem, xi + (r * cols + c) * elem, elem);
          }
        }
      }
    }
  });
}

}  // namespace

void NchwToNhwc(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem) {
  BatchedTranspose(static_cast<const char*>(x), static_cast<char*>(y), n, c, h * w, elem);
}

void NhwcToNchw(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, size_t elem) {
  BatchedTranspose(static_cast<const char*>(x), static_cast<char*>(y), n, h * w, c, elem);
}

void GatherRows(const void* x, void* y, const int32_t* index, int64_t out_rows, size_t row_bytes) {
  const auto* src = static_cast<const unsigned char*>(x);
  auto* dst = static_cast<unsigned char*>(y);
  // About 1 MiB per chunk: small gathers stay on the calling thread.
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>((size_t{1} << 20) / std::max<size_t>(row_bytes, 1)));
  ForRange(true, out_rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::memcpy(dst + r * row_bytes, src + static_cast<int64_t>(index[r]) * row_bytes, row_bytes);
  });
}

}  // namespace sslinv
