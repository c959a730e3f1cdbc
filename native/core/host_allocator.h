// Host memory for tensors.
//
// Small buffers (< 1 MiB) come from aligned_alloc. Large ones are mmap'ed in 2 MiB multiples with
// transparent huge pages requested (madvise), and kept in a bounded cache when freed: a network
// allocates the same activation sizes on every forward pass, and a fresh mapping costs one page
// fault per 4 KiB page on first touch (hundreds of thousands per ResNet-50 batch). The cache is
// capped (SSL_INV_HOST_CACHE_MB, default 2048) so resident memory stays flat; ReleaseCached() empties it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sslinv {

void* HostAlloc(size_t nbytes);         // 64-byte aligned; nullptr on failure
void HostFree(void* p, size_t nbytes);  // nbytes must be the size passed to HostAlloc

struct HostCacheStats {
  int64_t cached_bytes;
  int64_t cached_blocks;
  int64_t hits;
  int64_t misses;
};
HostCacheStats GetHostCacheStats();
void ReleaseCachedHostMemory();

}  // namespace sslinv
