// Train-mode batch norm and the backward passes of ReLU, pooling and biases (see ops/layer_backward.h).
//
// Per-channel reductions over [rows, C] run in fixed blocks of rows (BlockRows: about 64K elements,
// a function of C alone), each summed in float64 into its own partial, the partials then added in
// block order on the calling thread (the forward's statistics merge each block's mean and squared
// deviations instead, see BatchStats). Blocks rather than channel slices, because the early ResNet
// layers have few channels (64) and millions of rows: slicing channels would leave cores idle, and
// reading whole rows keeps the loads contiguous. Fixed blocks (not one per thread) keep the bits
// independent of the thread count. Element-wise passes split rows across the pool; max-pool backward
// splits (image, channel block) pairs, whose dx regions are disjoint.
//
// Batch norm over groups of rows (split batch norm) runs the reductions group by group on the
// group's rows, with the blocks counted from the group's first row, so every group gets exactly the
// bits of a call on its rows alone; the element-wise passes cover all rows at once, each part of a
// chunk with its own group's factors.
//
// The batch-norm passes and the max-pool backward have AVX-512 versions (one lane per channel) that
// do exactly the scalar loops' operations in the same order, so either gives the same bits
// (test/backward/fused.test.ts compares them); fp-contract is off for this
// file so that no product and sum is fused into one rounding on either path.
#pragma GCC optimize("fp-contract=off")

#include "ops/layer_backward.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "cpu/pack_avx512.h"

namespace sslinv {

namespace {

constexpr int64_t kBlockElems = int64_t{1} << 16;  // elements per reduction block
constexpr int64_t kGrain = int64_t{1} << 15;       // elements per parallel chunk of element-wise passes
constexpr int64_t kPoolChannelBlock = 64;          // channels per max-pool backward task

int64_t BlockRows(int64_t c) { return std::max<int64_t>(1, kBlockElems / std::max<int64_t>(c, 1)); }

// out[0 .. width) = the sum over row blocks of fn(r0, r1, partial), where fn adds rows [r0, r1) into
// a zeroed float64 partial of `width` values. See the header comment for why blocks.
template <typename Fn>
Status ReduceRowBlocks(int64_t rows, int64_t c, int64_t width, const Fn& fn, double* out) {
  std::fill(out, out + width, 0.0);
  const int64_t br = BlockRows(c);
  const int64_t nblocks = (rows + br - 1) / br;
  if (nblocks <= 1) {
    // One block: its partial is the result (0 + v == v, so the bits match the general path).
    if (rows > 0) fn(int64_t{0}, rows, out);
    return Status::Ok();
  }
  std::vector<double> part;
  try {
    part.assign(static_cast<size_t>(nblocks * width), 0.0);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("batch-norm reduction: cannot allocate " + std::to_string(nblocks * width * 8) + " bytes");
  }
  ForRange(true, nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fn(b * br, std::min(rows, (b + 1) * br), part.data() + b * width);
  });
  for (int64_t b = 0; b < nblocks; ++b) {
    const double* pb = part.data() + b * width;
    for (int64_t j = 0; j < width; ++j) out[j] += pb[j];
  }
  return Status::Ok();
}

Status CheckRowsC(const char* op, int64_t rows, int64_t c, int64_t min_rows) {
  if (c <= 0) return InvalidArgument(std::string(op) + ": the channel dimension must be >= 1");
  if (rows < min_rows) {
    return ShapeMismatch(std::string(op) + ": expected more than 1 value per channel when training, got " +
                         std::to_string(rows));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- per-channel row kernels
//
// Each takes rows [r0, r1) of [rows, c] tensors. The reductions add into float64 partials acc[c]
// row by row (the order of the block reduction above); the element-wise ones write rows [r0, r1).

// threshold_backward's mask: dy where the ReLU's output y is > 0 or NaN, else +0.
inline float ReluGrad(float dy, float y) { return y <= 0.f ? 0.f : dy; }
// torch.relu: NaN stays NaN, -0 becomes +0.
inline float Relu(float v) { return (v > 0.f || v != v) ? v : 0.f; }

void ColumnSumsScalar(const float* x, int64_t r0, int64_t r1, int64_t c, double* acc) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    for (int64_t j = 0; j < c; ++j) acc[j] += static_cast<double>(xr[j]);
  }
}

void ColumnSqDevScalar(const float* x, int64_t r0, int64_t r1, int64_t c, const double* m, double* acc) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    for (int64_t j = 0; j < c; ++j) {
      const double d = static_cast<double>(xr[j]) - m[j];
      acc[j] += d * d;
    }
  }
}

