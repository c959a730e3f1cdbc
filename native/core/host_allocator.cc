// See host_allocator.h.
#include "core/host_allocator.h"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>

namespace sslinv {

namespace {

constexpr size_t kLargeThreshold = size_t{1} << 20;
constexpr size_t kLargeGranule = size_t{2} << 20;

size_t LargeSize(size_t nbytes) { return (nbytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule; }

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

void* MapLarge(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
  return p;
}

}  // namespace

void* HostAlloc(size_t nbytes) {
  if (nbytes < kLargeThreshold) {
    size_t padded = (nbytes + 63) / 64 * 64;
    return std::aligned_alloc(64, padded == 0 ? 64 : padded);
  }
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
    std::free(p);
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
