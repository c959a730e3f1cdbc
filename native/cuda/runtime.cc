// CUDA devices, streams, the caching allocator and copies (see runtime.h for the contract).
#include "cuda/runtime.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "cuda/kernel_image.cuh"

// CMakeLists.txt defines it from CMAKE_CUDA_ARCHITECTURES; a real build without it says so, and
// the emulator poses as a build with the default list (SSL_INV_DEFAULT_CUDA_ARCHS in CMakeLists.txt).
#ifndef SSL_INV_CUDA_ARCHS
#ifdef SSLINV_REAL_CUDA_RUNTIME
#define SSL_INV_CUDA_ARCHS "unknown"
#else
#define SSL_INV_CUDA_ARCHS "80-real,90-real,90-virtual"
#endif
#endif

namespace sslinv {
namespace cuda {
namespace {

constexpr size_t kSmallRound = 512;
constexpr size_t kLargeThreshold = size_t{1} << 20;
constexpr size_t kLargeRound = size_t{2} << 20;

size_t RoundSize(size_t n) {
  if (n == 0) n = 1;
#ifdef SSLINV_EXACT_ALLOC
  return n;  // sanitizer builds: exact sizes, so a kernel's access past its tensor is seen (host_allocator.cc)
#endif
  const size_t r = n < kLargeThreshold ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

std::string HumanBytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  std::ostringstream s;
  s.precision(u ? 3 : 0);
  s << std::fixed << b << " " << unit[u];
  return s.str();
}

struct DeviceState {
  cudaStream_t stream = nullptr;
  std::multimap<size_t, void*> free_blocks;       // rounded size -> block
  std::unordered_map<void*, size_t> live_blocks;  // block -> rounded size
  AllocatorStats stats;
  // The device's properties, read once when the runtime starts (cudaGetDeviceProperties is slow, and
  // per-op checks such as the wgmma kernel's compute-capability test ask for them on every call).
  DeviceProps props;
  // Whether ProbeKernelImage has run on this device (before its first stream).
  bool image_checked = false;
};

std::string DeviceLabel(int index, const DeviceProps& p) {
  std::ostringstream m;
  m << "cuda:" << index << " (" << p.name << ", compute capability " << p.major << "." << p.minor << ")";
  return m.str();
}

// Fills d.props for device `index`; a device whose properties cannot be read is listed as unusable.
void ReadProps(int index, DeviceState* d) {
  DeviceProps& props = d->props;
  cudaDeviceProp p;
  const cudaError_t err = cudaGetDeviceProperties(&p, index);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    props.name = "unknown";
    props.unusable_reason = std::string("cuda:") + std::to_string(index) + ": cannot read its properties: " + cudaGetErrorString(err);
    return;
  }
  props.name = p.name;
  props.major = p.major;
  props.minor = p.minor;
  props.multiprocessors = p.multiProcessorCount;
  props.total_memory = p.totalGlobalMem;
  props.smem_optin = p.sharedMemPerBlockOptin;
  bool decided = false;
  props.usable = ArchitecturesRunOn(SSL_INV_CUDA_ARCHS, p.major, p.minor, &decided) || !decided;
  if (!props.usable) {
    std::ostringstream m;
    m << DeviceLabel(index, props) << " cannot run this build's kernels, compiled for the CUDA architectures "
      << SSL_INV_CUDA_ARCHS << ": ";
    if (p.major < 8) {
      m << "they need compute capability 8.0 or later (cp.async, TF32 and bf16 tensor cores); use the CPU";
    } else {
      m << "rebuild with SSL_INV_CUDA_ARCHS=\"" << SSL_INV_CUDA_ARCHS << "," << p.major << p.minor
        << "-real\" npm rebuild ssl-invariances";
    }
    props.unusable_reason = m.str();
  }
}

struct Runtime {
  std::once_flag init_once;
  int count = 0;
  std::string reason;
  std::mutex mu;
  std::vector<DeviceState> devices;
};

Runtime& Rt() {
  static Runtime* rt = new Runtime();  // never destroyed: finalisers may free buffers at exit
  std::call_once(rt->init_once, [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      rt->count = 0;
      rt->reason = cudaGetErrorString(err);
      (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    } else if (n == 0) {
      rt->reason = "no CUDA device found";
    } else {
      rt->count = n;
    }
    rt->devices.resize(static_cast<size_t>(rt->count));
    // Each device's properties and whether the build's code runs on it. cudaGetDeviceProperties
    // creates no context, so listing the devices costs none of their memory.
    for (int i = 0; i < rt->count; ++i) ReadProps(i, &rt->devices[static_cast<size_t>(i)]);
  });
  return *rt;
}

Status Unavailable(int device) {
  Runtime& rt = Rt();
  std::ostringstream m;
  if (rt.count == 0) {
    m << "cuda:" << device << " is not available: " << rt.reason;
  } else {
    m << "cuda:" << device << " does not exist (this machine has " << rt.count << " CUDA device"
      << (rt.count == 1 ? "" : "s") << ")";
  }
  return Status(Code::kDeviceUnavailable, m.str());
}

// Frees every cached block of `d`; the caller holds rt.mu and has drained the stream.
void ReleaseLocked(int device, DeviceState& d) {
  if (d.free_blocks.empty()) return;
  cudaSetDevice(device);
  for (auto& kv : d.free_blocks) {
    cudaFree(kv.second);
    d.stats.cached_bytes -= static_cast<int64_t>(kv.first);
  }
  d.free_blocks.clear();
}

}  // namespace

int DeviceCount() { return Rt().count; }
std::string NoDeviceReason() { return Rt().count ? std::string() : Rt().reason; }

Status CheckDevice(Device d) {
  if (d.type != DeviceType::kCUDA) return InvalidArgument("not a CUDA device");
  if (d.index < 0 || d.index >= DeviceCount()) return Unavailable(d.index);
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  const DeviceState& s = rt.devices[static_cast<size_t>(d.index)];
  if (!s.props.usable) return Status(Code::kDeviceUnavailable, s.props.unusable_reason);
  return Status::Ok();
}

const char* CompiledArchitectures() { return SSL_INV_CUDA_ARCHS; }

bool ArchitecturesRunOn(const std::string& archs, int major, int minor, bool* decided) {
  *decided = true;
  const int cc = major * 10 + minor;
  bool runs = false, any = false;
  size_t start = 0;
  while (start <= archs.size()) {
    size_t end = archs.find_first_of(";, ", start);
    if (end == std::string::npos) end = archs.size();
    const std::string entry = archs.substr(start, end - start);
    start = end + 1;
    if (entry.empty()) continue;
    // NN, NN-real, NN-virtual, NNa-real, NNf-real ...: the number, an optional letter, the kind.
    size_t i = 0;
    while (i < entry.size() && entry[i] >= '0' && entry[i] <= '9') ++i;
    if (i == 0 || i > 4) {  // "native", "all", "all-major", "unknown": not readable here
      *decided = false;
      return false;
    }
    any = true;
    const int arch = std::atoi(entry.substr(0, i).c_str());
    const bool specific = i < entry.size() && (entry[i] == 'a' || entry[i] == 'f');
    const std::string kind = entry.substr(i + (specific ? 1 : 0));
    const bool real = kind.empty() || kind == "-real";
    const bool virt = kind.empty() || kind == "-virtual";
    if (!real && !virt) {
      *decided = false;
      return false;
    }
    if (real && (specific ? cc == arch : major == arch / 10 && minor >= arch % 10)) runs = true;
    if (virt && !specific && cc >= arch) runs = true;
  }
  if (!any) *decided = false;
  return runs;
}

namespace {
// Errors after which the CUDA context is lost: every later call of the process fails with the same
// error, and only a new process can use the device again.
bool IsStickyError(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}
}  // namespace

Status FromCuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  std::ostringstream m;
  m << what << ": CUDA error " << static_cast<int>(err) << " (" << cudaGetErrorName(err) << "): " << cudaGetErrorString(err);
  if (err == cudaErrorMemoryAllocation) return OutOfMemory(m.str());
  if (IsStickyError(err)) {
    m << ". The device cannot be used by this process any more (a sticky CUDA error): start a new process "
         "(pretrain: --resume latest continues from the last checkpoint)";
    return Status(Code::kDeviceFault, m.str());
  }
  return Status(Code::kInternal, m.str());
}

