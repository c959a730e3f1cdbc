// The CUDA branch of the op bindings. Each op binding in ops_binding.cc / linalg_binding.cc checks
// its first tensor argument: a tensor on a CUDA device sends the whole call here, where every tensor
// argument must be on that same device and results are allocated there. Arguments are validated as
// strictly as on the CPU path before any kernel is launched.
//
// Kernels are queued on the device's stream and the call returns; errors of the launch itself are
// thrown at once, errors inside a kernel surface at the next synchronisation (a copy to the host, or
// synchronize()). SSL_INV_CUDA_SYNC=1 in the environment synchronises after every op, so an error is
// reported by the op that caused it (for debugging; slower).
#pragma once
#include <napi.h>

#include <vector>

#include "core/tensor.h"
#ifdef SSL_INV_WITH_CUDA
#include "cuda/cuda_compat.h"
#endif

namespace sslinv {
namespace napi {

// True for a live tensor argument that lives on a CUDA device (always false without CUDA).
bool IsCudaTensorArg(Napi::Value v);

// A device-name argument ('cuda', 'cuda:N') naming a CUDA device that exists: its index (throws
// ERR_INVALID_ARGUMENT for other names, ERR_DEVICE_UNAVAILABLE for a missing device or build).
// Defined in device_binding.cc.
int GetCudaDeviceArg(Napi::Env env, Napi::Value v);

// For builds without the CUDA backend: ERR_DEVICE_UNAVAILABLE saying so (one message for every CUDA
// entry point), and a binding that only throws it. Defined in device_binding.cc.
[[noreturn]] void ThrowNoCudaBackend(Napi::Env env);
Napi::Value NoCudaBackend(const Napi::CallbackInfo& info);

Napi::Value CudaConvPackWeights(const Napi::CallbackInfo& info);
Napi::Value CudaConv2d(const Napi::CallbackInfo& info);
// The bf16-in-memory convolution (conv2d_pipelined.cuh): an op on fp32 tensors and a kernel timer for
// bench/device. CUDA only (ERR_DEVICE_UNAVAILABLE otherwise).
Napi::Value CudaConv2dBf16Storage(const Napi::CallbackInfo& info);
// float32 <-> bfloat16 on a device (ops_binding.cc runs them on the CPU).
Napi::Value CudaToBfloat16(const Napi::CallbackInfo& info);
Napi::Value CudaBfloat16ToFloat32(const Napi::CallbackInfo& info);
Napi::Value CudaBenchConv2dBf16Nhwc(const Napi::CallbackInfo& info);
Napi::Value CudaMaxPool2d(const Napi::CallbackInfo& info);
Napi::Value CudaGlobalAvgPool(const Napi::CallbackInfo& info);
Napi::Value CudaRelu(const Napi::CallbackInfo& info);
Napi::Value CudaAdd(const Napi::CallbackInfo& info);
Napi::Value CudaBatchNormInference(const Napi::CallbackInfo& info);
Napi::Value CudaBatchNormFold(const Napi::CallbackInfo& info);
Napi::Value CudaLinear(const Napi::CallbackInfo& info);
Napi::Value CudaGemm(const Napi::CallbackInfo& info);
Napi::Value CudaLayout(const Napi::CallbackInfo& info, bool to_nhwc);
Napi::Value CudaCovarianceAccumulate(const Napi::CallbackInfo& info);
Napi::Value CudaMocoLoss(const Napi::CallbackInfo& info);
Napi::Value CudaDgemm(const Napi::CallbackInfo& info);
Napi::Value CudaMultinomialLossGrad(const Napi::CallbackInfo& info);
// gatherRows on x's CUDA device, after ops_binding.cc has checked the (host) index: y of `shape`,
// y[r] = x[index[r]], rows of row_bytes bytes.
// normalizeImagesU8 on x's CUDA device, after ops_binding.cc has checked x and the normalisation:
// float32 [N, C, H, W] (the uint8 -> normalised NHWC kernel, then the NHWC -> NCHW transpose).
Napi::Value CudaNormalizeImagesU8(Napi::Env env, const Tensor& x, const std::vector<float>& mean,
                                  const std::vector<float>& std_);
Napi::Value CudaGatherRows(Napi::Env env, const Tensor& x, const std::vector<int32_t>& index,
                           const std::vector<int64_t>& shape, int64_t row_bytes);

#ifdef SSL_INV_WITH_CUDA
// Helpers shared by the CUDA bindings (cuda_ops_binding.cc, cuda_views_binding.cc).
// A new, uninitialised tensor on `device` (allocation failures throw ERR_OUT_OF_MEMORY).
Tensor NewDeviceTensor(Napi::Env env, DType dtype, const std::vector<int64_t>& shape, Device device);
// The device's stream (throws ERR_DEVICE_UNAVAILABLE for a device that does not exist).
cudaStream_t StreamOf(Napi::Env env, Device device);
#endif

}  // namespace napi
}  // namespace sslinv
