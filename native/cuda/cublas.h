// cuBLAS, opened with dlopen at run time: the addon has no link-time dependency on it, so it loads on
// machines without cuBLAS (and without a GPU). Only the few entry points the linear layers and the
// probes use are bound (sgemm, dgemm). The cuBLAS headers are not needed to build: the prototypes below are cuBLAS's
// stable C ABI (v2 API).
//
// Sgemm computes row-major C[m x n] = A[m x k] op B + beta * C with B given as [n x k] (trans_b) or
// [k x n]: the row-major product is mapped onto cuBLAS's column-major one by swapping operands.
// Math mode: kPedantic/kDefault keep strict fp32 (PyTorch's default for matmul); kTf32 allows TF32
// tensor cores (precision 'tf32').
#pragma once
#include "cuda/cuda_compat.h"

#include <cstdint>

#include "core/status.h"

namespace sslinv {
namespace cuda {

enum class GemmMath { kFp32, kTf32 };

// Loads libcublas on first use; kDeviceUnavailable (with the dlopen message) when it is missing.
Status CublasAvailable();

Status CublasSgemmRowMajor(int device, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                           int64_t ldb, bool trans_b, float beta, float* c, int64_t ldc, GemmMath math);
// The same with A given as [k x m] when trans_a (op(A) = A^T), for the gradients of linear layers
// (dW = dy^T x).
Status CublasSgemmRowMajorT(int device, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                            const float* b, int64_t ldb, bool trans_b, float beta, float* c, int64_t ldc, GemmMath math);

// Row-major float64 C[m x n] = op(A) op(B), op(A) [m x k] and op(B) [k x n]; A is stored [m x k]
// (or [k x m] with trans_a), B [k x n] (or [n x k] with trans_b), leading dimensions in elements.
// Used by the probes (logistic regression's two GEMMs per evaluation, Ridge/KernelRidge Gram matrices).
Status CublasDgemmRowMajor(int device, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, bool trans_a,
                           const double* b, int64_t ldb, bool trans_b, double* c, int64_t ldc);

}  // namespace cuda
}  // namespace sslinv
