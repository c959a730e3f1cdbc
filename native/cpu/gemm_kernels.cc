// GEMM micro-kernels for AVX-512, AVX2+FMA and portable C++, float32 and float64, chosen at run time.
//
// float32 AVX-512: 14 x 32 tile = 28 zmm accumulators + 2 B vectors; each k step is 2 vector loads,
// 14 broadcasts and 28 FMAs, enough independent chains to hide FMA latency on Zen 4 / Skylake-X.
// float32 AVX2: 6 x 16 (the classic Haswell shape). float64 uses the same shapes with half the
// lanes: 14 x 16 (AVX-512) and 6 x 8 (AVX2). Portable kernels are plain loops the compiler
// vectorises with SSE2. Blocking: kc = 256 keeps an A micro-panel in L1 and mc rows of A in L2.
// Each kernel is a template on the number of rows it computes (1..mr), see MicroKernelT::rows.
#include "cpu/gemm_kernels.h"

#include <immintrin.h>

#include "core/cpu_features.h"

namespace sslinv {

namespace {

// ---------------------------------------------------------------- portable
template <typename T, int MR, int NR, int ROWS>
void KernelGeneric(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, const TileArgsT<T>& t) {
  T acc[ROWS][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + k * NR;
    const T* ak = a + k * MR;
    for (int i = 0; i < ROWS; ++i) {
      const T ai = ak[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int i = 0; i < ROWS; ++i) {
    T* ci = c + i * ldc;
    for (int j = 0; j < NR; ++j) {
      T v = acc[i][j];
      if (t.accumulate) v = ci[j] + v;
      if (t.bias) v += t.bias[j];
      if (t.residual) v += t.residual[i * t.ld_residual + j];
      if (t.relu) v = v > T(0) ? v : T(0);
      ci[j] = v;
    }
  }
}
template <int ROWS>
void KernelGenericF32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, const TileArgsT<float>& t) {
  KernelGeneric<float, 6, 16, ROWS>(kc, a, b, c, ldc, t);
}
template <int ROWS>
void KernelGenericF64(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, const TileArgsT<double>& t) {
  KernelGeneric<double, 6, 8, ROWS>(kc, a, b, c, ldc, t);
}

#if defined(__x86_64__)
#define SSLINV_AVX2 __attribute__((target("avx2,fma")))
#define SSLINV_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

// ---------------------------------------------------------------- AVX2 float32 6 x 16
SSLINV_AVX2 inline __m256 EpilogueAvx2(__m256 v, const float* cptr, const float* bias, const float* res,
                                        const TileArgs& t) {
  if (t.accumulate) v = _mm256_add_ps(_mm256_loadu_ps(cptr), v);
  if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
  if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
  if (t.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  return v;
}

template <int ROWS>
SSLINV_AVX2 void KernelAvx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, const TileArgs& t) {
  __m256 acc[ROWS][2];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * 16);
    const __m256 b1 = _mm256_load_ps(b + k * 16 + 8);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + k * 6 + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) {
    float* ci = c + i * ldc;
    const float* ri = t.residual ? t.residual + i * t.ld_residual : nullptr;
    _mm256_storeu_ps(ci, EpilogueAvx2(acc[i][0], ci, t.bias, ri, t));
    _mm256_storeu_ps(ci + 8, EpilogueAvx2(acc[i][1], ci + 8, t.bias ? t.bias + 8 : nullptr, ri ? ri + 8 : nullptr, t));
  }
}

// ---------------------------------------------------------------- AVX2 float64 6 x 8
SSLINV_AVX2 inline __m256d EpilogueAvx2d(__m256d v, const double* cptr, const double* bias, const double* res,
                                          const TileArgsT<double>& t) {
  if (t.accumulate) v = _mm256_add_pd(_mm256_loadu_pd(cptr), v);
  if (bias) v = _mm256_add_pd(v, _mm256_loadu_pd(bias));
  if (res) v = _mm256_add_pd(v, _mm256_loadu_pd(res));
  if (t.relu) v = _mm256_max_pd(v, _mm256_setzero_pd());
  return v;
}

template <int ROWS>
SSLINV_AVX2 void KernelAvx2d(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                             const TileArgsT<double>& t) {
  __m256d acc[ROWS][2];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b + k * 8);
    const __m256d b1 = _mm256_load_pd(b + k * 8 + 4);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + k * 6 + i);
      acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) {
    double* ci = c + i * ldc;
    const double* ri = t.residual ? t.residual + i * t.ld_residual : nullptr;
    _mm256_storeu_pd(ci, EpilogueAvx2d(acc[i][0], ci, t.bias, ri, t));
    _mm256_storeu_pd(ci + 4, EpilogueAvx2d(acc[i][1], ci + 4, t.bias ? t.bias + 4 : nullptr, ri ? ri + 4 : nullptr, t));
  }
}

