// GEMM micro-kernels for AVX-512, AVX2+FMA and portable C++, float32 and float64, chosen at run time.
//
// float32 AVX-512: 14 x 32 tile = 28 zmm accumulators + 2 B vectors; each k step is 2 vector loads,
// 14 broadcasts and 28 FMAs, enough independent chains to hide FMA latency on Zen 4 / Skylake-X.
// float32 AVX2: 6 x 16 (the classic Haswell shape). float64 uses the same shapes with half the
// lanes: 14 x 16 (AVX-512) and 6 x 8 (AVX2). Portable kernels are plain loops the compiler
// vectorises with SSE2. Blocking (gemm.cc RunThreadTile): for each kc-deep slice, one B micro-panel
// (kc x nr: 32 KiB at kc = 256, nr = 32) stays in L1 while the mc rows of packed A (in L2) stream
// past it one mr x kc micro-panel at a time. kc = 192 and 128 were tried on the 2-core Xeon
// (48 KiB L1d) for ResNet-50 and ResNet-18 inference and were not faster (the VM's run-to-run spread
// was wider than any difference).
// Each kernel is a template on the number of rows it computes (1..mr), see MicroKernelT::rows.
#include "cpu/gemm_kernels.h"

// GCC 12 warns on its own _mm512_undefined_* inside _mm512_max_ps (a false positive of that release);
// the warning is reported at the header's lines, so it is silenced around the include only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

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

#define SSLINV_PRAGMA(x) _Pragma(#x)

// One x86 kernel: an MR x (2 * LANES) tile of element type T in two vectors per row. Every variant
// (AVX2 / AVX-512, float32 / float64) is this loop with its own vector type and intrinsics, so they
// stay the same code: ROWS broadcasts of A and 2 * ROWS FMAs per k step, then the fused epilogue
// (accumulate into C, + bias, + residual, ReLU) on the way out.
#define SSLINV_GEMM_KERNEL(NAME, TARGET, T, VEC, LANES, MR, ZERO, LOAD, LOADU, STOREU, BCAST, FMA, ADD, MAX)          \
  TARGET inline VEC NAME##Epilogue(VEC v, const T* cptr, const T* bias, const T* res, const TileArgsT<T>& t) {      \
    if (t.accumulate) v = ADD(LOADU(cptr), v);                                                                      \
    if (bias) v = ADD(v, LOADU(bias));                                                                              \
    if (res) v = ADD(v, LOADU(res));                                                                                \
    if (t.relu) v = MAX(v, ZERO());                                                                                 \
    return v;                                                                                                       \
  }                                                                                                                 \
  template <int ROWS>                                                                                               \
  TARGET void NAME(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, const TileArgsT<T>& t) {                 \
    VEC acc[ROWS][2];                                                                                               \
    SSLINV_PRAGMA(GCC unroll MR)                                                                                    \
    for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = ZERO();                                                  \
    for (int64_t k = 0; k < kc; ++k) {                                                                              \
      const VEC b0 = LOAD(b + k * 2 * LANES);                                                                       \
      const VEC b1 = LOAD(b + k * 2 * LANES + LANES);                                                               \
      const T* ak = a + k * MR;                                                                                     \
      SSLINV_PRAGMA(GCC unroll MR)                                                                                  \
      for (int i = 0; i < ROWS; ++i) {                                                                              \
        const VEC ai = BCAST(ak + i);                                                                               \
        acc[i][0] = FMA(ai, b0, acc[i][0]);                                                                         \
        acc[i][1] = FMA(ai, b1, acc[i][1]);                                                                         \
      }                                                                                                             \
    }                                                                                                               \
    SSLINV_PRAGMA(GCC unroll MR)                                                                                    \
    for (int i = 0; i < ROWS; ++i) {                                                                                \
      T* ci = c + i * ldc;                                                                                          \
      const T* ri = t.residual ? t.residual + i * t.ld_residual : nullptr;                                          \
      STOREU(ci, NAME##Epilogue(acc[i][0], ci, t.bias, ri, t));                                                     \
      STOREU(ci + LANES, NAME##Epilogue(acc[i][1], ci + LANES, t.bias ? t.bias + LANES : nullptr,                   \
                                        ri ? ri + LANES : nullptr, t));                                             \
    }                                                                                                               \
  }

// AVX-512 has no broadcast-from-pointer intrinsic; set1 of the loaded value compiles to a broadcast load.
#define SSLINV_SET1_512_PS(p) _mm512_set1_ps(*(p))
#define SSLINV_SET1_512_PD(p) _mm512_set1_pd(*(p))

// float32 6 x 16 and float64 6 x 8 (AVX2); float32 14 x 32 and float64 14 x 16 (AVX-512).
SSLINV_GEMM_KERNEL(KernelAvx2, SSLINV_AVX2, float, __m256, 8, 6, _mm256_setzero_ps, _mm256_load_ps, _mm256_loadu_ps,
                   _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps)
SSLINV_GEMM_KERNEL(KernelAvx2d, SSLINV_AVX2, double, __m256d, 4, 6, _mm256_setzero_pd, _mm256_load_pd, _mm256_loadu_pd,
                   _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_max_pd)
SSLINV_GEMM_KERNEL(KernelAvx512, SSLINV_AVX512, float, __m512, 16, 14, _mm512_setzero_ps, _mm512_load_ps,
                   _mm512_loadu_ps, _mm512_storeu_ps, SSLINV_SET1_512_PS, _mm512_fmadd_ps, _mm512_add_ps, _mm512_max_ps)
SSLINV_GEMM_KERNEL(KernelAvx512d, SSLINV_AVX512, double, __m512d, 8, 14, _mm512_setzero_pd, _mm512_load_pd,
                   _mm512_loadu_pd, _mm512_storeu_pd, SSLINV_SET1_512_PD, _mm512_fmadd_pd, _mm512_add_pd, _mm512_max_pd)
#undef SSLINV_GEMM_KERNEL
#undef SSLINV_SET1_512_PS
#undef SSLINV_SET1_512_PD
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
