// Tensor storage for the native core.
//
// A Tensor is a dtype, a shape and a reference-counted Buffer. Tensors are always dense and in C
// (row-major) order; views that share a Buffer differ only in shape (reshape). Activations of the
// ResNet path are kept NHWC on the CPU (see native/cpu/conv2d.cc); the TypeScript layer converts at
// the edges. Buffers are 64-byte aligned so AVX-512 loads of whole rows are aligned when rows are.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sslinv {

// kBF16: bfloat16 (the top 16 bits of a float32), 2 bytes, device activations of a bf16 network;
// host code sees its raw bits (a Uint16Array in JavaScript) and converts with ops.
enum class DType : int32_t { kF32 = 0, kF64 = 1, kI32 = 2, kI64 = 3, kU8 = 4, kBF16 = 5 };

size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);
bool ParseDType(const std::string& name, DType* out);

enum class DeviceType : int32_t { kCPU = 0, kCUDA = 1 };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
};

// One allocation. Freed when the last Tensor referring to it goes away.
class Buffer {
 public:
  static Status Allocate(size_t nbytes, Device device, std::shared_ptr<Buffer>* out);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // Process-wide counters, for leak tests and `ssl-inv info`.
  static int64_t LiveBuffers();
  static int64_t LiveBytes();

 private:
  Buffer(void* data, size_t nbytes, Device device) : data_(data), nbytes_(nbytes), device_(device) {}
  void* data_;
  size_t nbytes_;
  Device device_;
};

struct Tensor {
  std::shared_ptr<Buffer> buffer;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  Device device() const { return buffer ? buffer->device() : Device{}; }
  template <typename T>
  T* data() const { return static_cast<T*>(buffer->data()); }
  std::string ShapeString() const;
};

// Allocates an uninitialised tensor; checks the element count for overflow.
Status NewTensor(DType dtype, const std::vector<int64_t>& shape, Device device, Tensor* out);

// Helpers for argument checks in op entry points; `what` names the argument in the message.
Status ExpectDType(const Tensor& t, DType dtype, const char* what);
Status ExpectRank(const Tensor& t, int rank, const char* what);
Status ExpectShape(const Tensor& t, const std::vector<int64_t>& shape, const char* what);
Status ExpectCPU(const Tensor& t, const char* what);

}  // namespace sslinv
