// Blocked float64 linear algebra (see ops/linalg.h). The trailing updates are GEMMs; the diagonal
// blocks and row updates are plain loops over contiguous rows, split across the thread pool.
#include "ops/linalg.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "ops/gemm.h"

namespace sslinv {

namespace {

constexpr int64_t kBlock = 128;

// C[M,N] -= op(A)[M,K] op(B)[K,N], through a temporary product.
Status GemmSubtract(int64_t M, int64_t N, int64_t K, const double* a, int64_t lda, bool ta, const double* b,
                    int64_t ldb, bool tb, double* c, int64_t ldc) {
  if (M == 0 || N == 0 || K == 0) return Status::Ok();
  std::vector<double> tmp;
  try {
    tmp.resize(static_cast<size_t>(M * N));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("linear algebra: could not allocate a work buffer");
  }
  SSLINV_RETURN_IF_ERROR(Dgemm(M, N, K, a, lda, ta, b, ldb, tb, tmp.data(), N, GemmEpilogueT<double>()));
  ThreadPool::Get().ParallelFor(M, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      double* cr = c + r * ldc;
      const double* tr = tmp.data() + r * N;
      for (int64_t j = 0; j < N; ++j) cr[j] -= tr[j];
    }
  });
  return Status::Ok();
}

Status Singular(const char* what, int64_t index) {
  return Status(Code::kSingularMatrix, std::string(what) + " (pivot " + std::to_string(index) + ")");
}

}  // namespace

Status CholeskyLower(double* a, int64_t n, int64_t lda) {
  if (n < 0 || lda < n) return InvalidArgument("cholesky: bad sizes");
  for (int64_t j = 0; j < n; j += kBlock) {
    const int64_t jb = std::min(kBlock, n - j);
    double* ajj = a + j * lda + j;
    // Diagonal block: A_jj -= L_j,0:j L_j,0:j^T, then factor it unblocked.
    SSLINV_RETURN_IF_ERROR(GemmSubtract(jb, jb, j, a + j * lda, lda, false, a + j * lda, lda, true, ajj, lda));
    for (int64_t k = 0; k < jb; ++k) {
      double* rk = ajj + k * lda;
      double s = rk[k];
      for (int64_t p = 0; p < k; ++p) s -= rk[p] * rk[p];
      if (!(s > 0)) return Singular("cholesky: the matrix is not positive definite", j + k);
      const double d = std::sqrt(s);
      rk[k] = d;
      for (int64_t i = k + 1; i < jb; ++i) {
        double* ri = ajj + i * lda;
        double v = ri[k];
        for (int64_t p = 0; p < k; ++p) v -= ri[p] * rk[p];
        ri[k] = v / d;
      }
    }
    const int64_t below = n - j - jb;
    if (below > 0) {
      double* a21 = a + (j + jb) * lda + j;
      SSLINV_RETURN_IF_ERROR(GemmSubtract(below, jb, j, a + (j + jb) * lda, lda, false, a + j * lda, lda, true, a21, lda));
      // A21 <- A21 L_jj^{-T}: each row is a forward substitution against L_jj.
      ThreadPool::Get().ParallelFor(below, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          double* x = a21 + r * lda;
          for (int64_t k = 0; k < jb; ++k) {
            const double* lk = ajj + k * lda;
            double v = x[k];
            for (int64_t p = 0; p < k; ++p) v -= x[p] * lk[p];
            x[k] = v / lk[k];
          }
        }
      });
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) a[i * lda + j] = 0.0;
  }
  return Status::Ok();
}

Status TriangularSolve(const double* t, int64_t n, int64_t ldt, bool lower, bool trans, bool unit, double* b,
                       int64_t m, int64_t ldb) {
  if (n < 0 || m < 0 || ldt < n || ldb < m) return InvalidArgument("triangular solve: bad sizes");
  // op(T) is lower triangular when (lower && !trans) or (!lower && trans): solve forwards; else backwards.
  const bool forward = lower != trans;
  // Element (r, p) of op(T).
  auto op = [&](int64_t r, int64_t p) { return trans ? t[p * ldt + r] : t[r * ldt + p]; };
  // Unblocked solve of rows [i0, i1) of B with the diagonal block, parallel over B's columns.
  auto small = [&](int64_t i0, int64_t i1) -> Status {
    for (int64_t q = 0; q < i1 - i0; ++q) {
      const int64_t r = forward ? i0 + q : i1 - 1 - q;
      const double d = unit ? 1.0 : op(r, r);
      if (d == 0.0) return Singular("triangular solve: zero on the diagonal", r);
      double* br = b + r * ldb;
      const int64_t p0 = forward ? i0 : r + 1, p1 = forward ? r : i1;
      ThreadPool::Get().ParallelFor(m, 1024, [&](int64_t c0, int64_t c1) {
        for (int64_t p = p0; p < p1; ++p) {
          const double tp = op(r, p);
          if (tp == 0.0) continue;
          const double* bp = b + p * ldb;
          for (int64_t c = c0; c < c1; ++c) br[c] -= tp * bp[c];
        }
        if (!unit) {
          for (int64_t c = c0; c < c1; ++c) br[c] /= d;
        }
      });
    }
    return Status::Ok();
  };
  if (forward) {
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
      const int64_t i1 = std::min(n, i0 + kBlock);
      // B_i -= op(T)[i, 0:i0] X[0:i0]
      if (i0 > 0) {
        const double* tb = trans ? t + i0 : t + i0 * ldt;  // op(T) block rows i0..i1, cols 0..i0
        SSLINV_RETURN_IF_ERROR(GemmSubtract(i1 - i0, m, i0, tb, ldt, trans, b, ldb, false, b + i0 * ldb, ldb));
      }
      SSLINV_RETURN_IF_ERROR(small(i0, i1));
    }
  } else {
    for (int64_t i1 = n; i1 > 0; i1 -= kBlock) {
      const int64_t i0 = std::max<int64_t>(0, i1 - kBlock);
      if (i1 < n) {
        // B_i -= op(T)[i, i1:n] X[i1:n]
        const double* tb = trans ? t + i1 * ldt + i0 : t + i0 * ldt + i1;
        SSLINV_RETURN_IF_ERROR(GemmSubtract(i1 - i0, m, n - i1, tb, ldt, trans, b + i1 * ldb, ldb, false, b + i0 * ldb, ldb));
      }
      SSLINV_RETURN_IF_ERROR(small(i0, i1));
    }
  }
  return Status::Ok();
}

