// CUDA Pillow-exact resampling of batched views and the fused resize -> crop -> normalise (see
// resample.cuh). The host planner mirrors the decisions of ResampleRegionImpl / ConvolveRegion in
// native/cpu/resample.cc (which Pillow path runs for a size, box and filter); the taps come from the
// CPU's ComputeResampleTaps. The kernels are gathers: one thread per output pixel (all C channels),
// reading its taps from the uploaded table and its source bytes through the read-only cache. At the
// evaluation's sizes (a few hundred pixels per side, 2 to ~10 taps) they are bound by the uint8 reads
// and float32 writes, which are coalesced along a row.
#include "cuda/resample.cuh"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

using detail::DivRn;
using detail::GridFor;
using detail::kThreads;
using detail::SubRn;

// What a kernel needs of the plan, by value, with the table offsets resolved to device pointers.
struct Args {
  int32_t mode = 0;
  int64_t H = 0, W = 0;  // source size
  int64_t rtop = 0, rleft = 0, rh = 0, rw = 0;  // region
  int64_t copy_top = 0, copy_left = 0;
  int64_t tmp_first = 0, tmp_rows = 0;
  int32_t kx = 0, ky = 0;
  const int32_t* xb = nullptr;
  const int32_t* xw = nullptr;
  const int32_t* yb = nullptr;
  const int32_t* yw = nullptr;
};

// Normalisation of the fused kernel: crop window and per-channel mean / std (host values).
struct NormArgs {
  int64_t ctop = 0, cleft = 0, ch = 0, cw = 0;
  float mean[4] = {0, 0, 0, 0};
  float std[4] = {1, 1, 1, 1};
};

// out[c] = clip((2^21 + sum_t base[(first + t) * stride + c] * w[t]) >> 22, 0, 255) in int32, Pillow's
// 8-bit convolution (no taps: 0).
template <int C>
__device__ __forceinline__ void Convolve(const uint8_t* __restrict__ base, int64_t stride, int32_t first, int32_t len,
                                         const int32_t* __restrict__ w, uint8_t* out) {
  int32_t acc[C];
#pragma unroll
  for (int c = 0; c < C; ++c) acc[c] = 1 << (kResamplePrecisionBits - 1);
  const uint8_t* p = base + static_cast<int64_t>(first) * stride;
  for (int32_t t = 0; t < len; ++t, p += stride) {
    const int32_t k = __ldg(w + t);
#pragma unroll
    for (int c = 0; c < C; ++c) acc[c] += static_cast<int32_t>(__ldg(p + c)) * k;
  }
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int32_t v = acc[c] >> kResamplePrecisionBits;
    out[c] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
  }
}

// The value of window pixel (ry, rx) of view v: the copy, one pass, or the vertical pass over the
// horizontal pass held in `tmp`.
template <int C>
__device__ __forceinline__ void WindowPixel(const Args& a, const uint8_t* __restrict__ src,
                                            const uint8_t* __restrict__ tmp, int64_t v, int64_t ry, int64_t rx,
                                            uint8_t* out) {
  const uint8_t* img = src + v * a.H * a.W * C;
  switch (a.mode) {
    case static_cast<int32_t>(ResamplePlan::Mode::kCopy): {
      const uint8_t* p = img + ((a.copy_top + ry) * a.W + a.copy_left + rx) * C;
#pragma unroll
      for (int c = 0; c < C; ++c) out[c] = p[c];
      return;
    }
    case static_cast<int32_t>(ResamplePlan::Mode::kHorizontal):
      Convolve<C>(img + (a.rtop + ry) * a.W * C, C, a.xb[2 * rx], a.xb[2 * rx + 1], a.xw + rx * a.kx, out);
      return;
    case static_cast<int32_t>(ResamplePlan::Mode::kVertical):
      Convolve<C>(img + (a.rleft + rx) * C, a.W * C, a.yb[2 * ry], a.yb[2 * ry + 1], a.yw + ry * a.ky, out);
      return;
    default: {
      const uint8_t* t = tmp + (v * a.tmp_rows * a.rw + rx) * C;
      Convolve<C>(t, a.rw * C, static_cast<int32_t>(a.yb[2 * ry] - a.tmp_first), a.yb[2 * ry + 1],
                  a.yw + ry * a.ky, out);
      return;
    }
  }
}

