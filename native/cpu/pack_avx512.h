// AVX-512 helpers shared by the convolution packers (conv2d.cc, conv2d_backward.cc); internal to
// native/cpu.
//
// The GEMM's A operand is packed into mr-interleaved micro-panels, dst[k * mr + i] for row i and
// GEMM-K index k. Rows of an NHWC im2col are runs of consecutive channels, so packing is a
// transposition: 16 rows x 16 consecutive floats are loaded (one masked load per row), transposed in
// registers and stored as 16 panel rows of mr floats. One strided scalar store per float costs as
// much as the multiply-adds when the GEMM's N is small (64 output channels), which this avoids.
//
// Every function here carries its own target attribute and is only called after UseAvx512() said
// yes; the header compiles on any x86-64 (and to nothing elsewhere).
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

#if defined(__x86_64__)
// As in gemm_kernels.cc: GCC 12 warns about its own _mm512_undefined_* inside the AVX-512 shuffles
// (a false positive of that release, reported at the header's lines); silence the include only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define SSLINV_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#endif

namespace sslinv {

// Whether the AVX-512 packing paths may run: the CPU has AVX-512 and the GEMM uses it (SSL_INV_ISA
// can cap both).
inline bool UseAvx512() {
#if defined(__x86_64__)
  return DetectCpuIsa() == CpuIsa::kAvx512;
#else
  return false;
#endif
}

#if defined(__x86_64__)
// Transposes r in place (r[i] lane j -> r[j] lane i) and stores lanes i < lanes of the new r[j] at
// dst + j * stride for j < cols (lanes, cols <= 16). The A panels use stride = lanes = mr.
SSLINV_AVX512 inline void StoreTransposed16(__m512* r, int lanes, int cols, float* dst, int64_t stride) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << lanes) - 1);
  for (int j = 0; j < cols; ++j) _mm512_mask_storeu_ps(dst + j * stride, keep, r[j]);
}

// dst[j * mr + i] = src[i][off + j] for i < 16, j < 16: sixteen rows of 16 floats, read through a
// mask each (0: the row is zero; masked-off rows never touch memory), stored as 16 panel rows of mr
// floats (mr <= 16; lanes past mr are dropped).
SSLINV_AVX512 inline void TransposeRows16(const float* const* src, const uint16_t* mask, int64_t off, int mr,
                                          float* dst) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_ps(mask[i], src[i] + off);
  StoreTransposed16(r, mr, 16, dst, mr);
}
#endif

}  // namespace sslinv
