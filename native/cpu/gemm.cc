// GEMM driver (see ops/gemm.h): packing, blocking, threading and tile edges around the micro-kernels
// of gemm_kernels.cc, one template for float32 and float64.
#include "ops/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/host_allocator.h"
#include "core/threadpool.h"
#include "cpu/gemm_kernels.h"

namespace sslinv {

namespace {

// Scratch buffers come from the host allocator (64-byte aligned, cached when large).
template <typename T>
using AlignedArray = HostArray<T>;

template <typename T>
AlignedArray<T> AllocAligned(int64_t n) {
  return AlignedArray<T>(static_cast<size_t>(std::max<int64_t>(n, 1)));
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread scratch for packed A blocks, reused across calls.
template <typename T>
T* ThreadABuffer(int64_t n) {
  thread_local AlignedArray<T> buf;
  thread_local int64_t cap = 0;
  if (cap < n) {
    buf = AllocAligned<T>(n);
    cap = buf ? n : 0;
  }
  return buf.get();
}

// Applies the epilogue to a partial tile computed in `scratch` (ld = nr) and stores rows x cols of it.
template <typename T>
void StorePartialTile(const T* scratch, int nr, int rows, int cols, T* c, int64_t ldc, const TileArgsT<T>& t) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) {
      T v = scratch[i * nr + j];
      if (t.bias) v += t.bias[j];
      if (t.residual) v += t.residual[i * t.ld_residual + j];
      if (t.relu) v = v > T(0) ? v : T(0);
      c[i * ldc + j] = v;
    }
  }
}

// Computes C rows [m_begin, m_end) x B panels [jp_begin, jp_end) for the K range [k_begin, k_end) of
// op(A), with `packed_b` holding exactly that K range. `first`/`last` say whether this K range starts
// or ends the whole product (accumulate into C / apply the epilogue).
template <typename T>
void RunThreadTile(const MicroKernelT<T>& mk, int64_t M, int64_t N, int64_t k_begin, int64_t k_end, int64_t m_begin,
                   int64_t m_end, int64_t jp_begin, int64_t jp_end, const APackerT<T>& a, const T* packed_b, T* c,
                   int64_t ldc, const GemmEpilogueT<T>& ep, bool first, bool last) {
  const int mr = mk.mr, nr = mk.nr, kc = mk.kc;
  const int64_t mc = mk.mc;
  const int64_t nb = CeilDiv(N, nr) * nr;
  const int64_t K = k_end - k_begin;
  const int64_t k_blocks = std::max<int64_t>(1, CeilDiv(K, kc));
  T* abuf = ThreadABuffer<T>(mc * kc);
  alignas(64) T scratch[kMaxMR * 32];

  for (int64_t m0 = m_begin; m0 < m_end; m0 += mc) {
    const int64_t m1 = std::min(m_end, m0 + mc);
    const int64_t panels = CeilDiv(m1 - m0, mr);
    for (int64_t kb = 0; kb < k_blocks; ++kb) {
      const int64_t k0 = kb * kc;
      const int kcb = static_cast<int>(std::min<int64_t>(kc, K - k0));
      for (int64_t ip = 0; ip < panels; ++ip) {
        const int64_t m = m0 + ip * mr;
        const int rows = static_cast<int>(std::min<int64_t>(mr, M - m));
        a.Pack(m, rows, k_begin + k0, kcb, mr, abuf + ip * mr * kcb);
      }
      const bool accumulate = (kb > 0) || !first || ep.accumulate;
      const bool epilogue = last && (kb == k_blocks - 1);
      for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
        const T* bpanel = packed_b + k0 * nb + jp * kcb * nr;
        const int64_t n = jp * nr;
        const int cols = static_cast<int>(std::min<int64_t>(nr, N - n));
        for (int64_t ip = 0; ip < panels; ++ip) {
          const int64_t m = m0 + ip * mr;
          const int rows = static_cast<int>(std::min<int64_t>(mr, M - m));
          T* ctile = c + m * ldc + n;
          TileArgsT<T> t;
          t.accumulate = accumulate;
          if (epilogue) {
            t.bias = ep.bias ? ep.bias + n : nullptr;
            t.residual = ep.residual ? ep.residual + m * ep.ld_residual + n : nullptr;
            t.ld_residual = ep.ld_residual;
            t.relu = ep.relu;
          }
          const T* apanel = abuf + ip * mr * kcb;
          if (cols == nr) {
            mk.rows[rows](kcb, apanel, bpanel, ctile, ldc, t);
          } else {
            TileArgsT<T> inner;
            inner.accumulate = accumulate;
            if (accumulate) {
              std::memset(scratch, 0, sizeof(T) * mr * nr);
              for (int i = 0; i < rows; ++i) std::memcpy(scratch + i * nr, ctile + i * ldc, sizeof(T) * cols);
            }
            mk.rows[rows](kcb, apanel, bpanel, scratch, nr, inner);
            StorePartialTile(scratch, nr, rows, cols, ctile, ldc, t);
          }
        }
      }
    }
  }
}