// acc[0, c) += g, acc[c, 2c) += (x - mean) g, with g = dy (masked by the ReLU output when relu_y).
void BnBackwardSumsScalar(const float* dy, const float* relu_y, const float* x, int64_t r0, int64_t r1, int64_t c,
                          const float* mean, double* acc) {
  double* sdy = acc;
  double* dot = acc + c;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    const float* gr = dy + r * c;
    const float* yr = relu_y ? relu_y + r * c : nullptr;
    for (int64_t j = 0; j < c; ++j) {
      const double g = static_cast<double>(yr ? ReluGrad(gr[j], yr[j]) : gr[j]);
      sdy[j] += g;
      dot[j] += (static_cast<double>(xr[j]) - static_cast<double>(mean[j])) * g;
    }
  }
}

// y = (x - mean) * scale + bias (+ residual), then ReLU when asked.
void BnNormalizeScalar(const float* x, const float* residual, int64_t r0, int64_t r1, int64_t c, const float* mean,
                       const float* scale, const float* bias, bool relu, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    const float* res = residual ? residual + r * c : nullptr;
    float* yr = y + r * c;
    for (int64_t j = 0; j < c; ++j) {
      float v = (xr[j] - mean[j]) * scale[j] + bias[j];
      if (res) v = v + res[j];
      yr[j] = relu ? Relu(v) : v;
    }
  }
}

// dx = ((g - mdy) - (x - mean) * k) * a, g = dy (masked by the ReLU output when relu_y).
void BnBackwardDxScalar(const float* dy, const float* relu_y, const float* x, int64_t r0, int64_t r1, int64_t c,
                        const float* mean, const float* mdy, const float* k, const float* a, float* dx) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    const float* gr = dy + r * c;
    const float* yr = relu_y ? relu_y + r * c : nullptr;
    float* dr = dx + r * c;
    for (int64_t j = 0; j < c; ++j) {
      const float g = yr ? ReluGrad(gr[j], yr[j]) : gr[j];
      dr[j] = ((g - mdy[j]) - (xr[j] - mean[j]) * k[j]) * a[j];
    }
  }
}

#if defined(__x86_64__)
// The same loops with 16 channels per vector. The reductions keep 32 channels' float64 sums in
// registers over the rows (each channel's sum still runs row by row), a chunk of channels at a time;
// a block's rows are then read once per chunk, from L1/L2. Lanes past c are masked off.

SSLINV_AVX512 inline __mmask16 LaneMask(int64_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xFFFF : left <= 0 ? 0 : (1u << left) - 1);
}
SSLINV_AVX512 inline __m512d Lo(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
SSLINV_AVX512 inline __m512d Hi(__m512 v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }
SSLINV_AVX512 inline __m512d LoadD(const double* p, int64_t left) {
  return _mm512_maskz_loadu_pd(static_cast<__mmask8>(LaneMask(left)), p);
}
SSLINV_AVX512 inline void StoreD(double* p, int64_t left, __m512d v) {
  _mm512_mask_storeu_pd(p, static_cast<__mmask8>(LaneMask(left)), v);
}
// ReLU output mask: !(y <= 0), i.e. y > 0 or NaN.
SSLINV_AVX512 inline __m512 MaskedGrad(__m512 dy, const float* y, __mmask16 m) {
  const __m512 yv = _mm512_maskz_loadu_ps(m, y);
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(yv, _mm512_setzero_ps(), _CMP_NLE_UQ), dy);
}

