// Backward kernels of the NHWC convolution: dgrad and wgrad as GEMMs on the shared driver whose
// operands are gathered straight from dy or x (see ops/conv2d_backward.h for the maths and design).
//
// Where the time goes: the GEMMs' multiply-adds, and packing. dgrad's A operand (windows of dy, one
// GEMM row per dx pixel) must be transposed into mr-interleaved panels; with AVX-512 and a channel
// count that is a multiple of 16 this is done 16 x 16 floats at a time in registers rather than one
// strided store per float. wgrad's big operand (the im2col of x, one GEMM column per tap) is the B
// operand, whose panels are runs of consecutive channels: plain copies, no transposition. On small
// maps many window taps fall in the padding; both kernels split the border off into regions that
// skip those taps' multiply-adds when that saves enough (a third of the work on a 4x4 map).
#include "ops/conv2d_backward.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/cpu_features.h"
#include "core/host_allocator.h"
#include "core/threadpool.h"
#include "cpu/conv_taps.h"
#include "cpu/pack_avx512.h"
#include "ops/gemm.h"

namespace sslinv {

namespace {

// Bounds of the scratch buffers, in floats; none grows with the batch. A dgrad task's output (1 MB)
// is still in cache when it is copied to dx. wgrad packs x a slab of pixels at a time: on one thread
// (pixel groups) a slab of at most 1 MB is used from L2 right after packing; when the whole pool
// works on one GEMM, slabs of up to 4 MB save GEMM calls (each wakes the pool).
// test/backward/conv-backward.test.ts has cases that span several tasks and slabs; keep them in step.
constexpr int64_t kPhaseChunkFloats = int64_t{1} << 18;
constexpr int64_t kSerialSlabFloats = int64_t{1} << 18;
constexpr int64_t kParallelSlabFloats = int64_t{1} << 20;
// wgrad splits its images into at most this many groups with partial sums of their own (see
// WgradGroups), each of at least kMinGroupPixels output pixels, all partial sums together at most
// kMaxPartialFloats.
constexpr int kMaxGroups = 8;
constexpr int64_t kMinGroupPixels = 2048;
constexpr int64_t kMaxPartialFloats = int64_t{4} << 20;
// The packers keep per-row and per-column state on the stack; every micro-kernel has mr <= 14 and
// nr <= 32.
constexpr int kMaxPanelRows = 16;
constexpr int kMaxPanelColumns = 32;

int64_t RoundUp(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

Status CheckPanelRows() {
  const GemmBlocking& b = CurrentGemmBlocking();
  if (b.mr > kMaxPanelRows || b.nr > kMaxPanelColumns) {
    return Status(Code::kInternal, "conv2d backward: unexpected GEMM tile");
  }
  return Status::Ok();
}

Status AllocFloats(HostArray<float>* a, int64_t n, const char* what) {
  *a = HostArray<float>(static_cast<size_t>(std::max<int64_t>(n, 1)));
  if (!*a) return OutOfMemory(std::string("conv2d backward: could not allocate the ") + what);
  return Status::Ok();
}

// dst[e * dst_stride + i] = src[e * src_stride + i] for i < len, 0 for len <= i < width (width <= 32),
// for e < count; src may be null when len is 0. The packers' inner copies: a pixel's run of channels.
using StridedCopyFn = void (*)(float* dst, int64_t dst_stride, int64_t count, const float* src, int64_t src_stride,
                               int len, int width);

void StridedCopyGeneric(float* dst, int64_t dst_stride, int64_t count, const float* src, int64_t src_stride, int len,
                        int width) {
  for (int64_t e = 0; e < count; ++e) {
    float* d = dst + e * dst_stride;
    if (len > 0) std::memcpy(d, src + e * src_stride, sizeof(float) * len);
    if (width > len) std::memset(d + len, 0, sizeof(float) * (width - len));
  }
}

#if defined(__x86_64__)
// One or two masked vector copies per row; masked-off lanes are neither read nor written.
SSLINV_AVX512 void StridedCopyAvx512(float* dst, int64_t dst_stride, int64_t count, const float* src,
                                     int64_t src_stride, int len, int width) {
  auto mask = [](int n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1); };
  const __mmask16 load_lo = mask(len), load_hi = mask(len - 16), store_lo = mask(width), store_hi = mask(width - 16);
  if (!src) src = dst;  // never read: len is 0
  for (int64_t e = 0; e < count; ++e) {
    const float* s = src + e * src_stride;
    float* d = dst + e * dst_stride;
    _mm512_mask_storeu_ps(d, store_lo, _mm512_maskz_loadu_ps(load_lo, s));
    if (store_hi) _mm512_mask_storeu_ps(d + 16, store_hi, _mm512_maskz_loadu_ps(load_hi, s + 16));
  }
}
#endif

StridedCopyFn ChooseStridedCopy() {
#if defined(__x86_64__)
  if (UseAvx512()) return StridedCopyAvx512;
#endif
  return StridedCopyGeneric;
}

// ---------------------------------------------------------------- dgrad

// One axis of a stride phase. dx positions i0, i0 + stride, ... (count of them) all have
// (position + pad) mod stride = rho, so only kernel taps rho, rho + stride, ... reach them. Window
// tap t (t = 0 is the LAST of those kernel taps, so that the window reads dy in increasing order)
// meets dy at index i - off + t for the phase's i-th position: a stride-1 correlation. Taps that meet
// no dy index for any i are trimmed (a 3x3 convolution of a 1x1 map keeps only its centre tap);
// taps = 0 means no tap reaches the phase and its dx is 0.
struct PhaseAxis {
  PhaseAxis() = default;
  int64_t i0 = 0, count = 0;  // first dx position and how many, stride apart
  int64_t taps = 0, off = 0;  // window length and offset, after trimming
  int64_t k_last = 0;         // kernel index of window tap 0; tap t is kernel index k_last - stride * t

  PhaseAxis(int64_t rho, int64_t size, int64_t kernel, int64_t stride, int64_t pad, int64_t src) {
    i0 = ((rho - pad) % stride + stride) % stride;
    count = i0 < size ? (size - 1 - i0) / stride + 1 : 0;
    const int64_t all_taps = rho < kernel ? (kernel - 1 - rho) / stride + 1 : 0;
    // Kernel tap rho + stride*u reads dy index (position + pad - rho) / stride - u = base + i - u.
    const int64_t base = (i0 + pad - rho) / stride;
    const int64_t full_off = all_taps - 1 - base;
    // Live taps t: some i in [0, count) has 0 <= i - full_off + t < src.
    const int64_t t_begin = std::max<int64_t>(0, full_off - (count - 1));
    const int64_t t_end = std::min<int64_t>(all_taps, src + full_off);
    if (count == 0 || t_begin >= t_end) return;  // taps = 0
    taps = t_end - t_begin;
    off = full_off - t_begin;
    k_last = rho + stride * (all_taps - 1 - t_begin);
  }
};

struct DgradPhase {
  PhaseAxis h, w;
  int64_t pixels() const { return h.count * w.count; }  // per image
  bool empty() const { return h.taps == 0 || w.taps == 0; }
};

// Gathers stride-1 windows of an NHWC tensor src[n, src_h, src_w, src_c] into the GEMM's
// mr-interleaved A panels (the im2col rows, never stored). GEMM row m (counted from first_row) is
// window (n, i, j) of a grid_h x grid_w grid per image; its tap (t, u) reads
// src[n, i - off_h + t, j - off_w + u, :], zero outside src. GEMM-K runs over (t, u, channel).
class WindowPacker : public APacker {
 public:
  struct Geometry {
    int64_t src_h, src_w, src_c;
    int64_t win_h, win_w;
    int64_t grid_h, grid_w;
    int64_t off_h, off_w;
  };

