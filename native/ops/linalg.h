// Dense float64 linear algebra on row-major matrices, for the statistics of the invariance
// evaluations (covariance, its inverse and Cholesky factor) and the probes (normal equations).
//
// All routines are blocked so their O(n^3) work runs in the GEMM (ops/gemm.h); the small diagonal
// blocks are factored unblocked. Conventions follow LAPACK: Cholesky gives the lower factor L with
// A = L L^T (potrf); LU uses partial pivoting by the largest absolute value in the column, so
// Inverse() computes what numpy's np.linalg.inv (LAPACK gesv against the identity) computes, up to
// rounding. A non-positive pivot (Cholesky) or an exactly zero pivot (LU) returns kSingularMatrix
// naming the index, as LAPACK's info does.
//
// CovarianceAccumulate merges a chunk of rows into running (count, mean, M2) statistics with Chan's
// parallel update: the chunk is centred on its own mean in float64 before its scatter matrix is
// formed, so the result is as accurate as numpy's two-pass np.cov for any number of chunks.
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

// In place: the lower triangle of a (n x n, row stride lda) becomes L; the strict upper triangle is
// zeroed.
Status CholeskyLower(double* a, int64_t n, int64_t lda);

// Solves op(T) X = B in place (B: n x m, row stride ldb) for triangular T (n x n).
// lower: T is lower triangular (else upper); trans: op(T) = T^T; unit: the diagonal is taken as 1.
Status TriangularSolve(const double* t, int64_t n, int64_t ldt, bool lower, bool trans, bool unit, double* b,
                       int64_t m, int64_t ldb);

// out = inverse of a (n x n); a is not modified.
Status InverseLU(const double* a, int64_t n, double* out);

// Running statistics of rows: count rows seen, mean[d], m2[d x d] = sum of centred outer products.
// `x` is n x d, float (is_f32) or double.
Status CovarianceAccumulate(const void* x, bool is_f32, int64_t n, int64_t d, int64_t* count, double* mean,
                            double* m2);

}  // namespace sslinv
