// Host emulation of the CUDA subset our SIMT kernels use, so their logic is tested on machines with
// no GPU (CI, the 2-core development machines). Compiled only into the emulation test programs
// (test/cuda-emu), never into the addon.
//
// Model: a launch runs its blocks one after another; within a block every CUDA thread is a real OS
// thread, so __syncthreads() is a std::barrier over the block and warp shuffles exchange values
// through a per-warp slot array between two warp-wide barriers. `__shared__` variables become
// function statics: shared by the threads of the running block, and reused by the next block (as
// on a GPU, a block must not rely on what another block left in shared memory; the launcher fills
// it with a garbage pattern before each block to catch reads of unwritten shared memory).
// Device memory is host memory. The sm_80 warp primitives (mma.sync, ldmatrix, cp.async) are
// emulated in cuda/mma.cuh from their PTX definitions; cp.async copies land only at the wait that
// covers them (see CpAsyncWait below). What this cannot catch: races that the sequential block order
// hides, other inline PTX (kept behind SSLINV_GPU_ONLY), and performance. A kernel that passes here
// has correct indexing and synchronisation structure; it is still unverified on a GPU until the
// device check has run it.
#pragma once
#ifdef __CUDACC__
#error "cuda_emu.h is for host-only emulation builds"
#endif
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#define SSLINV_CUDA_EMU 1

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) double2 { double x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

typedef struct CUstream_emu* cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorInvalidConfiguration = 9, cudaErrorMemoryAllocation = 2 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
#define __align__(n) alignas(n)

namespace sslinv_emu {

struct WarpSlots {
  explicit WarpSlots(std::ptrdiff_t lanes) : bar(lanes) {}
  std::barrier<> bar;
  alignas(16) unsigned char slot[32][16];
};

struct BlockState {
  dim3 block_idx, block_dim, grid_dim;
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<WarpSlots>> warps;
  std::vector<unsigned char> dynamic_smem;
};

inline BlockState*& CurrentBlock() {
  static BlockState* b = nullptr;
  return b;
}
inline thread_local dim3 tls_thread_idx;
inline thread_local unsigned tls_linear_tid = 0;

inline unsigned LaneId() { return tls_linear_tid & 31u; }

inline void SyncThreads() { CurrentBlock()->bar->arrive_and_wait(); }

template <typename T>
inline T WarpExchange(T v, int src_lane) {
  static_assert(sizeof(T) <= 16, "shuffle of a type wider than 16 bytes");
  BlockState* b = CurrentBlock();
  WarpSlots& w = *b->warps[tls_linear_tid / 32];
  std::memcpy(w.slot[LaneId()], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T out;
  std::memcpy(&out, w.slot[src_lane], sizeof(T));
  w.bar.arrive_and_wait();
  return out;
}

inline unsigned char* DynamicSmem() { return CurrentBlock()->dynamic_smem.data(); }

// Runs kernel(args...) over the grid, block by block. Shared statics are not reset between blocks.
template <typename Kernel, typename... Args>
void Launch(Kernel kernel, dim3 grid, dim3 block, size_t smem_bytes, Args... args) {
  const unsigned nthreads = block.x * block.y * block.z;
  if (nthreads == 0 || nthreads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0) std::abort();
  BlockState st;
  st.block_dim = block;
  st.grid_dim = grid;
  st.dynamic_smem.assign(smem_bytes + 16, 0);
  CurrentBlock() = &st;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        st.block_idx = dim3(bx, by, bz);
        st.bar = std::make_unique<std::barrier<>>(nthreads);
        st.warps.clear();
        for (unsigned w = 0; w * 32 < nthreads; ++w)
          st.warps.push_back(std::make_unique<WarpSlots>(std::min(32u, nthreads - w * 32)));
        // A NaN-ish pattern, so a read of shared memory nobody wrote shows up in the results.
        std::memset(st.dynamic_smem.data(), 0xff, st.dynamic_smem.size());
        std::vector<std::thread> threads;
        threads.reserve(nthreads);
        for (unsigned t = 0; t < nthreads; ++t) {
          threads.emplace_back([&, t] {
            tls_linear_tid = t;
            tls_thread_idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
            kernel(args...);
          });
        }
        for (auto& th : threads) th.join();
      }
  CurrentBlock() = nullptr;
}

// cp.async: each thread's copies are queued, grouped at commit, and performed only when a wait
// covers their group (as late as the hardware may complete them), so a kernel that reads a stage
// before waiting for it reads the launcher's garbage pattern. Each block's threads are new OS
// threads, so the queues start empty.
struct PendingCopy {
  void* dst;
  const void* src;
  unsigned bytes, src_bytes;  // src_bytes < bytes: the rest is zero-filled
};
inline thread_local std::vector<PendingCopy> tls_cp_open;
inline thread_local std::vector<std::vector<PendingCopy>> tls_cp_groups;

inline void CpAsyncEnqueue(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
  tls_cp_open.push_back(PendingCopy{dst, src, bytes, src_bytes});
}
inline void CpAsyncCommit() {
  tls_cp_groups.push_back(std::move(tls_cp_open));
  tls_cp_open.clear();
}
inline void CpAsyncWait(size_t in_flight) {
  while (tls_cp_groups.size() > in_flight) {
    for (const PendingCopy& c : tls_cp_groups.front()) {
      if (c.src_bytes) std::memcpy(c.dst, c.src, c.src_bytes);
      std::memset(static_cast<unsigned char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
    }
    tls_cp_groups.erase(tls_cp_groups.begin());
  }
}

template <typename T>
T AtomicAdd(T* p, T v) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (!r.compare_exchange_weak(old, old + v)) {
  }
  return old;
}

}  // namespace sslinv_emu

#define threadIdx (::sslinv_emu::tls_thread_idx)
#define blockIdx (::sslinv_emu::CurrentBlock()->block_idx)
#define blockDim (::sslinv_emu::CurrentBlock()->block_dim)
#define gridDim (::sslinv_emu::CurrentBlock()->grid_dim)
#define warpSize 32
#define __syncthreads() ::sslinv_emu::SyncThreads()
#define __syncwarp(...) ((void)0)

template <typename T>
inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  const int base = static_cast<int>(::sslinv_emu::LaneId()) & ~(width - 1);
  return ::sslinv_emu::WarpExchange(v, base + (src & (width - 1)));
}
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  const int lane = static_cast<int>(::sslinv_emu::LaneId());
  const int src = lane ^ mask;
  const bool same_segment = (src & ~(width - 1)) == (lane & ~(width - 1));
  return ::sslinv_emu::WarpExchange(v, same_segment ? src : lane);
}
template <typename T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(::sslinv_emu::LaneId());
  const int seg = lane & ~(width - 1);
  const int src = lane + static_cast<int>(delta);
  return ::sslinv_emu::WarpExchange(v, src < seg + width ? src : lane);
}
template <typename T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(::sslinv_emu::LaneId());
  const int seg = lane & ~(width - 1);
  const int src = lane - static_cast<int>(delta);
  return ::sslinv_emu::WarpExchange(v, src >= seg ? src : lane);
}

template <typename T>
inline T __ldg(const T* p) { return *p; }
inline float atomicAdd(float* p, float v) { return ::sslinv_emu::AtomicAdd(p, v); }
inline double atomicAdd(double* p, double v) { return ::sslinv_emu::AtomicAdd(p, v); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
  std::atomic_ref<unsigned long long> r(*p);
  unsigned long long old = r.load();
  while (v < old && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
#include <math.h>  // expf, logf, sqrtf, fmaxf, fmaf in the global namespace, as in CUDA device code

// Kernel launch: nvcc's <<<grid, block, smem, stream>>> syntax is not C++, so kernels are launched with
// SSLINV_LAUNCH in both builds (see cuda_compat.h).
#define SSLINV_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ((void)(stream), ::sslinv_emu::Launch(kernel, dim3(grid), dim3(block), (smem), __VA_ARGS__))
#define SSLINV_DYNAMIC_SMEM(type, name) type* name = reinterpret_cast<type*>(::sslinv_emu::DynamicSmem())
