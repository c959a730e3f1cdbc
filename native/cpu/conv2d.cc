// Implicit-GEMM convolution for NHWC activations (see ops/conv2d.h).
#include "ops/conv2d.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

namespace sslinv {

namespace {

// Gathers im2col rows of an NHWC input straight into the GEMM's mr-interleaved A panels. Each run of
// consecutive channels of one input pixel is copied at once; taps that fall in the padding are zero.
class Im2colPacker : public APacker {
 public:
  Im2colPacker(const Conv2dParams& p, const float* x) : p_(p), x_(x), pq_(p.out_h() * p.out_w()) {}

  void Pack(int64_t m0, int rows, int64_t k0, int kc, int mr, float* dst) const override {
    const int64_t C = p_.c, S = p_.s, Q = p_.out_w();
    const int64_t row_len = S * C;  // GEMM-K elements per kernel row r
    const int64_t r0 = k0 / row_len, pos0 = k0 % row_len;
    for (int i = 0; i < rows; ++i) {
      const int64_t m = m0 + i;
      const int64_t n = m / pq_, pq = m % pq_;
      const int64_t ih0 = (pq / Q) * p_.stride_h - p_.pad_h;
      const int64_t iw0 = (pq % Q) * p_.stride_w - p_.pad_w;
      // In NHWC the taps (s, c) of one kernel row are contiguous in memory when the whole row of the
      // window is inside the image, so they copy as one run; border windows go one tap at a time.
      const bool interior = iw0 >= 0 && iw0 + S <= p_.w;
      const float* xn = x_ + n * p_.h * p_.w * C;
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

 private:
  Conv2dParams p_;
  const float* x_;
  int64_t pq_;
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

Status Conv2dPackWeights(const float* w, int64_t k, int64_t c, int64_t r, int64_t s, const float* scale,
                         float* packed) {
  // Reorder [K, C, R, S] to [K, R, S, C] so GEMM-K runs over (r, s, c) like the im2col rows, then pack
  // B = that matrix transposed ([R*S*C, K]).
  const int64_t rsc = r * s * c;
  std::vector<float> krsc;
  try {
    krsc.resize(static_cast<size_t>(k * rsc));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("conv2d: could not allocate the weight reorder buffer");
  }
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t cc = 0; cc < c; ++cc) {
      for (int64_t rr = 0; rr < r; ++rr) {
        for (int64_t ss = 0; ss < s; ++ss) {
          krsc[kk * rsc + (rr * s + ss) * c + cc] = w[((kk * c + cc) * r + rr) * s + ss];
        }
      }
    }
  }
  WriteHeader(packed, k, c, r, s);
  PackB(krsc.data(), rsc, /*transB=*/true, rsc, k, scale, packed + kHeaderFloats);
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
  if (p.r == 1 && p.s == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0) {
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
  return GemmPackedB(M, p.k, K, a, packed_w, y, p.k, e);
}

}  // namespace sslinv
