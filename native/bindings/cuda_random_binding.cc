// numpy's legacy random streams generated on a CUDA device (kernels: native/cuda/numpy_random.cuh).
//
//   cudaNumpyUniformNoise(seeds: Uint32Array, skip, count, device) -> float32 [V, count] on device:
//     row v is RandomState(seeds[v]).rand(skip + count)[skip:] mapped to float32(float32(u) * 2 - 1),
//     the elastic deform's noise fields after its six affine draws.
// Without the CUDA backend it is ERR_DEVICE_UNAVAILABLE.
#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/napi_util.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/numpy_random.cuh"
#include "cuda/runtime.h"
#endif

namespace sslinv {
namespace napi {
namespace {

#ifdef SSL_INV_WITH_CUDA

Napi::Value NumpyUniformNoise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "seeds: expected a Uint32Array");
  }
  Napi::Uint32Array seeds = info[0].As<Napi::Uint32Array>();
  const int64_t skip = GetInt(env, info[1], "skip"), count = GetInt(env, info[2], "count");
  if (skip < 0 || count < 1) ThrowCode(env, "ERR_INVALID_ARGUMENT", "numpyUniformNoise: skip >= 0 and count >= 1");
  Device dev;
  dev.type = DeviceType::kCUDA;
  dev.index = GetCudaDeviceArg(env, info[3]);
  const int64_t views = static_cast<int64_t>(seeds.ElementLength());
  if (views < 1 || views > 0x7fffffff) ThrowCode(env, "ERR_INVALID_ARGUMENT", "numpyUniformNoise: 1 to 2^31 - 1 seeds");
  Tensor seeds_d = NewDeviceTensor(env, DType::kI32, {views}, dev);
  Check(env, cuda::CopyToDevice(dev.index, seeds_d.buffer->data(), seeds.Data(), static_cast<size_t>(views) * 4));
  Tensor out = NewDeviceTensor(env, DType::kF32, {views, count}, dev);
  Check(env, cuda::FromCuda(cuda::LaunchNumpyUniformNoise(static_cast<const uint32_t*>(seeds_d.buffer->data()), static_cast<int>(views),
                                                          skip, count, out.data<float>(), StreamOf(env, dev)),
                            "numpyUniformNoise"));
  return TensorWrap::New(env, std::move(out));
}

#else
#define NumpyUniformNoise NoCudaBackend
#endif

}  // namespace

void RegisterCudaRandomBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaNumpyUniformNoise", Napi::Function::New(env, NumpyUniformNoise, "cudaNumpyUniformNoise"));
}

}  // namespace napi
}  // namespace sslinv
