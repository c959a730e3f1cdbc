// Implicit-GEMM convolution for NHWC activations (see ops/conv2d.h).
#include "ops/conv2d.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "core/host_allocator.h"
#include "core/threadpool.h"
#include "cpu/conv_taps.h"
#include "cpu/pack_avx512.h"

namespace sslinv {

namespace {

constexpr int kMaxPanelColumns = 32;  // the widest GEMM tile (nr) of gemm_kernels.cc

// A rectangle of output positions: rows p0 .. p0 + rows - 1, columns q0 .. q0 + cols - 1 of every image.
struct OutputRect {
  int64_t p0, rows, q0, cols;
};

// Gathers im2col rows of an NHWC input straight into the GEMM's mr-interleaved A panels (GEMM row m
// = output pixel (n, p, q), GEMM-K = taps (r, s, c)); taps that fall in the padding are zero. In NHWC
// the S*C values of one kernel row r of a window are contiguous in x, less the columns that fall in
// the padding at the left or right border. With a rectangle, GEMM row m is its m-th pixel (image by
// image, row-major inside the rectangle) instead of the m-th pixel of the whole output.
class Im2colPacker : public APacker {
 public:
  Im2colPacker(const Conv2dParams& p, const float* x)
      : Im2colPacker(p, x, OutputRect{0, p.out_h(), 0, p.out_w()}) {}
  Im2colPacker(const Conv2dParams& p, const float* x, const OutputRect& rect)
      : p_(p), x_(x), rect_(rect), pq_(rect.rows * rect.cols), transpose_(UseAvx512()) {}

  void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const override {
#if defined(__x86_64__)
    if (transpose_ && mr <= 16) {
      PackTransposed(m0, rows, k0, kc, mr, dst);
      return;
    }
#endif
    PackScalar(m0, rows, k0, kc, mr, dst);
  }

