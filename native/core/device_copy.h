// Copies between memory on any two devices (host, or a CUDA device of this process), and parsing of
// device names. In a build without CUDA, anything that involves a CUDA device is kDeviceUnavailable.
#pragma once
#include <cstddef>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace sslinv {

// "cpu", "cuda" (= cuda:0) or "cuda:N". Checks the syntax only, not that the device exists.
Status ParseDevice(const std::string& name, Device* out);
std::string DeviceName(Device d);

// Copies nbytes from src (on src_device) to dst (on dst_device). A copy to the host returns once the
// data is there; a copy to a device is ordered on that device's stream.
Status CopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Sets every byte of t to zero, on whatever device it lives.
Status ZeroTensor(const Tensor& t);

// A new tensor on `device` holding a copy of t.
Status CopyTensorTo(const Tensor& t, Device device, Tensor* out);

}  // namespace sslinv