SSLINV_AVX512 void ColumnSumsAvx512(const float* x, int64_t r0, int64_t r1, int64_t c, double* acc) {
  for (int64_t j = 0; j < c; j += 32) {
    const __mmask16 m0 = LaneMask(c - j), m1 = LaneMask(c - j - 16);
    __m512d a0 = LoadD(acc + j, c - j), a1 = LoadD(acc + j + 8, c - j - 8);
    __m512d a2 = LoadD(acc + j + 16, c - j - 16), a3 = LoadD(acc + j + 24, c - j - 24);
    for (int64_t r = r0; r < r1; ++r) {
      const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + r * c + j), v1 = _mm512_maskz_loadu_ps(m1, x + r * c + j + 16);
      a0 = _mm512_add_pd(a0, Lo(v0));
      a1 = _mm512_add_pd(a1, Hi(v0));
      a2 = _mm512_add_pd(a2, Lo(v1));
      a3 = _mm512_add_pd(a3, Hi(v1));
    }
    StoreD(acc + j, c - j, a0);
    StoreD(acc + j + 8, c - j - 8, a1);
    StoreD(acc + j + 16, c - j - 16, a2);
    StoreD(acc + j + 24, c - j - 24, a3);
  }
}

SSLINV_AVX512 void ColumnSqDevAvx512(const float* x, int64_t r0, int64_t r1, int64_t c, const double* mean,
                                     double* acc) {
  for (int64_t j = 0; j < c; j += 32) {
    const __mmask16 m0 = LaneMask(c - j), m1 = LaneMask(c - j - 16);
    const __m512d e0 = LoadD(mean + j, c - j), e1 = LoadD(mean + j + 8, c - j - 8);
    const __m512d e2 = LoadD(mean + j + 16, c - j - 16), e3 = LoadD(mean + j + 24, c - j - 24);
    __m512d a0 = LoadD(acc + j, c - j), a1 = LoadD(acc + j + 8, c - j - 8);
    __m512d a2 = LoadD(acc + j + 16, c - j - 16), a3 = LoadD(acc + j + 24, c - j - 24);
    for (int64_t r = r0; r < r1; ++r) {
      const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + r * c + j), v1 = _mm512_maskz_loadu_ps(m1, x + r * c + j + 16);
      const __m512d d0 = _mm512_sub_pd(Lo(v0), e0), d1 = _mm512_sub_pd(Hi(v0), e1);
      const __m512d d2 = _mm512_sub_pd(Lo(v1), e2), d3 = _mm512_sub_pd(Hi(v1), e3);
      a0 = _mm512_add_pd(a0, _mm512_mul_pd(d0, d0));
      a1 = _mm512_add_pd(a1, _mm512_mul_pd(d1, d1));
      a2 = _mm512_add_pd(a2, _mm512_mul_pd(d2, d2));
      a3 = _mm512_add_pd(a3, _mm512_mul_pd(d3, d3));
    }
    StoreD(acc + j, c - j, a0);
    StoreD(acc + j + 8, c - j - 8, a1);
    StoreD(acc + j + 16, c - j - 16, a2);
    StoreD(acc + j + 24, c - j - 24, a3);
  }
}

// 16 channels at a time (two float64 accumulators per channel: sum dy and the dot product).
SSLINV_AVX512 void BnBackwardSumsAvx512(const float* dy, const float* relu_y, const float* x, int64_t r0, int64_t r1,
                                        int64_t c, const float* mean, double* acc) {
  double* sdy = acc;
  double* dot = acc + c;
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = LaneMask(c - j);
    const __m512 mf = _mm512_maskz_loadu_ps(m, mean + j);
    const __m512d e0 = Lo(mf), e1 = Hi(mf);
    __m512d s0 = LoadD(sdy + j, c - j), s1 = LoadD(sdy + j + 8, c - j - 8);
    __m512d p0 = LoadD(dot + j, c - j), p1 = LoadD(dot + j + 8, c - j - 8);
    for (int64_t r = r0; r < r1; ++r) {
      __m512 g = _mm512_maskz_loadu_ps(m, dy + r * c + j);
      if (relu_y) g = MaskedGrad(g, relu_y + r * c + j, m);
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + r * c + j);
      const __m512d g0 = Lo(g), g1 = Hi(g);
      s0 = _mm512_add_pd(s0, g0);
      s1 = _mm512_add_pd(s1, g1);
      p0 = _mm512_add_pd(p0, _mm512_mul_pd(_mm512_sub_pd(Lo(xv), e0), g0));
      p1 = _mm512_add_pd(p1, _mm512_mul_pd(_mm512_sub_pd(Hi(xv), e1), g1));
    }
    StoreD(sdy + j, c - j, s0);
    StoreD(sdy + j + 8, c - j - 8, s1);
    StoreD(dot + j, c - j, p0);
    StoreD(dot + j + 8, c - j - 8, p1);
  }
}