 private:
  // The image and the top-left input position of GEMM row m's window.
  void Origin(int64_t m, const float** image, int64_t* ih0, int64_t* iw0) const {
    const int64_t n = m / pq_, pq = m % pq_, Q = rect_.cols;
    *image = x_ + n * p_.h * p_.w * p_.c;
    *ih0 = (rect_.p0 + pq / Q) * p_.stride_h - p_.pad_h;
    *iw0 = (rect_.q0 + pq % Q) * p_.stride_w - p_.pad_w;
  }

#if defined(__x86_64__)
  // GEMM-K goes in pieces of at most 16 floats that stay inside one kernel row; each piece of the 16
  // rows is one masked load per row (lanes in the padding are zero) and one register transposition
  // (pack_avx512.h). A window row cut by the left border is loaded with an expand-load from its first
  // column inside the image, so no address before the row's start is formed.
  SSLINV_AVX512 void PackTransposed(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const {
    const int64_t C = p_.c, S = p_.s, W = p_.w, row_len = S * C;
    const float* image[16];
    const float* row[16];  // window row r of each GEMM row, at its first tap (s = 0), or null
    int64_t ih0[16], iw0[16], lo[16], hi[16];  // lanes [lo, hi) of a kernel row lie inside the image
    for (int i = 0; i < rows; ++i) {
      Origin(m0 + i, &image[i], &ih0[i], &iw0[i]);
      lo[i] = std::clamp<int64_t>(-iw0[i], 0, S) * C;
      hi[i] = std::max(lo[i], std::clamp<int64_t>(W - iw0[i], 0, S) * C);
    }
    int64_t r = k0 / row_len, pos = k0 % row_len;
    auto set_rows = [&] {
      for (int i = 0; i < rows; ++i) {
        const int64_t ih = ih0[i] + r;
        row[i] = ih >= 0 && ih < p_.h ? image[i] + ih * W * C : nullptr;
      }
    };
    set_rows();
    for (int kk = 0; kk < kc;) {
      const int len = static_cast<int>(std::min<int64_t>({16, row_len - pos, kc - kk}));
      __m512 v[16];
      for (int i = 0; i < 16; ++i) {
        v[i] = _mm512_setzero_ps();
        if (i >= rows || row[i] == nullptr) continue;
        const int64_t a = std::max<int64_t>(lo[i] - pos, 0), b = std::min<int64_t>(hi[i] - pos, len);
        if (a >= b) continue;
        const __mmask16 m = static_cast<__mmask16>(((1u << b) - 1) & ~((1u << a) - 1));
        const float* src = row[i] + iw0[i] * C + pos + a;  // the piece's first value inside the image
        v[i] = a == 0 ? _mm512_maskz_loadu_ps(m, src) : _mm512_maskz_expandloadu_ps(m, src);
      }
      StoreTransposed16(v, mr, len, dst + static_cast<int64_t>(kk) * mr, mr);
      kk += len;
      pos += len;
      if (pos == row_len) {
        pos = 0;
        ++r;
        if (kk < kc) set_rows();
      }
    }
  }
#endif

  // Without AVX-512: each run of consecutive floats of one row goes with a strided scalar store.
  void PackScalar(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const {
    const int64_t C = p_.c, S = p_.s;
    const int64_t row_len = S * C;  // GEMM-K elements per kernel row r
    const int64_t r0 = k0 / row_len, pos0 = k0 % row_len;
    for (int i = 0; i < rows; ++i) {
      const float* xn;
      int64_t ih0, iw0;
      Origin(m0 + i, &xn, &ih0, &iw0);
      // A window row wholly inside the image copies as one run; border windows go one tap at a time.
      const bool interior = iw0 >= 0 && iw0 + S <= p_.w;
      int64_t r = r0, pos = pos0;
      for (int kk = 0; kk < kc;) {
        const int64_t ih = ih0 + r;
        int run;
        float* d = dst + static_cast<int64_t>(kk) * mr + i;
        if (ih < 0 || ih >= p_.h) {
          run = static_cast<int>(std::min<int64_t>(row_len - pos, kc - kk));
          for (int t = 0; t < run; ++t) d[t * mr] = 0.f;
        } else if (interior) {
          run = static_cast<int>(std::min<int64_t>(row_len - pos, kc - kk));
          const float* src = xn + (ih * p_.w + iw0) * C + pos;
          for (int t = 0; t < run; ++t) d[t * mr] = src[t];
        } else {
          const int64_t s = pos / C, c = pos % C;
          const int64_t iw = iw0 + s;
          run = static_cast<int>(std::min<int64_t>(C - c, kc - kk));
          if (iw >= 0 && iw < p_.w) {
            const float* src = xn + (ih * p_.w + iw) * C + c;
            for (int t = 0; t < run; ++t) d[t * mr] = src[t];
          } else {
            for (int t = 0; t < run; ++t) d[t * mr] = 0.f;
          }
        }
        kk += run;
        pos += run;
        if (pos == row_len) {
          pos = 0;
          ++r;
        }
      }
    }
    for (int i = rows; i < mr; ++i) {
      for (int kk = 0; kk < kc; ++kk) dst[static_cast<int64_t>(kk) * mr + i] = 0.f;
    }
  }

  Conv2dParams p_;
  const float* x_;
  OutputRect rect_;
  int64_t pq_;
  bool transpose_;
};

// Kernel taps (r, s) that fall in the padding for every output position multiply only zeros. When
// the taps that can touch the image form one contiguous run of GEMM-K (all of kernel rows r0..r1, or
// columns s0..s1 of a single row), returns that run: e.g. a 3x3 convolution of a 1x1 map (the last
// ResNet stage on 32x32 inputs) needs only its centre tap, 1/9 of the work.
bool LiveTapSlice(const Conv2dParams& p, int64_t* k_begin, int64_t* k_end) {
  const int64_t P = p.out_h(), Q = p.out_w();
  const int64_t r0 = std::max<int64_t>(0, p.pad_h - (P - 1) * p.stride_h), r1 = std::min(p.r - 1, p.h - 1 + p.pad_h);
  const int64_t s0 = std::max<int64_t>(0, p.pad_w - (Q - 1) * p.stride_w), s1 = std::min(p.s - 1, p.w - 1 + p.pad_w);
  if (r0 > r1 || s0 > s1) return false;
  if (s0 == 0 && s1 == p.s - 1) {
    *k_begin = r0 * p.s * p.c;
    *k_end = (r1 + 1) * p.s * p.c;
    return true;
  }
  if (r0 == r1) {
    *k_begin = (r0 * p.s + s0) * p.c;
    *k_end = (r0 * p.s + s1 + 1) * p.c;
    return true;
  }
  return false;
}

// A rectangle of output positions whose windows all keep the same taps, and the GEMM-K slices that
// hold those taps ([k_begin, k_end), in K order, disjoint): each kernel row's run of live taps (one
// run for whole kernel rows), widened to whole packed blocks of B (kc rows of K; the last block
// ends at K), adjacent or overlapping runs merged. No slice: every tap is in the padding.
struct BorderRegion {
  OutputRect rect;
  std::vector<std::pair<int64_t, int64_t>> slices;
  int64_t live_k() const {
    int64_t k = 0;
    for (const auto& s : slices) k += s.second - s.first;
    return k;
  }
};

// On small maps a large share of a window's taps falls in the padding (a 3x3 convolution wastes 31%
// of its multiply-adds on a 4x4 map, 56% on a 2x2 one). Each region of output positions with the
// same taps runs the GEMM over the packed blocks of B that hold its live taps only (whole blocks:
// with C a multiple of the GEMM's kc every block is one tap's, with fewer channels a block spans
// several taps and is skipped only when all are dead). Returns the regions when that saves at least
// a fifth of the multiply-adds, else nothing (the plain GEMM then runs).
// The sums are the plain GEMM's: a skipped block adds exact zeros there, a kept dead tap too, and
// the blocks that remain keep their order.
std::vector<BorderRegion> BorderRegions(const Conv2dParams& p) {
  const int64_t kc = CurrentGemmBlocking().kc, K = p.r * p.s * p.c;
  if (p.r * p.s == 1) return {};
  const auto add_run = [&](std::vector<std::pair<int64_t, int64_t>>* slices, int64_t b, int64_t e) {
    b = b / kc * kc;
    e = std::min(K, (e + kc - 1) / kc * kc);
    if (!slices->empty() && slices->back().second >= b) {
      slices->back().second = std::max(slices->back().second, e);
    } else {
      slices->push_back({b, e});
    }
  };
  const std::vector<conv_taps::Segment> hr = conv_taps::OutputSegments(p.out_h(), p.r, p.stride_h, p.pad_h, p.h);
  const std::vector<conv_taps::Segment> wr = conv_taps::OutputSegments(p.out_w(), p.s, p.stride_w, p.pad_w, p.w);
  std::vector<BorderRegion> regions;
  int64_t split_work = 0;
  for (const conv_taps::Segment& a : hr) {
    for (const conv_taps::Segment& b : wr) {
      BorderRegion rg{{a.first, a.count, b.first, b.count}, {}};
      if (a.t_begin < a.t_end && b.t_begin < b.t_end) {
        if (b.t_begin == 0 && b.t_end == p.s) {
          add_run(&rg.slices, a.t_begin * p.s * p.c, a.t_end * p.s * p.c);
        } else {
          for (int64_t r = a.t_begin; r < a.t_end; ++r) add_run(&rg.slices, (r * p.s + b.t_begin) * p.c, (r * p.s + b.t_end) * p.c);
        }
      }
      split_work += a.count * b.count * rg.live_k();
      regions.push_back(std::move(rg));
    }
  }
  const int64_t whole_work = p.out_h() * p.out_w() * p.r * p.s * p.c;
  if (5 * split_work > 4 * whole_work) return {};
  return regions;
}

// y = epilogue(conv(x, w)) region by region: each region's GEMM (one call per slice, accumulating in
// K order) into `buf`, then its rows to their pixels of y with the epilogue applied as the GEMM's
// own epilogue applies it (sum, + bias, + residual, then ReLU).
Status ForwardByRegions(const Conv2dParams& p, const float* x, const float* packed_w, const GemmEpilogue& ep,
                        const std::vector<BorderRegion>& regions, float* y) {
  const int64_t K = p.r * p.s * p.c, P = p.out_h(), Q = p.out_w(), ko = p.k;
  int64_t most = 0;
  for (const BorderRegion& rg : regions) most = std::max(most, p.n * rg.rect.rows * rg.rect.cols);
  HostArray<float> buf(static_cast<size_t>(std::max<int64_t>(1, most * ko)));
  if (!buf) return OutOfMemory("conv2d: could not allocate the border regions' buffer");
  for (const BorderRegion& rg : regions) {
    const OutputRect& rc = rg.rect;
    const int64_t rows = p.n * rc.rows * rc.cols;
    if (rg.slices.empty()) {
      std::fill(buf.get(), buf.get() + rows * ko, 0.f);
    } else {
      Im2colPacker a(p, x, rc);
      GemmEpilogue sum;  // plain sums; the epilogue comes with the scatter below
      for (const auto& slice : rg.slices) {
        SSLINV_RETURN_IF_ERROR(GemmPackedBSlice(rows, ko, K, slice.first, slice.second, a, packed_w, buf.get(), ko, sum));
        sum.accumulate = true;
      }
    }
    ForRange(true, rows, std::max<int64_t>(1, 16384 / ko), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t n = i / (rc.rows * rc.cols), pq = i % (rc.rows * rc.cols);
        const int64_t pixel = (n * P + rc.p0 + pq / rc.cols) * Q + rc.q0 + pq % rc.cols;
        const float* src = buf.get() + i * ko;
        float* dst = y + pixel * ko;
        const float* res = ep.residual ? ep.residual + pixel * ep.ld_residual : nullptr;
        for (int64_t j = 0; j < ko; ++j) {
          float v = src[j];
          if (ep.bias) v = v + ep.bias[j];
          if (res) v = v + res[j];
          if (ep.relu) v = v > 0.f ? v : 0.f;
          dst[j] = v;
        }
      }
    });
  }
  return Status::Ok();
}

}  // namespace

Status ValidateConv2dParams(const Conv2dParams& p) {
  if (p.n < 0 || p.h <= 0 || p.w <= 0 || p.c <= 0 || p.k <= 0 || p.r <= 0 || p.s <= 0) {
    return InvalidArgument("conv2d: sizes must be positive");
  }
  if (p.stride_h <= 0 || p.stride_w <= 0) return InvalidArgument("conv2d: stride must be >= 1");
  if (p.pad_h < 0 || p.pad_w < 0) return InvalidArgument("conv2d: padding must be >= 0");
  if (p.h + 2 * p.pad_h < p.r || p.w + 2 * p.pad_w < p.s) {
    return ShapeMismatch("conv2d: the kernel is larger than the padded input");
  }
  return Status::Ok();
}

namespace {
// Packed weights start with a 16-float header (64 bytes, so the panels stay aligned) recording what
// they were packed for; conv2d refuses weights packed for another shape or micro-kernel.
constexpr int64_t kHeaderFloats = 16;
constexpr int32_t kPackMagic = 0x4E495353;  // "SSIN"

void WriteHeader(float* packed, int64_t k, int64_t c, int64_t r, int64_t s) {
  const GemmBlocking& b = CurrentGemmBlocking();
  int32_t h[kHeaderFloats] = {kPackMagic, static_cast<int32_t>(k), static_cast<int32_t>(c), static_cast<int32_t>(r),
                              static_cast<int32_t>(s), b.nr, b.kc};
  std::memcpy(packed, h, sizeof(h));
}

}  // namespace

Status CheckConv2dPackedWeights(const float* packed, const Conv2dParams& p) {
  int32_t h[kHeaderFloats];
  std::memcpy(h, packed, sizeof(h));
  const GemmBlocking& b = CurrentGemmBlocking();
  if (h[0] != kPackMagic || h[5] != b.nr || h[6] != b.kc) {
    return InvalidArgument("conv2d: the weights were not packed by packConvWeights for this CPU");
  }
  if (h[1] != p.k || h[2] != p.c || h[3] != p.r || h[4] != p.s) {
    std::string m = "conv2d: the weights were packed for [" + std::to_string(h[1]) + ", " + std::to_string(h[2]) + ", " +
                    std::to_string(h[3]) + ", " + std::to_string(h[4]) + "] but the call needs [" + std::to_string(p.k) +
                    ", " + std::to_string(p.c) + ", " + std::to_string(p.r) + ", " + std::to_string(p.s) + "]";
    return ShapeMismatch(m);
  }
  return Status::Ok();
}

int64_t Conv2dPackedWeightFloats(int64_t k, int64_t c, int64_t r, int64_t s) {
  return kHeaderFloats + PackedBFloats(r * s * c, k);
}

namespace {

// One K block (GEMM-K rows [k0, k0 + kcb), i.e. taps (r, s, c) in that order) of one panel of nr
// output channels, straight from w [K, C, R, S]: dst[kk * nr + j] = w[n0 + j, c, r, s] (* scale),
// zero past K. The portable path: one scalar store per value.
void PackWeightBlockScalar(const float* w, int64_t k, int64_t c, int64_t rs, int64_t n0, int nr, int64_t k0,
                           int64_t kcb, const float* scale, float* dst) {
  const int64_t crs = c * rs;
  for (int j = 0; j < nr; ++j) {
    const int64_t n = n0 + j;
    float* d = dst + j;
    if (n >= k) {
      for (int64_t kk = 0; kk < kcb; ++kk) d[kk * nr] = 0.f;
      continue;
    }
    const float* src = w + n * crs;
    const float sc = scale ? scale[n] : 1.f;
    int64_t tap = k0 / c, ch = k0 % c;  // GEMM-K row k0 + kk is (tap = r * S + s, channel ch)
    for (int64_t kk = 0; kk < kcb; ++kk) {
      const float v = src[ch * rs + tap];
      d[kk * nr] = scale ? v * sc : v;  // the same single product as packing a scaled copy
      if (++ch == c) {
        ch = 0;
        ++tap;
      }
    }
  }
}

#if defined(__x86_64__)
// d[t * c + ch] = src[ch * rs + t]: one output channel's [C, R*S] filter to [R*S, C] (GEMM-K order).
// With R*S <= 16, 16 channels at a time are 16 masked loads of R*S floats and one transposition.
SSLINV_AVX512 void ReorderFilterToTapMajor(const float* src, int64_t c, int64_t rs, float* d) {
  int64_t ch = 0;
  if (rs <= 16) {
    const __mmask16 m = static_cast<__mmask16>((1u << rs) - 1);
    for (; ch + 16 <= c; ch += 16) {
      __m512 v[16];
      for (int i = 0; i < 16; ++i) v[i] = _mm512_maskz_loadu_ps(m, src + (ch + i) * rs);
      StoreTransposed16(v, 16, static_cast<int>(rs), d + ch, c);
    }
  }
  for (; ch < c; ++ch) {
    for (int64_t t = 0; t < rs; ++t) d[t * c + ch] = src[ch * rs + t];
  }
}

// All K blocks of one panel with AVX-512. Each of the panel's output channels becomes a row of R*S*C
// floats in GEMM-K order: w's own row for a 1x1 filter, else its [C, R*S] block transposed into
// `scratch` (nr * R*S*C floats). Then 16 channels x 16 GEMM-K rows at a time go through a register
// transposition into the panel (pack_avx512.h), instead of one strided scalar store per value.
SSLINV_AVX512 void PackWeightPanelAvx512(const float* w, int64_t k, int64_t c, int64_t rs, int64_t n0, int nr,
                                         const float* scale, int kc, int64_t panels, float* out, float* scratch) {
  const int64_t rsc = rs * c;
  const float* row[kMaxPanelColumns];
  for (int j = 0; j < nr; ++j) {
    const int64_t n = n0 + j;
    if (n >= k) {
      row[j] = nullptr;
    } else if (rs == 1) {
      row[j] = w + n * c;
    } else {
      ReorderFilterToTapMajor(w + n * rsc, c, rs, scratch + j * rsc);
      row[j] = scratch + j * rsc;
    }
  }
  for (int64_t k0 = 0; k0 < rsc; k0 += kc) {
    const int64_t kcb = std::min<int64_t>(kc, rsc - k0);
    float* dst = out + k0 * panels * nr + (n0 / nr) * kcb * nr;
    for (int64_t kk = 0; kk < kcb; kk += 16) {
      const int len = static_cast<int>(std::min<int64_t>(16, kcb - kk));
      const __mmask16 m = static_cast<__mmask16>((1u << len) - 1);
      for (int j0 = 0; j0 < nr; j0 += 16) {
        __m512 v[16];
        for (int i = 0; i < 16; ++i) {
          const float* src = row[j0 + i];
          v[i] = src ? _mm512_maskz_loadu_ps(m, src + k0 + kk) : _mm512_setzero_ps();
          // The same single product as the scalar path.
          if (src && scale) v[i] = _mm512_mul_ps(v[i], _mm512_set1_ps(scale[n0 + j0 + i]));
        }
        StoreTransposed16(v, 16, len, dst + kk * nr + j0, nr);
      }
    }
  }
}
#endif

}  // namespace

Status Conv2dPackWeights(const float* w, int64_t k, int64_t c, int64_t r, int64_t s, const float* scale,
                         float* packed) {
  // B = w reordered to [R*S*C, K] (GEMM-K over (r, s, c) like the im2col rows), packed in PackB's
  // layout: for each block of kc rows, for each panel of nr output channels, kcb x nr values. The
  // panels are independent, so they are packed in parallel straight from [K, C, R, S]; the weights
  // change every training step, so this runs once per forward and must not cost a serial pass.
  const GemmBlocking& b = CurrentGemmBlocking();
  const int64_t rsc = r * s * c, panels = (k + b.nr - 1) / b.nr, blocks = (rsc + b.kc - 1) / b.kc;
  WriteHeader(packed, k, c, r, s);
  float* out = packed + kHeaderFloats;
#if defined(__x86_64__)
  if (UseAvx512() && b.nr % 16 == 0 && b.nr <= kMaxPanelColumns) {
    // One task per panel; a task's scratch holds its channels' reordered filters (590 KB for a
    // 512 x 512 x 3 x 3 filter's panel), so it stays in L2 while its blocks are packed.
    std::atomic<bool> oom{false};
    // Small filters pack inline: waking the pool costs more than they do.
    ForRange(true, panels, GrainFor(rsc * b.nr, int64_t{1} << 16), [&](int64_t p0, int64_t p1) {
      HostArray<float> scratch(static_cast<size_t>(r * s == 1 ? 1 : b.nr * rsc));
      if (!scratch) {
        oom = true;
        return;
      }
      for (int64_t jp = p0; jp < p1; ++jp) {
        PackWeightPanelAvx512(w, k, c, r * s, jp * b.nr, b.nr, scale, b.kc, panels, out, scratch.get());
      }
    });
    if (oom) return OutOfMemory("conv2d: could not allocate the weight packing scratch");
    return Status::Ok();
  }
#endif
  // A panel's K blocks are consecutive tasks: its nr output channels' weights (nr * C*R*S floats,
  // 590 KB for 512 x 512 x 3 x 3) then stay in L2 across the blocks. Each block reads only one tap's
  // value out of every R*S, so visiting the panels first would pull each cache line R*S times from L3.
  ForRange(true, blocks * panels, GrainFor(int64_t{b.kc} * b.nr, 1 << 14), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t jp = t / blocks, kb = t % blocks;
      const int64_t k0 = kb * b.kc, kcb = std::min<int64_t>(b.kc, rsc - k0);
      float* dst = out + k0 * panels * b.nr + jp * kcb * b.nr;
      PackWeightBlockScalar(w, k, c, r * s, jp * b.nr, b.nr, k0, kcb, scale, dst);
    }
  });
  return Status::Ok();
}