Status GetDeviceProps(int index, DeviceProps* out) {
  if (index < 0 || index >= DeviceCount()) return Unavailable(index);
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  *out = rt.devices[static_cast<size_t>(index)].props;
  return Status::Ok();
}

Status GetStream(int device, cudaStream_t* out) {
  SSLINV_RETURN_IF_ERROR(CheckDevice(Device{DeviceType::kCUDA, device}));
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  DeviceState& d = rt.devices[static_cast<size_t>(device)];
  SSLINV_RETURN_IF_ERROR(FromCuda(cudaSetDevice(device), "cudaSetDevice"));
  if (!d.image_checked) {
    // The architecture rule said yes (or could not tell): ask the runtime itself, once, before the
    // first kernel. A device without code is then refused from here on (CheckDevice).
    const cudaError_t err = ProbeKernelImage();
    if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction) {
      (void)cudaGetLastError();
      d.props.usable = false;
      d.props.unusable_reason = DeviceLabel(device, d.props) + " has no code in this build (" + cudaGetErrorString(err) +
          "; compiled for the CUDA architectures " SSL_INV_CUDA_ARCHS "): rebuild with SSL_INV_CUDA_ARCHS naming it "
          "(npm rebuild ssl-invariances)";
      d.image_checked = true;
      return Status(Code::kDeviceUnavailable, d.props.unusable_reason);
    }
    SSLINV_RETURN_IF_ERROR(FromCuda(err, "cudaFuncGetAttributes"));
    d.image_checked = true;
  }
  if (d.stream == nullptr) {
    SSLINV_RETURN_IF_ERROR(FromCuda(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  }
  *out = d.stream;
  return Status::Ok();
}

Status Synchronize(int device, const char* what) {
  cudaStream_t s;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &s));
  return FromCuda(cudaStreamSynchronize(s), what);
}