Status InverseLU(const double* a_in, int64_t n, double* out) {
  if (n < 0) return InvalidArgument("inverse: bad size");
  std::vector<double> a;
  std::vector<int64_t> perm;
  try {
    a.assign(a_in, a_in + n * n);
    perm.resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("inverse: could not allocate the LU factors");
  }
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  double* A = a.data();
  // Blocked right-looking LU with partial pivoting; whole rows are swapped as pivots are chosen.
  for (int64_t j = 0; j < n; j += kBlock) {
    const int64_t jb = std::min(kBlock, n - j);
    for (int64_t k = j; k < j + jb; ++k) {
      int64_t p = k;
      double best = std::fabs(A[k * n + k]);
      for (int64_t i = k + 1; i < n; ++i) {
        const double v = std::fabs(A[i * n + k]);
        if (v > best) {
          best = v;
          p = i;
        }
      }
      if (best == 0.0 || std::isnan(best)) return Singular("inverse: the matrix is singular", k);
      if (p != k) {
        std::swap_ranges(A + k * n, A + (k + 1) * n, A + p * n);
        std::swap(perm[k], perm[p]);
      }
      const double pivot = A[k * n + k];
      const double* rk = A + k * n;
      ThreadPool::Get().ParallelFor(n - k - 1, 64, [&](int64_t b0, int64_t b1) {
        for (int64_t i = k + 1 + b0; i < k + 1 + b1; ++i) {
          double* ri = A + i * n;
          const double l = ri[k] / pivot;
          ri[k] = l;
          for (int64_t c = k + 1; c < j + jb; ++c) ri[c] -= l * rk[c];
        }
      });
    }
    const int64_t rest = n - j - jb;
    if (rest > 0) {
      // U12 = L11^{-1} A12, then A22 -= L21 U12.
      SSLINV_RETURN_IF_ERROR(TriangularSolve(A + j * n + j, jb, n, true, false, true, A + j * n + j + jb, rest, n));
      SSLINV_RETURN_IF_ERROR(GemmSubtract(rest, rest, jb, A + (j + jb) * n + j, n, false, A + j * n + j + jb, n, false,
                                          A + (j + jb) * n + j + jb, n));
    }
  }
  // P A = L U, so A^{-1} = U^{-1} L^{-1} P: solve against the permuted identity.
  for (int64_t i = 0; i < n; ++i) {
    double* row = out + i * n;
    std::fill(row, row + n, 0.0);
    row[perm[i]] = 1.0;
  }
  SSLINV_RETURN_IF_ERROR(TriangularSolve(A, n, n, true, false, true, out, n, n));
  return TriangularSolve(A, n, n, false, false, false, out, n, n);
}

Status CovarianceAccumulate(const void* x, bool is_f32, int64_t n, int64_t d, int64_t* count, double* mean,
                            double* m2) {
  if (n < 0 || d <= 0 || *count < 0) return InvalidArgument("covariance: bad sizes");
  if (n == 0) return Status::Ok();
  std::vector<double> xc, mb, m2b;
  try {
    xc.resize(static_cast<size_t>(n * d));
    mb.assign(static_cast<size_t>(d), 0.0);
    m2b.resize(static_cast<size_t>(d * d));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("covariance: could not allocate the chunk buffers");
  }
  const float* xf = static_cast<const float*>(x);
  const double* xd = static_cast<const double*>(x);
  // Chunk mean, then the chunk centred on it, in float64.
  ThreadPool::Get().ParallelFor(d, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = c0; c < c1; ++c) mb[c] += is_f32 ? xf[r * d + c] : xd[r * d + c];
    }
    for (int64_t c = c0; c < c1; ++c) mb[c] /= static_cast<double>(n);
  });
  ThreadPool::Get().ParallelFor(n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = 0; c < d; ++c) xc[r * d + c] = (is_f32 ? xf[r * d + c] : xd[r * d + c]) - mb[c];
    }
  });
  SSLINV_RETURN_IF_ERROR(Dgemm(d, d, n, xc.data(), d, true, xc.data(), d, false, m2b.data(), d, GemmEpilogueT<double>()));
  // Chan et al.'s merge of (count, mean, M2) with the chunk's.
  const double na = static_cast<double>(*count), nbd = static_cast<double>(n), nt = na + nbd;
  std::vector<double> delta(static_cast<size_t>(d));
  for (int64_t c = 0; c < d; ++c) delta[c] = mb[c] - mean[c];
  const double w = na * nbd / nt;
  ThreadPool::Get().ParallelFor(d, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = 0; c < d; ++c) m2[r * d + c] += m2b[r * d + c] + delta[r] * delta[c] * w;
    }
  });
  for (int64_t c = 0; c < d; ++c) mean[c] += delta[c] * (nbd / nt);
  *count += n;
  return Status::Ok();
}

}  // namespace sslinv