Status Conv2dForwardNHWC(const Conv2dParams& p, const float* x, const float* packed_w, const GemmEpilogue& ep,
                         float* y) {
  SSLINV_RETURN_IF_ERROR(ValidateConv2dParams(p));
  SSLINV_RETURN_IF_ERROR(CheckConv2dPackedWeights(packed_w, p));
  packed_w += kHeaderFloats;
  const int64_t M = p.n * p.out_h() * p.out_w();
  const int64_t K = p.r * p.s * p.c;
  GemmEpilogue e = ep;
  if (e.residual) e.ld_residual = p.k;
  // A 1x1 stride-1 convolution is a plain GEMM over x viewed as [N*H*W, C]; the im2col packer's
  // transposition packs it faster than the generic matrix packer when AVX-512 is there.
  if (p.r == 1 && p.s == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0 && !UseAvx512()) {
    MatrixAPacker a(x, p.c, false);
    return GemmPackedB(M, p.k, K, a, packed_w, y, p.k, e);
  }
  Im2colPacker a(p, x);
  int64_t k_begin = 0, k_end = K;
  if (LiveTapSlice(p, &k_begin, &k_end) && (k_begin != 0 || k_end != K)) {
    const int kc = CurrentGemmBlocking().kc;
    if (k_begin % kc == 0 && (k_end % kc == 0 || k_end == K)) {
      return GemmPackedBSlice(M, p.k, K, k_begin, k_end, a, packed_w, y, p.k, e);
    }
  }
  // Taps in the padding for some output positions only (or live taps that are not one run of K).
  const std::vector<BorderRegion> regions = BorderRegions(p);
  if (!regions.empty()) return ForwardByRegions(p, x, packed_w, e, regions, y);
  return GemmPackedB(M, p.k, K, a, packed_w, y, p.k, e);
}

}  // namespace sslinv