SSLINV_AVX512 void BnNormalizeAvx512(const float* x, const float* residual, int64_t r0, int64_t r1, int64_t c,
                                     const float* mean, const float* scale, const float* bias, bool relu, float* y) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < c; j += 16) {
      const __mmask16 m = LaneMask(c - j);
      const int64_t o = r * c + j;
      __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + o), _mm512_maskz_loadu_ps(m, mean + j));
      v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, scale + j)), _mm512_maskz_loadu_ps(m, bias + j));
      if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + o));
      if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), v);  // v > 0 or NaN
      _mm512_mask_storeu_ps(y + o, m, v);
    }
  }
}

SSLINV_AVX512 void BnBackwardDxAvx512(const float* dy, const float* relu_y, const float* x, int64_t r0, int64_t r1,
                                      int64_t c, const float* mean, const float* mdy, const float* k, const float* a,
                                      float* dx) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < c; j += 16) {
      const __mmask16 m = LaneMask(c - j);
      const int64_t o = r * c + j;
      __m512 g = _mm512_maskz_loadu_ps(m, dy + o);
      if (relu_y) g = MaskedGrad(g, relu_y + o, m);
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + o), _mm512_maskz_loadu_ps(m, mean + j));
      const __m512 t = _mm512_sub_ps(_mm512_sub_ps(g, _mm512_maskz_loadu_ps(m, mdy + j)),
                                     _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, k + j)));
      _mm512_mask_storeu_ps(dx + o, m, _mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, a + j)));
    }
  }
}
#endif

// The row kernels for this CPU: AVX-512 when the CPU has it (SSL_INV_ISA may cap it), else scalar.
struct BnKernels {
  decltype(&ColumnSumsScalar) sums = ColumnSumsScalar;
  decltype(&ColumnSqDevScalar) sqdev = ColumnSqDevScalar;
  decltype(&BnBackwardSumsScalar) bwd_sums = BnBackwardSumsScalar;
  decltype(&BnNormalizeScalar) normalize = BnNormalizeScalar;
  decltype(&BnBackwardDxScalar) bwd_dx = BnBackwardDxScalar;
};

const BnKernels& Kernels() {
  static const BnKernels k = [] {
    BnKernels s;
#if defined(__x86_64__)
    if (UseAvx512()) {
      s.sums = ColumnSumsAvx512;
      s.sqdev = ColumnSqDevAvx512;
      s.bwd_sums = BnBackwardSumsAvx512;
      s.normalize = BnNormalizeAvx512;
      s.bwd_dx = BnBackwardDxAvx512;
    }
#endif
    return s;
  }();
  return k;
}

