// The CUDA runtime layer: devices, one stream per device, a caching device allocator and copies.
//
// The CUDA runtime is linked statically, so the addon loads on machines with no driver or no GPU;
// there DeviceCount() is 0 and NoDeviceReason() says why (the runtime's own message, e.g. "CUDA driver
// version is insufficient for CUDA runtime version"), and every CUDA request fails with
// kDeviceUnavailable. A device whose compute capability this build has no code for (below 8.0 with
// the default architectures) is listed but not usable: requests for it fail with kDeviceUnavailable
// saying so, instead of each kernel launch failing with "no kernel image". Nothing here aborts or exits.
//
// Allocator: device memory is never cudaMalloc'ed per op. Requests are rounded up (512 B for small
// ones, 2 MiB above 1 MiB) and freed blocks are kept in per-device free lists keyed by size, reused by
// the next request of the same rounded size. Every kernel runs on the device's one stream, so a
// block freed on the host may be handed out again at once: the stream orders its old uses before the
// new ones. When cudaMalloc fails, the cache is released and the allocation retried once; a second
// failure is kOutOfMemory naming what was being allocated, its size and the device's usage. The
// process stays usable.
#pragma once
#include "cuda/cuda_compat.h"

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace sslinv {
namespace cuda {

struct DeviceProps {
  std::string name;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0;
  // Largest dynamic shared memory one block may opt in to (cudaDevAttrMaxSharedMemoryPerBlockOptin):
  // 227 KiB on 9.0, 163 KiB on 8.0, 99 KiB on 8.6/8.9. Kernels that size their tiles by it read it here.
  size_t smem_optin = 0;
  // Whether this build's kernels run on the device (see DeviceUsable), and if not, why.
  bool usable = false;
  std::string unusable_reason;
};

// Number of CUDA devices this process sees (0 when there is no driver or device). Indices are CUDA's,
// so a device this build cannot run on still counts (DeviceProps::usable says which).
int DeviceCount();
// Why DeviceCount() is 0 (empty when devices exist).
std::string NoDeviceReason();
// Properties of device `index` (any existing device, usable or not).
Status GetDeviceProps(int index, DeviceProps* out);
// kDeviceUnavailable unless `d` names an existing CUDA device that this build's kernels run on.
Status CheckDevice(Device d);

// The CUDA architectures the kernels were compiled for (CMAKE_CUDA_ARCHITECTURES, e.g.
// "80-real;90-real;90-virtual"), and whether code built for them runs on compute capability
// major.minor: SASS for X.y runs on X.z with z >= y (not for the arch-specific "a"/"f" targets, which
// run on X.y alone), PTX for X.y is compiled by the driver for any X'.y' >= X.y. *decided is false for
// lists this rule cannot read ("native", "all"); then only a kernel launch tells (GetStream checks).
const char* CompiledArchitectures();
bool ArchitecturesRunOn(const std::string& archs, int major, int minor, bool* decided);

// The device's stream (created on first use). All kernels and copies of this addon run on it.
Status GetStream(int device, cudaStream_t* out);
// Waits for the device's stream; reports asynchronous kernel errors as kInternal naming `what`.
Status Synchronize(int device, const char* what);

// Converts a CUDA error into a Status naming `what` (ok for cudaSuccess).
Status FromCuda(cudaError_t err, const char* what);

// Caching allocator (see the header comment). `what` names the allocation in out-of-memory errors.
Status DeviceAlloc(int device, size_t nbytes, const char* what, void** out);
void DeviceFree(int device, void* ptr, size_t nbytes);

struct AllocatorStats {
  int64_t in_use_bytes = 0;
  int64_t cached_bytes = 0;
  int64_t cuda_mallocs = 0;  // calls that reached cudaMalloc
  int64_t reuses = 0;        // requests served from the cache
};
AllocatorStats GetAllocatorStats(int device);
// Returns cached blocks to the driver (after the device's stream has drained).
Status ReleaseCachedDeviceMemory(int device);

// Copies between host memory and a device. Host-to-device returns when the source may be reused;
// device-to-host returns when the data is on the host (it waits for the stream).
Status CopyToDevice(int device, void* dst, const void* src, size_t nbytes);
Status CopyToHost(int device, void* dst, const void* src, size_t nbytes);
Status CopyOnDevice(int device, void* dst, const void* src, size_t nbytes);
// `height` rows of `width` bytes from the host (src_pitch apart) to the device (dst_pitch apart), in
// one cudaMemcpy2DAsync; returns when the source may be reused, like CopyToDevice.
Status CopyRowsToDevice(int device, void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                        size_t height);
// Sets nbytes at dst to zero (ordered on the device's stream).
Status ZeroOnDevice(int device, void* dst, size_t nbytes);

}  // namespace cuda
}  // namespace sslinv