  WindowPacker(const Geometry& g, const float* src, int64_t first_row)
      : g_(g), src_(src), first_row_(first_row), transpose_(UseAvx512() && g.src_c % 16 == 0) {}

  void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const override {
    if (transpose_ && mr <= 16 && kc % 16 == 0) {
      PackTransposed(m0, rows, k0, kc, mr, dst);
    } else {
      PackScalar(m0, rows, k0, kc, mr, dst);
    }
  }

 private:
  // The image, first row and first column of GEMM row m's window.
  void Origin(int64_t m, const float** image, int64_t* h0, int64_t* w0) const {
    const int64_t grid = g_.grid_h * g_.grid_w;
    const int64_t n = m / grid, ij = m % grid;
    *image = src_ + n * g_.src_h * g_.src_w * g_.src_c;
    *h0 = ij / g_.grid_w - g_.off_h;
    *w0 = ij % g_.grid_w - g_.off_w;
  }

  // With C % 16 == 0 no 16-float piece of GEMM-K straddles two taps, so each row's piece is either
  // 16 consecutive floats of src or zeros: 16 rows x 16 taps go through one register transposition.
  void PackTransposed(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const {
#if defined(__x86_64__)
    const int64_t C = g_.src_c, row_len = g_.win_w * C;
    const float* image[16];
    int64_t h0[16], w0[16];
    const float* ptr[16];
    uint16_t mask[16];
    for (int i = 0; i < 16; ++i) {
      ptr[i] = src_;
      mask[i] = 0;
      if (i < rows) Origin(first_row_ + m0 + i, &image[i], &h0[i], &w0[i]);
    }
    int64_t k = k0;
    for (int kk = 0; kk < kc;) {
      const int64_t t = k / row_len, pos = k % row_len, u = pos / C, c = pos % C;
      const int seg = static_cast<int>(std::min<int64_t>(C - c, kc - kk));  // the rest of tap (t, u)
      for (int i = 0; i < rows; ++i) {
        const int64_t h = h0[i] + t, w = w0[i] + u;
        const bool inside = h >= 0 && h < g_.src_h && w >= 0 && w < g_.src_w;
        ptr[i] = inside ? image[i] + (h * g_.src_w + w) * C + c : src_;
        mask[i] = inside ? 0xFFFF : 0;
      }
      for (int e = 0; e < seg; e += 16) TransposeRows16(ptr, mask, e, mr, dst + static_cast<int64_t>(kk + e) * mr);
      kk += seg;
      k += seg;
    }
#else
    PackScalar(m0, rows, k0, kc, mr, dst);
#endif
  }

  // Any channel count: each run of consecutive channels of one tap is copied with a strided store.
  void PackScalar(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const {
    const int64_t C = g_.src_c, row_len = g_.win_w * C;  // GEMM-K elements per window row t
    const int64_t t0 = k0 / row_len, pos0 = k0 % row_len;
    for (int i = 0; i < rows; ++i) {
      const float* image;
      int64_t h0, w0;
      Origin(first_row_ + m0 + i, &image, &h0, &w0);
      // A window row lying wholly inside src is one contiguous run of win_w * C floats in NHWC.
      const bool interior = w0 >= 0 && w0 + g_.win_w <= g_.src_w;
      int64_t t = t0, pos = pos0;
      for (int kk = 0; kk < kc;) {
        const int64_t h = h0 + t;
        float* d = dst + static_cast<int64_t>(kk) * mr + i;
        int run;
        if (h < 0 || h >= g_.src_h) {
          run = static_cast<int>(std::min<int64_t>(row_len - pos, kc - kk));
          for (int e = 0; e < run; ++e) d[e * mr] = 0.f;
        } else if (interior) {
          run = static_cast<int>(std::min<int64_t>(row_len - pos, kc - kk));
          const float* s = image + (h * g_.src_w + w0) * C + pos;
          for (int e = 0; e < run; ++e) d[e * mr] = s[e];
        } else {
          const int64_t u = pos / C, c = pos % C, w = w0 + u;
          run = static_cast<int>(std::min<int64_t>(C - c, kc - kk));
          if (w >= 0 && w < g_.src_w) {
            const float* s = image + (h * g_.src_w + w) * C + c;
            for (int e = 0; e < run; ++e) d[e * mr] = s[e];
          } else {
            for (int e = 0; e < run; ++e) d[e * mr] = 0.f;
          }
        }
        kk += run;
        pos += run;
        if (pos == row_len) {
          pos = 0;
          ++t;
        }
      }
    }
    for (int i = rows; i < mr; ++i) {
      for (int kk = 0; kk < kc; ++kk) dst[static_cast<int64_t>(kk) * mr + i] = 0.f;
    }
  }

  Geometry g_;
  const float* src_;
  int64_t first_row_;
  bool transpose_;
};

// w[K, C, R, S] reordered to [R, S, K, C], so that each (tap, output channel) of dgrad's B is a
// contiguous row of C values. Per output channel k the [C, R*S] block is small and transposed in cache.
void ReorderWeightsRSKC(const Conv2dParams& p, const float* w, float* rskc) {
  const int64_t K = p.k, C = p.c, RS = p.r * p.s;
  ForRange(true, K, GrainFor(C * RS, 1 << 14), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = w + k * C * RS;
      for (int64_t rs = 0; rs < RS; ++rs) {
        float* dst = rskc + (rs * K + k) * C;
        for (int64_t c = 0; c < C; ++c) dst[c] = src[c * RS + rs];
      }
    }
  });
}

// Packs the phase's B = w_phase[(t, u, k), c] = w[k, c, kernel row of t, kernel column of u] in
// PackBT's layout (for each block of kc rows, for each panel of nr columns, kc_b x nr values, zero
// past C), copying rows of the [R, S, K, C] reorder.
void PackPhaseWeights(const Conv2dParams& p, const DgradPhase& ph, const float* rskc, int64_t kdim, float* packed) {
  const GemmBlocking& b = CurrentGemmBlocking();
  const int64_t K = p.k, C = p.c, panels = (C + b.nr - 1) / b.nr, blocks = (kdim + b.kc - 1) / b.kc;
  ForRange(true, blocks * panels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t kb = idx / panels, jp = idx % panels;
      const int64_t k0 = kb * b.kc, kcb = std::min<int64_t>(b.kc, kdim - k0);
      const int64_t c0 = jp * b.nr, cols = std::min<int64_t>(b.nr, C - c0);
      float* dst = packed + k0 * panels * b.nr + jp * kcb * b.nr;
      for (int64_t kk = 0; kk < kcb; ++kk) {
        const int64_t row = k0 + kk, tu = row / K, k = row % K;
        const int64_t r = ph.h.k_last - p.stride_h * (tu / ph.w.taps), s = ph.w.k_last - p.stride_w * (tu % ph.w.taps);
        const float* src = rskc + ((r * p.s + s) * K + k) * C + c0;
        float* d = dst + kk * b.nr;
        std::memcpy(d, src, sizeof(float) * cols);
        if (cols < b.nr) std::memset(d + cols, 0, sizeof(float) * (b.nr - cols));
      }
    }
  });
}