// The per-channel mean and sum of squared deviations (M2) of x [rows, c], in float64. Each block of
// rows (BlockRows: fixed by c) is read twice while it is in cache: its sum, then the squared
// deviations from its own mean (two passes, so no cancellation when |mean| >> std, as
// E[x^2] - mean^2 would suffer). The blocks are then merged in block order by Chan, Golub and
// LeVeque's update: with d = mean_b - mean, mean += d * n_b / n' and M2 += M2_b + d^2 * n * n_b / n'
// (n' = n + n_b). One block is the plain two-pass result; a large tensor is read from memory once
// for its statistics instead of twice. The blocks depend on the shape only, so the bits do not
// depend on the thread count.
Status BatchStats(const float* x, int64_t rows, int64_t c, const BnKernels& kern, double* mean, double* m2) {
  const int64_t br = BlockRows(c), nblocks = (rows + br - 1) / br;
  std::vector<double> part;  // per block: [mean | M2]
  try {
    part.assign(static_cast<size_t>(nblocks * 2 * c), 0.0);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("batchNormTrain: cannot allocate " + std::to_string(nblocks * 2 * c * 8) + " bytes");
  }
  ForRange(nblocks > 1, nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * br, r1 = std::min(rows, r0 + br);
      double* bm = part.data() + b * 2 * c;
      kern.sums(x, r0, r1, c, bm);
      const double nb = static_cast<double>(r1 - r0);
      for (int64_t j = 0; j < c; ++j) bm[j] /= nb;
      kern.sqdev(x, r0, r1, c, bm, bm + c);
    }
  });
  std::copy(part.begin(), part.begin() + c, mean);
  std::copy(part.begin() + c, part.begin() + 2 * c, m2);
  double n = static_cast<double>(std::min(rows, br));
  for (int64_t b = 1; b < nblocks; ++b) {
    const double nb = static_cast<double>(std::min(rows, (b + 1) * br) - b * br), total = n + nb;
    const double* bm = part.data() + b * 2 * c;
    for (int64_t j = 0; j < c; ++j) {
      const double d = bm[j] - mean[j];
      mean[j] += d * (nb / total);
      m2[j] += bm[c + j] + d * d * (n * nb / total);
    }
    n = total;
  }
  return Status::Ok();
}

// The groups of BatchNormTrainF32 / BatchNormBackwardF32: groups >= 1 dividing rows, with at least
// min_rows rows each.
Status CheckGroups(const char* op, int64_t rows, int64_t groups, int64_t min_rows) {
  if (groups < 1) return InvalidArgument(std::string(op) + ": groups must be an integer >= 1, got " + std::to_string(groups));
  if (rows % groups != 0) {
    return InvalidArgument(std::string(op) + ": groups = " + std::to_string(groups) + " does not divide the " +
                           std::to_string(rows) + " rows");
  }
  if (rows / groups < min_rows) {
    return InvalidArgument(std::string(op) + ": groups = " + std::to_string(groups) + " leaves " +
                           std::to_string(rows / groups) + " value(s) per channel in each group; training needs at least " +
                           std::to_string(min_rows));
  }
  return Status::Ok();
}

// fn(r0, r1, g) for the parts of rows [0, rows) that lie in one group of group_rows rows, split across
// the pool (element-wise passes: the split does not change any value).
template <typename Fn>
void ForRowsByGroup(int64_t rows, int64_t c, int64_t group_rows, const Fn& fn) {
  ForRange(true, rows, GrainFor(c, kGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1;) {
      const int64_t g = r / group_rows, e = std::min(r1, (g + 1) * group_rows);
      fn(r, e, g);
      r = e;
    }
  });
}

}  // namespace