// Pillow's horizontal pass into the intermediate image: tmp[v][r][j] for source rows tmp_first + r.
template <int C>
__global__ void __launch_bounds__(kThreads) HorizontalPassKernel(Args a, const uint8_t* __restrict__ src,
                                                                 int64_t views, uint8_t* __restrict__ tmp) {
  const int64_t per_view = a.tmp_rows * a.rw, n = views * per_view;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t v = i / per_view, rem = i - v * per_view;
    const int64_t r = rem / a.rw, j = rem - r * a.rw;
    const uint8_t* row = src + (v * a.H + a.tmp_first + r) * a.W * C;
    Convolve<C>(row, C, a.xb[2 * j], a.xb[2 * j + 1], a.xw + j * a.kx, tmp + i * C);
  }
}

// uint8 output: dst[v][ry][rx] for the whole window.
template <int C>
__global__ void __launch_bounds__(kThreads) WindowU8Kernel(Args a, const uint8_t* __restrict__ src,
                                                           const uint8_t* __restrict__ tmp, int64_t views,
                                                           uint8_t* __restrict__ dst) {
  const int64_t per_view = a.rh * a.rw, n = views * per_view;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t v = i / per_view, rem = i - v * per_view;
    const int64_t ry = rem / a.rw, rx = rem - ry * a.rw;
    WindowPixel<C>(a, src, tmp, v, ry, rx, dst + i * C);
  }
}

// float32 CHW output of the crop window: the window pixel where the crop lies inside the resized
// image (the plan's region is exactly that intersection), the normalised 0 elsewhere. The LUT
// lut[c][x] = (x / 255.0f - mean[c]) / std[c] is rebuilt per block (C * 256 correctly rounded
// divisions: negligible next to a block's outputs).
template <int C>
__global__ void __launch_bounds__(kThreads) CropNormalizeKernel(Args a, NormArgs nm, const uint8_t* __restrict__ src,
                                                                const uint8_t* __restrict__ tmp, int64_t views,
                                                                float* __restrict__ dst) {
  __shared__ float lut[4 * 256];
  // Compile-time channel indices keep mean / std in the parameter bank (a dynamic index would copy
  // them to the stack).
#pragma unroll
  for (int c = 0; c < C; ++c) {
    for (int e = threadIdx.x; e < 256; e += blockDim.x) {
      const float x = DivRn(static_cast<float>(e), 255.0f);
      lut[c * 256 + e] = DivRn(SubRn(x, nm.mean[c]), nm.std[c]);
    }
  }
  __syncthreads();
  const int64_t plane = nm.ch * nm.cw, n = views * plane;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t v = i / plane, rem = i - v * plane;
    const int64_t y = rem / nm.cw, x = rem - y * nm.cw;
    const int64_t ry = nm.ctop + y - a.rtop, rx = nm.cleft + x - a.rleft;
    uint8_t val[C];
    if (ry >= 0 && ry < a.rh && rx >= 0 && rx < a.rw) {
      WindowPixel<C>(a, src, tmp, v, ry, rx, val);
    } else {
#pragma unroll
      for (int c = 0; c < C; ++c) val[c] = 0;  // CenterCrop's zero padding
    }
    float* out = dst + v * C * plane + rem;
#pragma unroll
    for (int c = 0; c < C; ++c) out[c * plane] = lut[c * 256 + val[c]];
  }
}

Args MakeArgs(const ResamplePlan& p, const int32_t* table) {
  Args a;
  a.mode = static_cast<int32_t>(p.mode);
  a.H = p.in_height;
  a.W = p.in_width;
  a.rtop = p.region.top;
  a.rleft = p.region.left;
  a.rh = p.region.height;
  a.rw = p.region.width;
  a.copy_top = p.copy_top;
  a.copy_left = p.copy_left;
  a.tmp_first = p.tmp_first;
  a.tmp_rows = p.tmp_rows;
  a.kx = p.kx;
  a.ky = p.ky;
  if (table != nullptr) {
    a.xb = table + p.x_bounds;
    a.xw = table + p.x_weights;
    a.yb = table + p.y_bounds;
    a.yw = table + p.y_weights;
  }
  return a;
}