// Runs one K range over all of C, splitting rows (or, for short and wide products, B panels) across
// the pool.
template <typename T>
void RunPackedRange(const MicroKernelT<T>& mk, int64_t M, int64_t N, int64_t k_begin, int64_t k_end,
                    const APackerT<T>& a, const T* packed_b, T* c, int64_t ldc, const GemmEpilogueT<T>& ep,
                    bool first, bool last) {
  const int64_t m_panels = CeilDiv(M, mk.mr);
  const int64_t n_panels = CeilDiv(N, mk.nr);
  const int threads = ThreadPool::Get().num_threads();
  // Enough work per thread to be worth waking it: about 64k multiply-adds.
  const int64_t work = M * N * std::max<int64_t>(1, k_end - k_begin);
  const int useful = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, work / 65536)));
  const bool split_n = m_panels < 2 * useful && n_panels >= useful;
  ThreadPool::Get().Run(useful, [&](int tid, int nt) {
    if (split_n) {
      int64_t j0 = n_panels * tid / nt, j1 = n_panels * (tid + 1) / nt;
      if (j0 < j1) RunThreadTile(mk, M, N, k_begin, k_end, 0, M, j0, j1, a, packed_b, c, ldc, ep, first, last);
    } else {
      int64_t p0 = m_panels * tid / nt, p1 = m_panels * (tid + 1) / nt;
      int64_t m0 = p0 * mk.mr, m1 = std::min(M, p1 * mk.mr);
      if (m0 < m1) RunThreadTile(mk, M, N, k_begin, k_end, m0, m1, 0, n_panels, a, packed_b, c, ldc, ep, first, last);
    }
  });
}

}  // namespace

template <typename T>
const GemmBlocking& CurrentGemmBlockingT() {
  static const GemmBlocking b = [] {
    const MicroKernelT<T>& mk = SelectMicroKernelT<T>();
    return GemmBlocking{mk.mr, mk.nr, mk.kc, mk.mc};
  }();
  return b;
}

template <typename T>
int64_t PackedBSize(int64_t K, int64_t N) {
  const GemmBlocking& b = CurrentGemmBlockingT<T>();
  return std::max<int64_t>(K, 1) * CeilDiv(N, b.nr) * b.nr;
}

template <typename T>
void PackBT(const T* B, int64_t ldb, bool transB, int64_t K, int64_t N, const T* col_scale, T* packed) {
  const GemmBlocking& blk = CurrentGemmBlockingT<T>();
  const int nr = blk.nr, kc = blk.kc;
  const int64_t n_panels = CeilDiv(N, nr);
  const int64_t nb = n_panels * nr;
  const int64_t k_blocks = CeilDiv(K, kc);
  ThreadPool::Get().ParallelFor(k_blocks * n_panels, 4, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t kb = idx / n_panels, jp = idx % n_panels;
      const int64_t k0 = kb * kc;
      const int64_t kcb = std::min<int64_t>(kc, K - k0);
      T* dst = packed + k0 * nb + jp * kcb * nr;
      const int64_t n0 = jp * nr;
      if (n0 + nr <= N) {
        // A whole panel: plain copies the compiler vectorises (the general loop below tests every
        // element against N and was most of a small-M product's time). The same values either way.
        if (!transB) {
          for (int64_t k = 0; k < kcb; ++k) {
            const T* src = B + (k0 + k) * ldb + n0;
            T* d = dst + k * nr;
            if (col_scale) {
              for (int j = 0; j < nr; ++j) d[j] = src[j] * col_scale[n0 + j];
            } else {
              for (int j = 0; j < nr; ++j) d[j] = src[j];
            }
          }
        } else {
          // B^T: row n of B holds column n of op(B), contiguous along k.
          for (int j = 0; j < nr; ++j) {
            const T* src = B + (n0 + j) * ldb + k0;
            if (col_scale) {
              const T sc = col_scale[n0 + j];
              for (int64_t k = 0; k < kcb; ++k) dst[k * nr + j] = src[k] * sc;
            } else {
              for (int64_t k = 0; k < kcb; ++k) dst[k * nr + j] = src[k];
            }
          }
        }
        continue;
      }
      for (int64_t k = 0; k < kcb; ++k) {
        for (int j = 0; j < nr; ++j) {
          const int64_t n = jp * nr + j;
          T v = T(0);
          if (n < N) {
            v = transB ? B[n * ldb + (k0 + k)] : B[(k0 + k) * ldb + n];
            if (col_scale) v *= col_scale[n];
          }
          dst[k * nr + j] = v;
        }
      }
    }
  });
}

template <typename T>
void MatrixAPackerT<T>::Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, T* dst) const {
  if (!trans_) {
    for (int i = 0; i < rows; ++i) {
      const T* src = a_ + (m0 + i) * lda_ + k0;
      for (int k = 0; k < kc; ++k) dst[k * mr + i] = src[k];
    }
  } else {
    for (int k = 0; k < kc; ++k) {
      const T* src = a_ + (k0 + k) * lda_ + m0;
      for (int i = 0; i < rows; ++i) dst[k * mr + i] = src[i];
    }
  }
  for (int i = rows; i < mr; ++i) {
    for (int k = 0; k < kc; ++k) dst[k * mr + i] = T(0);
  }
}

