// The probes' CPU kernels: symmetric eigensolver, batched multinomial logistic loss, RBF kernel.
// See native/ops/eigen.h for the contracts.
#include "ops/eigen.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"

namespace sslinv {

namespace {

// ---------------------------------------------------------------------------------------------
// Symmetric eigensolver
// ---------------------------------------------------------------------------------------------

// Dot product with four partial sums (the order is ours; nothing here must match numpy).
inline double Dot4(const double* a, const double* b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < n; ++k) s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

// Householder reduction of a symmetric matrix to tridiagonal form T = Q^T A Q, working from the last
// row up on the lower triangle of `a` (n x n, row-major; the strict upper triangle is not used). Row i
// keeps its (scaled) Householder vector u in a[i][0..i-1] and h[i] = |u|^2 / 2 (0: no reflection); d
// gets T's diagonal, e[i] its subdiagonal T[i][i-1] (e[0] = 0). Each reflection P_i = I - u u^T / h[i]
// acts on coordinates < i.
//
// One pass over the remaining lower triangle per step: the rank-2 update of step i and the symmetric
// matrix-vector product of step i - 1 (whose vector is row i - 1, updated first) share it, each
// element being used by the product for both its row and its column (per-thread partial products,
// added afterwards). Rows are split between threads by element count.
void Tridiagonalize(double* a, int64_t n, double* d, double* e, double* h) {
  ThreadPool& pool = ThreadPool::Get();
  const int nt = std::max(1, pool.num_threads());
  std::vector<double> p(n), q(n);
  std::vector<std::vector<double>> part(nt, std::vector<double>(n));
  // Scales row i, forms its Householder vector in place and sets e[i], h[i]; false if no reflection.
  auto prepare = [&](int64_t i) -> bool {
    const int64_t l = i - 1;
    double* ai = a + i * n;
    h[i] = 0;
    if (l == 0) {
      e[i] = ai[0];
      return false;
    }
    double scale = 0;
    for (int64_t k = 0; k <= l; ++k) scale += std::fabs(ai[k]);
    if (scale == 0) {
      e[i] = ai[l];
      return false;
    }
    double hh = 0;
    for (int64_t k = 0; k <= l; ++k) {
      ai[k] /= scale;
      hh += ai[k] * ai[k];
    }
    const double f = ai[l];
    const double g = f >= 0 ? -std::sqrt(hh) : std::sqrt(hh);
    e[i] = scale * g;
    hh -= f * g;
    ai[l] = f - g;
    h[i] = hh;
    return true;
  };
  // One pass over rows [0, rows) of the lower triangle: optionally the rank-2 update with (u, q) over
  // columns < cols, then optionally the product with v over columns < rows (the next block).
  auto pass = [&](int64_t rows, const double* u, const double* qv, const double* v) {
    const int64_t work = rows * (rows + 1) / 2;
    const int threads = static_cast<int>(std::min<int64_t>(nt, std::max<int64_t>(1, work / 8192)));
    for (int t = 0; t < threads; ++t) std::fill(part[t].begin(), part[t].begin() + rows, 0.0);
    pool.Run(threads, [&](int tid, int nth) {
      // rows [r0, r1) hold about tid/nth .. (tid+1)/nth of the triangle's elements
      const auto split = [&](int k) {
        return static_cast<int64_t>(std::llround(rows * std::sqrt(static_cast<double>(k) / nth)));
      };
      const int64_t r0 = split(tid), r1 = tid + 1 == nth ? rows : split(tid + 1);
      double* pt = part[tid].data();
      for (int64_t j = r0; j < r1; ++j) {
        double* aj = a + j * n;
        if (u) {
          const double uj = u[j], qj = qv[j];
          for (int64_t k = 0; k <= j; ++k) aj[k] -= uj * qv[k] + qj * u[k];
        }
        if (v) {
          const double vj = v[j];
          double s = 0;
          for (int64_t k = 0; k < j; ++k) {
            s += aj[k] * v[k];
            pt[k] += aj[k] * vj;
          }
          pt[j] += s + aj[j] * vj;
        }
      }
    });
    if (v) {
      for (int64_t k = 0; k < rows; ++k) {
        double s = 0;
        for (int t = 0; t < threads; ++t) s += part[t][k];
        p[k] = s;
      }
    }
  };
  if (n >= 2 && prepare(n - 1)) {
    pass(n - 1, nullptr, nullptr, a + (n - 1) * n);
    for (int64_t k = 0; k < n - 1; ++k) p[k] /= h[n - 1];
  }
  for (int64_t i = n - 1; i >= 1; --i) {
    const int64_t l = i - 1, len = i;
    const double* ai = a + i * n;
    if (h[i] != 0) {
      const double hh = h[i];
      double up = 0;
      for (int64_t j = 0; j < len; ++j) up += p[j] * ai[j];
      const double kk = up / (hh + hh);
      for (int64_t j = 0; j < len; ++j) q[j] = p[j] - kk * ai[j];
      // row l first: it becomes the next reflection's vector
      double* al = a + l * n;
      const double ul = ai[l], ql = q[l];
      for (int64_t k = 0; k <= l; ++k) al[k] -= ul * q[k] + ql * ai[k];
    }
    const bool next = l >= 1 && prepare(l);
    if (h[i] == 0 && !next) continue;
    pass(l, h[i] != 0 ? ai : nullptr, q.data(), next ? a + l * n : nullptr);
    if (next) {
      for (int64_t k = 0; k < l; ++k) p[k] /= h[l];
    }
  }
  e[0] = 0;
  h[0] = 0;
  for (int64_t i = 0; i < n; ++i) d[i] = a[i * n + i];
}

// QT = Q^T = P_1 P_2 ... P_{n-1}, built by right-multiplying the identity by P_1, then P_2, ...
// Row-major n x n: row j of QT is the j-th column of Q, so the QL rotations, which combine columns
// of Q, combine contiguous rows of QT.
void AccumulateQT(const double* a, const double* h, int64_t n, double* qt) {
  std::fill(qt, qt + n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) qt[i * n + i] = 1;
  ThreadPool& pool = ThreadPool::Get();
  for (int64_t i = 1; i < n; ++i) {
    if (h[i] == 0) continue;
    const double* u = a + i * n;  // u[0..i-1]
    const double hi = h[i];
    // QT[r][0..i-1] -= (QT[r][0..i-1] . u) u / h for the rows r < i (the others are zero there)
    pool.ParallelFor(i, std::max<int64_t>(4, 16384 / i), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        double* row = qt + r * n;
        const double w = Dot4(row, u, i) / hi;
        for (int64_t k = 0; k < i; ++k) row[k] -= w * u[k];
      }
    });
  }
}

