// Device-to-device, host-to-device and device-to-host copies (see device_copy.h).
#include "core/device_copy.h"

#include <cstdlib>
#include <cstring>

#ifdef SSL_INV_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace sslinv {

Status ParseDevice(const std::string& name, Device* out) {
  if (name == "cpu") {
    *out = Device{};
    return Status::Ok();
  }
  if (name == "cuda") {
    *out = Device{DeviceType::kCUDA, 0};
    return Status::Ok();
  }
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8) {
    int index = 0;
    for (size_t i = 5; i < name.size(); ++i) {
      if (name[i] < '0' || name[i] > '9') return InvalidArgument("device: expected cpu, cuda or cuda:N, got '" + name + "'");
      index = index * 10 + (name[i] - '0');
    }
    *out = Device{DeviceType::kCUDA, index};
    return Status::Ok();
  }
  return InvalidArgument("device: expected cpu, cuda or cuda:N, got '" + name + "'");
}

std::string DeviceName(Device d) { return d.type == DeviceType::kCPU ? "cpu" : "cuda:" + std::to_string(d.index); }

Status CopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return Status::Ok();
  const bool dst_cpu = dst_device.type == DeviceType::kCPU, src_cpu = src_device.type == DeviceType::kCPU;
  if (dst_cpu && src_cpu) {
    std::memcpy(dst, src, nbytes);
    return Status::Ok();
  }
#ifdef SSL_INV_WITH_CUDA
  if (dst_cpu) return cuda::CopyToHost(src_device.index, dst, src, nbytes);
  if (src_cpu) return cuda::CopyToDevice(dst_device.index, dst, src, nbytes);
  if (dst_device.index == src_device.index) return cuda::CopyOnDevice(dst_device.index, dst, src, nbytes);
  // Between two GPUs: through the host, simple and rare (the evaluation runs on one device).
  void* staging = std::malloc(nbytes);
  if (!staging) return OutOfMemory("could not allocate host staging memory for a copy between GPUs");
  Status st = cuda::CopyToHost(src_device.index, staging, src, nbytes);
  if (st.ok()) st = cuda::CopyToDevice(dst_device.index, dst, staging, nbytes);
  if (st.ok()) st = cuda::Synchronize(dst_device.index, "copy between GPUs");
  std::free(staging);
  return st;
#else
  return Status(Code::kDeviceUnavailable, "this build of ssl-invariances has no CUDA backend");
#endif
}

Status CopyRowsFromHost(void* dst, Device dst_device, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                        size_t height) {
  if (dst_pitch < width || src_pitch < width) return InvalidArgument("a row copy's pitch is smaller than its row");
  if (width == 0 || height == 0) return Status::Ok();
  if (dst_device.type == DeviceType::kCPU) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    for (size_t r = 0; r < height; ++r) std::memcpy(d + r * dst_pitch, s + r * src_pitch, width);
    return Status::Ok();
  }
#ifdef SSL_INV_WITH_CUDA
  return cuda::CopyRowsToDevice(dst_device.index, dst, dst_pitch, src, src_pitch, width, height);
#else
  return Status(Code::kDeviceUnavailable, "this build of ssl-invariances has no CUDA backend");
#endif
}

Status ZeroTensor(const Tensor& t) {
  if (t.nbytes() == 0) return Status::Ok();
  if (t.device().type == DeviceType::kCPU) {
    std::memset(t.buffer->data(), 0, t.nbytes());
    return Status::Ok();
  }
#ifdef SSL_INV_WITH_CUDA
  return cuda::ZeroOnDevice(t.device().index, t.buffer->data(), t.nbytes());
#else
  return Status(Code::kDeviceUnavailable, "this build of ssl-invariances has no CUDA backend");
#endif
}

Status CopyTensorTo(const Tensor& t, Device device, Tensor* out) {
  Tensor y;
  SSLINV_RETURN_IF_ERROR(NewTensor(t.dtype, t.shape, device, &y));
  SSLINV_RETURN_IF_ERROR(CopyBytes(y.buffer->data(), device, t.buffer->data(), t.device(), t.nbytes()));
  *out = std::move(y);
  return Status::Ok();
}

}  // namespace sslinv
