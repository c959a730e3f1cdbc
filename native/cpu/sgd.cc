// SGD step and MoCo's momentum-encoder update (see ops/sgd.h for the arithmetic and why).
//
// fp-contract is off for this file: the update's plain products and sums must round one by one as
// PyTorch's do; the fused multiply-adds PyTorch does use are written out as std::fma. The SGD loop is
// compiled twice: for any x86-64 (std::fma is then glibc's fmaf, exact in software or on the FMA
// unit) and for AVX2+FMA, picked at run time (DetectCpuIsa), where it vectorises to vfmadd. Both
// round exactly once per fma, so every ISA gives the same bits.
#pragma GCC optimize("fp-contract=off")

#include "ops/sgd.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"

namespace sslinv {

namespace {

constexpr int64_t kGrain = int64_t{1} << 15;

// PyTorch's scalars for a float32 kernel: each Python float rounded to float32.
struct SgdScalars {
  float wd, momentum, damp1, neg_lr;
};

enum class MomentumMode { kNone, kFirst, kBuffer };

// One range of the step; the flags are template parameters so each variant is a branch-free loop.
template <bool kWd, MomentumMode kMode, bool kNesterov>
__attribute__((always_inline)) inline void SgdRange(const SgdScalars& s, const float* param, const float* grad,
                                                    const float* buf_in, float* param_out, float* buf_out,
                                                    int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    // d_p = d_p.add(param, alpha=weight_decay)
    float d = kWd ? std::fma(param[i], s.wd, grad[i]) : grad[i];
    if (kMode != MomentumMode::kNone) {
      // buf = clone(d_p) on the first step, else buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
      const float buf = kMode == MomentumMode::kFirst ? d : std::fma(d, s.damp1, buf_in[i] * s.momentum);
      buf_out[i] = buf;
      // nesterov: d_p = d_p.add(buf, alpha=momentum); else d_p = buf
      d = kNesterov ? std::fma(buf, s.momentum, d) : buf;
    }
    // param.add_(d_p, alpha=-lr)
    param_out[i] = std::fma(d, s.neg_lr, param[i]);
  }
}

// The same step in place: param and buf are read and then written at each index (buf is write-only
// on the first step). Separate from SgdRange because the compiler vectorises that one only after
// checking that its outputs do not overlap its inputs, which in-place arguments always do.
template <bool kWd, MomentumMode kMode, bool kNesterov>
__attribute__((always_inline)) inline void SgdRangeInPlace(const SgdScalars& s, float* param, const float* grad,
                                                           float* buf, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    float d = kWd ? std::fma(param[i], s.wd, grad[i]) : grad[i];
    if (kMode != MomentumMode::kNone) {
      const float v = kMode == MomentumMode::kFirst ? d : std::fma(d, s.damp1, buf[i] * s.momentum);
      buf[i] = v;
      d = kNesterov ? std::fma(v, s.momentum, d) : v;
    }
    param[i] = std::fma(d, s.neg_lr, param[i]);
  }
}

using RangeFn = void (*)(const SgdScalars&, const float*, const float*, const float*, float*, float*, int64_t,
                         int64_t);
using InPlaceFn = void (*)(const SgdScalars&, float*, const float*, float*, int64_t, int64_t);

template <bool kWd, MomentumMode kMode, bool kNesterov>
void SgdRangeGeneric(const SgdScalars& s, const float* p, const float* g, const float* bi, float* po, float* bo,
                     int64_t b, int64_t e) {
  SgdRange<kWd, kMode, kNesterov>(s, p, g, bi, po, bo, b, e);
}

#if defined(__x86_64__) || defined(__i386__)
template <bool kWd, MomentumMode kMode, bool kNesterov>
__attribute__((target("avx2,fma"))) void SgdRangeAvx2(const SgdScalars& s, const float* p, const float* g,
                                                       const float* bi, float* po, float* bo, int64_t b, int64_t e) {
  SgdRange<kWd, kMode, kNesterov>(s, p, g, bi, po, bo, b, e);
}
#endif

