// Host emulation of the CUDA subset our kernels use, so their logic is tested on machines with no
// GPU (CI, the 2-core development machines). Compiled only into the emulation test programs
// (test/cuda-emu), never into the addon.
//
// Model: a launch runs its blocks one after another on the calling OS thread; within a block every
// CUDA thread is a fiber (its own stack, emu/fiber.h) and a scheduler runs them in turn. A fiber runs
// until it must wait: at __syncthreads() for the block's live threads, at a warp shuffle for its
// warp's live lanes (each shuffle deposits the value, waits for the warp, reads, and waits again, so
// a slot is never overwritten early). Threads that have returned drop out of both, as on sm_70+.
// Running each thread as far ahead as it can go is adversarial on purpose: a missing barrier lets a
// thread read shared memory the others have not written yet (the launcher fills it with a garbage
// pattern before each block) or overwrite a stage they still read, and that shows in the results
// on every run, not by chance. If every live thread waits and none can go on (a barrier in divergent
// code), the launch aborts with a message instead of hanging.
// `__shared__` variables become function statics: shared by the threads of the running block, and
// reused by the next block (a block must not rely on what another block left there).
// Device memory is host memory. The sm_80 warp primitives (mma.sync, ldmatrix, cp.async) are
// emulated in cuda/mma.cuh from their PTX definitions; cp.async copies land only at the wait that
// covers them (see CpAsyncWait below). The sm_90a warpgroup MMA (wgmma.mma_async, cuda/wgmma.cuh)
// likewise completes only at the wgmma.wait_group that covers it (see WgmmaEnqueue below), and its
// shared-memory descriptors address the dynamic shared memory through an emulated shared window
// (SharedWindowAddress) whose base moves from launch to launch. A wgmma.mma_async aborts the launch
// when its thread has not executed wgmma.fence since its last wait, or when it reads shared memory
// that a cp.async wrote with no fence.proxy.async by the writing thread before it (CheckWgmmaIssue).
// Tensor-core MMAs round their sums toward zero, as the hardware does (cuda/mma.cuh,
// TensorCoreRound). What this cannot catch: races that need two threads truly at
// once (atomics are trivially atomic here), other inline PTX (kept behind SSLINV_GPU_ONLY), plain
// shared stores read by wgmma without the proxy fence (only cp.async writes are tracked), the
// hardware's exact rounding inside an MMA, and performance. A kernel that passes here has correct indexing and synchronisation structure; it is
// still unverified on a GPU until the device check has run it.
#pragma once
#ifdef __CUDACC__
#error "cuda_emu.h is for host-only emulation builds"
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "cuda/emu/fiber.h"
#include "cuda/emu/runtime_emu.h"

