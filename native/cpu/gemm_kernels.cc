// SGEMM micro-kernels for AVX-512, AVX2+FMA and portable C++, selected at run time.
//
// AVX-512: 14 x 32 tile = 28 zmm accumulators + 2 B vectors; each k step is 2 vector loads, 14
// broadcasts and 28 FMAs, enough independent chains to hide FMA latency on Zen 4 / Skylake-X.
// AVX2: 6 x 16 tile = 12 ymm accumulators (the classic Haswell shape).
// Portable: 6 x 16 with plain loops the compiler vectorises with SSE2.
// Blocking: kc = 256 keeps an A micro-panel (14 x 256 floats, 14 KB) in L1 and mc rows of A in L2.
#include "cpu/gemm_kernels.h"

#include <immintrin.h>

#include <algorithm>

#include "core/cpu_features.h"

namespace sslinv {

namespace {

// ---------------------------------------------------------------- portable 6 x 16
constexpr int kGenMR = 6, kGenNR = 16;

template <int ROWS>
void KernelGeneric(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, const TileArgs& t) {
  float acc[ROWS][kGenNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * kGenNR;
    const float* ak = a + k * kGenMR;
    for (int i = 0; i < ROWS; ++i) {
      const float ai = ak[i];
      for (int j = 0; j < kGenNR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int i = 0; i < ROWS; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < kGenNR; ++j) {
      float v = acc[i][j];
      if (t.accumulate) v = ci[j] + v;
      if (t.bias) v += t.bias[j];
      if (t.residual) v += t.residual[i * t.ld_residual + j];
      if (t.relu) v = v > 0.f ? v : 0.f;
      ci[j] = v;
    }
  }
}

#if defined(__x86_64__)
// ---------------------------------------------------------------- AVX2 6 x 16
#define SSLINV_AVX2 __attribute__((target("avx2,fma")))

SSLINV_AVX2 inline __m256 EpilogueAvx2(__m256 v, const float* cptr, const float* bias, const float* res,
                                        const TileArgs& t) {
  if (t.accumulate) v = _mm256_add_ps(_mm256_loadu_ps(cptr), v);
  if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
  if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
  if (t.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  return v;
}

template <int ROWS>
SSLINV_AVX2 void KernelAvx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                            const TileArgs& t) {
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
    _mm256_storeu_ps(ci + 8, EpilogueAvx2(acc[i][1], ci + 8, t.bias ? t.bias + 8 : nullptr,
                                          ri ? ri + 8 : nullptr, t));
  }
}

// ---------------------------------------------------------------- AVX-512 14 x 32
#define SSLINV_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

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
#endif  // __x86_64__

}  // namespace

// rows[r] computes the first r rows of a tile (r = 1..mr); rows[mr] is the full-tile kernel.
#define SSLINV_ROWS6(K) {nullptr, K<1>, K<2>, K<3>, K<4>, K<5>, K<6>}
#define SSLINV_ROWS14(K) \
  {nullptr, K<1>, K<2>, K<3>, K<4>, K<5>, K<6>, K<7>, K<8>, K<9>, K<10>, K<11>, K<12>, K<13>, K<14>}

const MicroKernel& SelectMicroKernel() {
  static const MicroKernel kGeneric{"generic-6x16", kGenMR, kGenNR, 256, 72, SSLINV_ROWS6(KernelGeneric)};
#if defined(__x86_64__)
  static const MicroKernel kAvx2{"avx2-6x16", 6, 16, 256, 72, SSLINV_ROWS6(KernelAvx2)};
  static const MicroKernel kAvx512{"avx512-14x32", 14, 32, 256, 168, SSLINV_ROWS14(KernelAvx512)};
  switch (DetectCpuIsa()) {
    case CpuIsa::kAvx512: return kAvx512;
    case CpuIsa::kAvx2: return kAvx2;
    default: break;
  }
#endif
  return kGeneric;
}

}  // namespace sslinv