template <bool kWd, MomentumMode kMode, bool kNesterov>
void SgdInPlaceGeneric(const SgdScalars& s, float* p, const float* g, float* b, int64_t i0, int64_t i1) {
  SgdRangeInPlace<kWd, kMode, kNesterov>(s, p, g, b, i0, i1);
}

#if defined(__x86_64__) || defined(__i386__)
template <bool kWd, MomentumMode kMode, bool kNesterov>
__attribute__((target("avx2,fma"))) void SgdInPlaceAvx2(const SgdScalars& s, float* p, const float* g, float* b,
                                                         int64_t i0, int64_t i1) {
  SgdRangeInPlace<kWd, kMode, kNesterov>(s, p, g, b, i0, i1);
}
#endif

// Both variants of a (decay, mode, Nesterov) combination for this CPU.
struct SgdFns {
  RangeFn range;
  InPlaceFn in_place;
};

template <bool kWd, MomentumMode kMode, bool kNesterov>
SgdFns PickIsa() {
#if defined(__x86_64__) || defined(__i386__)
  if (DetectCpuIsa() != CpuIsa::kGeneric) {
    return {&SgdRangeAvx2<kWd, kMode, kNesterov>, &SgdInPlaceAvx2<kWd, kMode, kNesterov>};
  }
#endif
  return {&SgdRangeGeneric<kWd, kMode, kNesterov>, &SgdInPlaceGeneric<kWd, kMode, kNesterov>};
}

template <bool kWd>
SgdFns PickMode(MomentumMode mode, bool nesterov) {
  switch (mode) {
    case MomentumMode::kNone: return PickIsa<kWd, MomentumMode::kNone, false>();
    case MomentumMode::kFirst:
      return nesterov ? PickIsa<kWd, MomentumMode::kFirst, true>() : PickIsa<kWd, MomentumMode::kFirst, false>();
    case MomentumMode::kBuffer:
      return nesterov ? PickIsa<kWd, MomentumMode::kBuffer, true>() : PickIsa<kWd, MomentumMode::kBuffer, false>();
  }
  return PickIsa<kWd, MomentumMode::kNone, false>();
}

SgdFns Pick(const SgdParams& p, MomentumMode mode) {
  // PyTorch tests `weight_decay != 0` and `momentum != 0` (a zero decay is not an fma with 0, which
  // would turn -0 gradients into +0 and infinite parameters into NaN).
  return p.weight_decay != 0 ? PickMode<true>(mode, p.nesterov) : PickMode<false>(mode, p.nesterov);
}

// PyTorch's scalars for a float32 kernel: each Python float rounded to float32.
SgdScalars Scalars(const SgdParams& p) {
  SgdScalars s;
  s.wd = static_cast<float>(p.weight_decay);
  s.momentum = static_cast<float>(p.momentum);
  s.damp1 = static_cast<float>(1.0 - p.dampening);  // Python computes 1 - dampening in double
  s.neg_lr = static_cast<float>(-p.lr);
  return s;
}

bool FiniteNonNegative(double v) { return v >= 0 && std::isfinite(v); }

}  // namespace

Status ValidateSgdParams(const SgdParams& p) {
  // torch.optim.SGD's own checks, plus finiteness (an infinite rate would only produce NaNs).
  if (!FiniteNonNegative(p.lr)) return InvalidArgument("sgdStep: lr must be a finite number >= 0");
  if (!FiniteNonNegative(p.momentum)) return InvalidArgument("sgdStep: momentum must be a finite number >= 0");
  if (!FiniteNonNegative(p.weight_decay)) return InvalidArgument("sgdStep: weightDecay must be a finite number >= 0");
  if (!std::isfinite(p.dampening)) return InvalidArgument("sgdStep: dampening must be a finite number");
  if (p.nesterov && (p.momentum <= 0 || p.dampening != 0)) {
    return InvalidArgument("sgdStep: Nesterov momentum requires a momentum > 0 and zero dampening");
  }
  return Status::Ok();
}