#define SSLINV_CUDA_EMU 1

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) double2 { double x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

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

// One emulated CUDA thread.
struct EmuThread {
  FiberContext ctx;
  dim3 idx;
  unsigned linear = 0;
  bool done = false;
  const uint64_t* wait_gen = nullptr;  // waiting until *wait_gen != wait_seen
  uint64_t wait_seen = 0;
  // cp.async: this thread's open group and its committed groups, oldest first.
  struct PendingCopy {
    void* dst;
    const void* src;
    unsigned bytes, src_bytes;  // src_bytes < bytes: the rest is zero-filled
  };
  std::vector<PendingCopy> cp_open;
  std::vector<std::vector<PendingCopy>> cp_groups;
  // wgmma.mma_async: this thread's open group and its committed groups, oldest first; each entry
  // completes one operation (checks its operands, writes its accumulators).
  std::vector<std::function<void()>> wg_open;
  std::vector<std::vector<std::function<void()>>> wg_groups;
  // wgmma.fence executed since this thread's last wgmma.wait_group (or its start): a wgmma.mma_async
  // needs one between the thread's own accesses of its accumulators and the wgmma (PTX ISA, wgmma.fence;
  // the emulation takes every wait as the point after which the accumulators may be touched).
  bool wg_fenced = false;
  // fence.proxy.async executed so far: a word this thread's cp.async wrote is fenced once the count
  // has moved past the value recorded with the write (BlockState::cp_writer).
  uint32_t proxy_fences = 0;
};

// A barrier over the threads first..last of a block that releases when every live member has
// arrived (threads that have returned drop out). gen counts releases; waiters wait for it to change.
struct EmuBarrier {
  unsigned live = 0, arrived = 0;
  uint64_t gen = 0;
  unsigned first = 0, last = 0;
};

struct WarpState {
  EmuBarrier bar;
  alignas(16) unsigned char slot[32][32];
};

// A warpgroup (4 consecutive warps, 128 threads: the unit sm_90's wgmma instructions execute on).
struct WarpgroupState {
  EmuBarrier bar;
  alignas(16) unsigned char slot[128][32];
};

// The block being run, and the scheduler that runs its threads. One per OS thread that launches.
struct BlockState {
  dim3 block_idx, block_dim, grid_dim;
  std::vector<EmuThread> threads;
  std::vector<WarpState> warps;
  std::vector<WarpgroupState> warpgroups;
  EmuBarrier block_bar;
  std::vector<unsigned char> dynamic_smem;
  // Per 2-byte word of dynamic shared memory: how many in-flight asynchronous reads (wgmma operands)
  // cover it. A cp.async into a word that is still being read is a race on a GPU (the copy may land
  // at once), whenever the emulator happens to perform it.
  std::vector<uint32_t> async_readers;
  // Per 2-byte word: the thread whose cp.async last wrote it (linear index + 1; 0: none) and that
  // thread's proxy_fences at the time. While the two counts are equal the write is not fenced, and a
  // wgmma.mma_async reading the word may read stale data on a GPU (the generic and async proxies are
  // not ordered without fence.proxy.async). A fence is then one increment, whatever was written.
  struct CpWrite {
    uint32_t writer = 0, fences = 0;
  };
  std::vector<CpWrite> cp_writer;
  // The shared-space address where this launch's dynamic shared memory starts (see SharedWindowBase).
  uint32_t window_base = 1024;
  FiberContext scheduler;
  EmuThread* current = nullptr;
  void (*body)(void*) = nullptr;  // runs the kernel with the launch's arguments
  void* body_arg = nullptr;
  // Members of the barriers released since the scheduler last looked (lowest and highest index): the
  // only threads that can have become runnable, so its scan restarts no earlier than them.
  unsigned woken_lo = ~0u, woken_hi = 0;
};

inline thread_local BlockState* tls_block = nullptr;
inline thread_local FiberStacks tls_stacks;
inline thread_local unsigned tls_launches = 0;  // alternates the first block's scheduling order

inline BlockState* CurrentBlock() { return tls_block; }

inline void Release(EmuBarrier& bar) {
  bar.arrived = 0;
  ++bar.gen;
  BlockState* b = tls_block;
  b->woken_lo = std::min(b->woken_lo, bar.first);
  b->woken_hi = std::max(b->woken_hi, bar.last);
}
// The running thread arrives; true when it is the last, which releases the barrier.
inline bool ArriveIsLast(EmuBarrier& bar) {
  if (++bar.arrived < bar.live) return false;
  Release(bar);
  return true;
}
// A member returned: it no longer counts, which may release the others.
inline void Leave(EmuBarrier& bar) {
  --bar.live;
  if (bar.arrived > 0 && bar.arrived == bar.live) Release(bar);
}
inline EmuThread& CurrentThread() { return *tls_block->current; }
inline unsigned LaneId() { return CurrentThread().linear & 31u; }

// The running thread waits until the barrier releases (returns at once when it is the last to arrive).
inline void Arrive(EmuBarrier& bar) {
  const uint64_t gen = bar.gen;
  if (ArriveIsLast(bar)) return;
  BlockState* b = tls_block;
  EmuThread& self = *b->current;
  self.wait_gen = &bar.gen;
  self.wait_seen = gen;
  SwitchFiber(self.ctx, b->scheduler);
}

inline void SyncThreads() { Arrive(tls_block->block_bar); }

// A warp shuffle: deposit, wait for the warp, read the source lane's slot, wait again (so nobody
// deposits the next value before everyone has read this one).
template <typename T>
inline T WarpExchange(T v, int src_lane) {
  static_assert(sizeof(T) <= 32, "a shuffle of a type wider than 32 bytes");
  WarpState& w = tls_block->warps[CurrentThread().linear / 32];
  std::memcpy(w.slot[LaneId()], &v, sizeof(T));
  Arrive(w.bar);
  T out;
  std::memcpy(&out, w.slot[src_lane], sizeof(T));
  Arrive(w.bar);
  return out;
}

// Every lane's v, in lane order, with one exchange: what the emulated warp-wide primitives (mma.sync,
// ldmatrix) use instead of a shuffle per word, so a warp MMA costs two warp barriers, not 24.
template <typename T>
inline void WarpGatherAll(const T& v, T out[32]) {
  static_assert(sizeof(T) <= 32, "a gather of a type wider than 32 bytes");
  WarpState& w = tls_block->warps[CurrentThread().linear / 32];
  std::memcpy(w.slot[LaneId()], &v, sizeof(T));
  Arrive(w.bar);
  for (int l = 0; l < 32; ++l) std::memcpy(&out[l], w.slot[l], sizeof(T));
  Arrive(w.bar);
}

// Every thread's v in a warpgroup, in thread order: what the emulated wgmma instructions use to check
// that all 128 threads of the warpgroup execute them together with the same operands (they are
// .sync.aligned and issued once per warpgroup). Aborts if fewer than 128 threads take part (some
// returned, or the block's size is not a multiple of 128); a thread that never arrives while the
// others wait shows as the scheduler's deadlock.
template <typename T>
inline void WarpgroupGatherAll(const T& v, T out[128], const char* what) {
  static_assert(sizeof(T) <= 32, "a gather of a type wider than 32 bytes");
  WarpgroupState& g = tls_block->warpgroups[CurrentThread().linear / 128];
  if (g.bar.live != 128) {
    std::fprintf(stderr, "cuda_emu: %s executed by a warpgroup of %u live threads (it needs all 128)\n", what, g.bar.live);
    std::abort();
  }
  std::memcpy(g.slot[CurrentThread().linear % 128], &v, sizeof(T));
  Arrive(g.bar);
  for (int t = 0; t < 128; ++t) std::memcpy(&out[t], g.slot[t], sizeof(T));
  Arrive(g.bar);
}

inline unsigned char* DynamicSmem() { return tls_block->dynamic_smem.data(); }

// The emulated shared window: dynamic shared memory starts at a shared-space address of 1 KiB or more,
// as on sm_80+ where the first 1 KiB of a block's window is reserved by the system and static
// __shared__ arrays come before the dynamic part. Kernels that need an aligned shared address (the
// wgmma swizzle atoms) align the address, not the pointer, as on a GPU; so that their alignment code
// runs in the tests, each launch moves the base by a multiple of 16 bytes (1024 + 16 (launch % 64)).
inline uint32_t SharedWindowBase() { return tls_block->window_base; }

// __cvta_generic_to_shared for the dynamic shared memory (the only shared memory emulated kernels
// pass to instructions by address).
inline uint32_t SharedWindowAddress(const void* p) {
  const unsigned char* base = DynamicSmem();
  const unsigned char* q = static_cast<const unsigned char*>(p);
  if (q < base || q > base + tls_block->dynamic_smem.size()) {
    std::fprintf(stderr, "cuda_emu: a shared-window address of memory outside the block's dynamic shared memory\n");
    std::abort();
  }
  return SharedWindowBase() + static_cast<uint32_t>(q - base);
}
// The bytes at shared-window address `addr` (n of them must lie inside the dynamic shared memory).
inline const unsigned char* SharedWindowPointer(uint32_t addr, size_t n) {
  const size_t size = tls_block->dynamic_smem.size();
  if (addr < SharedWindowBase() || addr - SharedWindowBase() + n > size) {
    std::fprintf(stderr, "cuda_emu: shared-window address 0x%x (+%zu bytes) is outside the block's %zu bytes of dynamic shared memory\n",
                 addr, n, size);
    std::abort();
  }
  return DynamicSmem() + (addr - SharedWindowBase());
}

// An asynchronous read of the 2-byte words at these shared-window addresses starts (+1) or ends (-1).
inline void CountAsyncReaders(const std::vector<uint32_t>& addrs, int delta) {
  std::vector<uint32_t>& readers = tls_block->async_readers;
  for (uint32_t a : addrs) readers[(a - SharedWindowBase()) / 2] += static_cast<uint32_t>(delta);
}

// Where each fiber starts: run the kernel, leave the barriers, and hand control back for good.
inline void ThreadEntry(void* arg) {
  BlockState* b = static_cast<BlockState*>(arg);
  FiberEntered(b->scheduler);
  b->body(b->body_arg);
  EmuThread& self = *b->current;
  if (!self.wg_open.empty() || !self.wg_groups.empty()) {
    // On a GPU the accumulators would be lost or read before they are written.
    std::fprintf(stderr, "cuda_emu: thread %u of block (%u, %u, %u) returned with wgmma.mma_async operations no wgmma.wait_group covered\n",
                 self.linear, b->block_idx.x, b->block_idx.y, b->block_idx.z);
    std::abort();
  }
  self.done = true;
  Leave(b->block_bar);
  Leave(b->warps[self.linear / 32].bar);
  Leave(b->warpgroups[self.linear / 128].bar);
  SwitchFiber(self.ctx, b->scheduler);
  std::abort();  // a finished fiber is never resumed
}

// Runs one block until all its threads have returned. The next thread to run is always the first
// that can go on, counting from thread 0 (ascending) or from the last thread (descending): so the
// first warp runs as far ahead as the barriers let it, and a missing barrier shows as a read of data
// the other warps have not written yet, or an overwrite of data they have not read yet. Blocks
// alternate the direction, so both orders of every pair of warps are tried.
inline void RunBlock(BlockState& b, bool ascending) {
  const size_t n = b.threads.size();
  size_t live = n;
  size_t from = 0;  // scan position (0 = thread 0 ascending, thread n - 1 descending); all before it wait
  while (live > 0) {
    if (b.woken_lo != ~0u) {  // released barriers: their members may run again
      from = std::min(from, ascending ? size_t{b.woken_lo} : n - 1 - b.woken_hi);
      b.woken_lo = ~0u;
      b.woken_hi = 0;
    }
    EmuThread* next = nullptr;
    for (; from < n; ++from) {
      EmuThread& t = b.threads[ascending ? from : n - 1 - from];
      if (!t.done && (t.wait_gen == nullptr || *t.wait_gen != t.wait_seen)) {
        next = &t;
        break;
      }
    }
    if (next == nullptr) {
      std::fprintf(stderr,
                   "cuda_emu: deadlock in block (%u, %u, %u): every live thread waits at a barrier that cannot release "
                   "(__syncthreads or a warp shuffle in divergent code)\n",
                   b.block_idx.x, b.block_idx.y, b.block_idx.z);
      std::abort();
    }
    next->wait_gen = nullptr;
    b.current = next;
    SwitchFiber(b.scheduler, next->ctx);
    b.current = nullptr;
    if (next->done) --live;
  }
}

// Runs kernel(args...) over the grid, block by block. Shared statics are not reset between blocks.
template <typename Kernel, typename... Args>
void Launch(Kernel kernel, dim3 grid, dim3 block, size_t smem_bytes, Args... args) {
  const unsigned nthreads = block.x * block.y * block.z;
  if (nthreads == 0 || nthreads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
    SetLastError(cudaErrorInvalidConfiguration);  // as the runtime reports a bad launch
    return;
  }
  if (smem_bytes > kDefaultDynamicSmem && smem_bytes > DynamicSmemLimit(reinterpret_cast<const void*>(kernel))) {
    // Over 48 KiB without the kernel's opt-in (or over what it opted in to): the GPU refuses the launch.
    SetLastError(cudaErrorInvalidValue);
    return;
  }
  if (!LaunchMayRun()) return;  // a faulted device (see runtime_emu.h): nothing runs
  if (tls_block != nullptr) std::abort();  // a launch from inside a kernel
  // One launch at a time in the process: kernels' __shared__ arrays are function statics, and the
  // emulated-device addon may launch from several OS threads (a real device serialises them on its
  // one stream too).
  static std::mutex launch_mu;
  std::lock_guard<std::mutex> launch_lock(launch_mu);
  auto run = [&] { kernel(args...); };
  BlockState st;
  st.block_dim = block;
  st.grid_dim = grid;
  st.body = [](void* f) { (*static_cast<decltype(run)*>(f))(); };
  st.body_arg = &run;
  st.dynamic_smem.assign(smem_bytes + 16, 0);
  st.async_readers.assign((smem_bytes + 16) / 2 + 1, 0);
  st.cp_writer.assign((smem_bytes + 16) / 2 + 1, BlockState::CpWrite{});
  st.threads.resize(nthreads);  // never resized again: the fibers hold on to their entries
  st.warps.resize((nthreads + 31) / 32);
  st.warpgroups.resize((nthreads + 127) / 128);
  tls_block = &st;
  const unsigned launch_count = tls_launches++;
  st.window_base = 1024u + 16u * (launch_count % 64u);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        st.block_idx = dim3(bx, by, bz);
        st.block_bar = EmuBarrier{nthreads, 0, 0, 0, nthreads - 1};
        for (unsigned w = 0; w < st.warps.size(); ++w) {
          const unsigned lanes = std::min(32u, nthreads - w * 32);
          st.warps[w].bar = EmuBarrier{lanes, 0, 0, w * 32, w * 32 + lanes - 1};
        }
        for (unsigned g = 0; g < st.warpgroups.size(); ++g) {
          const unsigned members = std::min(128u, nthreads - g * 128);
          st.warpgroups[g].bar = EmuBarrier{members, 0, 0, g * 128, g * 128 + members - 1};
        }
        st.woken_lo = ~0u;
        st.woken_hi = 0;
        // A NaN-ish pattern, so a read of shared memory nobody wrote shows up in the results.
        std::memset(st.dynamic_smem.data(), 0xff, st.dynamic_smem.size());
        std::fill(st.async_readers.begin(), st.async_readers.end(), 0u);
        std::fill(st.cp_writer.begin(), st.cp_writer.end(), BlockState::CpWrite{});
        for (unsigned t = 0; t < nthreads; ++t) {
          EmuThread& th = st.threads[t];
          th.idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
          th.linear = t;
          th.done = false;
          th.wait_gen = nullptr;
          th.cp_open.clear();
          th.cp_groups.clear();
          th.wg_open.clear();
          th.wg_groups.clear();
          th.wg_fenced = false;
          th.proxy_fences = 0;
          th.ctx.Start(tls_stacks.Top(t, nthreads), &ThreadEntry, &st);
        }
        RunBlock(st, ((launch_count + bx + by + bz) & 1u) == 0);
      }
  tls_block = nullptr;
}