Status BatchNormTrainF32(const float* x, int64_t rows, int64_t c, int64_t groups, const float* weight,
                         const float* bias, const float* running_mean, const float* running_var, double eps,
                         double momentum, bool relu, const float* residual, float* y, float* save_mean,
                         float* save_invstd, float* new_running_mean, float* new_running_var) {
  SSLINV_RETURN_IF_ERROR(CheckRowsC("batchNormTrain", rows, c, 2));
  SSLINV_RETURN_IF_ERROR(CheckGroups("batchNormTrain", rows, groups, 2));
  if (!(eps >= 0) || !std::isfinite(eps)) return InvalidArgument("batchNormTrain: eps must be a finite number >= 0");
  if (!(momentum >= 0 && momentum <= 1)) return InvalidArgument("batchNormTrain: momentum must be in [0, 1]");
  const BnKernels& kern = Kernels();
  const int64_t gr = rows / groups;  // rows per group
  std::vector<double> mean, sq;
  std::vector<float> a;  // invstd * weight, per group
  try {
    mean.resize(static_cast<size_t>(c));
    sq.resize(static_cast<size_t>(c));
    a.resize(static_cast<size_t>(groups * c));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("batchNormTrain: out of memory");
  }
  const double n = static_cast<double>(gr);
  for (int64_t g = 0; g < groups; ++g) {
    // Each group's statistics exactly as a call on its rows alone (the same blocks, from its first row).
    SSLINV_RETURN_IF_ERROR(BatchStats(x + g * gr * c, gr, c, kern, mean.data(), sq.data()));
    float* sm = save_mean + g * c;
    float* si = save_invstd + g * c;
    for (int64_t j = 0; j < c; ++j) {
      sm[j] = static_cast<float>(mean[j]);
      si[j] = static_cast<float>(1.0 / std::sqrt(sq[j] / n + eps));
    }
    if (g == 0) {
      // The running statistics follow group 0 alone (DDP's rank 0, see the header).
      // PyTorch: momentum * mean + (1 - momentum) * running, with the unbiased variance var_sum / (n - 1).
      for (int64_t j = 0; j < c; ++j) {
        new_running_mean[j] = static_cast<float>(momentum * mean[j] + (1.0 - momentum) * running_mean[j]);
        new_running_var[j] = static_cast<float>(momentum * (sq[j] / (n - 1.0)) + (1.0 - momentum) * running_var[j]);
      }
    }
    // y = (x - mean) * a + bias with a = invstd * weight: subtracting the mean first keeps y's low bits
    // when the mean is large (PyTorch's x * a + (bias - mean * a) does not).
    for (int64_t j = 0; j < c; ++j) a[g * c + j] = si[j] * weight[j];
  }
  ForRowsByGroup(rows, c, gr, [&](int64_t r0, int64_t r1, int64_t g) {
    kern.normalize(x, residual, r0, r1, c, save_mean + g * c, a.data() + g * c, bias, relu, y);
  });
  return Status::Ok();
}

Status BatchNormBackwardF32(const float* dy, const float* relu_y, const float* x, int64_t rows, int64_t c,
                            int64_t groups, const float* weight, const float* mean, const float* invstd, float* dx,
                            float* dweight, float* dbias) {
  SSLINV_RETURN_IF_ERROR(CheckRowsC("batchNormBackward", rows, c, 1));
  SSLINV_RETURN_IF_ERROR(CheckGroups("batchNormBackward", rows, groups, 1));
  const BnKernels& kern = Kernels();
  const int64_t gr = rows / groups;  // rows per group
  std::vector<double> acc2;  // one group's [sum dy | sum (x - mean) dy]
  std::vector<double> tot;   // [sum_g sum dy | sum_g dot * invstd], in group order
  std::vector<float> f;      // per group, the per-channel factors of dx: [mean dy | k | invstd * weight]
  try {
    acc2.resize(static_cast<size_t>(2 * c));
    tot.resize(static_cast<size_t>(2 * c));
    f.resize(static_cast<size_t>(3 * groups * c));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("batchNormBackward: out of memory");
  }
  const double n = static_cast<double>(gr);
  for (int64_t g = 0; g < groups; ++g) {
    // Each group's sums exactly as a call on its rows alone (the same blocks, from its first row).
    const int64_t o = g * gr * c;
    const float* dyg = dy + o;
    const float* yg = relu_y ? relu_y + o : nullptr;
    const float* xg = x + o;
    const float* mg = mean + g * c;
    const float* ig = invstd + g * c;
    SSLINV_RETURN_IF_ERROR(ReduceRowBlocks(gr, c, 2 * c, [&](int64_t r0, int64_t r1, double* acc) {
      kern.bwd_sums(dyg, yg, xg, r0, r1, c, mg, acc);
    }, acc2.data()));
    // The factors of dx, each rounded to float32 once.
    float* fg = f.data() + 3 * g * c;
    for (int64_t j = 0; j < c; ++j) {
      const double sdy = acc2[j], dot = acc2[c + j], is = static_cast<double>(ig[j]);
      // Group 0 starts the sums (not 0 + v), so one group gives exactly the plain batch norm's bits.
      tot[j] = g == 0 ? sdy : tot[j] + sdy;
      tot[c + j] = g == 0 ? dot * is : tot[c + j] + dot * is;
      fg[j] = static_cast<float>(sdy / n);
      fg[c + j] = static_cast<float>(dot * is * is / n);
      fg[2 * c + j] = ig[j] * weight[j];
    }
  }
  for (int64_t j = 0; j < c; ++j) {
    dbias[j] = static_cast<float>(tot[j]);
    dweight[j] = static_cast<float>(tot[c + j]);
  }
  ForRowsByGroup(rows, c, gr, [&](int64_t r0, int64_t r1, int64_t g) {
    const float* fg = f.data() + 3 * g * c;
    kern.bwd_dx(dy, relu_y, x, r0, r1, c, mean + g * c, fg, fg + c, fg + 2 * c, dx);
  });
  return Status::Ok();
}