Status SgdStepF32(const SgdParams& p, const float* param, const float* grad, const float* buf_in, float* param_out,
                  float* buf_out, int64_t n) {
  SSLINV_RETURN_IF_ERROR(ValidateSgdParams(p));
  if (n < 0) return InvalidArgument("sgdStep: negative size");
  const bool use_momentum = p.momentum != 0;
  if (use_momentum && buf_out == nullptr) return InvalidArgument("sgdStep: momentum needs a buffer output");
  const SgdScalars s = Scalars(p);
  const MomentumMode mode =
      !use_momentum ? MomentumMode::kNone : buf_in == nullptr ? MomentumMode::kFirst : MomentumMode::kBuffer;
  const RangeFn fn = Pick(p, mode).range;
  ForRange(true, n, kGrain, [&](int64_t b, int64_t e) { fn(s, param, grad, buf_in, param_out, buf_out, b, e); });
  return Status::Ok();
}

Status SgdStepInPlaceF32(const SgdParams& p, const std::vector<SgdInPlaceTensor>& ts) {
  SSLINV_RETURN_IF_ERROR(ValidateSgdParams(p));
  const bool use_momentum = p.momentum != 0;
  std::vector<int64_t> start(ts.size() + 1, 0);  // element offsets of the tensors in one range
  std::vector<InPlaceFn> fn(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const SgdInPlaceTensor& t = ts[i];
    if (t.n < 0) return InvalidArgument("sgdStepInPlace: negative size");
    if (use_momentum && t.buf == nullptr) return InvalidArgument("sgdStepInPlace: momentum needs a buffer");
    const MomentumMode mode =
        !use_momentum ? MomentumMode::kNone : t.buf_is_new ? MomentumMode::kFirst : MomentumMode::kBuffer;
    fn[i] = Pick(p, mode).in_place;
    start[i + 1] = start[i] + t.n;
  }
  const SgdScalars s = Scalars(p);
  // One parallel range over all the elements (a network's parameters in one pool region, not one per
  // tensor); a chunk walks the tensors it spans. Each element's update is independent of the others,
  // so the split never changes a bit.
  ForRange(true, start.back(), kGrain, [&](int64_t b, int64_t e) {
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
    for (; b < e; ++i) {
      const int64_t lo = b - start[i], hi = std::min(e, start[i + 1]) - start[i];
      if (lo < hi) fn[i](s, ts[i].param, ts[i].grad, ts[i].buf, lo, hi);
      b = start[i] + hi;
    }
  });
  return Status::Ok();
}

Status MomentumUpdateInPlaceF32(const std::vector<MomentumInPlaceTensor>& ts, double m) {
  if (!(m >= 0 && m <= 1)) return InvalidArgument("momentumUpdateInPlace: m must be in [0, 1]");
  std::vector<int64_t> start(ts.size() + 1, 0);
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i].n < 0) return InvalidArgument("momentumUpdateInPlace: negative size");
    start[i + 1] = start[i] + ts[i].n;
  }
  const float mk = static_cast<float>(m), mq = static_cast<float>(1.0 - m);
  // One parallel range over every element, as in SgdStepInPlaceF32.
  ForRange(true, start.back(), kGrain, [&](int64_t b, int64_t e) {
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
    for (; b < e; ++i) {
      const int64_t lo = b - start[i], hi = std::min(e, start[i + 1]) - start[i];
      float* k = ts[i].k;
      const float* q = ts[i].q;
      for (int64_t j = lo; j < hi; ++j) {
        const float a = k[j] * mk;
        const float c = q[j] * mq;
        k[j] = a + c;
      }
      b = start[i] + hi;
    }
  });
  return Status::Ok();
}

Status MomentumUpdateF32(const float* k, const float* q, double m, float* out, int64_t n) {
  if (!(m >= 0 && m <= 1)) return InvalidArgument("momentumUpdate: m must be in [0, 1]");
  if (n < 0) return InvalidArgument("momentumUpdate: negative size");
  // param_k * m + param_q * (1. - m): each Python float rounded to float32 for the float32 multiply.
  const float mk = static_cast<float>(m), mq = static_cast<float>(1.0 - m);
  ForRange(true, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float a = k[i] * mk;
      const float c = q[i] * mq;
      out[i] = a + c;
    }
  });
  return Status::Ok();
}

}  // namespace sslinv