// A thread's asynchronous operations in groups (cp.async, wgmma): the open group is closed by a
// commit; a wait retires the oldest groups, in order, until at most `in_flight` remain.
template <typename Op>
void CommitGroup(std::vector<Op>& open, std::vector<std::vector<Op>>& groups) {
  groups.push_back(std::move(open));
  open.clear();
}
template <typename Op, typename Retire>
void RetireGroups(std::vector<std::vector<Op>>& groups, size_t in_flight, Retire retire) {
  while (groups.size() > in_flight) {
    std::vector<Op> group = std::move(groups.front());
    groups.erase(groups.begin());
    for (const Op& op : group) retire(op);
  }
}

// cp.async: each thread's copies are queued, grouped at commit, and performed only when a wait
// covers their group (as late as the hardware may complete them), so a kernel that reads a stage
// before waiting for it reads the launcher's garbage pattern. The queues start empty in each block.
inline void CpAsyncEnqueue(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
  BlockState* b = tls_block;
  const unsigned char* d = static_cast<const unsigned char*>(dst);
  if (d >= b->dynamic_smem.data() && d + bytes <= b->dynamic_smem.data() + b->dynamic_smem.size()) {
    const size_t first = static_cast<size_t>(d - b->dynamic_smem.data()) / 2;
    for (size_t i = first; i < first + (bytes + 1) / 2; ++i) {
      if (b->async_readers[i] != 0) {
        std::fprintf(stderr, "cuda_emu: thread %u of block (%u, %u, %u) issues a cp.async into shared memory (offset %zu) that an "
                             "in-flight wgmma.mma_async still reads (no wgmma.wait_group and barrier retired it first)\n",
                     CurrentThread().linear, b->block_idx.x, b->block_idx.y, b->block_idx.z, 2 * i);
        std::abort();
      }
    }
  }
  CurrentThread().cp_open.push_back(EmuThread::PendingCopy{dst, src, bytes, src_bytes});
}
inline void CpAsyncCommit() {
  EmuThread& t = CurrentThread();
  CommitGroup(t.cp_open, t.cp_groups);
}
inline void CpAsyncWait(size_t in_flight) {
  EmuThread& t = CurrentThread();
  BlockState* b = tls_block;
  RetireGroups(t.cp_groups, in_flight, [&](const EmuThread::PendingCopy& c) {
    if (c.src_bytes) std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(static_cast<unsigned char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
    const unsigned char* d = static_cast<const unsigned char*>(c.dst);
    if (d >= b->dynamic_smem.data() && d + c.bytes <= b->dynamic_smem.data() + b->dynamic_smem.size()) {
      const size_t first = static_cast<size_t>(d - b->dynamic_smem.data()) / 2;
      for (size_t i = first; i < first + (c.bytes + 1) / 2; ++i) b->cp_writer[i] = {t.linear + 1, t.proxy_fences};
    }
  });
}

// fence.proxy.async.shared::cta: this thread's generic-proxy writes to shared memory (its landed
// cp.async copies) become visible to the async proxy (wgmma operand reads) once a barrier follows.
inline void FenceProxyAsyncShared() { ++CurrentThread().proxy_fences; }

// Checks, for a wgmma.mma_async being issued, that the thread executed wgmma.fence since its last wait
// and that none of the shared words the operation reads (window addresses) was written by a cp.async
// not followed by its thread's fence.proxy.async.
inline void CheckWgmmaIssue(const std::vector<uint32_t>& addrs) {
  EmuThread& t = CurrentThread();
  BlockState* b = tls_block;
  if (!t.wg_fenced) {
    std::fprintf(stderr, "cuda_emu: thread %u of block (%u, %u, %u) issues a wgmma.mma_async with no wgmma.fence since its last "
                         "wgmma.wait_group (its accumulator registers are not ordered)\n",
                 t.linear, b->block_idx.x, b->block_idx.y, b->block_idx.z);
    std::abort();
  }
  for (uint32_t a : addrs) {
    const BlockState::CpWrite w = b->cp_writer[(a - SharedWindowBase()) / 2];
    if (w.writer != 0 && b->threads[w.writer - 1].proxy_fences == w.fences) {
      std::fprintf(stderr, "cuda_emu: thread %u of block (%u, %u, %u) issues a wgmma.mma_async reading shared memory (offset %u) "
                           "written by a cp.async with no fence.proxy.async after it (the async proxy may read stale data)\n",
                   t.linear, b->block_idx.x, b->block_idx.y, b->block_idx.z, a - SharedWindowBase());
      std::abort();
    }
  }
}

// wgmma.mma_async: each operation is queued by the thread that issues it (cuda/wgmma.cuh snapshots
// its operands then), grouped at wgmma.commit_group, and completed only when a wgmma.wait_group
// covers its group: so reading the accumulators before the wait reads their old values, and the
// completion finds out if the shared memory under the operation changed while it was in flight.
inline void WgmmaEnqueue(std::function<void()> complete) { CurrentThread().wg_open.push_back(std::move(complete)); }
inline void WgmmaCommit() {
  EmuThread& t = CurrentThread();
  CommitGroup(t.wg_open, t.wg_groups);
}
inline void WgmmaFence() { CurrentThread().wg_fenced = true; }
inline void WgmmaWait(size_t in_flight) {
  EmuThread& t = CurrentThread();
  RetireGroups(t.wg_groups, in_flight, [](const std::function<void()>& complete) { complete(); });
  t.wg_fenced = false;
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

#define threadIdx (::sslinv_emu::CurrentThread().idx)
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