// Where a block of dx pixels lies: rows i0_h, i0_h + stride_h, ... (count_h of them), likewise
// columns, in every image.
struct PixelGrid {
  int64_t i0_h, count_h, i0_w, count_w;
};

// d[i] = epilogue(src[i]) for i < c (src null: epilogue(0)); `at` is d's offset in dx, so the
// epilogue's tensors are read at the same place. Same arithmetic as ops.add then reluBackward.
void EpilogueRowScalar(const DgradEpilogue& ep, int64_t at, const float* src, int64_t c, float* d) {
  const float* res = ep.residual ? ep.residual + at : nullptr;
  const float* y = ep.relu_y ? ep.relu_y + at : nullptr;
  for (int64_t i = 0; i < c; ++i) {
    float v = src ? src[i] : 0.f;
    if (res) v = v + res[i];
    if (y) v = y[i] <= 0.f ? 0.f : v;
    d[i] = v;
  }
}

#if defined(__x86_64__)
SSLINV_AVX512 void EpilogueRowAvx512(const DgradEpilogue& ep, int64_t at, const float* src, int64_t c, float* d) {
  for (int64_t i = 0; i < c; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(c - i >= 16 ? 0xFFFF : (1u << (c - i)) - 1);
    __m512 v = src ? _mm512_maskz_loadu_ps(m, src + i) : _mm512_setzero_ps();
    if (ep.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep.residual + at + i));
    if (ep.relu_y) {
      const __m512 y = _mm512_maskz_loadu_ps(m, ep.relu_y + at + i);
      v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_NLE_UQ), v);  // y > 0 or NaN
    }
    _mm512_mask_storeu_ps(d + i, m, v);
  }
}
#endif

using EpilogueRowFn = void (*)(const DgradEpilogue&, int64_t, const float*, int64_t, float*);

EpilogueRowFn ChooseEpilogueRow() {
#if defined(__x86_64__)
  if (UseAvx512()) return EpilogueRowAvx512;
#endif
  return EpilogueRowScalar;
}

// Copies `count` rows of the grid (from grid row first_row on, src[count, C]) to their dx pixels
// through the epilogue (when it is not empty); src null writes zeros. Walks (n, i, j) incrementally:
// divisions per pixel would cost as much as the copy.
void ScatterRows(const Conv2dParams& p, const PixelGrid& g, int64_t first_row, int64_t count, const float* src,
                 const DgradEpilogue& ep, float* dx) {
  const int64_t C = p.c, rows = g.count_h, cols = g.count_w;
  const EpilogueRowFn epilogue = ep.empty() ? nullptr : ChooseEpilogueRow();
  int64_t n = first_row / (rows * cols), i = first_row % (rows * cols) / cols, j = first_row % cols;
  auto row_start = [&] { return dx + ((n * p.h + g.i0_h + p.stride_h * i) * p.w + g.i0_w) * C; };
  float* row = row_start();
  for (int64_t l = 0; l < count; ++l) {
    float* d = row + p.stride_w * j * C;
    if (epilogue) {
      epilogue(ep, d - dx, src ? src + l * C : nullptr, C, d);
    } else if (src) {
      std::memcpy(d, src + l * C, sizeof(float) * C);
    } else {
      std::memset(d, 0, sizeof(float) * C);
    }
    if (++j == cols) {
      j = 0;
      if (++i == rows) {
        i = 0;
        ++n;
      }
      if (l + 1 < count) row = row_start();
    }
  }
}

// A phase with its packed weights (none when no tap reaches it).
struct PhaseWork {
  DgradPhase ph;
  int64_t kdim = 0;  // GEMM-K: taps_h * taps_w * K
  HostArray<float> packed;
};

// Sizes the phase's GEMM and allocates its packed weights (none when no tap reaches it).
Status AllocatePhase(const Conv2dParams& p, PhaseWork* work) {
  if (work->ph.empty()) return Status::Ok();
  work->kdim = work->ph.h.taps * work->ph.w.taps * p.k;
  return AllocFloats(&work->packed, PackedBFloats(work->kdim, p.c), "packed weights");
}

// The portable packing: w reordered to [R, S, K, C] once, then each phase's rows copied from it.
Status PackPhasesViaReorder(const Conv2dParams& p, const float* w, std::vector<PhaseWork>* phases) {
  HostArray<float> rskc;
  SSLINV_RETURN_IF_ERROR(AllocFloats(&rskc, p.k * p.c * p.r * p.s, "weight reorder buffer"));
  ReorderWeightsRSKC(p, w, rskc.get());
  for (PhaseWork& work : *phases) {
    if (!work.ph.empty()) PackPhaseWeights(p, work.ph, rskc.get(), work.kdim, work.packed.get());
  }
  return Status::Ok();
}

#if defined(__x86_64__)
// Where kernel tap (r, s) goes: the phase whose packed B holds it and its window tap index tu
// (GEMM-K rows tu * K .. tu * K + K - 1 of that phase), or phase < 0 when no phase keeps the tap
// (it only ever meets padding).
struct TapDest {
  int phase = -1;
  int64_t tu = 0;
};

std::vector<TapDest> TapDestinations(const Conv2dParams& p, const std::vector<PhaseWork>& phases) {
  std::vector<TapDest> dest(static_cast<size_t>(p.r * p.s));
  for (size_t i = 0; i < phases.size(); ++i) {
    const DgradPhase& ph = phases[i].ph;
    if (ph.empty()) continue;
    for (int64_t t = 0; t < ph.h.taps; ++t) {
      for (int64_t u = 0; u < ph.w.taps; ++u) {
        const int64_t r = ph.h.k_last - p.stride_h * t, s = ph.w.k_last - p.stride_w * u;
        dest[r * p.s + s] = {static_cast<int>(i), t * ph.w.taps + u};
      }
    }
  }
  return dest;
}

