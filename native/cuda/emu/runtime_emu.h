// The CUDA runtime API subset the addon's host code calls (cuda/runtime.cc, the bindings' timers),
// emulated on the host, for the emulated-device addon (cuda_compat.h, SSL_INV_CUDA_EMU) and the
// emulation test programs. Never part of the real addon.
//
// One device, named "CUDA emulator (host)", reporting compute capability 9.0 and 132
// multiprocessors (an H100/H200's, so every launcher makes the choices and work splits it makes
// there); SSL_INV_CUDA_EMU_CC=8.6 (say) makes it report another compute capability, with that card's
// shared-memory opt-in limit, and no kernel image below 8.0 (as the default build has none). Device memory is host memory from aligned_alloc (256-byte aligned, as cudaMalloc's is),
// capped at SSL_INV_CUDA_EMU_MEMORY bytes (default 8 GiB) so the out-of-memory path can be tested;
// past the cap cudaMalloc fails with cudaErrorMemoryAllocation and, like the real runtime, records
// it as the last error. Streams do their work at once (every launch and copy is synchronous), so
// stream ordering is trivially kept; events read a steady clock.
// A device fault can be injected: with SSL_INV_CUDA_EMU_FAULT_AT=N the process's Nth kernel launch
// does not run and leaves cudaErrorIllegalAddress as a sticky error, as a kernel's illegal access
// does on a GPU: from then on every runtime call of the process (launches, copies, allocations,
// synchronisation, cudaGetLastError) returns it.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

typedef struct CUstream_emu* cudaStream_t;
typedef struct CUevent_emu* cudaEvent_t;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidPitchValue = 12,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorECCUncorrectable = 214,
  cudaErrorInvalidResourceHandle = 400,
  // Sticky errors: the context is lost, every later call of the process fails with the same error.
  cudaErrorIllegalAddress = 700,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorLaunchFailure = 719,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr {
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
struct cudaFuncAttributes {
  size_t sharedSizeBytes;
  int maxThreadsPerBlock;
  int maxDynamicSharedSizeBytes;
};

constexpr unsigned cudaStreamNonBlocking = 0x01;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  size_t sharedMemPerBlockOptin;
};

namespace sslinv_emu {

struct RuntimeState {
  std::mutex mu;
  std::unordered_map<void*, size_t> blocks;  // live allocations
  size_t used = 0;
  cudaError_t last_error = cudaSuccess;
  cudaError_t sticky = cudaSuccess;  // set by an injected fault; never cleared
  unsigned long long launches = 0;
};

inline RuntimeState& Runtime() {
  static RuntimeState* s = new RuntimeState();  // never destroyed: buffers may be freed at exit
  return *s;
}

inline size_t MemoryCap() {
  static const size_t cap = [] {
    const char* v = std::getenv("SSL_INV_CUDA_EMU_MEMORY");
    const unsigned long long n = v != nullptr ? std::strtoull(v, nullptr, 10) : 0;
    return n > 0 ? static_cast<size_t>(n) : size_t{8} << 30;
  }();
  return cap;
}

// SSL_INV_CUDA_EMU_CC ("8.6"): the compute capability the emulated device reports, 9.0 by default.
// It sets what the device says of itself and its shared-memory opt-in limit (MaxSmemOptIn), so the
// code paths for other cards (no wgmma, smaller tiles, a card the build has no code for) run here.
struct Capability {
  int major, minor;
};
inline Capability EmulatedCapability() {
  static const Capability cc = [] {
    const char* v = std::getenv("SSL_INV_CUDA_EMU_CC");
    int major = 0, minor = 0;
    if (v != nullptr && std::sscanf(v, "%d.%d", &major, &minor) == 2 && major > 0 && minor >= 0) return Capability{major, minor};
    return Capability{9, 0};
  }();
  return cc;
}
// The real cards' cudaDevAttrMaxSharedMemoryPerBlockOptin for the emulated compute capability.
inline size_t MaxSmemOptIn() {
  const Capability cc = EmulatedCapability();
  if (cc.major == 9 || cc.major == 10) return 227 * 1024;
  if (cc.major == 8 && (cc.minor == 0 || cc.minor == 7)) return 163 * 1024;
  if (cc.major == 8 || cc.major == 12) return 99 * 1024;
  if (cc.major == 7 && cc.minor == 5) return 64 * 1024;
  return 96 * 1024;
}
// Whether the emulated build has code for the emulated device: the default architectures' rule
// (8.0 and later), unless SSL_INV_CUDA_EMU_NO_KERNEL_IMAGE=1 says it has none (as for a build made
// for other cards, which the runtime's architecture rule cannot always tell).
inline bool HasKernelImage() {
  static const bool has = [] {
    const char* v = std::getenv("SSL_INV_CUDA_EMU_NO_KERNEL_IMAGE");
    return !(v != nullptr && std::strcmp(v, "1") == 0) && EmulatedCapability().major >= 8;
  }();
  return has;
}

// SSL_INV_CUDA_EMU_FAULT_AT: the launch (1-based, counted over the process) that faults; 0: none.
inline unsigned long long FaultAt() {
  static const unsigned long long n = [] {
    const char* v = std::getenv("SSL_INV_CUDA_EMU_FAULT_AT");
    return v != nullptr ? std::strtoull(v, nullptr, 10) : 0ull;
  }();
  return n;
}

// The sticky error of the process (cudaSuccess until a fault).
inline cudaError_t StickyError() {
  std::lock_guard<std::mutex> lock(Runtime().mu);
  return Runtime().sticky;
}

// Counts a launch; false when it must not run: the device has faulted, or this is the launch that
// faults (which makes the error sticky).
inline bool LaunchMayRun() {
  RuntimeState& rt = Runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  if (rt.sticky == cudaSuccess && FaultAt() != 0 && ++rt.launches == FaultAt()) rt.sticky = cudaErrorIllegalAddress;
  if (rt.sticky == cudaSuccess) return true;
  rt.last_error = rt.sticky;
  return false;
}

// Records err as the last error (as the runtime does) and returns it.
inline cudaError_t SetLastError(cudaError_t err) {
  if (err != cudaSuccess) {
    std::lock_guard<std::mutex> lock(Runtime().mu);
    Runtime().last_error = err;
  }
  return err;
}

struct EventEmu {
  std::chrono::steady_clock::time_point t{};
  bool recorded = false;
};

}  // namespace sslinv_emu