bool TablesPresent(const ResamplePlan& p, const int32_t* table) {
  return p.table.empty() || (table != nullptr && detail::IsAligned(table, 4));
}

bool WorkspaceOk(const ResamplePlan& p, int64_t views, const void* ws, size_t bytes) {
  const size_t need = p.WorkspaceBytes(views);
  return need == 0 || (ws != nullptr && bytes >= need);
}

// The horizontal pass of kBoth, into the workspace.
template <int C>
void LaunchHorizontal(const Args& a, const uint8_t* src, int64_t views, uint8_t* tmp, cudaStream_t stream,
                      int grid_cap) {
  const int64_t n = views * a.tmp_rows * a.rw;
  if (n > 0) SSLINV_LAUNCH(HorizontalPassKernel<C>, GridFor(n, kThreads, grid_cap), kThreads, 0, stream, a, src, views, tmp);
}

template <int C>
void LaunchU8(const ResamplePlan& p, const Args& a, const uint8_t* src, int64_t views, uint8_t* tmp, uint8_t* dst,
              cudaStream_t stream, int grid_cap) {
  if (p.mode == ResamplePlan::Mode::kBoth) LaunchHorizontal<C>(a, src, views, tmp, stream, grid_cap);
  const int64_t n = views * a.rh * a.rw;
  SSLINV_LAUNCH(WindowU8Kernel<C>, GridFor(n, kThreads, grid_cap), kThreads, 0, stream, a, src,
                static_cast<const uint8_t*>(tmp), views, dst);
}

template <int C>
void LaunchNormalize(const ResamplePlan& p, const Args& a, const NormArgs& nm, const uint8_t* src, int64_t views,
                     uint8_t* tmp, float* dst, cudaStream_t stream, int grid_cap) {
  if (p.mode == ResamplePlan::Mode::kBoth) LaunchHorizontal<C>(a, src, views, tmp, stream, grid_cap);
  const int64_t n = views * nm.ch * nm.cw;
  SSLINV_LAUNCH(CropNormalizeKernel<C>, GridFor(n, kThreads, grid_cap), kThreads, 0, stream, a, nm, src,
                static_cast<const uint8_t*>(tmp), views, dst);
}

// Appends one axis's taps to the table, recording where its bounds and weights start.
Status AppendTaps(int64_t in_size, float in0, float in1, int64_t out_size, ResampleFilter filter, int64_t first,
                  int64_t count, ResamplePlan* p, int32_t* ksize, int64_t* bounds_at, int64_t* weights_at) {
  ResampleTaps t;
  SSLINV_RETURN_IF_ERROR(ComputeResampleTaps(in_size, in0, in1, out_size, filter, first, count, &t));
  *ksize = t.ksize;
  *bounds_at = static_cast<int64_t>(p->table.size());
  p->table.insert(p->table.end(), t.bounds.begin(), t.bounds.end());
  *weights_at = static_cast<int64_t>(p->table.size());
  p->table.insert(p->table.end(), t.weights.begin(), t.weights.end());
  return Status::Ok();
}