void ReluBackwardF32(const float* dy, const float* y, float* dx, int64_t n) {
  ForRange(true, n, kGrain, [&](int64_t b, int64_t e) {
    // PyTorch's threshold_backward: y <= 0 ? 0 : dy (so a NaN y passes dy).
    for (int64_t i = b; i < e; ++i) dx[i] = y[i] <= 0.f ? 0.f : dy[i];
  });
}

namespace {

#if defined(__x86_64__)
// MaxPool2dBackwardNHWC's (image, channel block) task with 16 channels per vector: the same window
// scan, comparison and tie/NaN rule lane by lane, and the same additions in the same order, so the
// same bits as the scalar loops. The winners' positions are int32 lanes (H * W < 2^31).
SSLINV_AVX512 void MaxPoolBackwardTaskAvx512(const Pool2dParams& p, const float* dy, const float* x, float* dx,
                                             int64_t n, int64_t c0, int64_t cw) {
  const int64_t P = p.out_h(), Q = p.out_w(), C = p.c, H = p.h, W = p.w;
  const float* xn = x + n * H * W * C + c0;
  float* dxn = dx + n * H * W * C + c0;
  for (int64_t i = 0; i < H * W; ++i) std::fill(dxn + i * C, dxn + i * C + cw, 0.f);
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j0 = 0; j0 < cw; j0 += 16) {
    const int64_t left = cw - j0;
    const __mmask16 m = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
    for (int64_t op = 0; op < P; ++op) {
      const int64_t h0 = op * p.stride_h - p.pad_h;
      const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + p.kernel_h, H);
      for (int64_t oq = 0; oq < Q; ++oq) {
        const int64_t w0 = oq * p.stride_w - p.pad_w;
        const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + p.kernel_w, W);
        __m512 best = neg_inf;
        __m512i win = _mm512_set1_epi32(static_cast<int32_t>(hs * W + ws));
        for (int64_t ih = hs; ih < he; ++ih) {
          for (int64_t iw = ws; iw < we; ++iw) {
            const int64_t pos = ih * W + iw;
            const __m512 v = _mm512_maskz_loadu_ps(m, xn + pos * C + j0);
            // v > best, or v is NaN (unordered with itself).
            const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            best = _mm512_mask_mov_ps(best, take, v);
            win = _mm512_mask_mov_epi32(win, take, _mm512_set1_epi32(static_cast<int32_t>(pos)));
          }
        }
        alignas(64) int32_t wins[16];
        _mm512_store_si512(wins, win);
        const float* g = dy + ((n * P + op) * Q + oq) * C + c0 + j0;
        for (int64_t j = 0; j < std::min<int64_t>(16, left); ++j) dxn[wins[j] * C + j0 + j] += g[j];
      }
    }
  }
}
#endif

}  // namespace