// The rotations of a batch of QL sweeps, applied to QT together: sweep s rotates rows (i, i+1) for
// i = top_s, top_s - 1, ..., top_s - count_s + 1 with (c, s) pairs stored in order. Applying a batch
// one column slice at a time keeps the slice of every touched row in cache across the sweeps, so QT
// is streamed from memory once per batch instead of once per sweep.
struct SweepBatch {
  std::vector<int64_t> top, count, offset;
  std::vector<double> c, s;
  void clear() {
    top.clear();
    count.clear();
    offset.clear();
    c.clear();
    s.clear();
  }
};

// One column slice [c0, c1) of every rotation in the batch. The same loop compiled for AVX2+FMA (the
// rounding of the eigenvectors may differ between ISAs; nothing downstream depends on their last bit).
#define SSLINV_SWEEP_SLICE_BODY                                       \
  for (size_t w = 0; w < b.top.size(); ++w) {                        \
    const double* cc = b.c.data() + b.offset[w];                     \
    const double* ss = b.s.data() + b.offset[w];                     \
    for (int64_t t = 0; t < b.count[w]; ++t) {                       \
      const int64_t i = b.top[w] - t;                                \
      double* __restrict lo = qt + i * n;                            \
      double* __restrict hi = lo + n;                                \
      const double c = cc[t], s = ss[t];                             \
      for (int64_t k = c0; k < c1; ++k) {                            \
        const double f = hi[k];                                      \
        hi[k] = s * lo[k] + c * f;                                   \
        lo[k] = c * lo[k] - s * f;                                   \
      }                                                              \
    }                                                                \
  }