// ---------------------------------------------------------------- AVX-512 float32 14 x 32
SSLINV_AVX512 inline __m512 EpilogueAvx512(__m512 v, const float* cptr, const float* bias, const float* res,
                                            const TileArgs& t) {
  if (t.accumulate) v = _mm512_add_ps(_mm512_loadu_ps(cptr), v);
  if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias));
  if (res) v = _mm512_add_ps(v, _mm512_loadu_ps(res));
  if (t.relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
  return v;
}

template <int ROWS>
SSLINV_AVX512 void KernelAvx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                const TileArgs& t) {
  __m512 acc[ROWS][2];
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * 32);
    const __m512 b1 = _mm512_load_ps(b + k * 32 + 16);
    const float* ak = a + k * 14;
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; ++i) {
      const __m512 ai = _mm512_set1_ps(ak[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) {
    float* ci = c + i * ldc;
    const float* ri = t.residual ? t.residual + i * t.ld_residual : nullptr;
    _mm512_storeu_ps(ci, EpilogueAvx512(acc[i][0], ci, t.bias, ri, t));
    _mm512_storeu_ps(ci + 16, EpilogueAvx512(acc[i][1], ci + 16, t.bias ? t.bias + 16 : nullptr,
                                             ri ? ri + 16 : nullptr, t));
  }
}

// ---------------------------------------------------------------- AVX-512 float64 14 x 16
SSLINV_AVX512 inline __m512d EpilogueAvx512d(__m512d v, const double* cptr, const double* bias, const double* res,
                                              const TileArgsT<double>& t) {
  if (t.accumulate) v = _mm512_add_pd(_mm512_loadu_pd(cptr), v);
  if (bias) v = _mm512_add_pd(v, _mm512_loadu_pd(bias));
  if (res) v = _mm512_add_pd(v, _mm512_loadu_pd(res));
  if (t.relu) v = _mm512_max_pd(v, _mm512_setzero_pd());
  return v;
}

template <int ROWS>
SSLINV_AVX512 void KernelAvx512d(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                                 const TileArgsT<double>& t) {
  __m512d acc[ROWS][2];
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512d b0 = _mm512_load_pd(b + k * 16);
    const __m512d b1 = _mm512_load_pd(b + k * 16 + 8);
    const double* ak = a + k * 14;
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; ++i) {
      const __m512d ai = _mm512_set1_pd(ak[i]);
      acc[i][0] = _mm512_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) {
    double* ci = c + i * ldc;
    const double* ri = t.residual ? t.residual + i * t.ld_residual : nullptr;
    _mm512_storeu_pd(ci, EpilogueAvx512d(acc[i][0], ci, t.bias, ri, t));
    _mm512_storeu_pd(ci + 8, EpilogueAvx512d(acc[i][1], ci + 8, t.bias ? t.bias + 8 : nullptr,
                                             ri ? ri + 8 : nullptr, t));
  }
}
#endif  // __x86_64__

}  // namespace

// rows[r] computes the first r rows of a tile (r = 1..mr); rows[mr] is the full-tile kernel.
#define SSLINV_ROWS6(K) {nullptr, K<1>, K<2>, K<3>, K<4>, K<5>, K<6>}
#define SSLINV_ROWS14(K) \
  {nullptr, K<1>, K<2>, K<3>, K<4>, K<5>, K<6>, K<7>, K<8>, K<9>, K<10>, K<11>, K<12>, K<13>, K<14>}

template <>
const MicroKernelT<float>& SelectMicroKernelT<float>() {
  static const MicroKernelT<float> kGeneric{"generic-6x16", 6, 16, 256, 72, SSLINV_ROWS6(KernelGenericF32)};
#if defined(__x86_64__)
  static const MicroKernelT<float> kAvx2{"avx2-6x16", 6, 16, 256, 72, SSLINV_ROWS6(KernelAvx2)};
  static const MicroKernelT<float> kAvx512{"avx512-14x32", 14, 32, 256, 168, SSLINV_ROWS14(KernelAvx512)};
  switch (DetectCpuIsa()) {
    case CpuIsa::kAvx512: return kAvx512;
    case CpuIsa::kAvx2: return kAvx2;
    default: break;
  }
#endif
  return kGeneric;
}

template <>
const MicroKernelT<double>& SelectMicroKernelT<double>() {
  static const MicroKernelT<double> kGeneric{"generic-6x8", 6, 8, 256, 72, SSLINV_ROWS6(KernelGenericF64)};
#if defined(__x86_64__)
  static const MicroKernelT<double> kAvx2{"avx2-6x8", 6, 8, 256, 72, SSLINV_ROWS6(KernelAvx2d)};
  static const MicroKernelT<double> kAvx512{"avx512-14x16", 14, 16, 256, 168, SSLINV_ROWS14(KernelAvx512d)};
  switch (DetectCpuIsa()) {
    case CpuIsa::kAvx512: return kAvx512;
    case CpuIsa::kAvx2: return kAvx2;
    default: break;
  }
#endif
  return kGeneric;
}

}  // namespace sslinv