Status DeviceAlloc(int device, size_t nbytes, const char* what, void** out) {
  SSLINV_RETURN_IF_ERROR(CheckDevice(Device{DeviceType::kCUDA, device}));
  const size_t size = RoundSize(nbytes);
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  DeviceState& d = rt.devices[static_cast<size_t>(device)];
  auto it = d.free_blocks.find(size);
  if (it != d.free_blocks.end()) {
    *out = it->second;
    d.free_blocks.erase(it);
    d.live_blocks[*out] = size;
    d.stats.cached_bytes -= static_cast<int64_t>(size);
    d.stats.in_use_bytes += static_cast<int64_t>(size);
    d.stats.reuses++;
    return Status::Ok();
  }
  SSLINV_RETURN_IF_ERROR(FromCuda(cudaSetDevice(device), "cudaSetDevice"));
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    // Other sizes may be cached: give them back and retry once. Their last uses are on our stream.
    if (d.stream) cudaStreamSynchronize(d.stream);
    ReleaseLocked(device, d);
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    std::ostringstream m;
    m << "cuda:" << device << ": out of memory allocating " << HumanBytes(static_cast<double>(size)) << " for " << what
      << " (this process holds " << HumanBytes(static_cast<double>(d.stats.in_use_bytes)) << "; the device has "
      << HumanBytes(static_cast<double>(free_b)) << " free of " << HumanBytes(static_cast<double>(total_b))
      << "). Use a smaller --batch-size.";
    if (err != cudaErrorMemoryAllocation) return FromCuda(err, what);
    return OutOfMemory(m.str());
  }
  d.live_blocks[p] = size;
  d.stats.in_use_bytes += static_cast<int64_t>(size);
  d.stats.cuda_mallocs++;
  *out = p;
  return Status::Ok();
}

void DeviceFree(int device, void* ptr, size_t /*nbytes*/) {
  if (ptr == nullptr) return;
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  if (device < 0 || static_cast<size_t>(device) >= rt.devices.size()) return;
  DeviceState& d = rt.devices[static_cast<size_t>(device)];
  auto it = d.live_blocks.find(ptr);
  if (it == d.live_blocks.end()) return;  // not ours: never hand a foreign pointer to cudaFree
  const size_t size = it->second;
  d.live_blocks.erase(it);
  d.free_blocks.emplace(size, ptr);
  d.stats.in_use_bytes -= static_cast<int64_t>(size);
  d.stats.cached_bytes += static_cast<int64_t>(size);
}

AllocatorStats GetAllocatorStats(int device) {
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  if (device < 0 || static_cast<size_t>(device) >= rt.devices.size()) return {};
  return rt.devices[static_cast<size_t>(device)].stats;
}

Status ReleaseCachedDeviceMemory(int device) {
  SSLINV_RETURN_IF_ERROR(Synchronize(device, "release cached device memory"));
  Runtime& rt = Rt();
  std::lock_guard<std::mutex> lock(rt.mu);
  ReleaseLocked(device, rt.devices[static_cast<size_t>(device)]);
  return Status::Ok();
}

Status CopyToDevice(int device, void* dst, const void* src, size_t nbytes) {
  cudaStream_t s;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &s));
  // From pageable memory cudaMemcpyAsync stages the data before it returns, so `src` may be freed
  // afterwards; it is ordered after earlier kernels on the stream.
  SSLINV_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s), "copy to device"));
  return Status::Ok();
}

Status CopyRowsToDevice(int device, void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                        size_t height) {
  cudaStream_t s;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &s));
  // From pageable memory, as CopyToDevice: staged before the call returns.
  return FromCuda(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, height, cudaMemcpyHostToDevice, s),
                  "copy rows to device");
}

Status CopyToHost(int device, void* dst, const void* src, size_t nbytes) {
  cudaStream_t s;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &s));
  SSLINV_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s), "copy to host"));
  return FromCuda(cudaStreamSynchronize(s), "copy to host");
}

Status CopyOnDevice(int device, void* dst, const void* src, size_t nbytes) {
  cudaStream_t s;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &s));
  return FromCuda(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, s), "copy on device");
}

Status ZeroOnDevice(int device, void* dst, size_t nbytes) {
  cudaStream_t s;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &s));
  return FromCuda(cudaMemsetAsync(dst, 0, nbytes, s), "zero device memory");
}

}  // namespace cuda
}  // namespace sslinv