void SweepSlice(const SweepBatch& b, double* qt, int64_t n, int64_t c0, int64_t c1) { SSLINV_SWEEP_SLICE_BODY }
__attribute__((target("avx2,fma"))) void SweepSliceAvx2(const SweepBatch& b, double* qt, int64_t n, int64_t c0,
                                                        int64_t c1) {
  SSLINV_SWEEP_SLICE_BODY
}
#undef SSLINV_SWEEP_SLICE_BODY

void ApplySweeps(const SweepBatch& b, double* qt, int64_t n) {
  if (b.c.empty()) return;
  constexpr int64_t kSlice = 32;
  const bool avx2 = DetectCpuIsa() != CpuIsa::kGeneric;
  ThreadPool::Get().ParallelFor((n + kSlice - 1) / kSlice, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t sl = s0; sl < s1; ++sl) {
      const int64_t c0 = sl * kSlice, c1 = std::min(n, c0 + kSlice);
      if (avx2) SweepSliceAvx2(b, qt, n, c0, c1);
      else SweepSlice(b, qt, n, c0, c1);
    }
  });
}

// Implicit QL with Wilkinson shifts on the tridiagonal (d, e): d becomes the eigenvalues (unsorted).
// The eigenvector matrix of T is Z = G_1 G_2 ... G_r, the rotations in the order they are made; each
// sweep's rotations are handed to `sweep(batch)` (batched: flushed when the batch is large, and once
// at the end), G rotating coordinates (i, i+1) by (c, s) as tql2 rotates the columns of Z.
template <typename Consumer>
Status TridiagonalQL(double* d, double* e, int64_t n, Consumer&& consume) {
  for (int64_t i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0;
  SweepBatch batch;
  const size_t flushAt = static_cast<size_t>(std::max<int64_t>(64, 64 * n));
  for (int64_t l = 0; l < n; ++l) {
    int iter = 0;
    int64_t m;
    do {
      for (m = l; m < n - 1; ++m) {
        const double dd = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(e[m]) + dd == dd) break;
      }
      if (m != l) {
        if (iter++ == 60) return Status(Code::kInternal, "symmetricEigen: the QL iteration did not converge");
        double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
        double r = std::hypot(g, 1.0);
        g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
        double s = 1, c = 1, p = 0;
        bool underflow = false;
        batch.top.push_back(m - 1);
        batch.offset.push_back(static_cast<int64_t>(batch.c.size()));
        int64_t count = 0;
        for (int64_t i = m - 1; i >= l; --i) {
          const double f = s * e[i];
          const double b = c * e[i];
          e[i + 1] = (r = std::hypot(f, g));
          if (r == 0) {
            d[i + 1] -= p;
            e[m] = 0;
            underflow = true;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * s + 2.0 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
          batch.c.push_back(c);
          batch.s.push_back(s);
          ++count;
        }
        batch.count.push_back(count);
        if (batch.c.size() >= flushAt) {
          consume(batch);
          batch.clear();
        }
        if (underflow) continue;
        d[l] -= p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m != l);
  }
  consume(batch);
  return Status::Ok();
}

// W (n x m, row-major) := G^T W for each rotation of the batch in order: rows (i, i+1) combined as
// tql2 combines the columns (i, i+1) of Z (Z^T w is w rotated by G_1^T, then G_2^T, ...).
void RotateRowsForward(const SweepBatch& b, double* w, int64_t m) {
  ThreadPool::Get().ParallelFor(m, std::max<int64_t>(8, 64), [&](int64_t c0, int64_t c1) {
    for (size_t q = 0; q < b.top.size(); ++q) {
      for (int64_t t = 0; t < b.count[q]; ++t) {
        const int64_t i = b.top[q] - t;
        const double c = b.c[b.offset[q] + t], s = b.s[b.offset[q] + t];
        double* lo = w + i * m;
        double* hi = lo + m;
        for (int64_t k = c0; k < c1; ++k) {
          const double f = hi[k];
          hi[k] = s * lo[k] + c * f;
          lo[k] = c * lo[k] - s * f;
        }
      }
    }
  });
}

// X (n x m) := Z X = G_1 (G_2 (... (G_r X))): the rotations of every batch, last first.
void RotateRowsBackward(const std::vector<SweepBatch>& batches, double* x, int64_t m) {
  ThreadPool::Get().ParallelFor(m, std::max<int64_t>(8, 64), [&](int64_t c0, int64_t c1) {
    for (size_t bi = batches.size(); bi-- > 0;) {
      const SweepBatch& b = batches[bi];
      for (size_t q = b.top.size(); q-- > 0;) {
        for (int64_t t = b.count[q]; t-- > 0;) {
          const int64_t i = b.top[q] - t;
          const double c = b.c[b.offset[q] + t], s = b.s[b.offset[q] + t];
          double* lo = x + i * m;
          double* hi = lo + m;
          for (int64_t k = c0; k < c1; ++k) {
            const double xl = lo[k], xh = hi[k];
            lo[k] = c * xl + s * xh;
            hi[k] = c * xh - s * xl;
          }
        }
      }
    }
  });
}

// B (n x m) := P_i B for the reflections of Tridiagonalize, i from `from` towards `to` (both
// directions: Q^T = P_1 ... P_{n-1} is applied from P_{n-1} down, Q = P_{n-1} ... P_1 from P_1 up).
void ApplyReflections(const double* a, const double* h, int64_t n, double* b, int64_t m, bool transpose) {
  ThreadPool::Get().ParallelFor(m, 16, [&](int64_t c0, int64_t c1) {
    std::vector<double> t(c1 - c0);
    for (int64_t step = 1; step < n; ++step) {
      const int64_t i = transpose ? n - step : step;
      if (h[i] == 0) continue;
      const double* u = a + i * n;
      std::fill(t.begin(), t.end(), 0.0);
      for (int64_t k = 0; k < i; ++k) {
        const double uk = u[k];
        const double* bk = b + k * m;
        for (int64_t c = c0; c < c1; ++c) t[c - c0] += uk * bk[c];
      }
      for (int64_t k = 0; k < i; ++k) {
        const double sk = u[k] / h[i];
        double* bk = b + k * m;
        for (int64_t c = c0; c < c1; ++c) bk[c] -= sk * t[c - c0];
      }
    }
  });
}

// numpy's pairwise summation of a contiguous float64 run (PW_BLOCKSIZE 128, 8 accumulators).
double PairwiseSum(const double* a, int64_t n) {
  if (n < 8) {
    double res = 0.;
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return PairwiseSum(a, n2) + PairwiseSum(a + n2, n - n2);
}

// ndarray.sum() of a contiguous 1-D float64 array: the reduction runs over buffers of 8192 elements,
// each summed pairwise and added to the running result.
double NumpySum(const double* a, int64_t n) {
  double res = 0.;
  for (int64_t s = 0; s < n; s += 8192) res = res + PairwiseSum(a + s, std::min<int64_t>(8192, n - s));
  return res;
}

}  // namespace

namespace {

// A working copy of the lower triangle (the strict upper triangle is left zero).
Status LowerCopy(const double* a, int64_t n, int64_t lda, const char* what, std::vector<double>* out) {
  out->assign(static_cast<size_t>(n) * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      const double x = a[i * lda + j];
      if (!std::isfinite(x)) {
        return InvalidArgument(std::string(what) + ": the matrix has a non-finite element at (" + std::to_string(i) + ", " +
                               std::to_string(j) + ")");
      }
      (*out)[i * n + j] = x;
    }
  }
  return Status::Ok();
}

}  // namespace

Status SymmetricEigen(const double* a, int64_t n, int64_t lda, double* w, double* v) {
  if (n < 0 || lda < n) return InvalidArgument("symmetricEigen: bad matrix size");
  if (n == 0) return Status::Ok();
  std::vector<double> work;
  SSLINV_RETURN_IF_ERROR(LowerCopy(a, n, lda, "symmetricEigen", &work));
  std::vector<double> d(n), e(n), h(n);
  Tridiagonalize(work.data(), n, d.data(), e.data(), h.data());
  std::vector<double> q(static_cast<size_t>(n) * n);
  AccumulateQT(work.data(), h.data(), n, q.data());
  SSLINV_RETURN_IF_ERROR(TridiagonalQL(d.data(), e.data(), n, [&](const SweepBatch& b) { ApplySweeps(b, q.data(), n); }));
  // ascending eigenvalues, columns permuted to match (stable for ties)
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return d[x] < d[y]; });
  for (int64_t j = 0; j < n; ++j) w[j] = d[order[j]];
  // V[r][j] = QT[order[j]][r], transposed in tiles
  ThreadPool::Get().ParallelFor(n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
      const int64_t j1 = std::min(n, j0 + 64);
      for (int64_t r = r0; r < r1; ++r) {
        double* vr = v + r * n;
        for (int64_t j = j0; j < j1; ++j) vr[j] = q[order[j] * n + r];
      }
    }
  });
  return Status::Ok();
}

