// GEMM: the CPU workhorse behind convolution, linear layers and the float64 linear algebra.
//
//   C[M,N] (+)= op(A)[M,K] * op(B)[K,N]   then the epilogue: + bias[n] + residual[m,n], ReLU
//
// All matrices are row-major, float32 (SGEMM) or float64 (DGEMM). op(A) = A ([M,K], row stride lda)
// or A^T (A stored [K,M]); likewise B. The driver is BLIS-style and shared by both element types:
// B is packed into kc x nr micro-panels, A into mr x kc micro-panels, and an ISA-specific mr x nr
// register-blocked micro-kernel runs on them (float: AVX-512 14x32, AVX2 6x16, portable 6x16;
// double: AVX-512 14x16, AVX2 6x8, portable 6x8); the epilogue is applied to each C tile while it is
// in cache. B can be packed once and reused (inference weights), and A can come from any packer (the
// convolution gathers its im2col rows straight from the NHWC input, never writing an im2col buffer).
// Threads split the M dimension (or N for short, wide products); every element of C is computed by
// one thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

template <typename T>
struct GemmEpilogueT {
  const T* bias = nullptr;      // [N] added to every row, or null
  const T* residual = nullptr;  // [M, N] with row stride ld_residual, or null
  int64_t ld_residual = 0;
  bool relu = false;
  bool accumulate = false;      // C += op(A) op(B) instead of C = op(A) op(B)
};
using GemmEpilogue = GemmEpilogueT<float>;

// Register/cache blocking of the micro-kernel chosen for this CPU and element type.
struct GemmBlocking {
  int mr, nr, kc, mc;
};
template <typename T>
const GemmBlocking& CurrentGemmBlockingT();
inline const GemmBlocking& CurrentGemmBlocking() { return CurrentGemmBlockingT<float>(); }

// B packed for the current kernel: for each K block of kc rows, for each panel of nr columns,
// kc_b x nr values (zero-padded past N). `col_scale`, if set, multiplies column n while packing
// (used to fold batch norm into convolution weights).
template <typename T>
int64_t PackedBSize(int64_t K, int64_t N);
template <typename T>
void PackBT(const T* B, int64_t ldb, bool transB, int64_t K, int64_t N, const T* col_scale, T* packed);
inline int64_t PackedBFloats(int64_t K, int64_t N) { return PackedBSize<float>(K, N); }
inline void PackB(const float* B, int64_t ldb, bool transB, int64_t K, int64_t N, const float* col_scale,
                  float* packed) {
  PackBT<float>(B, ldb, transB, K, N, col_scale, packed);
}

// Packs rows [m0, m0 + rows) x columns [k0, k0 + kc) of op(A) into an mr-interleaved micro-panel:
// dst[k * mr + i]. rows <= mr; rows past `rows` must be zero-filled by the packer.
template <typename T>
class APackerT {
 public:
  virtual ~APackerT() = default;
  virtual void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, T* dst) const = 0;
};
using APacker = APackerT<float>;

// A packer for a plain row-major (or transposed) matrix.
template <typename T>
class MatrixAPackerT : public APackerT<T> {
 public:
  MatrixAPackerT(const T* a, int64_t lda, bool trans) : a_(a), lda_(lda), trans_(trans) {}
  void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, T* dst) const override;

 private:
  const T* a_;
  int64_t lda_;
  bool trans_;
};
using MatrixAPacker = MatrixAPackerT<float>;

// C = op(A) op(B) with B already packed by PackBT.
template <typename T>
Status GemmPackedBT(int64_t M, int64_t N, int64_t K, const APackerT<T>& a, const T* packed_b, T* c, int64_t ldc,
                    const GemmEpilogueT<T>& ep);
inline Status GemmPackedB(int64_t M, int64_t N, int64_t K, const APacker& a, const float* packed_b, float* c,
                          int64_t ldc, const GemmEpilogue& ep) {
  return GemmPackedBT<float>(M, N, K, a, packed_b, c, ldc, ep);
}

// The same over the GEMM-K slice [k_begin, k_end) of a B packed for all K rows (the other rows are
// known to meet only zeros of op(A)). k_begin must be a multiple of the kernel's kc, and k_end a
// multiple of kc or K, so the slice is made of whole packed blocks; otherwise InvalidArgument.
Status GemmPackedBSlice(int64_t M, int64_t N, int64_t K, int64_t k_begin, int64_t k_end, const APacker& a,
                        const float* packed_b, float* c, int64_t ldc, const GemmEpilogue& ep);

// General entry points: they pack B themselves, a bounded slab of K at a time.
template <typename T>
Status GemmT(int64_t M, int64_t N, int64_t K, const T* a, int64_t lda, bool trans_a, const T* b, int64_t ldb,
             bool trans_b, T* c, int64_t ldc, const GemmEpilogueT<T>& ep);
inline Status Sgemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, bool trans_a, const float* b,
                    int64_t ldb, bool trans_b, float* c, int64_t ldc, const GemmEpilogue& ep) {
  return GemmT<float>(M, N, K, a, lda, trans_a, b, ldb, trans_b, c, ldc, ep);
}
inline Status Dgemm(int64_t M, int64_t N, int64_t K, const double* a, int64_t lda, bool trans_a, const double* b,
                    int64_t ldb, bool trans_b, double* c, int64_t ldc, const GemmEpilogueT<double>& ep) {
  return GemmT<double>(M, N, K, a, lda, trans_a, b, ldb, trans_b, c, ldc, ep);
}

}  // namespace sslinv
