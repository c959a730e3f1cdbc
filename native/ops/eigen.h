// The probes' native kernels (native/cpu/eigen.cc): a symmetric eigensolver for Ridge, the multinomial
// logistic loss of scikit-learn's LinearModelLoss for a batch of problems, and the RBF kernel of
// KernelRidge. All float64, row-major, multi-threaded on the thread pool; results do not depend on
// the thread count (every sum runs in a fixed order on one thread).
#pragma once
#include <cstdint>

#include "core/status.h"

namespace sslinv {

// Eigen-decomposition of a symmetric matrix: A = V diag(w) V^T. `a` is n x n (row stride lda, only
// its lower triangle is read; it is left untouched). Outputs: w[n] ascending, v n x n row-major with
// the eigenvectors as columns (numpy.linalg.eigh's convention). Householder tridiagonalisation, then
// the implicit QL algorithm with Wilkinson shifts; the Householder products and the QL rotations are
// applied to V in parallel over its rows. Fails (kInvalidArgument) on a non-finite input, and
// (kInternal) if an eigenvalue takes more than 60 QL iterations.
Status SymmetricEigen(const double* a, int64_t n, int64_t lda, double* w, double* v);

// (A + shift_s I)^{-1} B for every shift, from one eigendecomposition of the symmetric A (n x n, lower
// triangle read) kept in factored form: A = Q Z diag(lambda) Z^T Q^T with Q the Householder reflections
// of the tridiagonalisation and Z the product of the QL rotations, so X = Q Z diag(1 / (lambda + shift))
// Z^T Q^T B is formed by applying reflections and rotations to B's columns, never forming V (the O(n^3)
// eigenvector accumulation is skipped). B is n x m; X is n x (S * m), column s * m + t for shift s and
// column t of B. A direction with lambda + shift <= 0 contributes nothing. w (optional, n): the
// eigenvalues, ascending. This is Ridge's solve for every alpha (ridge.ts).
Status SymmetricShiftedSolve(const double* a, int64_t n, int64_t lda, const double* b, int64_t m, const double* shifts,
                             int64_t S, double* x, double* w);

// The loss and gradient of scikit-learn's HalfMultinomialLoss for P problems at once (the pointwise
// part of LinearModelLoss.loss_gradient, sample weights 1):
//   raw[i, p*K + k] = z[i, p*K + k] + bias[p*K + k]
//   loss_i = log(sum_k exp(raw_ik - max_k raw_ik)) + max_k raw_ik - raw_{i, y_pi}
//   g[i, p*K + k] = softmax(raw_i)_k - [y_pi == k]
// computed as scikit-learn's Cython does (max, exp(raw - max), the sum in class order, p / sum).
// y is P x n: the class index of row i in problem p, or -1 when row i is not in problem p's training
// set (its gradient row is zero). Outputs: loss[p] = the sum of loss_i over problem p's rows in row
// order, summed pairwise as numpy's ndarray.sum() does; g (n x P*K); gb[p*K + k] = the column sums of
// g over problem p's rows, in row order (numpy's sum(axis=0)). Labels outside [-1, K) are rejected.
Status MultinomialLossGrad(const double* z, const double* bias, const int32_t* y, int64_t n, int64_t P, int64_t K,
                           double* loss, double* g, double* gb);

// The RBF kernel from a Gram matrix, as scikit-learn's euclidean_distances + rbf_kernel compute it:
//   d = max(0, (-2 * xy[i, j] + xx[i]) + yy[j]);  d[i, i] = 0 when `same` (X is Y);  K = exp(-gamma * d)
// In place on xy (n x m).
Status RbfFromGram(double* xy, int64_t n, int64_t m, const double* xx, const double* yy, double gamma, bool same);

// out = a + alpha I for a square n x n matrix (KernelRidge's K + alpha I, without a round trip to JS).
Status AddDiagonal(const double* a, int64_t n, double alpha, double* out);

}  // namespace sslinv