Status SymmetricShiftedSolve(const double* a, int64_t n, int64_t lda, const double* b, int64_t m, const double* shifts,
                             int64_t S, double* x, double* w) {
  if (n < 0 || lda < n || m < 0 || S < 0) return InvalidArgument("symmetricShiftedSolve: bad sizes");
  if (n == 0) return Status::Ok();
  for (int64_t i = 0; i < n * m; ++i) {
    if (!std::isfinite(b[i])) return InvalidArgument("symmetricShiftedSolve: the right-hand side has a non-finite element");
  }
  std::vector<double> work;
  SSLINV_RETURN_IF_ERROR(LowerCopy(a, n, lda, "symmetricShiftedSolve", &work));
  std::vector<double> d(n), e(n), h(n);
  Tridiagonalize(work.data(), n, d.data(), e.data(), h.data());
  // W = Z^T Q^T B
  std::vector<double> wb(b, b + n * m);
  ApplyReflections(work.data(), h.data(), n, wb.data(), m, true);
  std::vector<SweepBatch> batches;
  SSLINV_RETURN_IF_ERROR(TridiagonalQL(d.data(), e.data(), n, [&](const SweepBatch& sb) {
    RotateRowsForward(sb, wb.data(), m);
    batches.push_back(sb);
  }));
  // X[:, s*m + t] = W[:, t] / (lambda + shift_s), then X := Q Z X
  const int64_t Sm = S * m;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t sh = 0; sh < S; ++sh) {
      const double den = d[i] + shifts[sh];
      const double inv = den > 0 ? 1.0 / den : 0.0;
      for (int64_t t = 0; t < m; ++t) x[i * Sm + sh * m + t] = wb[i * m + t] * inv;
    }
  }
  RotateRowsBackward(batches, x, Sm);
  ApplyReflections(work.data(), h.data(), n, x, Sm, false);
  if (w) {
    std::copy(d.begin(), d.end(), w);
    std::sort(w, w + n);
  }
  return Status::Ok();
}