template <typename T>
Status GemmPackedBT(int64_t M, int64_t N, int64_t K, const APackerT<T>& a, const T* packed_b, T* c, int64_t ldc,
                    const GemmEpilogueT<T>& ep) {
  if (M < 0 || N < 0 || K < 0) return InvalidArgument("gemm: negative dimension");
  if (M == 0 || N == 0) return Status::Ok();
  if (ldc < N) return InvalidArgument("gemm: ldc < N");
  RunPackedRange(SelectMicroKernelT<T>(), M, N, 0, K, a, packed_b, c, ldc, ep, true, true);
  return Status::Ok();
}

Status GemmPackedBSlice(int64_t M, int64_t N, int64_t K, int64_t k_begin, int64_t k_end, const APacker& a,
                        const float* packed_b, float* c, int64_t ldc, const GemmEpilogue& ep) {
  if (M < 0 || N < 0 || K < 0) return InvalidArgument("gemm: negative dimension");
  const MicroKernel& mk = SelectMicroKernel();
  if (k_begin < 0 || k_end > K || k_begin > k_end || k_begin % mk.kc != 0 || (k_end % mk.kc != 0 && k_end != K)) {
    return InvalidArgument("gemm: the K slice is not made of whole packed blocks");
  }
  if (M == 0 || N == 0) return Status::Ok();
  if (ldc < N) return InvalidArgument("gemm: ldc < N");
  const int64_t nb = CeilDiv(N, mk.nr) * mk.nr;
  RunPackedRange(mk, M, N, k_begin, k_end, a, packed_b + k_begin * nb, c, ldc, ep, true, true);
  return Status::Ok();
}

template <typename T>
Status GemmT(int64_t M, int64_t N, int64_t K, const T* a, int64_t lda, bool trans_a, const T* b, int64_t ldb,
             bool trans_b, T* c, int64_t ldc, const GemmEpilogueT<T>& ep) {
  if (M < 0 || N < 0 || K < 0) return InvalidArgument("gemm: negative dimension");
  if (M == 0 || N == 0) return Status::Ok();
  if (ldc < N) return InvalidArgument("gemm: ldc < N");
  const MicroKernelT<T>& mk = SelectMicroKernelT<T>();
  const int64_t nb = CeilDiv(N, mk.nr) * mk.nr;
  // Pack B a slab of K at a time so the packed copy stays bounded (about 16 MB) for tall products.
  int64_t slab = std::max<int64_t>(mk.kc, (int64_t{16} << 20) / static_cast<int64_t>(sizeof(T)) / nb / mk.kc * mk.kc);
  slab = std::min<int64_t>(slab, std::max<int64_t>(K, 1));
  AlignedArray<T> packed = AllocAligned<T>(slab * nb);
  if (!packed) return OutOfMemory("gemm: could not allocate the packed B buffer");
  MatrixAPackerT<T> ap(a, lda, trans_a);
  if (K == 0) {
    RunPackedRange(mk, M, N, 0, 0, ap, packed.get(), c, ldc, ep, true, true);
    return Status::Ok();
  }
  for (int64_t k0 = 0; k0 < K; k0 += slab) {
    const int64_t k1 = std::min(K, k0 + slab);
    const T* bslab = trans_b ? b + k0 : b + k0 * ldb;
    PackBT<T>(bslab, ldb, trans_b, k1 - k0, N, nullptr, packed.get());
    RunPackedRange(mk, M, N, k0, k1, ap, packed.get(), c, ldc, ep, k0 == 0, k1 == K);
  }
  return Status::Ok();
}

// The two element types the package uses.
template const GemmBlocking& CurrentGemmBlockingT<float>();
template const GemmBlocking& CurrentGemmBlockingT<double>();
template int64_t PackedBSize<float>(int64_t, int64_t);
template int64_t PackedBSize<double>(int64_t, int64_t);
template void PackBT<float>(const float*, int64_t, bool, int64_t, int64_t, const float*, float*);
template void PackBT<double>(const double*, int64_t, bool, int64_t, int64_t, const double*, double*);
template class MatrixAPackerT<float>;
template class MatrixAPackerT<double>;
template Status GemmPackedBT<float>(int64_t, int64_t, int64_t, const APackerT<float>&, const float*, float*, int64_t,
                                    const GemmEpilogueT<float>&);
template Status GemmPackedBT<double>(int64_t, int64_t, int64_t, const APackerT<double>&, const double*, double*,
                                     int64_t, const GemmEpilogueT<double>&);
template Status GemmT<float>(int64_t, int64_t, int64_t, const float*, int64_t, bool, const float*, int64_t, bool,
                             float*, int64_t, const GemmEpilogueT<float>&);
template Status GemmT<double>(int64_t, int64_t, int64_t, const double*, int64_t, bool, const double*, int64_t, bool,
                              double*, int64_t, const GemmEpilogueT<double>&);

}  // namespace sslinv