// Every phase's packed B straight from w [K, C, R, S], each weight read once and each packed value
// written once, one panel of nr channels per task. Per 16 channels c0.. and output channel k: the 16
// channels' R*S taps are 16 masked loads of R*S consecutive floats, and one register transposition
// turns them into one vector of 16 channels per tap, stored at that tap's row (tu * K + k) of its
// phase, columns c0.. (PackBT's layout: kc-row blocks of nr-column panels); a 1x1 filter's 16
// channels are one load. k runs innermost, so each tap's rows are written in order. Channels past C
// are stored as the panels' zero padding. Needs R*S <= 16 and nr a multiple of 16.
SSLINV_AVX512 void PackPhasePanelAvx512(const Conv2dParams& p, const float* w, const std::vector<TapDest>& dest,
                                        std::vector<PhaseWork>* phases, int64_t jp) {
  const GemmBlocking& b = CurrentGemmBlocking();
  const int64_t K = p.k, C = p.c, RS = p.r * p.s, width = (C + b.nr - 1) / b.nr * b.nr;
  const __mmask16 taps_mask = static_cast<__mmask16>((1u << RS) - 1);
  for (int64_t c0 = jp * b.nr; c0 < (jp + 1) * b.nr; c0 += 16) {
    const int64_t left = C - c0, j = c0 % b.nr;
    const __mmask16 ch_mask = static_cast<__mmask16>(left >= 16 ? 0xFFFF : left <= 0 ? 0 : (1u << left) - 1);
    for (int64_t k = 0; k < K; ++k) {
      const float* wk = w + k * C * RS;
      __m512 v[16];
      if (RS == 1) {
        v[0] = _mm512_maskz_loadu_ps(ch_mask, wk + c0);
      } else {
        for (int i = 0; i < 16; ++i) {
          v[i] = i < left ? _mm512_maskz_loadu_ps(taps_mask, wk + (c0 + i) * RS) : _mm512_setzero_ps();
        }
        // v[i] lane t = w[k, c0 + i, tap t] -> v[t] lane i.
        alignas(64) float tmp[16 * 16];
        StoreTransposed16(v, 16, static_cast<int>(RS), tmp, 16);
        for (int64_t t = 0; t < RS; ++t) v[t] = _mm512_load_ps(tmp + t * 16);
      }
      for (int64_t t = 0; t < RS; ++t) {
        const TapDest& d = dest[t];
        if (d.phase < 0) continue;
        PhaseWork& work = (*phases)[d.phase];
        const int64_t row = d.tu * K + k, kb = row / b.kc, kk = row % b.kc;
        const int64_t kcb = std::min<int64_t>(b.kc, work.kdim - kb * b.kc);
        _mm512_storeu_ps(work.packed.get() + kb * b.kc * width + jp * kcb * b.nr + kk * b.nr + j, v[t]);
      }
    }
  }
}

void PackPhasesDirect(const Conv2dParams& p, const float* w, std::vector<PhaseWork>* phases) {
  const std::vector<TapDest> dest = TapDestinations(p, *phases);
  const int64_t nr = CurrentGemmBlocking().nr, panels = (p.c + nr - 1) / nr;
  ForRange(true, panels, GrainFor(nr * p.k * p.r * p.s, 1 << 15), [&](int64_t j0, int64_t j1) {
    for (int64_t jp = j0; jp < j1; ++jp) PackPhasePanelAvx512(p, w, dest, phases, jp);
  });
}
#endif

// Packs every phase's B (the weights its taps need, PackBT's layout) from w [K, C, R, S].
Status PackPhases(const Conv2dParams& p, const float* w, std::vector<PhaseWork>* phases) {
#if defined(__x86_64__)
  const GemmBlocking& b = CurrentGemmBlocking();
  if (UseAvx512() && p.r * p.s <= 16 && b.nr % 16 == 0) {
    PackPhasesDirect(p, w, phases);
    return Status::Ok();
  }
#endif
  return PackPhasesViaReorder(p, w, phases);
}

// Stride 1: the one phase is all of dx in NHWC order, so the GEMM writes dx in place, its rows split
// over the pool. A residual is the GEMM epilogue's (added to the finished sum, as a separate add
// would); no ReLU mask (that goes through the buffered tasks).
Status DgradInPlace(const Conv2dParams& p, const PhaseWork& work, const float* dy, const float* residual, float* dx) {
  const int64_t rows = p.n * work.ph.pixels();
  if (work.ph.empty()) {  // not for a valid convolution, but cheap to get right
    if (residual) {
      std::copy(residual, residual + rows * p.c, dx);
    } else {
      std::fill(dx, dx + rows * p.c, 0.f);
    }
    return Status::Ok();
  }
  const DgradPhase& ph = work.ph;
  WindowPacker a({p.out_h(), p.out_w(), p.k, ph.h.taps, ph.w.taps, ph.h.count, ph.w.count, ph.h.off, ph.w.off}, dy, 0);
  GemmEpilogue ep;
  ep.residual = residual;
  ep.ld_residual = p.c;
  return GemmPackedB(rows, p.c, work.kdim, a, work.packed.get(), dx, p.c, ep);
}

using conv_taps::OutputSegments;
using conv_taps::RunsOfSameTaps;
using conv_taps::Segment;

// The phase axis split into runs of positions whose windows meet dy with the same taps: near the
// borders a window's outer taps fall in the padding, and skipping them saves their multiply-adds
// (a third of the work of a 3x3 convolution on a 4x4 map, over half on a 2x2 map).
std::vector<Segment> AxisSegments(const PhaseAxis& a, int64_t src) {
  return RunsOfSameTaps(a.count, [&](int64_t i) {
    const int64_t lo = std::clamp<int64_t>(a.off - i, 0, a.taps);
    return std::pair<int64_t, int64_t>{lo, std::clamp<int64_t>(src + a.off - i, lo, a.taps)};
  });
}

// A rectangle of one phase's positions (one segment per axis) and the slices of the phase's GEMM-K
// that its windows need: GEMM-K runs over (t, u, k), so with all columns u of the window one slice
// covers rows t_begin..t_end, otherwise each row t is a slice of its own.
struct Region {
  const PhaseWork* work;
  Segment h, w;
  std::vector<std::pair<int64_t, int64_t>> slices;  // [k_begin, k_end); empty: dx is 0

  Region(const Conv2dParams& p, const PhaseWork* pw, const Segment& sh, const Segment& sw) : work(pw), h(sh), w(sw) {
    if (pw->ph.empty() || h.t_begin == h.t_end || w.t_begin == w.t_end) return;
    const int64_t U = pw->ph.w.taps, K = p.k;
    if (w.t_begin == 0 && w.t_end == U) {
      slices.push_back({h.t_begin * U * K, h.t_end * U * K});
    } else {
      for (int64_t t = h.t_begin; t < h.t_end; ++t) slices.push_back({(t * U + w.t_begin) * K, (t * U + w.t_end) * K});
    }
  }
  int64_t rows(int64_t n) const { return n * h.count * w.count; }
  int64_t work_per_row() const {
    int64_t k = 0;
    for (const auto& s : slices) k += s.second - s.first;
    return k;
  }
  WindowPacker::Geometry geometry(const Conv2dParams& p) const {
    const DgradPhase& ph = work->ph;
    return {p.out_h(), p.out_w(), p.k, ph.h.taps, ph.w.taps, h.count, w.count, ph.h.off - h.first, ph.w.off - w.first};
  }
  PixelGrid grid(const Conv2dParams& p) const {
    const DgradPhase& ph = work->ph;
    return {ph.h.i0 + p.stride_h * h.first, h.count, ph.w.i0 + p.stride_w * w.first, w.count};
  }
};

// The regions of a phase: the whole phase, or its border split (AxisSegments) when that saves at
// least 5% of the multiply-adds and every slice is made of whole packed K blocks (K a multiple of
// the GEMM's kc, as in the deep layers whose small maps have the most border).
std::vector<Region> PhaseRegions(const Conv2dParams& p, const PhaseWork& work) {
  const PhaseAxis& ah = work.ph.h;
  const PhaseAxis& aw = work.ph.w;
  std::vector<Region> whole;
  whole.emplace_back(p, &work, Segment{0, ah.count, 0, ah.taps}, Segment{0, aw.count, 0, aw.taps});
  if (work.ph.empty() || p.k % CurrentGemmBlocking().kc != 0) return whole;
  std::vector<Region> split;
  int64_t work_split = 0;
  for (const Segment& sh : AxisSegments(ah, p.out_h())) {
    for (const Segment& sw : AxisSegments(aw, p.out_w())) {
      split.emplace_back(p, &work, sh, sw);
      work_split += split.back().rows(1) * split.back().work_per_row();
    }
  }
  const int64_t work_whole = whole[0].rows(1) * work.kdim;
  return 20 * work_split <= 19 * work_whole ? split : whole;
}

