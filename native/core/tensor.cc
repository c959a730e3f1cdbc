// Buffer allocation and tensor helpers (see tensor.h).
#include "core/tensor.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/runtime.h"
#endif

#include "core/host_allocator.h"

#include <cstdlib>
#include <limits>
#include <sstream>

namespace sslinv {

namespace {
std::atomic<int64_t> g_live_buffers{0};
std::atomic<int64_t> g_live_bytes{0};
}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
    case DType::kBF16: return 2;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "float32";
    case DType::kF64: return "float64";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kU8: return "uint8";
    case DType::kBF16: return "bfloat16";
  }
  return "unknown";
}

bool ParseDType(const std::string& name, DType* out) {
  static const struct { const char* name; DType dtype; } kTable[] = {
      {"float32", DType::kF32}, {"float64", DType::kF64}, {"int32", DType::kI32},
      {"int64", DType::kI64},   {"uint8", DType::kU8},    {"bfloat16", DType::kBF16},
  };
  for (const auto& e : kTable) {
    if (name == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

Status Buffer::Allocate(size_t nbytes, Device device, std::shared_ptr<Buffer>* out) {
  if (device.type != DeviceType::kCPU) {
#ifdef SSL_INV_WITH_CUDA
    void* d = nullptr;
    SSLINV_RETURN_IF_ERROR(cuda::DeviceAlloc(device.index, nbytes, "a tensor", &d));
    out->reset(new Buffer(d, nbytes, device));
    g_live_buffers.fetch_add(1);
    g_live_bytes.fetch_add(static_cast<int64_t>(nbytes));
    return Status::Ok();
#else
    return Status(Code::kDeviceUnavailable, "this build of ssl-invariances has no CUDA backend (nvcc was not found when it was built)");
#endif
  }
  void* p = HostAlloc(nbytes);
  if (p == nullptr) {
    std::ostringstream m;
    m << "could not allocate " << nbytes << " bytes of host memory";
    return OutOfMemory(m.str());
  }
  out->reset(new Buffer(p, nbytes, device));
  g_live_buffers.fetch_add(1);
  g_live_bytes.fetch_add(static_cast<int64_t>(nbytes));
  return Status::Ok();
}

Buffer::~Buffer() {
#ifdef SSL_INV_WITH_CUDA
  if (device_.type == DeviceType::kCUDA) {
    cuda::DeviceFree(device_.index, data_, nbytes_);
  } else {
    HostFree(data_, nbytes_);
  }
#else
  HostFree(data_, nbytes_);
#endif
  g_live_buffers.fetch_sub(1);
  g_live_bytes.fetch_sub(static_cast<int64_t>(nbytes_));
}

int64_t Buffer::LiveBuffers() { return g_live_buffers.load(); }
int64_t Buffer::LiveBytes() { return g_live_bytes.load(); }

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Tensor::ShapeString() const {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

Status NewTensor(DType dtype, const std::vector<int64_t>& shape, Device device, Tensor* out) {
  // Bound the element count so numel * itemsize cannot overflow size_t (2^62 bytes is far beyond
  // any machine; the allocator then reports the real limit).
  const int64_t kMaxBytes = int64_t{1} << 62;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("tensor dimensions must be >= 0");
    if (d != 0 && n > kMaxBytes / static_cast<int64_t>(DTypeSize(dtype)) / d) {
      return InvalidArgument("tensor is too large: element count overflows");
    }
    n *= d;
  }
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  SSLINV_RETURN_IF_ERROR(Buffer::Allocate(static_cast<size_t>(n) * DTypeSize(dtype), device, &t.buffer));
  *out = std::move(t);
  return Status::Ok();
}

Status ExpectDType(const Tensor& t, DType dtype, const char* what) {
  if (t.dtype == dtype) return Status::Ok();
  std::ostringstream m;
  m << what << ": expected dtype " << DTypeName(dtype) << " but got " << DTypeName(t.dtype);
  return DTypeMismatch(m.str());
}

Status ExpectRank(const Tensor& t, int rank, const char* what) {
  if (t.ndim() == rank) return Status::Ok();
  std::ostringstream m;
  m << what << ": expected " << rank << " dimensions but got shape " << t.ShapeString();
  return ShapeMismatch(m.str());
}

Status ExpectShape(const Tensor& t, const std::vector<int64_t>& shape, const char* what) {
  if (t.shape == shape) return Status::Ok();
  Tensor expected;
  expected.shape = shape;
  std::ostringstream m;
  m << what << ": expected shape " << expected.ShapeString() << " but got " << t.ShapeString();
  return ShapeMismatch(m.str());
}

Status ExpectCPU(const Tensor& t, const char* what) {
  if (t.device().type == DeviceType::kCPU) return Status::Ok();
  std::ostringstream m;
  m << what << ": this operation runs on the CPU but the tensor is on a CUDA device";
  return InvalidArgument(m.str());
}

}  // namespace sslinv
