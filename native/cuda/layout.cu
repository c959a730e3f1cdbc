// CUDA NCHW <-> NHWC transposes and the uint8 -> normalised float32 input kernel (see layout.cuh).
#include "cuda/layout.cuh"

#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

using detail::DivRn;
using detail::kThreads;
using detail::SubRn;
using detail::VecSplit;

constexpr int kTile = 32;
constexpr int kTileRowsPerPass = 8;  // block (32, 8): each thread moves 4 elements of a tile
// Default cap on tile blocks per launch row (grid.x); tiles past it are taken by the stride loop.
constexpr int64_t kMaxTileBlocks = 1 << 20;

// Transposes each of `batch` [rows, cols] matrices of 4-byte words into [cols, rows]. Grid: x over
// the matrix's tiles (stride loop), z over the batch (stride loop).
__global__ void __launch_bounds__(kTile* kTileRowsPerPass)
    TransposeKernel(const uint32_t* x, uint32_t* y, int64_t batch, int64_t rows, int64_t cols, int64_t tiles_c,
                    int64_t tiles) {
  // +1 word per row: the transposed read tile[tx][k] then walks 32 different banks instead of one.
  __shared__ uint32_t tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const uint32_t* xb = x + b * rows * cols;
    uint32_t* yb = y + b * rows * cols;
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
      const int64_t r0 = (t / tiles_c) * kTile, c0 = (t % tiles_c) * kTile;
      for (int k = ty; k < kTile; k += kTileRowsPerPass) {
        const int64_t r = r0 + k, c = c0 + tx;
        if (r < rows && c < cols) tile[k][tx] = xb[r * cols + c];
      }
      __syncthreads();
      for (int k = ty; k < kTile; k += kTileRowsPerPass) {
        const int64_t c = c0 + k, r = r0 + tx;
        if (c < cols && r < rows) yb[c * rows + r] = tile[tx][k];
      }
      __syncthreads();  // the next tile overwrites `tile`
    }
  }
}

cudaError_t LaunchTranspose(const void* x, void* y, int64_t batch, int64_t rows, int64_t cols, cudaStream_t stream,
                            int grid_cap) {
  if (batch <= 0 || rows <= 0 || cols <= 0) return cudaSuccess;
  const int64_t tiles_r = (rows + kTile - 1) / kTile, tiles_c = (cols + kTile - 1) / kTile;
  const int64_t tiles = tiles_r * tiles_c;
  int64_t gz = batch < 65535 ? batch : 65535;
  int64_t gx = tiles < kMaxTileBlocks ? tiles : kMaxTileBlocks;
  if (grid_cap > 0) {
    if (gz > grid_cap) gz = grid_cap;
    const int64_t per_image = grid_cap / gz > 1 ? grid_cap / gz : 1;
    if (gx > per_image) gx = per_image;
  }
  const dim3 grid(static_cast<unsigned>(gx), 1, static_cast<unsigned>(gz)), block(kTile, kTileRowsPerPass);
  SSLINV_LAUNCH(TransposeKernel, grid, block, 0, stream, static_cast<const uint32_t*>(x), static_cast<uint32_t*>(y),
                batch, rows, cols, tiles_c, tiles);
  return cudaGetLastError();
}

struct NormalizeParams {
  float mean[4];
  float std[4];
  int64_t c;
};

// Reads the per-channel table (shared memory) for 4 consecutive elements or one.
struct NormalizeOp {
  const uint8_t* x;
  float* y;
  const float* lut;  // [c, 256]
  int64_t c;
  __device__ void Vec(int64_t i) const {
    SSLINV_CHECK_VEC_ALIGN(x + i, 4);
    SSLINV_CHECK_VEC_ALIGN(y + i, 16);
    const uint32_t u = *reinterpret_cast<const uint32_t*>(x + i);  // element i in the low byte
    float r[4];
    int64_t ch = i % c;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      r[k] = lut[ch * 256 + ((u >> (8 * k)) & 0xffu)];
      ch = (ch + 1 == c) ? 0 : ch + 1;
    }
    *reinterpret_cast<float4*>(y + i) = make_float4(r[0], r[1], r[2], r[3]);
  }
  __device__ void Scalar(int64_t i) const { y[i] = lut[(i % c) * 256 + x[i]]; }
};