// A chunk of one region's rows.
struct DgradTask {
  const Region* region;
  int64_t first_row, rows;
};

// Rows per task: enough tasks for every thread to get several (they differ in cost: the phases of a
// 3x3/2 convolution have 4, 2, 2 and 1 taps), each a whole number of GEMM panels, its output at most
// kPhaseChunkFloats (a per-thread buffer that stays in cache). Task boundaries never change what a
// row computes, so they may depend on the thread count.
int64_t TaskRows(const Conv2dParams& p, int64_t live_rows, int threads) {
  const int64_t mr = CurrentGemmBlocking().mr;
  const int64_t most = std::max<int64_t>(mr, kPhaseChunkFloats / p.c / mr * mr);
  const int64_t want = RoundUp((live_rows + 4 * threads - 1) / (4 * threads), mr);
  return std::clamp<int64_t>(want, std::min<int64_t>(8 * mr, most), most);
}

// One task: its GEMM (one call per K slice, accumulating in slice order) into `buf`, then the rows to
// their dx pixels; zeros for a region no tap reaches.
Status RunDgradTask(const Conv2dParams& p, const DgradTask& t, const float* dy, const DgradEpilogue& out_ep, float* buf,
                    float* dx) {
  const Region& rg = *t.region;
  if (rg.slices.empty()) {
    ScatterRows(p, rg.grid(p), t.first_row, t.rows, nullptr, out_ep, dx);
    return Status::Ok();
  }
  WindowPacker a(rg.geometry(p), dy, t.first_row);
  const PhaseWork& work = *rg.work;
  GemmEpilogue ep;
  for (const auto& slice : rg.slices) {
    if (slice.first == 0 && slice.second == work.kdim) {
      SSLINV_RETURN_IF_ERROR(GemmPackedB(t.rows, p.c, work.kdim, a, work.packed.get(), buf, p.c, ep));
    } else {
      SSLINV_RETURN_IF_ERROR(GemmPackedBSlice(t.rows, p.c, work.kdim, slice.first, slice.second, a, work.packed.get(),
                                              buf, p.c, ep));
    }
    ep.accumulate = true;
  }
  ScatterRows(p, rg.grid(p), t.first_row, t.rows, buf, out_ep, dx);
  return Status::Ok();
}

// Runs the tasks on the pool, handed out one at a time so uneven tasks still balance; each runs its
// GEMMs serially on its thread, into that thread's buffer. Which thread runs a task never changes
// what it computes.
Status RunDgradTasks(const Conv2dParams& p, const std::vector<DgradTask>& tasks, int64_t task_rows, const float* dy,
                     const DgradEpilogue& ep, float* dx) {
  const int64_t count = static_cast<int64_t>(tasks.size());
  std::vector<Status> st(tasks.size());
  std::atomic<int64_t> next{0};
  ThreadPool& pool = ThreadPool::Get();
  pool.Run(static_cast<int>(std::min<int64_t>(count, pool.num_threads())), [&](int, int) {
    HostArray<float> buf;
    const Status alloc = AllocFloats(&buf, task_rows * p.c, "dgrad buffer");
    for (int64_t i; (i = next.fetch_add(1)) < count;) {
      st[i] = alloc.ok() ? RunDgradTask(p, tasks[i], dy, ep, buf.get(), dx) : alloc;
    }
  });
  for (const Status& s : st) SSLINV_RETURN_IF_ERROR(s);
  return Status::Ok();
}

// ---------------------------------------------------------------- wgrad

// Kernel taps r in [r0, r1) x s in [s0, s1), every channel: GEMM columns in (r, s, c) order.
struct TapRect {
  int64_t r0, r1, s0, s1;
  int64_t columns(int64_t C) const { return (r1 - r0) * (s1 - s0) * C; }
  bool empty() const { return r0 >= r1 || s0 >= s1; }
};

// A block of output pixels, one segment per axis in every image, and the taps its windows meet.
struct WgradRegion {
  Segment h, w;
  TapRect taps() const { return {h.t_begin, h.t_end, w.t_begin, w.t_end}; }
  int64_t pixels_per_image() const { return h.count * w.count; }
};

// The cost of one wgrad GEMM pass over an output block, in pixels' worth of multiply-adds: each pass
// loads and stores its block of the K x columns output (from L2/L3 for the large filters of the last
// stages), which costs about as much as this many more pixels in the GEMM's depth.
constexpr int64_t kWgradPassPixels = 24;

// wgrad's regions and the taps they meet in all (dw is 0 elsewhere). Windows near the border have
// taps in the padding whose products are all zero; when skipping them saves at least 5% of the
// work (small maps: a third of the multiply-adds on 4x4, over half on 2x2) the output is split into
// border and interior regions with their own taps, else one region meets the union of every window's
// taps. The work counts each GEMM pass's output traffic (kWgradPassPixels per column): a region whose
// taps are not whole kernel rows takes one pass per kernel row, and with few images per region
// (ResNet-50's last stage at batch 16) those passes cost more than the skipped products.
std::vector<WgradRegion> WgradRegions(const Conv2dParams& p, TapRect* all) {
  const std::vector<Segment> sh = OutputSegments(p.out_h(), p.r, p.stride_h, p.pad_h, p.h);
  const std::vector<Segment> sw = OutputSegments(p.out_w(), p.s, p.stride_w, p.pad_w, p.w);
  *all = {p.r, 0, p.s, 0};
  for (const Segment& s : sh) {
    if (s.t_begin < s.t_end) all->r0 = std::min(all->r0, s.t_begin), all->r1 = std::max(all->r1, s.t_end);
  }
  for (const Segment& s : sw) {
    if (s.t_begin < s.t_end) all->s0 = std::min(all->s0, s.t_begin), all->s1 = std::max(all->s1, s.t_end);
  }
  // No window meets the image at all (a stride longer than the kernel can leave every tap of an axis
  // in the padding): dw is 0, and `all` is an empty rectangle whose column count must not be used.
  if (all->empty()) return {};
  std::vector<WgradRegion> split;
  int64_t work_split = 0;
  for (const Segment& a : sh) {
    for (const Segment& b : sw) {
      const WgradRegion rg{a, b};
      if (rg.taps().empty()) continue;  // windows wholly in the padding add nothing
      split.push_back(rg);
      const TapRect t = rg.taps();
      const int64_t passes = t.s0 == all->s0 && t.s1 == all->s1 ? 1 : t.r1 - t.r0;
      work_split += (p.n * rg.pixels_per_image() + passes * kWgradPassPixels) * t.columns(1);
    }
  }
  const int64_t work_whole = (p.n * p.out_h() * p.out_w() + kWgradPassPixels) * all->columns(1);
  if (20 * work_split <= 19 * work_whole) return split;
  return {WgradRegion{{0, p.out_h(), all->r0, all->r1}, {0, p.out_w(), all->s0, all->s1}}};
}

