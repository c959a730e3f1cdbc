// See host_allocator.h.
#include "core/host_allocator.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

namespace sslinv {

namespace {

// Buffers from 64 KiB up are mapped and cached: glibc's memalign splits heap chunks for aligned
// requests, and under Node's allocation pattern freed 64 KiB - 1 MiB chunks were not reused
// (resident memory grew by about one buffer per create/dispose). Sizes are rounded to 64 KiB below
// 2 MiB and to 2 MiB (a huge page) above, so equal requests share cache entries.
constexpr size_t kLargeThreshold = size_t{64} << 10;
constexpr size_t kSmallGranule = size_t{64} << 10;
constexpr size_t kHugeGranule = size_t{2} << 20;

[[maybe_unused]] size_t LargeSize(size_t nbytes) {
  const size_t g = nbytes < kHugeGranule ? kSmallGranule : kHugeGranule;
  return (nbytes + g - 1) / g * g;
}

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> blocks;  // mapping size -> free mapping
  int64_t cached_bytes = 0;
  int64_t hits = 0, misses = 0;
  int64_t cap_bytes;

  Cache() {
    int64_t mb = 2048;
    if (const char* env = std::getenv("SSL_INV_HOST_CACHE_MB")) {
      char* end = nullptr;
      long long v = std::strtoll(env, &end, 10);
      if (end != env && v >= 0) mb = v;
    }
    cap_bytes = mb << 20;
  }
};

Cache& GetCache() {
  static Cache* c = new Cache();  // never destroyed: buffers may be freed during static teardown
  return *c;
}

[[maybe_unused]] void* MapLarge(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  if (size >= kHugeGranule) madvise(p, size, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
  return p;
}

// Small buffers: malloc with the alignment done by hand (the original pointer is kept just before
// the aligned one). glibc's aligned_alloc/memalign splits chunks to align them, and under Node the
// freed pieces were not reused: resident memory grew by kilobytes per create/dispose.
constexpr size_t kAlign = 64;

[[maybe_unused]] void* SmallAlloc(size_t nbytes) {
  void* raw = std::malloc(nbytes + kAlign + sizeof(void*));
  if (raw == nullptr) return nullptr;
  uintptr_t p = (reinterpret_cast<uintptr_t>(raw) + sizeof(void*) + kAlign - 1) & ~(uintptr_t{kAlign} - 1);
  reinterpret_cast<void**>(p)[-1] = raw;
  return reinterpret_cast<void*>(p);
}

[[maybe_unused]] void SmallFree(void* p) { std::free(reinterpret_cast<void**>(p)[-1]); }

}  // namespace

#ifdef SSLINV_EXACT_ALLOC
// Sanitizer builds (scripts/build-native.js with SSL_INV_SANITIZE=1): every buffer from the malloc
// the sanitizer watches, of exactly the size asked for, freed at once. The rounding, the slack and
// the mmap'd cache above would hide a kernel's read or write past the end of its tensor.
void* HostAlloc(size_t nbytes) {
  void* p = nullptr;
  return posix_memalign(&p, kAlign, nbytes == 0 ? 1 : nbytes) == 0 ? p : nullptr;
}

void HostFree(void* p, size_t /*nbytes*/) { std::free(p); }
#else
void* HostAlloc(size_t nbytes) {
  if (nbytes < kLargeThreshold) return SmallAlloc(nbytes);
  const size_t size = LargeSize(nbytes);
  Cache& c = GetCache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.blocks.find(size);
    if (it != c.blocks.end()) {
      void* p = it->second;
      c.blocks.erase(it);
      c.cached_bytes -= static_cast<int64_t>(size);
      ++c.hits;
      return p;
    }
    ++c.misses;
  }
  void* p = MapLarge(size);
  if (p == nullptr) {
    // Out of address space or memory: give the cache back and try once more.
    ReleaseCachedHostMemory();
    p = MapLarge(size);
  }
  return p;
}

void HostFree(void* p, size_t nbytes) {
  if (p == nullptr) return;
  if (nbytes < kLargeThreshold) {
    SmallFree(p);
    return;
  }
  const size_t size = LargeSize(nbytes);
  Cache& c = GetCache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached_bytes + static_cast<int64_t>(size) <= c.cap_bytes) {
      c.blocks.emplace(size, p);
      c.cached_bytes += static_cast<int64_t>(size);
      return;
    }
  }
  munmap(p, size);
}
#endif  // SSLINV_EXACT_ALLOC

HostCacheStats GetHostCacheStats() {
  Cache& c = GetCache();
  std::lock_guard<std::mutex> lock(c.mu);
  return HostCacheStats{c.cached_bytes, static_cast<int64_t>(c.blocks.size()), c.hits, c.misses};
}

void ReleaseCachedHostMemory() {
  Cache& c = GetCache();
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    blocks.swap(c.blocks);
    c.cached_bytes = 0;
  }
  for (auto& b : blocks) munmap(b.second, b.first);
}

}  // namespace sslinv
