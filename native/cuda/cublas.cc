// cuBLAS through dlopen (see cublas.h).
#include "cuda/cublas.h"

#include <dlfcn.h>

#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/runtime.h"

#if defined(SSL_INV_CUDA_EMU)
#include "cuda/emu/cublas_emu.h"
#endif

namespace sslinv {
namespace cuda {
namespace {

// cuBLAS's C ABI (cublas_api.h): opaque handle, int status and enums.
typedef struct cublasContext* cublasHandle_t;
typedef int cublasStatus_t;
constexpr int kCublasOpN = 0, kCublasOpT = 1;
constexpr int kCublasDefaultMath = 0, kCublasTf32TensorOpMath = 3;

struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*set_math_mode)(cublasHandle_t, int) = nullptr;
  cublasStatus_t (*sgemm)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int, const float*, int,
                          const float*, float*, int) = nullptr;
  cublasStatus_t (*dgemm)(cublasHandle_t, int, int, int, int, int, const double*, const double*, int, const double*,
                          int, const double*, double*, int) = nullptr;
  std::string error;
  std::vector<cublasHandle_t> handles;  // per device, created on first use
  std::mutex mu;
};

CublasApi& Api() {
  static CublasApi* api = [] {
    auto* a = new CublasApi();
#if defined(SSL_INV_CUDA_EMU)
    // The emulated-device addon: cuBLAS's entry points emulated on the host (emu/cublas_emu.h).
    a->create = &sslinv_emu_cublasCreate;
    a->set_stream = &sslinv_emu_cublasSetStream;
    a->set_math_mode = &sslinv_emu_cublasSetMathMode;
    a->sgemm = &sslinv_emu_cublasSgemm;
    a->dgemm = &sslinv_emu_cublasDgemm;
#else
    const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    void* lib = nullptr;
    std::string tried;
    for (const char* n : names) {
      lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      const char* e = dlerror();
      tried += std::string(tried.empty() ? "" : "; ") + (e ? e : n);
    }
    if (!lib) {
      a->error = "cuBLAS could not be loaded (" + tried + ")";
      return a;
    }
    a->create = reinterpret_cast<decltype(a->create)>(dlsym(lib, "cublasCreate_v2"));
    a->set_stream = reinterpret_cast<decltype(a->set_stream)>(dlsym(lib, "cublasSetStream_v2"));
    a->set_math_mode = reinterpret_cast<decltype(a->set_math_mode)>(dlsym(lib, "cublasSetMathMode"));
    a->sgemm = reinterpret_cast<decltype(a->sgemm)>(dlsym(lib, "cublasSgemm_v2"));
    a->dgemm = reinterpret_cast<decltype(a->dgemm)>(dlsym(lib, "cublasDgemm_v2"));
    if (!a->create || !a->set_stream || !a->set_math_mode || !a->sgemm || !a->dgemm) {
      a->error = "the loaded cuBLAS lacks one of cublasCreate_v2/cublasSetStream_v2/cublasSetMathMode/cublasSgemm_v2/cublasDgemm_v2";
    }
#endif
    return a;
  }();
  return *api;
}

Status FromCublas(cublasStatus_t st, const char* what) {
  if (st == 0) return Status::Ok();
  std::ostringstream m;
  m << what << ": cuBLAS status " << st;
  if (st == 3) return OutOfMemory(m.str() + " (CUBLAS_STATUS_ALLOC_FAILED)");
  return Status(Code::kInternal, m.str());
}

Status Handle(int device, cublasHandle_t* out) {
  SSLINV_RETURN_IF_ERROR(CublasAvailable());
  CublasApi& a = Api();
  cudaStream_t stream;
  SSLINV_RETURN_IF_ERROR(GetStream(device, &stream));  // also selects the device
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.handles.size() <= static_cast<size_t>(device)) a.handles.resize(static_cast<size_t>(device) + 1, nullptr);
  cublasHandle_t& h = a.handles[static_cast<size_t>(device)];
  if (!h) {
    SSLINV_RETURN_IF_ERROR(FromCublas(a.create(&h), "cublasCreate"));
    SSLINV_RETURN_IF_ERROR(FromCublas(a.set_stream(h, stream), "cublasSetStream"));
  }
  *out = h;
  return Status::Ok();
}

bool FitsInt(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

}  // namespace

Status CublasAvailable() {
  CublasApi& a = Api();
  if (!a.error.empty()) return Status(Code::kDeviceUnavailable, a.error);
  return Status::Ok();
}

Status CublasSgemmRowMajor(int device, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                           int64_t ldb, bool trans_b, float beta, float* c, int64_t ldc, GemmMath math) {
  return CublasSgemmRowMajorT(device, m, n, k, a, lda, false, b, ldb, trans_b, beta, c, ldc, math);
}

Status CublasSgemmRowMajorT(int device, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                            const float* b, int64_t ldb, bool trans_b, float beta, float* c, int64_t ldc, GemmMath math) {
  if (!FitsInt(m) || !FitsInt(n) || !FitsInt(k) || !FitsInt(lda) || !FitsInt(ldb) || !FitsInt(ldc)) {
    return InvalidArgument("cuBLAS sgemm: a dimension exceeds 2^31 - 1");
  }
  cublasHandle_t h = nullptr;
  SSLINV_RETURN_IF_ERROR(Handle(device, &h));
  CublasApi& api = Api();
  SSLINV_RETURN_IF_ERROR(FromCublas(
      api.set_math_mode(h, math == GemmMath::kTf32 ? kCublasTf32TensorOpMath : kCublasDefaultMath), "cublasSetMathMode"));
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: a row-major matrix read as
  // column-major is its transpose, so each operand keeps its own flag, B passed first, A second.
  const float alpha = 1.0f;
  return FromCublas(api.sgemm(h, trans_b ? kCublasOpT : kCublasOpN, trans_a ? kCublasOpT : kCublasOpN, static_cast<int>(n),
                              static_cast<int>(m), static_cast<int>(k), &alpha, b, static_cast<int>(ldb), a,
                              static_cast<int>(lda), &beta, c, static_cast<int>(ldc)),
                    "cublasSgemm");
}

Status CublasDgemmRowMajor(int device, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, bool trans_a,
                           const double* b, int64_t ldb, bool trans_b, double* c, int64_t ldc) {
  if (!FitsInt(m) || !FitsInt(n) || !FitsInt(k) || !FitsInt(lda) || !FitsInt(ldb) || !FitsInt(ldc)) {
    return InvalidArgument("cuBLAS dgemm: a dimension exceeds 2^31 - 1");
  }
  cublasHandle_t h = nullptr;
  SSLINV_RETURN_IF_ERROR(Handle(device, &h));
  CublasApi& api = Api();
  // float64 has no reduced-precision tensor-core mode to opt out of; the default math mode is exact
  // IEEE fp64 (DMMA on sm_80+ rounds like FMA chains).
  SSLINV_RETURN_IF_ERROR(FromCublas(api.set_math_mode(h, kCublasDefaultMath), "cublasSetMathMode"));
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. A row-major [r, c] matrix read as
  // column-major is its transpose, so each operand keeps its own transpose flag: B first, then A.
  const double alpha = 1.0, beta = 0.0;
  return FromCublas(api.dgemm(h, trans_b ? kCublasOpT : kCublasOpN, trans_a ? kCublasOpT : kCublasOpN,
                              static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b,
                              static_cast<int>(ldb), a, static_cast<int>(lda), &beta, c, static_cast<int>(ldc)),
                    "cublasDgemm");
}

}  // namespace cuda
}  // namespace sslinv