// The output pixels of a region in images [n_begin, n_end), in order: (n, p, q) of the i-th one.
class RegionPixels {
 public:
  RegionPixels(const WgradRegion& rg, int64_t n_begin, int64_t index) : rg_(rg) {
    const int64_t per_image = rg.pixels_per_image();
    n_ = n_begin + index / per_image;
    i_ = index % per_image / rg.w.count;
    j_ = index % rg.w.count;
  }
  int64_t n() const { return n_; }
  int64_t p() const { return rg_.h.first + i_; }
  int64_t q() const { return rg_.w.first + j_; }
  int64_t left_in_row() const { return rg_.w.count - j_; }  // pixels to the end of this output row
  void Advance(int64_t count) {                              // count <= left_in_row()
    j_ += count;
    if (j_ == rg_.w.count) {
      j_ = 0;
      if (++i_ == rg_.h.count) {
        i_ = 0;
        ++n_;
      }
    }
  }

 private:
  const WgradRegion& rg_;
  int64_t n_, i_, j_;
};

// wgrad's A operand dy^T for a region's pixels: A[k, pixel] = dy[n, p, q, k]; each pixel's mr output
// channels are contiguous in dy.
class RegionDyPacker : public APacker {
 public:
  RegionDyPacker(const Conv2dParams& p, const float* dy, const WgradRegion& rg, int64_t n_begin, int64_t first)
      : p_(p), dy_(dy), rg_(rg), n_begin_(n_begin), first_(first), copy_(ChooseStridedCopy()) {}

  // A stretch of one output row at a time: its pixels are consecutive in dy, K floats apart.
  void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const override {
    const int64_t P = p_.out_h(), Q = p_.out_w();
    RegionPixels px(rg_, n_begin_, first_ + k0);
    for (int64_t kk = 0; kk < kc;) {
      const int64_t count = std::min<int64_t>(kc - kk, px.left_in_row());
      const float* s = dy_ + ((px.n() * P + px.p()) * Q + px.q()) * p_.k + m0;
      copy_(dst + kk * mr, mr, count, s, p_.k, rows, mr);
      kk += count;
      px.Advance(count);
    }
  }

 private:
  const Conv2dParams& p_;
  const float* dy_;
  const WgradRegion& rg_;
  int64_t n_begin_, first_;
  StridedCopyFn copy_;
};

// Packs wgrad's B operand, the im2col of x for a region's pixels and a rectangle of taps:
//   B[pixel (n, p, q), tap (r, s, c)] = x[n, p*sh - ph + r, q*sw - pw + s, c]   (0 in the padding)
// in PackBT's layout (for each block of kc pixels, for each panel of nr taps, kc_b x nr values, zero
// past the last tap). A panel's columns are runs within one kernel row r: its taps (s, c) are
// consecutive floats of x for a window wholly inside the image (one run per panel when C is a
// multiple of nr; a 3-channel stem's 7 taps of a kernel row are one run of 21 floats), so packing is
// contiguous copies, one or two masked vector copies each with AVX-512; windows cut by the left or
// right border go tap by tap.
class ColBPacker {
 public:
  ColBPacker(const Conv2dParams& p, const float* x, const WgradRegion& rg, const TapRect& taps, int64_t n_begin)
      : p_(p), x_(x), rg_(rg), taps_(taps), n_begin_(n_begin), ncols_(taps.columns(p.c)), copy_(ChooseStridedCopy()) {}

  int64_t columns() const { return ncols_; }

  // Region pixels [first, first + len) into `packed` (PackedBFloats(len, columns()) floats).
  void Pack(int64_t first, int64_t len, bool parallel, float* packed) const {
    const GemmBlocking& b = CurrentGemmBlocking();
    const int64_t panels = (ncols_ + b.nr - 1) / b.nr, blocks = (len + b.kc - 1) / b.kc;
    ForRange(parallel, blocks * panels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t idx = begin; idx < end; ++idx) {
        const int64_t kb = idx / panels, jp = idx % panels;
        const int64_t k0 = kb * b.kc, kcb = std::min<int64_t>(b.kc, len - k0);
        PackPanel(MakePanel(jp, b.nr), first + k0, kcb, b.nr, packed + k0 * panels * b.nr + jp * kcb * b.nr);
      }
    });
  }

 private:
  // Columns [j, j + len) of a panel (len <= 32): from channel c of tap (r, s) on, through tap
  // (r, s_last) (consecutive floats of one input row), or zeros past the last tap (r < 0).
  struct Run {
    int j, len;
    int64_t r, s, c, s_last;
  };
  struct Panel {
    int count = 0;
    Run runs[kMaxPanelColumns];
  };

  Panel MakePanel(int64_t jp, int nr) const {
    Panel panel;
    const int64_t C = p_.c, width = taps_.s1 - taps_.s0;
    for (int j = 0; j < nr;) {
      const int64_t col = jp * nr + j;
      Run& run = panel.runs[panel.count++];
      run.j = j;
      if (col >= ncols_) {
        run.len = nr - j;
        run.r = run.s = run.c = run.s_last = -1;
      } else {
        const int64_t rs = col / C;
        run.r = taps_.r0 + rs / width;
        run.s = taps_.s0 + rs % width;
        run.c = col % C;
        // Up to the end of the panel, of the columns, or of kernel row r's taps.
        run.len = static_cast<int>(std::min<int64_t>({nr - j, ncols_ - col, (taps_.s1 - run.s) * C - run.c}));
        run.s_last = run.s + (run.c + run.len - 1) / C;
      }
      j += run.len;
    }
    return panel;
  }

  // Stretch pixels e in [lo, hi) of [e0, e1) whose input column first + e * sw is inside the image,
  // as long as last + e * sw is too (first <= last: the run's first and last tap).
  void InsidePixels(int64_t first, int64_t last, int64_t e0, int64_t e1, int64_t* lo, int64_t* hi) const {
    const int64_t sw = p_.stride_w;
    *lo = std::clamp<int64_t>(first >= 0 ? 0 : (-first + sw - 1) / sw, e0, e1);
    *hi = std::clamp<int64_t>(last >= p_.w ? 0 : (p_.w - 1 - last) / sw + 1, *lo, e1);
  }

  // Pixels [e0, e1) of a stretch, `len` columns from channel c of one tap whose input column at
  // pixel 0 is iw, in input row `row` (x at (n, ih, 0, 0)): a zero range, a strided copy, a zero range.
  void PackTap(float* d, int nr, int64_t e0, int64_t e1, const float* row, int64_t iw, int64_t c, int len) const {
    int64_t lo, hi;
    InsidePixels(iw, iw, e0, e1, &lo, &hi);
    const int64_t sw = p_.stride_w, C = p_.c;
    if (lo > e0) copy_(d + e0 * nr, nr, lo - e0, nullptr, 0, 0, len);
    if (hi > lo) copy_(d + lo * nr, nr, hi - lo, row + (iw + lo * sw) * C + c, sw * C, len, len);
    if (e1 > hi) copy_(d + hi * nr, nr, e1 - hi, nullptr, 0, 0, len);
  }

  // Packs region pixels [first, first + kcb) of one panel, a stretch of one output row (n, p) at a
  // time: along it a run's taps stay in one input row (or in the padding) and move sw pixels per
  // output pixel. The pixels whose window holds all of a run's taps copy it at once; the rest (at the
  // left and right borders) go one tap at a time.
  void PackPanel(const Panel& panel, int64_t first, int64_t kcb, int nr, float* dst) const {
    const int64_t C = p_.c, sw = p_.stride_w;
    RegionPixels px(rg_, n_begin_, first);
    for (int64_t k = 0; k < kcb;) {
      const int64_t count = std::min(kcb - k, px.left_in_row());
      const int64_t ih0 = px.p() * p_.stride_h - p_.pad_h, iw0 = px.q() * sw - p_.pad_w;
      for (int i = 0; i < panel.count; ++i) {
        const Run& run = panel.runs[i];
        float* d = dst + k * nr + run.j;
        const int64_t ih = ih0 + run.r;
        if (run.r < 0 || ih < 0 || ih >= p_.h) {
          copy_(d, nr, count, nullptr, 0, 0, run.len);
          continue;
        }
        const float* row = x_ + (px.n() * p_.h + ih) * p_.w * C;
        if (run.s == run.s_last) {
          PackTap(d, nr, 0, count, row, iw0 + run.s, run.c, run.len);
          continue;
        }
        int64_t lo, hi;
        InsidePixels(iw0 + run.s, iw0 + run.s_last, 0, count, &lo, &hi);
        if (hi > lo) {
          copy_(d + lo * nr, nr, hi - lo, row + (iw0 + run.s + lo * sw) * C + run.c, sw * C, run.len, run.len);
        }
        if (lo == 0 && hi == count) continue;
        // Border pixels: tap by tap.
        for (int64_t s = run.s, j = 0; j < run.len; ++s) {
          const int64_t c = s == run.s ? run.c : 0;
          const int len = static_cast<int>(std::min<int64_t>(C - c, run.len - j));
          PackTap(d + j, nr, 0, lo, row, iw0 + s, c, len);
          PackTap(d + j, nr, hi, count, row, iw0 + s, c, len);
          j += len;
        }
      }
      k += count;
      px.Advance(count);
    }
  }

  const Conv2dParams& p_;
  const float* x_;
  const WgradRegion& rg_;
  TapRect taps_;
  int64_t n_begin_, ncols_;
  StridedCopyFn copy_;
};