Status MaxPool2dBackwardNHWC(const Pool2dParams& p, const float* dy, const float* x, float* dx) {
  SSLINV_RETURN_IF_ERROR(ValidatePool2dParams(p));
  const int64_t P = p.out_h(), Q = p.out_w(), C = p.c, H = p.h, W = p.w;
  const int64_t nb = (C + kPoolChannelBlock - 1) / kPoolChannelBlock;
#if defined(__x86_64__)
  if (UseAvx512() && H * W < (int64_t{1} << 31)) {
    ForRange(true, p.n * nb, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t c0 = (t % nb) * kPoolChannelBlock;
        MaxPoolBackwardTaskAvx512(p, dy, x, dx, t / nb, c0, std::min(kPoolChannelBlock, C - c0));
      }
    });
    return Status::Ok();
  }
#endif
  ForRange(true, p.n * nb, 1, [&](int64_t t0, int64_t t1) {
    float best[kPoolChannelBlock];
    int64_t win[kPoolChannelBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb, c0 = (t % nb) * kPoolChannelBlock;
      const int64_t cw = std::min(kPoolChannelBlock, C - c0);
      const float* xn = x + n * H * W * C + c0;
      float* dxn = dx + n * H * W * C + c0;
      for (int64_t i = 0; i < H * W; ++i) std::fill(dxn + i * C, dxn + i * C + cw, 0.f);
      for (int64_t op = 0; op < P; ++op) {
        const int64_t h0 = op * p.stride_h - p.pad_h;
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + p.kernel_h, H);
        for (int64_t oq = 0; oq < Q; ++oq) {
          const int64_t w0 = oq * p.stride_w - p.pad_w;
          const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + p.kernel_w, W);
          // The forward's rule, element for element (PyTorch's cpu_max_pool): the best starts at -inf
          // with the window's first in-bounds element as its index; a value replaces it when larger
          // or NaN. So ties keep the first, and among NaNs the last wins.
          for (int64_t j = 0; j < cw; ++j) {
            best[j] = -std::numeric_limits<float>::infinity();
            win[j] = hs * W + ws;
          }
          for (int64_t ih = hs; ih < he; ++ih) {
            for (int64_t iw = ws; iw < we; ++iw) {
              const int64_t pos = ih * W + iw;
              const float* src = xn + pos * C;
              for (int64_t j = 0; j < cw; ++j) {
                const float v = src[j];
                const bool take = v > best[j] || v != v;
                best[j] = take ? v : best[j];
                win[j] = take ? pos : win[j];
              }
            }
          }
          const float* g = dy + ((n * P + op) * Q + oq) * C + c0;
          for (int64_t j = 0; j < cw; ++j) dxn[win[j] * C + j] += g[j];
        }
      }
    }
  });
  return Status::Ok();
}

Status GlobalAvgPoolBackwardNHWC(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx) {
  if (n < 0 || h <= 0 || w <= 0 || c <= 0) return InvalidArgument("globalAvgPoolBackward: sizes must be positive");
  const int64_t hw = h * w;
  // PyTorch's mean backward divides by the element count (a float32 division, not a multiplication
  // by its reciprocal, which would round differently).
  const float count = static_cast<float>(hw);
  ForRange(true, n * hw, GrainFor(c, kGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dy + (r / hw) * c;
      float* d = dx + r * c;
      for (int64_t j = 0; j < c; ++j) d[j] = g[j] / count;
    }
  });
  return Status::Ok();
}

Status SumRowsF32(const float* x, int64_t m, int64_t n, float* out) {
  if (m < 0 || n < 0) return InvalidArgument("sumRows: sizes must be >= 0");
  if (n == 0) return Status::Ok();
  std::vector<double> acc;
  try {
    acc.resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("sumRows: out of memory");
  }
  SSLINV_RETURN_IF_ERROR(ReduceRowBlocks(m, n, n, [&](int64_t r0, int64_t r1, double* a) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      for (int64_t j = 0; j < n; ++j) a[j] += static_cast<double>(xr[j]);
    }
  }, acc.data()));
  for (int64_t j = 0; j < n; ++j) out[j] = static_cast<float>(acc[j]);
  return Status::Ok();
}

}  // namespace sslinv