inline cudaError_t cudaGetLastError() {
  auto& rt = sslinv_emu::Runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  const cudaError_t e = rt.last_error;
  if (rt.sticky == cudaSuccess) rt.last_error = cudaSuccess;  // a sticky error stays
  return e;
}
inline cudaError_t cudaPeekAtLastError() {
  auto& rt = sslinv_emu::Runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  return rt.last_error;
}
inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    default: break;
  }
  return "cudaErrorUnknown";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: break;
  }
  return "unknown error";
}

// The emulator stands for the toolkit it is built beside: runtime and driver 13.0.
inline cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
inline cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return sslinv_emu::SetLastError(d == 0 ? cudaSuccess : cudaErrorInvalidDevice); }
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
// The emulated device is compute capability 9.0 (what the sm_90a kernels require) unless
// SSL_INV_CUDA_EMU_CC says otherwise.
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int d) {
  if (d != 0) return sslinv_emu::SetLastError(cudaErrorInvalidDevice);
  const sslinv_emu::Capability cc = sslinv_emu::EmulatedCapability();
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *v = cc.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = cc.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = static_cast<int>(sslinv_emu::MaxSmemOptIn()); break;
    default: return sslinv_emu::SetLastError(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return sslinv_emu::SetLastError(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof(*p));
  std::strncpy(p->name, "CUDA emulator (host)", sizeof(p->name) - 1);
  p->totalGlobalMem = sslinv_emu::MemoryCap();
  p->major = sslinv_emu::EmulatedCapability().major;
  p->minor = sslinv_emu::EmulatedCapability().minor;
  p->multiProcessorCount = 132;
  p->sharedMemPerBlockOptin = sslinv_emu::MaxSmemOptIn();
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  auto& rt = sslinv_emu::Runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  *total = sslinv_emu::MemoryCap();
  *free_bytes = *total - rt.used;
  return cudaSuccess;
}

inline cudaError_t cudaMalloc(void** p, size_t n) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  auto& rt = sslinv_emu::Runtime();
  *p = nullptr;
  {
    std::lock_guard<std::mutex> lock(rt.mu);
    if (n > sslinv_emu::MemoryCap() - rt.used) {
      rt.last_error = cudaErrorMemoryAllocation;
      return cudaErrorMemoryAllocation;
    }
    rt.used += n;
  }
#ifdef SSLINV_EXACT_ALLOC
  // Sanitizer builds: exactly n bytes, so the emulated kernels' accesses past a buffer are seen.
  void* q = nullptr;
  if (posix_memalign(&q, 256, n == 0 ? 1 : n) != 0) q = nullptr;
#else
  void* q = std::aligned_alloc(256, n == 0 ? 256 : (n + 255) / 256 * 256);
#endif
  std::lock_guard<std::mutex> lock(rt.mu);
  if (q == nullptr) {
    rt.used -= n;
    rt.last_error = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  rt.blocks[q] = n;
  *p = q;
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  if (p == nullptr) return cudaSuccess;
  auto& rt = sslinv_emu::Runtime();
  {
    std::lock_guard<std::mutex> lock(rt.mu);
    auto it = rt.blocks.find(p);
    if (it == rt.blocks.end()) {
      rt.last_error = cudaErrorInvalidValue;
      return cudaErrorInvalidValue;
    }
    rt.used -= it->second;
    rt.blocks.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  static int token;  // any non-null handle: every stream is the same synchronous one
  *s = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return sslinv_emu::StickyError(); }
inline cudaError_t cudaDeviceSynchronize() { return sslinv_emu::StickyError(); }

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind, cudaStream_t) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  if (n > 0 && (dst == nullptr || src == nullptr)) return sslinv_emu::SetLastError(cudaErrorInvalidValue);
  if (n > 0) std::memmove(dst, src, n);
  return cudaSuccess;
}
// As the runtime: a pitch below the row width is an error, nothing is copied then.
inline cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                                     cudaMemcpyKind, cudaStream_t) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  if (width == 0 || height == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return sslinv_emu::SetLastError(cudaErrorInvalidValue);
  if (dpitch < width || spitch < width) return sslinv_emu::SetLastError(cudaErrorInvalidPitchValue);
  for (size_t r = 0; r < height; ++r) {
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  }
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, n, kind, nullptr);
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t n, cudaStream_t) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  if (n > 0 && dst == nullptr) return sslinv_emu::SetLastError(cudaErrorInvalidValue);
  if (n > 0) std::memset(dst, value, n);
  return cudaSuccess;
}

inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new sslinv_emu::EventEmu());
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  auto* ev = reinterpret_cast<sslinv_emu::EventEmu*>(e);
  ev->t = std::chrono::steady_clock::now();
  ev->recorded = true;
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return sslinv_emu::StickyError(); }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (const cudaError_t s = sslinv_emu::StickyError()) return s;
  auto* x = reinterpret_cast<sslinv_emu::EventEmu*>(a);
  auto* y = reinterpret_cast<sslinv_emu::EventEmu*>(b);
  if (!x->recorded || !y->recorded) return sslinv_emu::SetLastError(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(y->t - x->t).count();
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<sslinv_emu::EventEmu*>(e);
  return cudaSuccess;
}

namespace sslinv_emu {
// The limits on a block's dynamic shared memory: 48 KiB unless the kernel opted in with
// cudaFuncSetAttribute(MaxDynamicSharedMemorySize), and MaxSmemOptIn() at most (227 KiB on sm_90).
// The emulated launch enforces them, so a kernel that would be refused on the GPU is refused here too.
constexpr size_t kDefaultDynamicSmem = 48 * 1024;
struct FuncSmemOptIns {
  std::mutex mu;
  std::unordered_map<const void*, size_t> bytes;  // kernel -> the opted-in maximum
};
inline FuncSmemOptIns& SmemOptIns() {
  static FuncSmemOptIns r;
  return r;
}
inline size_t DynamicSmemLimit(const void* kernel) {
  FuncSmemOptIns& r = SmemOptIns();
  std::lock_guard<std::mutex> lock(r.mu);
  const auto it = r.bytes.find(kernel);
  return it == r.bytes.end() ? kDefaultDynamicSmem : it->second;
}
}  // namespace sslinv_emu

template <typename F>
inline cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > sslinv_emu::MaxSmemOptIn()) {
    return sslinv_emu::SetLastError(cudaErrorInvalidValue);
  }
  sslinv_emu::FuncSmemOptIns& r = sslinv_emu::SmemOptIns();
  std::lock_guard<std::mutex> lock(r.mu);
  r.bytes[reinterpret_cast<const void*>(kernel)] = static_cast<size_t>(value);
  return cudaSuccess;
}

// What the emulated device knows of a kernel: whether the build has code for it (HasKernelImage).
template <typename F>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, F* kernel) {
  (void)kernel;
  if (!sslinv_emu::HasKernelImage()) return sslinv_emu::SetLastError(cudaErrorNoKernelImageForDevice);
  a->sharedSizeBytes = 0;
  a->maxThreadsPerBlock = 1024;
  a->maxDynamicSharedSizeBytes = static_cast<int>(sslinv_emu::kDefaultDynamicSmem);
  return cudaSuccess;
}
