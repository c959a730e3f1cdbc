// Host memory for tensors.
//
// Small buffers (< 64 KiB) come from malloc, aligned by hand. Larger ones are mmap'ed (in 64 KiB multiples, or
// 2 MiB multiples with transparent huge pages requested from 2 MiB up) and kept in a bounded cache
// when freed: a network
// allocates the same activation sizes on every forward pass, and a fresh mapping costs one page
// fault per 4 KiB page on first touch (hundreds of thousands per ResNet-50 batch). The cache is
// capped (SSL_INV_HOST_CACHE_MB, default 2048) so resident memory stays flat; ReleaseCached() empties it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sslinv {

void* HostAlloc(size_t nbytes);         // 64-byte aligned; nullptr on failure
void HostFree(void* p, size_t nbytes);  // nbytes must be the size passed to HostAlloc

// An owning, 64-byte-aligned array from HostAlloc (for kernels' scratch buffers).
template <typename T>
class HostArray {
 public:
  HostArray() = default;
  explicit HostArray(size_t n) : n_(n), p_(static_cast<T*>(HostAlloc(n * sizeof(T)))) {}
  ~HostArray() { reset(); }
  HostArray(HostArray&& o) noexcept : n_(o.n_), p_(o.p_) { o.p_ = nullptr; o.n_ = 0; }
  HostArray& operator=(HostArray&& o) noexcept {
    if (this != &o) {
      reset();
      n_ = o.n_;
      p_ = o.p_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  HostArray(const HostArray&) = delete;
  HostArray& operator=(const HostArray&) = delete;
  T* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  void reset() {
    if (p_) HostFree(p_, n_ * sizeof(T));
    p_ = nullptr;
    n_ = 0;
  }

 private:
  size_t n_ = 0;
  T* p_ = nullptr;
};

struct HostCacheStats {
  int64_t cached_bytes;
  int64_t cached_blocks;
  int64_t hits;
  int64_t misses;
};
HostCacheStats GetHostCacheStats();
void ReleaseCachedHostMemory();

}  // namespace sslinv
