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

// Copies `height` rows of `width` bytes from host memory at src (rows src_pitch bytes apart) into
// dst on dst_device (rows dst_pitch bytes apart): one strided host-to-device copy instead of one
// per row, or of the whole destination (a column block of a row-major matrix, MoCo's enqueue).
// Pitches must be >= width. Ordered on the device's stream like CopyBytes; src may be reused on return.
Status CopyRowsFromHost(void* dst, Device dst_device, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                        size_t height);

// Sets every byte of t to zero, on whatever device it lives.
Status ZeroTensor(const Tensor& t);

// A new tensor on `device` holding a copy of t.
Status CopyTensorTo(const Tensor& t, Device device, Tensor* out);

}  // namespace sslinv
