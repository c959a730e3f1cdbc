// cuBLAS's C entry points that cuda/cublas.cc binds (create, set stream, set math mode, sgemm, dgemm),
// emulated on the host for the emulated-device addon (SSL_INV_CUDA_EMU), where cublas.cc takes them
// instead of dlopen'ing libcublas. So the row-major to column-major mapping of cublas.cc runs as it
// does on a GPU, against a column-major reference GEMM with BLAS semantics:
//   C[m x n] = alpha op(A) op(B) + beta C, all column-major, op(X) = X or X^T (transa/transb 0 or 1).
// Sums are in float64 and rounded once (so the result is at least as accurate as cuBLAS's fp32 or TF32
// math; the math mode is accepted and recorded, not emulated). beta == 0 ignores C's old contents
// (NaN included), as BLAS specifies.
#pragma once
#include <cstdint>

namespace sslinv_emu {

struct CublasHandleEmu {
  int math_mode = 0;
};

template <typename T>
int GemmEmu(int transa, int transb, int m, int n, int k, const T* alpha, const T* a, int lda, const T* b, int ldb,
            const T* beta, T* c, int ldc) {
  if (m < 0 || n < 0 || k < 0 || (transa != 0 && transa != 1) || (transb != 0 && transb != 1)) return 7;  // INVALID_VALUE
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      double s = 0.0;
      for (int p = 0; p < k; ++p) {
        const T av = transa ? a[static_cast<int64_t>(i) * lda + p] : a[static_cast<int64_t>(p) * lda + i];
        const T bv = transb ? b[static_cast<int64_t>(p) * ldb + j] : b[static_cast<int64_t>(j) * ldb + p];
        s += static_cast<double>(av) * static_cast<double>(bv);
      }
      T& out = c[static_cast<int64_t>(j) * ldc + i];
      const double old = *beta == T(0) ? 0.0 : static_cast<double>(*beta) * static_cast<double>(out);
      out = static_cast<T>(static_cast<double>(*alpha) * s + old);
    }
  }
  return 0;
}

}  // namespace sslinv_emu

extern "C" {
inline int sslinv_emu_cublasCreate(struct cublasContext** h) {
  *h = reinterpret_cast<struct cublasContext*>(new sslinv_emu::CublasHandleEmu());
  return 0;
}
inline int sslinv_emu_cublasSetStream(struct cublasContext*, cudaStream_t) { return 0; }
inline int sslinv_emu_cublasSetMathMode(struct cublasContext* h, int mode) {
  reinterpret_cast<sslinv_emu::CublasHandleEmu*>(h)->math_mode = mode;
  return 0;
}
inline int sslinv_emu_cublasSgemm(struct cublasContext*, int transa, int transb, int m, int n, int k, const float* alpha,
                                  const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
  if (sslinv_emu::StickyError() != cudaSuccess) return 13;  // CUBLAS_STATUS_EXECUTION_FAILED on a faulted device
  return sslinv_emu::GemmEmu(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline int sslinv_emu_cublasDgemm(struct cublasContext*, int transa, int transb, int m, int n, int k, const double* alpha,
                                  const double* a, int lda, const double* b, int ldb, const double* beta, double* c,
                                  int ldc) {
  if (sslinv_emu::StickyError() != cudaSuccess) return 13;
  return sslinv_emu::GemmEmu(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
}