// How many groups of images wgrad splits its sum into, each with a partial dw of its own. dw has only
// K x R*S*C elements but sums over N*P*Q pixels, so for the early, large layers (few taps and
// channels, many pixels) splitting the images keeps every thread busy without packing anything
// twice, where splitting the small output would not. The count depends on the shape only (never on
// the thread count), so the summation order and the bits are the same for any thread count; powers
// of two divide evenly over common pools.
int WgradGroups(const Conv2dParams& p, int64_t outputs) {
  const int64_t per_image = p.out_h() * p.out_w();
  int g = kMaxGroups;
  while (g > 1 && (p.n / g * per_image < kMinGroupPixels || g * outputs > kMaxPartialFloats)) g /= 2;
  return g;
}

// out[K, all columns] += the sum over images [n_begin, n_end) of the region's pixels' products with
// taps `t` (part of the region's taps), a slab of pixels at a time (slabs in order). The columns of
// out are (r - all.r0, s - all.s0, c), so `t` must be one contiguous block of them: one kernel row,
// or rows spanning all of out's kernel columns. parallel: the GEMMs and packing use the pool;
// otherwise this runs on the calling thread. fresh: out's block holds nothing yet, so the first slab
// stores instead of adding (0 + v is v, but for a -0 sum, which becomes +0 when added to 0).
Status WgradBlock(const Conv2dParams& p, const float* x, const float* dy, const WgradRegion& rg, const TapRect& t,
                  const TapRect& all, int64_t n_begin, int64_t n_end, bool parallel, bool fresh, float* out) {
  const GemmBlocking& b = CurrentGemmBlocking();
  const ColBPacker col(p, x, rg, t, n_begin);
  const int64_t N = col.columns(), ld = all.columns(p.c);
  float* block = out + ((t.r0 - all.r0) * (all.s1 - all.s0) + (t.s0 - all.s0)) * p.c;
  const int64_t pixels = (n_end - n_begin) * rg.pixels_per_image(), nb = RoundUp(N, b.nr);
  const int64_t most = parallel ? kParallelSlabFloats : kSerialSlabFloats;
  const int64_t slab = std::min(pixels, std::max<int64_t>(b.kc, most / nb / b.kc * b.kc));
  HostArray<float> packed;
  SSLINV_RETURN_IF_ERROR(AllocFloats(&packed, PackedBFloats(slab, N), "packed x slab"));
  GemmEpilogue ep;
  for (int64_t s0 = 0; s0 < pixels; s0 += slab) {
    const int64_t len = std::min(slab, pixels - s0);
    col.Pack(s0, len, parallel, packed.get());
    RegionDyPacker a(p, dy, rg, n_begin, s0);
    // out holds the sums of earlier slabs and regions, except for the first slab of a fresh block.
    ep.accumulate = !(fresh && s0 == 0);
    SSLINV_RETURN_IF_ERROR(GemmPackedB(p.k, N, len, a, packed.get(), block, ld, ep));
  }
  return Status::Ok();
}

// out[K, all columns] = the sum over images [n_begin, n_end), region by region (in order); a region
// whose taps are not one block of out's columns goes one kernel row at a time.
Status WgradImages(const Conv2dParams& p, const float* x, const float* dy, const std::vector<WgradRegion>& regions,
                   const TapRect& all, int64_t n_begin, int64_t n_end, bool parallel, float* out) {
  // One region meeting every tap of `all` writes all of out with its first slab: no zero fill.
  const TapRect t0 = regions[0].taps();
  const bool one_block =
      regions.size() == 1 && t0.r0 == all.r0 && t0.r1 == all.r1 && t0.s0 == all.s0 && t0.s1 == all.s1;
  if (one_block) return WgradBlock(p, x, dy, regions[0], t0, all, n_begin, n_end, parallel, /*fresh=*/true, out);
  std::fill(out, out + p.k * all.columns(p.c), 0.f);
  for (const WgradRegion& rg : regions) {
    const TapRect t = rg.taps();
    if (t.s0 == all.s0 && t.s1 == all.s1) {
      SSLINV_RETURN_IF_ERROR(WgradBlock(p, x, dy, rg, t, all, n_begin, n_end, parallel, /*fresh=*/false, out));
      continue;
    }
    for (int64_t r = t.r0; r < t.r1; ++r) {
      SSLINV_RETURN_IF_ERROR(
          WgradBlock(p, x, dy, rg, {r, r + 1, t.s0, t.s1}, all, n_begin, n_end, parallel, /*fresh=*/false, out));
    }
  }
  return Status::Ok();
}

