// SGEMM: the CPU workhorse behind convolution and linear layers.
//
//   C[M,N] (+)= op(A)[M,K] * op(B)[K,N]   then the epilogue: + bias[n] + residual[m,n], ReLU
//
// All matrices are row-major float32. op(A) = A ([M,K], row stride lda) or A^T (A stored [K,M]);
// likewise B. The driver is BLIS-style: B is packed into kc x nr micro-panels, A into mr x kc
// micro-panels, and an ISA-specific mr x nr register-blocked micro-kernel (AVX-512 14x32, AVX2 6x16,
// portable 6x16) runs on them; the epilogue is applied to each C tile while it is in cache.
// B can be packed once and reused (inference weights), and A can come from any packer (the
// convolution gathers its im2col rows straight from the NHWC input, never writing an im2col buffer).
// Threads split the M dimension; results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

struct GemmEpilogue {
  const float* bias = nullptr;      // [N] added to every row, or null
  const float* residual = nullptr;  // [M, N] with row stride ld_residual, or null
  int64_t ld_residual = 0;
  bool relu = false;
  bool accumulate = false;          // C += op(A) op(B) instead of C = op(A) op(B)
};

// Register/cache blocking of the micro-kernel chosen for this CPU.
struct GemmBlocking {
  int mr, nr, kc, mc;
};
const GemmBlocking& CurrentGemmBlocking();

// B packed for the current kernel: for each K block of kc rows, for each panel of nr columns,
// kc_b x nr floats (zero-padded past N). `col_scale`, if set, multiplies column n while packing
// (used to fold batch norm into convolution weights).
int64_t PackedBFloats(int64_t K, int64_t N);
void PackB(const float* B, int64_t ldb, bool transB, int64_t K, int64_t N, const float* col_scale,
           float* packed);

// Packs rows [m0, m0 + rows) x columns [k0, k0 + kc) of op(A) into an mr-interleaved micro-panel:
// dst[k * mr + i]. rows <= mr; rows past `rows` must be zero-filled by the packer.
class APacker {
 public:
  virtual ~APacker() = default;
  virtual void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const = 0;
};

// A packer for a plain row-major (or transposed) matrix.
class MatrixAPacker : public APacker {
 public:
  MatrixAPacker(const float* a, int64_t lda, bool trans) : a_(a), lda_(lda), trans_(trans) {}
  void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const override;

 private:
  const float* a_;
  int64_t lda_;
  bool trans_;
};

// C = op(A) op(B) with B already packed by PackB.
Status GemmPackedB(int64_t M, int64_t N, int64_t K, const APacker& a, const float* packed_b, float* c,
                   int64_t ldc, const GemmEpilogue& ep);

// The same over the GEMM-K slice [k_begin, k_end) of a B packed for all K rows (the other rows are
// known to meet only zeros of op(A)). k_begin must be a multiple of the kernel's kc, and k_end a
// multiple of kc or K, so the slice is made of whole packed blocks; otherwise InvalidArgument.
Status GemmPackedBSlice(int64_t M, int64_t N, int64_t K, int64_t k_begin, int64_t k_end, const APacker& a,
                        const float* packed_b, float* c, int64_t ldc, const GemmEpilogue& ep);

// General entry point: packs B itself.
Status Sgemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, bool trans_a, const float* b,
             int64_t ldb, bool trans_b, float* c, int64_t ldc, const GemmEpilogue& ep);

}  // namespace sslinv