Status MultinomialLossGrad(const double* z, const double* bias, const int32_t* y, int64_t n, int64_t P, int64_t K,
                           double* loss, double* g, double* gb) {
  if (n < 0 || P < 1 || K < 1) return InvalidArgument("multinomialLossGrad: bad sizes");
  for (int64_t i = 0; i < P * n; ++i) {
    if (y[i] < -1 || y[i] >= K) {
      return InvalidArgument("multinomialLossGrad: label " + std::to_string(y[i]) + " outside [-1, " +
                             std::to_string(K) + ") at problem " + std::to_string(i / std::max<int64_t>(n, 1)) +
                             ", row " + std::to_string(i % std::max<int64_t>(n, 1)));
    }
  }
  const int64_t PK = P * K;
  std::vector<double> lossRows(static_cast<size_t>(P) * n);
  ThreadPool& pool = ThreadPool::Get();
  // small problems run on the calling thread: waking the pool costs more than the work
  const int64_t rowGrain = std::max<int64_t>(64, 32768 / std::max<int64_t>(PK, 1));
  pool.ParallelFor(n, rowGrain, [&](int64_t r0, int64_t r1) {
    std::vector<double> raw(K), p(K);
    for (int64_t i = r0; i < r1; ++i) {
      const double* zi = z + i * PK;
      double* gi = g + i * PK;
      for (int64_t pr = 0; pr < P; ++pr) {
        const int32_t yi = y[pr * n + i];
        double* gk = gi + pr * K;
        if (yi < 0) {
          for (int64_t k = 0; k < K; ++k) gk[k] = 0;
          continue;
        }
        const double* zk = zi + pr * K;
        const double* bk = bias + pr * K;
        for (int64_t k = 0; k < K; ++k) raw[k] = zk[k] + bk[k];
        double max_value = raw[0];
        for (int64_t k = 1; k < K; ++k) {
          if (max_value < raw[k]) max_value = raw[k];
        }
        double sum_exps = 0;
        for (int64_t k = 0; k < K; ++k) {
          p[k] = std::exp(raw[k] - max_value);
          sum_exps += p[k];
        }
        double li = std::log(sum_exps) + max_value;
        for (int64_t k = 0; k < K; ++k) {
          if (yi == k) li -= raw[k];
          const double pk = p[k] / sum_exps;
          gk[k] = pk - (yi == k ? 1.0 : 0.0);
        }
        lossRows[pr * n + i] = li;
      }
    }
  });
  // Per problem: the losses of its rows in row order, summed as numpy sums a 1-D array; the intercept
  // gradients, each column summed over the problem's rows in row order (numpy's sum(axis=0)).
  pool.ParallelFor(P, std::max<int64_t>(1, 65536 / std::max<int64_t>(n, 1)), [&](int64_t p0, int64_t p1) {
    std::vector<double> packed;
    packed.reserve(n);
    for (int64_t pr = p0; pr < p1; ++pr) {
      packed.clear();
      double* gbp = gb + pr * K;
      for (int64_t k = 0; k < K; ++k) gbp[k] = 0;
      const int32_t* yp = y + pr * n;
      for (int64_t i = 0; i < n; ++i) {
        if (yp[i] < 0) continue;
        packed.push_back(lossRows[pr * n + i]);
        const double* gi = g + i * PK + pr * K;
        for (int64_t k = 0; k < K; ++k) gbp[k] += gi[k];
      }
      loss[pr] = NumpySum(packed.data(), static_cast<int64_t>(packed.size()));
    }
  });
  return Status::Ok();
}

