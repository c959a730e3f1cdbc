// Helpers shared by the memory-bound kernels (elementwise.cu, pool.cu, layout.cu): grid sizing,
// the aligned-vector / scalar-tail split, correctly rounded float32 arithmetic that nvcc may not
// contract into FMAs, and the Chan merge of (count, mean, M2) statistics. Internal to native/cuda.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cuda/cuda_compat.h"

#if defined(SSLINV_CUDA_EMU)
#include <atomic>
#endif

namespace sslinv::cuda::detail {

// Vector accesses must be aligned to their width on a GPU (a misaligned float4 load faults), but
// the host emulator would silently accept them. In emulation builds every vector access goes through
// SSLINV_CHECK_VEC_ALIGN, which counts misaligned ones for the tests to assert zero; with nvcc it is
// nothing.
#if defined(SSLINV_CUDA_EMU)
inline std::atomic<long long>& EmuMisalignedAccesses() {
  static std::atomic<long long> count{0};
  return count;
}
#define SSLINV_CHECK_VEC_ALIGN(p, bytes) \
  ((reinterpret_cast<uintptr_t>(p) % (bytes)) ? (void)++::sslinv::cuda::detail::EmuMisalignedAccesses() : (void)0)
#else
#define SSLINV_CHECK_VEC_ALIGN(p, bytes) ((void)0)
#endif

constexpr int kThreads = 256;
// Default cap on the blocks of a grid-stride launch: enough resident blocks to fill an H100/H200
// (132 SMs x 8 blocks of 256 threads) without depending on the device, so a launch's work split,
// and with it every reduction order, is the same on any GPU.
constexpr int kDefaultGridCap = 1024;

inline unsigned GridFor(int64_t items, int threads, int grid_cap) {
  const int64_t cap = grid_cap > 0 ? grid_cap : kDefaultGridCap;
  int64_t blocks = (items + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned>(blocks);
}

inline bool IsAligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// The number of leading elements (of elem_bytes each) to skip so that p + head is align_bytes-aligned,
// capped at n. A pointer not aligned to its own element size never becomes aligned: returns n.
inline int64_t AlignHead(const void* p, size_t elem_bytes, size_t align_bytes, int64_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % elem_bytes != 0) return n;
  const int64_t head = static_cast<int64_t>(((align_bytes - a % align_bytes) % align_bytes) / elem_bytes);
  return head < n ? head : n;
}

// A grid-stride element range split into [0, head) scalar, [head, head + 4 * nvec) in 4-element
// vectors, and a scalar tail. head = n, nvec = 0 runs everything scalar.
struct VecSplit {
  int64_t n = 0, head = 0, nvec = 0;
};
inline VecSplit MakeVecSplit(int64_t n, int64_t head, bool vector_ok) {
  VecSplit s;
  s.n = n;
  s.head = vector_ok ? head : n;
  s.nvec = vector_ok ? (n - head) / 4 : 0;
  return s;
}
inline int64_t VecSplitItems(const VecSplit& s) { return s.nvec + s.head + (s.n - s.head - 4 * s.nvec); }

// Runs op.Vec(i) for each aligned 4-element group and op.Scalar(i) for the head and tail elements,
// spread over every thread of the grid. Each element is touched by exactly one thread, so ops may
// work in place (y == x).
template <typename Op>
__device__ __forceinline__ void RunVecSplit(Op& op, const VecSplit& s) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t v = tid; v < s.nvec; v += stride) op.Vec(s.head + 4 * v);
  const int64_t tail = s.head + 4 * s.nvec;
  const int64_t nscalar = s.head + (s.n - tail);
  for (int64_t t = tid; t < nscalar; t += stride) op.Scalar(t < s.head ? t : tail + (t - s.head));
}

// Correctly rounded float32 operations that nvcc never fuses into an FMA, used where results must
// equal the CPU code's (which is built without FMA contraction) bit for bit. The emulation build
// computes in double and rounds once: double has more than 2 * 24 + 2 bits, so that double rounding
// is innocuous for + - * / sqrt, and the conversion stops the host compiler from contracting.
#if defined(__CUDACC__)
__device__ __forceinline__ float AddRn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float SubRn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float MulRn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float DivRn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float SqrtRn(float a) { return __fsqrt_rn(a); }
#else
inline float AddRn(float a, float b) { return static_cast<float>(static_cast<double>(a) + static_cast<double>(b)); }
inline float SubRn(float a, float b) { return static_cast<float>(static_cast<double>(a) - static_cast<double>(b)); }
inline float MulRn(float a, float b) { return static_cast<float>(static_cast<double>(a) * static_cast<double>(b)); }
inline float DivRn(float a, float b) { return static_cast<float>(static_cast<double>(a) / static_cast<double>(b)); }
inline float SqrtRn(float a) { return static_cast<float>(sqrt(static_cast<double>(a))); }
#endif

// Chan et al.'s merge of two (count, mean, M2) summaries, in double. Empty summaries are identities.
__device__ __forceinline__ void ChanMerge(double& n, double& mean, double& m2, double nb, double mean_b,
                                          double m2_b) {
  if (nb == 0.0) return;
  if (n == 0.0) {
    n = nb;
    mean = mean_b;
    m2 = m2_b;
    return;
  }
  const double nn = n + nb;
  const double delta = mean_b - mean;
  const double fb = nb / nn;
  mean += delta * fb;
  m2 += m2_b + delta * delta * n * fb;
  n = nn;
}

// Copies host memory (pageable: staged before the call returns, so it may be freed at once) into
// device memory on `stream`; a plain memcpy in emulation builds, where device memory is host memory.
inline cudaError_t CopyToDevice(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
#if defined(SSLINV_CUDA_EMU)
  (void)stream;
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
#else
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream);
#endif
}

inline int NextPow2(int64_t v) {
  int p = 1;
  while (p < v && p < (1 << 30)) p <<= 1;
  return p;
}

}  // namespace sslinv::cuda::detail
