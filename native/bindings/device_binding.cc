// Devices exposed to JS:
//   cudaInfo() -> { compiled, architectures, runtimeVersion, driverVersion, deviceCount, reason, devices: [{ index, name, computeCapability,
//                   multiprocessors, totalMemory, sharedMemoryPerBlock, usable, reason }] }
//   toDevice(tensor, 'cpu' | 'cuda' | 'cuda:N') -> a copy of the tensor on that device
//   synchronize(device)             waits for the device's stream (reports asynchronous kernel errors)
//   deviceMemoryStats(device)       -> { inUseBytes, cachedBytes, cudaMallocs, reuses }
//   releaseDeviceCache(device)      returns the allocator's cached blocks to the driver
//   convKernelLaunches()            -> { 'fp32 simt-bk8': n, ... }: convolution launches so far in this
//                                   process, by the kernel that ran (cuda/conv_launch_counts.h); {}
//                                   in a build without CUDA
//   convAutotune(on?)               -> whether the convolution's run-time tuning of 'auto' is on
//                                   (cuda/conv_autotune.cuh); with a boolean, sets it first and returns
//                                   the previous setting. false in a build without CUDA (setting it
//                                   there is ERR_DEVICE_UNAVAILABLE)
//   convTuning()                    -> [{ family, device, shape: {n, h, w, c, k, r, s, strideH, strideW,
//                                   padH, padW}, bias, residual, relu, chosen, chosenBlockN?,
//                                   candidates: [{ kernel, blockN?, ms?, excluded? }] }]: the problems
//                                   tuned so far, in key order (blockN: the tile width of kernels
//                                   tuned at several)
//   clearConvTuning()               forgets them (the next call of each problem tunes again)
// In a build without CUDA the info says so and any CUDA device is ERR_DEVICE_UNAVAILABLE.
#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"
#include "core/device_copy.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/conv_autotune.cuh"
#include "cuda/conv_launch_counts.h"
#include "cuda/runtime.h"
#endif

namespace sslinv {
namespace napi {
namespace {

Device GetDeviceArg(Napi::Env env, Napi::Value v) {
  if (!v.IsString()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "device: expected a string such as 'cpu' or 'cuda:0'");
  Device d;
  Check(env, ParseDevice(v.As<Napi::String>().Utf8Value(), &d));
  return d;
}

}  // namespace

int GetCudaDeviceArg(Napi::Env env, Napi::Value v) {
  const Device d = GetDeviceArg(env, v);
  if (d.type != DeviceType::kCUDA) ThrowCode(env, "ERR_INVALID_ARGUMENT", "device: expected a CUDA device");
#ifdef SSL_INV_WITH_CUDA
  Check(env, cuda::CheckDevice(d));
  return d.index;
#else
  ThrowNoCudaBackend(env);
#endif
}

void ThrowNoCudaBackend(Napi::Env env) {
  ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "this build of ssl-invariances has no CUDA backend");
}

Napi::Value NoCudaBackend(const Napi::CallbackInfo& info) { ThrowNoCudaBackend(info.Env()); }

namespace {

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env);
#ifdef SSL_INV_WITH_CUDA
  o.Set("compiled", true);
  o.Set("architectures", cuda::CompiledArchitectures());
  // CUDA's versions as major.minor ("13.0"); the driver's is empty when there is none (it reports 0).
  auto version = [](int v) { return v > 0 ? std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10) : std::string(); };
  int runtime_version = 0, driver_version = 0;
  if (cudaRuntimeGetVersion(&runtime_version) != cudaSuccess) runtime_version = 0;
  if (cudaDriverGetVersion(&driver_version) != cudaSuccess) driver_version = 0;
  o.Set("runtimeVersion", version(runtime_version));
  o.Set("driverVersion", version(driver_version));
  const int n = cuda::DeviceCount();
  o.Set("deviceCount", n);
  std::string reason = cuda::NoDeviceReason();
  bool any_usable = false;
  for (int i = 0; i < n; ++i) {
    cuda::DeviceProps p;
    Check(env, cuda::GetDeviceProps(i, &p));
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", i);
    d.Set("name", p.name);
    d.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    d.Set("multiprocessors", p.multiprocessors);
    d.Set("totalMemory", static_cast<double>(p.total_memory));
    d.Set("sharedMemoryPerBlock", static_cast<double>(p.smem_optin));
    d.Set("usable", p.usable);
    d.Set("reason", p.unusable_reason);
    devices.Set(static_cast<uint32_t>(i), d);
    if (p.usable) any_usable = true;
    else if (reason.empty()) reason = p.unusable_reason;
  }
  // With devices but none usable, the first one's reason says why there is no usable device.
  o.Set("reason", any_usable ? std::string() : reason);
#else
  o.Set("compiled", false);
  o.Set("architectures", "");
  o.Set("runtimeVersion", "");
  o.Set("driverVersion", "");
  o.Set("deviceCount", 0);
  o.Set("reason", "this build has no CUDA backend (nvcc was not found when it was built)");
#endif
  o.Set("devices", devices);
  return o;
}

Napi::Value ToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& t = GetTensor(env, info[0], "tensor");
  const Device d = GetDeviceArg(env, info[1]);
  if (d.type == DeviceType::kCUDA) GetCudaDeviceArg(env, info[1]);
  Tensor out;
  Check(env, CopyTensorTo(t, d, &out));
  return TensorWrap::New(env, std::move(out));
}