// The CPU's ResampleRegionImpl decisions (DecideResample), for a valid spec and a window inside the output.
Status PlanRegion(int64_t H, int64_t W, const ResampleSpec& spec, const Window& r, ResamplePlan* p) {
  p->region = r;
  p->mode = ResamplePlan::Mode::kCopy;
  p->copy_top = r.top;
  p->copy_left = r.left;
  if (r.height == 0 || r.width == 0) return Status::Ok();
  const ResampleDecision dec = DecideResample(H, W, spec);
  const float* box = dec.box;
  if (dec.crop) {
    p->copy_top = dec.crop_top + r.top;
    p->copy_left = dec.crop_left + r.left;
    return Status::Ok();
  }
  // NEAREST: both passes of 1-tap tables (see resample.cuh)
  const bool nearest = spec.filter == ResampleFilter::kNearest;
  const bool need_h = nearest || dec.need_h, need_v = nearest || dec.need_v;
  if (!need_h && !need_v) return Status::Ok();  // the copy of the window
  if (need_h) {
    SSLINV_RETURN_IF_ERROR(AppendTaps(W, box[0], box[2], spec.out_width, spec.filter, r.left, r.width, p, &p->kx,
                                      &p->x_bounds, &p->x_weights));
  }
  if (need_v) {
    SSLINV_RETURN_IF_ERROR(AppendTaps(H, box[1], box[3], spec.out_height, spec.filter, r.top, r.height, p, &p->ky,
                                      &p->y_bounds, &p->y_weights));
  }
  if (!need_v) {
    p->mode = ResamplePlan::Mode::kHorizontal;
  } else if (!need_h) {
    p->mode = ResamplePlan::Mode::kVertical;
  } else {
    p->mode = ResamplePlan::Mode::kBoth;
    // Source rows that the vertical pass reads for the window's rows.
    int64_t first = std::numeric_limits<int64_t>::max(), last = 0;
    for (int64_t i = 0; i < r.height; ++i) {
      const int32_t lo = p->table[static_cast<size_t>(p->y_bounds + 2 * i)];
      const int32_t len = p->table[static_cast<size_t>(p->y_bounds + 2 * i + 1)];
      first = std::min<int64_t>(first, lo);
      last = std::max<int64_t>(last, static_cast<int64_t>(lo) + std::max<int32_t>(len, 0));
    }
    if (last < first) last = first;
    p->tmp_first = first;
    p->tmp_rows = last - first;
  }
  return Status::Ok();
}

Status ValidateSource(int64_t H, int64_t W, int64_t C, const ResampleSpec& spec) {
  static const uint8_t kDummy = 0;  // ValidateResample wants data; only the sizes matter here
  ImageU8View v;
  v.data = &kDummy;
  v.height = H;
  v.width = W;
  v.channels = C;
  return ValidateResample(v, spec);
}

}  // namespace

size_t ResamplePlan::WorkspaceBytes(int64_t views) const {
  if (mode != Mode::kBoth || views < 1) return 0;
  return static_cast<size_t>(views * tmp_rows * region.width * channels);
}

Status PlanResampleRegion(int64_t in_height, int64_t in_width, int64_t channels, const ResampleSpec& spec,
                          const Window& region, ResamplePlan* plan) {
  if (plan == nullptr) return InvalidArgument("resample plan: null output");
  SSLINV_RETURN_IF_ERROR(ValidateSource(in_height, in_width, channels, spec));
  if (region.height < 0 || region.width < 0 || region.top < 0 || region.left < 0 ||
      region.top + region.height > spec.out_height || region.left + region.width > spec.out_width) {
    return InvalidArgument("resample plan: the window is not inside the " + std::to_string(spec.out_height) + "x" +
                           std::to_string(spec.out_width) + " output");
  }
  *plan = ResamplePlan();
  plan->in_height = in_height;
  plan->in_width = in_width;
  plan->channels = channels;
  plan->crop = region;
  try {
    return PlanRegion(in_height, in_width, spec, region, plan);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("resample plan: out of memory");
  }
}