__global__ void __launch_bounds__(kThreads) NormalizeKernel(const uint8_t* x, float* y, NormalizeParams p, VecSplit s) {
  __shared__ float lut[4 * 256];
  // torchvision: x.float().div(255), then sub_(mean).div_(std), each a float32 op (no FMA, no
  // reciprocal): the same table the CPU op builds.
  for (int e = threadIdx.x; e < p.c * 256; e += blockDim.x) {
    const int ch = e >> 8, v = e & 255;
    // Select the channel's constants with compares: indexing the by-value arrays with a runtime
    // index would copy them to local memory.
    float m = p.mean[0], sd = p.std[0];
#pragma unroll
    for (int k = 1; k < 4; ++k) {
      if (ch == k) {
        m = p.mean[k];
        sd = p.std[k];
      }
    }
    lut[e] = DivRn(SubRn(DivRn(static_cast<float>(v), 255.0f), m), sd);
  }
  __syncthreads();
  NormalizeOp op{x, y, lut, p.c};
  detail::RunVecSplit(op, s);
}

// y[r] = x[index[r]], rows of `words` Words. Grid: y over the output rows, x over each row's words,
// both stride loops, so any grid covers every row.
template <typename Word>
__global__ void __launch_bounds__(kThreads)
    GatherRowsKernel(const Word* x, Word* y, const int32_t* index, int64_t out_rows, int64_t words) {
  for (int64_t r = blockIdx.y; r < out_rows; r += gridDim.y) {
    const Word* src = x + static_cast<int64_t>(index[r]) * words;
    Word* dst = y + r * words;
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < words;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      dst[j] = src[j];
    }
  }
}

template <typename Word>
cudaError_t LaunchGatherRows(const void* x, void* y, const int32_t* index, int64_t out_rows, int64_t row_bytes,
                             cudaStream_t stream, int grid_cap) {
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  int64_t gx = (words + kThreads - 1) / kThreads, gy = out_rows;
  if (gx > 4096) gx = 4096;
  if (gy > 65535) gy = 65535;
  if (grid_cap > 0) {
    if (gx > grid_cap) gx = grid_cap;
    if (gy > grid_cap) gy = grid_cap;
  }
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  SSLINV_LAUNCH(GatherRowsKernel<Word>, grid, kThreads, 0, stream, static_cast<const Word*>(x), static_cast<Word*>(y),
                index, out_rows, words);
  return cudaGetLastError();
}

}  // namespace

cudaError_t NchwToNhwc(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, cudaStream_t stream,
                       int grid_cap) {
  return LaunchTranspose(x, y, n, c, h * w, stream, grid_cap);
}

cudaError_t NhwcToNchw(const void* x, void* y, int64_t n, int64_t c, int64_t h, int64_t w, cudaStream_t stream,
                       int grid_cap) {
  return LaunchTranspose(x, y, n, h * w, c, stream, grid_cap);
}

cudaError_t GatherRows(const void* x, void* y, const int32_t* index, int64_t out_rows, int64_t row_bytes,
                       cudaStream_t stream, int grid_cap) {
  if (out_rows < 0 || row_bytes < 0 || (out_rows > 0 && row_bytes > 0 && (x == nullptr || y == nullptr || index == nullptr))) {
    return cudaErrorInvalidValue;
  }
  if (out_rows == 0 || row_bytes == 0) return cudaSuccess;
  const auto aligned = [&](size_t a) {
    return row_bytes % static_cast<int64_t>(a) == 0 && detail::IsAligned(x, a) && detail::IsAligned(y, a);
  };
  if (aligned(16)) return LaunchGatherRows<uint4>(x, y, index, out_rows, row_bytes, stream, grid_cap);
  if (aligned(4)) return LaunchGatherRows<uint32_t>(x, y, index, out_rows, row_bytes, stream, grid_cap);
  return LaunchGatherRows<uint8_t>(x, y, index, out_rows, row_bytes, stream, grid_cap);
}

cudaError_t Uint8HwcToNormalizedNhwc(const uint8_t* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c,
                                     const float* mean, const float* std, cudaStream_t stream, int grid_cap) {
  if (c < 1 || c > 4) return cudaErrorInvalidValue;
  const int64_t total = n * h * w * c;
  if (total <= 0) return cudaSuccess;
  NormalizeParams p{};
  for (int64_t k = 0; k < c; ++k) {
    p.mean[k] = mean[k];
    p.std[k] = std[k];
  }
  p.c = c;
  const int64_t head = detail::AlignHead(y, 4, 16, total);
  const bool ok = detail::IsAligned(x + head, 4);
  const VecSplit s = detail::MakeVecSplit(total, head, ok);
  const int64_t nscalar = total - 4 * s.nvec;
  const unsigned grid = detail::GridFor(s.nvec > nscalar ? s.nvec : nscalar, kThreads, grid_cap);
  SSLINV_LAUNCH(NormalizeKernel, grid, kThreads, 0, stream, x, y, p, s);
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