Napi::Value SynchronizeDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int index = GetCudaDeviceArg(env, info[0]);
#ifdef SSL_INV_WITH_CUDA
  Check(env, cuda::Synchronize(index, "synchronize"));
#else
  (void)index;
#endif
  return env.Undefined();
}

Napi::Value DeviceMemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int index = GetCudaDeviceArg(env, info[0]);
  Napi::Object o = Napi::Object::New(env);
#ifdef SSL_INV_WITH_CUDA
  const cuda::AllocatorStats s = cuda::GetAllocatorStats(index);
  o.Set("inUseBytes", static_cast<double>(s.in_use_bytes));
  o.Set("cachedBytes", static_cast<double>(s.cached_bytes));
  o.Set("cudaMallocs", static_cast<double>(s.cuda_mallocs));
  o.Set("reuses", static_cast<double>(s.reuses));
#else
  (void)index;
#endif
  return o;
}

Napi::Value ReleaseDeviceCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int index = GetCudaDeviceArg(env, info[0]);
#ifdef SSL_INV_WITH_CUDA
  Check(env, cuda::ReleaseCachedDeviceMemory(index));
#else
  (void)index;
#endif
  return env.Undefined();
}

Napi::Value ConvKernelLaunches(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
#ifdef SSL_INV_WITH_CUDA
  for (int k = 0; k < static_cast<int>(cuda::ConvKernel::kCount); ++k) {
    const auto kernel = static_cast<cuda::ConvKernel>(k);
    o.Set(cuda::ConvKernelName(kernel), static_cast<double>(cuda::ConvLaunchCount(kernel)));
  }
#endif
  return o;
}

Napi::Value ConvAutotune(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool set = info.Length() > 0 && !info[0].IsUndefined();
  if (set && !info[0].IsBoolean()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "convAutotune: expected a boolean");
#ifdef SSL_INV_WITH_CUDA
  if (set) return Napi::Boolean::New(env, cuda::SetConvAutotuneEnabled(info[0].As<Napi::Boolean>().Value()));
  return Napi::Boolean::New(env, cuda::ConvAutotuneEnabled());
#else
  if (set) ThrowNoCudaBackend(env);
  return Napi::Boolean::New(env, false);
#endif
}

Napi::Value ConvTuning(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
#ifdef SSL_INV_WITH_CUDA
  uint32_t i = 0;
  for (const cuda::ConvTuneRecord& r : cuda::ConvTuneRecords()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", cuda::ConvFamilyName(r.key.family));
    o.Set("device", "cuda:" + std::to_string(r.key.device));
    const cuda::Conv2dShape& s = r.key.shape;
    Napi::Object shape = Napi::Object::New(env);
    const std::pair<const char*, int> dims[] = {{"n", s.n}, {"h", s.h}, {"w", s.w}, {"c", s.c}, {"k", s.k}, {"r", s.r},
                                                {"s", s.s}, {"strideH", s.stride_h}, {"strideW", s.stride_w}, {"padH", s.pad_h}, {"padW", s.pad_w}};
    for (const auto& [name, v] : dims) shape.Set(name, v);
    o.Set("shape", shape);
    o.Set("bias", r.key.bias);
    o.Set("residual", r.key.residual);
    o.Set("relu", r.key.relu);
    const cuda::ConvCandidateTiming& chosen = r.candidates[r.chosen];
    o.Set("chosen", cuda::ConvKernelName(chosen.kernel));
    if (chosen.block_n != 0) o.Set("chosenBlockN", chosen.block_n);
    Napi::Array cands = Napi::Array::New(env);
    uint32_t j = 0;
    for (const cuda::ConvCandidateTiming& c : r.candidates) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("kernel", cuda::ConvKernelName(c.kernel));
      if (c.block_n != 0) t.Set("blockN", c.block_n);
      if (c.excluded.empty()) t.Set("ms", static_cast<double>(c.ms));
      else t.Set("excluded", c.excluded);
      cands.Set(j++, t);
    }
    o.Set("candidates", cands);
    out.Set(i++, o);
  }
#endif
  return out;
}

Napi::Value ClearConvTuning(const Napi::CallbackInfo& info) {
#ifdef SSL_INV_WITH_CUDA
  cuda::ClearConvTuning();
#endif
  return info.Env().Undefined();
}

}  // namespace

void RegisterDeviceBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("toDevice", Napi::Function::New(env, ToDevice, "toDevice"));
  exports.Set("synchronize", Napi::Function::New(env, SynchronizeDevice, "synchronize"));
  exports.Set("deviceMemoryStats", Napi::Function::New(env, DeviceMemoryStats, "deviceMemoryStats"));
  exports.Set("releaseDeviceCache", Napi::Function::New(env, ReleaseDeviceCache, "releaseDeviceCache"));
  exports.Set("convKernelLaunches", Napi::Function::New(env, ConvKernelLaunches, "convKernelLaunches"));
  exports.Set("convAutotune", Napi::Function::New(env, ConvAutotune, "convAutotune"));
  exports.Set("convTuning", Napi::Function::New(env, ConvTuning, "convTuning"));
  exports.Set("clearConvTuning", Napi::Function::New(env, ClearConvTuning, "clearConvTuning"));
}

}  // namespace napi
}  // namespace sslinv