Status PlanResizeCropNormalize(int64_t in_height, int64_t in_width, int64_t channels, const ResampleSpec& spec,
                               const Window& crop, ResamplePlan* plan) {
  if (plan == nullptr) return InvalidArgument("resizeCropNormalize plan: null output");
  SSLINV_RETURN_IF_ERROR(ValidateSource(in_height, in_width, channels, spec));
  constexpr int64_t kMaxSide = int64_t{1} << 24;
  if (crop.height < 1 || crop.width < 1 || crop.height > kMaxSide || crop.width > kMaxSide ||
      std::abs(crop.top) > kMaxSide || std::abs(crop.left) > kMaxSide) {
    return InvalidArgument("resizeCropNormalize plan: crop sides must be 1 to 2^24 and offsets within that range");
  }
  // The part of the crop window inside the resized image; the rest is zero padding.
  Window inter;
  inter.top = std::max<int64_t>(0, crop.top);
  inter.left = std::max<int64_t>(0, crop.left);
  inter.height = std::max<int64_t>(0, std::min(spec.out_height, crop.top + crop.height) - inter.top);
  inter.width = std::max<int64_t>(0, std::min(spec.out_width, crop.left + crop.width) - inter.left);
  if (inter.height == 0 || inter.width == 0) inter.height = inter.width = 0;
  *plan = ResamplePlan();
  plan->normalize = true;
  plan->in_height = in_height;
  plan->in_width = in_width;
  plan->channels = channels;
  plan->crop = crop;
  try {
    return PlanRegion(in_height, in_width, spec, inter, plan);
  } catch (const std::bad_alloc&) {
    return OutOfMemory("resizeCropNormalize plan: out of memory");
  }
}

cudaError_t ResampleViewsU8(const uint8_t* src, int64_t views, const ResamplePlan& plan, const int32_t* table,
                            void* workspace, size_t workspace_bytes, uint8_t* dst, cudaStream_t stream,
                            int grid_cap) {
  if (plan.normalize || src == nullptr || views < 1 || plan.channels < 1 || plan.channels > 4 ||
      !TablesPresent(plan, table) || !WorkspaceOk(plan, views, workspace, workspace_bytes)) {
    return cudaErrorInvalidValue;
  }
  if (plan.region.height * plan.region.width == 0) return cudaSuccess;  // nothing to write
  if (dst == nullptr) return cudaErrorInvalidValue;
  const Args a = MakeArgs(plan, table);
  uint8_t* tmp = static_cast<uint8_t*>(workspace);
  switch (plan.channels) {
    case 1: LaunchU8<1>(plan, a, src, views, tmp, dst, stream, grid_cap); break;
    case 2: LaunchU8<2>(plan, a, src, views, tmp, dst, stream, grid_cap); break;
    case 3: LaunchU8<3>(plan, a, src, views, tmp, dst, stream, grid_cap); break;
    default: LaunchU8<4>(plan, a, src, views, tmp, dst, stream, grid_cap); break;
  }
  return cudaGetLastError();
}

cudaError_t ResizeCropNormalizeViewsU8(const uint8_t* src, int64_t views, const ResamplePlan& plan,
                                       const int32_t* table, const float* mean, const float* std, void* workspace,
                                       size_t workspace_bytes, float* dst, cudaStream_t stream, int grid_cap) {
  if (!plan.normalize || src == nullptr || dst == nullptr || mean == nullptr || std == nullptr || views < 1 ||
      plan.channels < 1 || plan.channels > 4 || !TablesPresent(plan, table) ||
      !WorkspaceOk(plan, views, workspace, workspace_bytes)) {
    return cudaErrorInvalidValue;
  }
  NormArgs nm;
  nm.ctop = plan.crop.top;
  nm.cleft = plan.crop.left;
  nm.ch = plan.crop.height;
  nm.cw = plan.crop.width;
  for (int64_t c = 0; c < plan.channels; ++c) {
    // The CPU op's checks.
    if (!(std[c] != 0.0f) || !std::isfinite(std[c]) || !std::isfinite(mean[c])) return cudaErrorInvalidValue;
    nm.mean[c] = mean[c];
    nm.std[c] = std[c];
  }
  const Args a = MakeArgs(plan, table);
  uint8_t* tmp = static_cast<uint8_t*>(workspace);
  switch (plan.channels) {
    case 1: LaunchNormalize<1>(plan, a, nm, src, views, tmp, dst, stream, grid_cap); break;
    case 2: LaunchNormalize<2>(plan, a, nm, src, views, tmp, dst, stream, grid_cap); break;
    case 3: LaunchNormalize<3>(plan, a, nm, src, views, tmp, dst, stream, grid_cap); break;
    default: LaunchNormalize<4>(plan, a, nm, src, views, tmp, dst, stream, grid_cap); break;
  }
  return cudaGetLastError();
}

}  // namespace sslinv::cuda