// dw[k, c, r, s] = sum over groups g (in order) of partial[g][k, (r - r0, s - s0, c)]; 0 outside `all`.
// Per output channel: a [taps, C] block read row by row, written transposed within dw[k] (in cache).
void ReduceWeightGradScalar(const Conv2dParams& p, const float* partial, int groups, const TapRect& all, float* dw,
                            int64_t k0, int64_t k1) {
  const int64_t K = p.k, C = p.c, RS = p.r * p.s, ld = all.columns(C);
  {
    for (int64_t k = k0; k < k1; ++k) {
      float* d = dw + k * C * RS;
      if (all.columns(1) != RS) std::fill(d, d + C * RS, 0.f);
      for (int64_t r = all.r0; r < all.r1; ++r) {
        for (int64_t s = all.s0; s < all.s1; ++s) {
          const float* src = partial + k * ld + ((r - all.r0) * (all.s1 - all.s0) + (s - all.s0)) * C;
          float* dst = d + r * p.s + s;
          for (int64_t c = 0; c < C; ++c) {
            float v = src[c];
            for (int g = 1; g < groups; ++g) v += src[g * K * ld + c];
            dst[c * RS] = v;
          }
        }
      }
    }
  }
}

#if defined(__x86_64__)
// The same with AVX-512, 16 channels at a time: each tap's 16 sums (the groups added in the same
// order, lane by lane: the same bits) are one vector, and one register transposition turns the
// R*S vectors (zero for taps outside `all`) into the 16 channels' runs of R*S values of dw. R*S <= 16.
SSLINV_AVX512 void ReduceWeightGradAvx512(const Conv2dParams& p, const float* partial, int groups, const TapRect& all,
                                          float* dw, int64_t k0, int64_t k1) {
  const int64_t K = p.k, C = p.c, RS = p.r * p.s, ld = all.columns(C);
  for (int64_t k = k0; k < k1; ++k) {
    float* d = dw + k * C * RS;
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
      const int cw = static_cast<int>(std::min<int64_t>(16, C - c0));
      const __mmask16 m = static_cast<__mmask16>(cw >= 16 ? 0xFFFF : (1u << cw) - 1);
      __m512 v[16];
      for (int t = 0; t < 16; ++t) v[t] = _mm512_setzero_ps();
      for (int64_t r = all.r0; r < all.r1; ++r) {
        for (int64_t s = all.s0; s < all.s1; ++s) {
          const float* src = partial + k * ld + ((r - all.r0) * (all.s1 - all.s0) + (s - all.s0)) * C + c0;
          __m512 acc = _mm512_maskz_loadu_ps(m, src);
          for (int g = 1; g < groups; ++g) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, src + g * K * ld));
          v[r * p.s + s] = acc;
        }
      }
      if (RS == 1) {
        _mm512_mask_storeu_ps(d + c0, m, v[0]);
      } else {
        StoreTransposed16(v, static_cast<int>(RS), cw, d + c0 * RS, RS);
      }
    }
  }
}
#endif

void ReduceWeightGrad(const Conv2dParams& p, const float* partial, int groups, const TapRect& all, float* dw) {
#if defined(__x86_64__)
  const bool avx512 = UseAvx512() && p.r * p.s <= 16;
#else
  const bool avx512 = false;
#endif
  ForRange(true, p.k, GrainFor(p.c * p.r * p.s * groups, 1 << 14), [&](int64_t k0, int64_t k1) {
#if defined(__x86_64__)
    if (avx512) {
      ReduceWeightGradAvx512(p, partial, groups, all, dw, k0, k1);
      return;
    }
#endif
    ReduceWeightGradScalar(p, partial, groups, all, dw, k0, k1);
  });
}

}  // namespace

Status Conv2dBackwardDataNHWC(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                              const DgradEpilogue& ep) {
  SSLINV_RETURN_IF_ERROR(ValidateConv2dParams(p));
  SSLINV_RETURN_IF_ERROR(CheckPanelRows());
  if (p.n == 0) return Status::Ok();
  const int64_t P = p.out_h(), Q = p.out_w();
  std::vector<PhaseWork> phases(static_cast<size_t>(p.stride_h * p.stride_w));
  for (int64_t rho_h = 0; rho_h < p.stride_h; ++rho_h) {
    for (int64_t rho_w = 0; rho_w < p.stride_w; ++rho_w) {
      PhaseWork& work = phases[rho_h * p.stride_w + rho_w];
      work.ph = DgradPhase{PhaseAxis(rho_h, p.h, p.r, p.stride_h, p.pad_h, P),
                           PhaseAxis(rho_w, p.w, p.s, p.stride_w, p.pad_w, Q)};
      SSLINV_RETURN_IF_ERROR(AllocatePhase(p, &work));
    }
  }
  SSLINV_RETURN_IF_ERROR(PackPhases(p, w, &phases));

  std::vector<Region> regions;
  for (const PhaseWork& work : phases) {
    for (Region& rg : PhaseRegions(p, work)) regions.push_back(std::move(rg));
  }
  // Stride 1 without a border split: one region that is all of dx in NHWC order (a ReLU mask needs
  // the buffered tasks, whose scatter applies it while the rows are in cache).
  if (regions.size() == 1 && p.stride_h == 1 && p.stride_w == 1 && ep.relu_y == nullptr) {
    return DgradInPlace(p, phases[0], dy, ep.residual, dx);
  }

  int64_t live_rows = 0;
  for (const Region& rg : regions) live_rows += rg.slices.empty() ? 0 : rg.rows(p.n);
  const int64_t rows = TaskRows(p, live_rows, ThreadPool::Get().num_threads());
  std::vector<DgradTask> tasks;
  for (const Region& rg : regions) {
    for (int64_t r0 = 0; r0 < rg.rows(p.n); r0 += rows) tasks.push_back({&rg, r0, std::min(rows, rg.rows(p.n) - r0)});
  }
  return RunDgradTasks(p, tasks, rows, dy, ep, dx);
}

Status Conv2dBackwardWeightNHWC(const Conv2dParams& p, const float* x, const float* dy, float* dw) {
  SSLINV_RETURN_IF_ERROR(ValidateConv2dParams(p));
  SSLINV_RETURN_IF_ERROR(CheckPanelRows());
  TapRect all;
  const std::vector<WgradRegion> regions = WgradRegions(p, &all);
  if (p.n == 0 || regions.empty()) {
    std::fill(dw, dw + p.k * p.c * p.r * p.s, 0.f);
    return Status::Ok();
  }
  const int64_t outputs = p.k * all.columns(p.c);
  const int groups = WgradGroups(p, outputs);
  // A 1x1 filter's one group is dw itself ([K, C] either way): no partial sums, no reduction.
  if (groups == 1 && p.r == 1 && p.s == 1) return WgradImages(p, x, dy, regions, all, 0, p.n, /*parallel=*/true, dw);
  HostArray<float> partial;
  SSLINV_RETURN_IF_ERROR(AllocFloats(&partial, groups * outputs, "weight gradient buffer"));
  if (groups == 1) {
    SSLINV_RETURN_IF_ERROR(WgradImages(p, x, dy, regions, all, 0, p.n, /*parallel=*/true, partial.get()));
  } else {
    // One group per task; each runs its GEMMs serially on its thread.
    std::vector<Status> st(static_cast<size_t>(groups));
    ThreadPool::Get().ParallelFor(groups, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        st[g] = WgradImages(p, x, dy, regions, all, p.n * g / groups, p.n * (g + 1) / groups, /*parallel=*/false,
                            partial.get() + g * outputs);
      }
    });
    for (const Status& s : st) SSLINV_RETURN_IF_ERROR(s);
  }
  ReduceWeightGrad(p, partial.get(), groups, all, dw);
  return Status::Ok();
}

}  // namespace sslinv