Status RbfFromGram(double* xy, int64_t n, int64_t m, const double* xx, const double* yy, double gamma, bool same) {
  if (n < 0 || m < 0) return InvalidArgument("rbfKernel: bad sizes");
  if (same && n != m) return InvalidArgument("rbfKernel: a kernel of X with itself must be square");
  const double neg_gamma = -gamma;
  ThreadPool::Get().ParallelFor(n, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      double* row = xy + i * m;
      for (int64_t j = 0; j < m; ++j) {
        double dist = -2.0 * row[j];
        dist += xx[i];
        dist += yy[j];
        if (!(dist >= 0)) dist = dist < 0 ? 0.0 : dist;  // np.maximum(d, 0): NaN stays NaN
        if (same && i == j) dist = 0;
        row[j] = std::exp(dist * neg_gamma);
      }
    }
  });
  return Status::Ok();
}

Status AddDiagonal(const double* a, int64_t n, double alpha, double* out) {
  if (n < 0) return InvalidArgument("addDiagonal: bad size");
  ThreadPool::Get().ParallelFor(n, 64, [&](int64_t r0, int64_t r1) {
    std::memcpy(out + r0 * n, a + r0 * n, static_cast<size_t>((r1 - r0) * n) * sizeof(double));
    for (int64_t i = r0; i < r1; ++i) out[i * n + i] += alpha;
  });
  return Status::Ok();
}

}  // namespace sslinv
