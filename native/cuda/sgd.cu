// CUDA SGD step and momentum update (see sgd.cuh; the arithmetic and why is in ops/sgd.h).
//
// A launch carries up to kTensorsPerLaunch tensors in its parameter block (no device-side table to
// upload): blockIdx.y picks the tensor, blockIdx.x strides over its elements. Blocks of a small
// tensor past its end exit at once, which costs far less than a launch per tensor.
#include "cuda/sgd.cuh"

#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

using detail::AddRn;
using detail::kThreads;
using detail::MulRn;

// 32 tensors x 48 bytes keeps the parameter block under 2 KiB (the limit is 4 KiB).
constexpr int kTensorsPerLaunch = 32;

// The step's scalars, rounded to float32 as PyTorch rounds a Python float for a float32 kernel, and
// its branches (PyTorch tests weight_decay != 0 and momentum != 0 on the unrounded values).
struct SgdScalars {
  float wd, momentum, damp1, neg_lr;
  bool use_wd, use_momentum, nesterov;
};

// One element of _single_tensor_sgd (ops/sgd.h): fmaf where the CPU op calls std::fma, MulRn for
// buf * momentum, which it rounds before the fma. first: no buffer yet (buf = d; buf_old unused).
__device__ __forceinline__ float SgdOne(const SgdScalars& s, float param, float grad, float buf_old, bool first,
                                        float& buf_new) {
  float d = s.use_wd ? fmaf(param, s.wd, grad) : grad;
  if (s.use_momentum) {
    buf_new = first ? d : fmaf(d, s.damp1, MulRn(buf_old, s.momentum));
    d = s.nesterov ? fmaf(buf_new, s.momentum, d) : buf_new;
  }
  return fmaf(d, s.neg_lr, param);
}

struct SgdBatch {
  SgdDeviceTensor t[kTensorsPerLaunch];
  bool vec[kTensorsPerLaunch];  // all of the tensor's pointers 16-byte aligned
};

__device__ __forceinline__ float4 Load4(const float* p) {
  SSLINV_CHECK_VEC_ALIGN(p, 16);
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void Store4(float* p, float4 v) {
  SSLINV_CHECK_VEC_ALIGN(p, 16);
  *reinterpret_cast<float4*>(p) = v;
}

__global__ void __launch_bounds__(kThreads) SgdKernel(SgdBatch b, SgdScalars s) {
  const SgdDeviceTensor t = b.t[blockIdx.y];
  const bool first = t.buf_in == nullptr;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;  // elements covered by the vector loop
  if (b.vec[blockIdx.y]) {
    const int64_t nv = t.n / 4;
    for (int64_t v = tid; v < nv; v += stride) {
      const int64_t i = 4 * v;
      const float4 p = Load4(t.param + i), g = Load4(t.grad + i);
      const float4 bo = first ? make_float4(0.f, 0.f, 0.f, 0.f) : Load4(t.buf_in + i);
      float4 o, bn;
      o.x = SgdOne(s, p.x, g.x, bo.x, first, bn.x);
      o.y = SgdOne(s, p.y, g.y, bo.y, first, bn.y);
      o.z = SgdOne(s, p.z, g.z, bo.z, first, bn.z);
      o.w = SgdOne(s, p.w, g.w, bo.w, first, bn.w);
      if (s.use_momentum) Store4(t.buf_out + i, bn);
      Store4(t.param_out + i, o);
    }
    done = 4 * nv;
  }
  for (int64_t i = done + tid; i < t.n; i += stride) {
    float bn = 0.f;
    t.param_out[i] = SgdOne(s, t.param[i], t.grad[i], first ? 0.f : t.buf_in[i], first, bn);
    if (s.use_momentum) t.buf_out[i] = bn;
  }
}

struct MomentumBatch {
  MomentumDeviceTensor t[kTensorsPerLaunch];
  bool vec[kTensorsPerLaunch];
};

// k * mk + q * mq: two float32 products and their sum, each rounded (never an FMA).
__device__ __forceinline__ float MomentumOne(float k, float q, float mk, float mq) {
  return AddRn(MulRn(k, mk), MulRn(q, mq));
}

__global__ void __launch_bounds__(kThreads) MomentumKernel(MomentumBatch b, float mk, float mq) {
  const MomentumDeviceTensor t = b.t[blockIdx.y];
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (b.vec[blockIdx.y]) {
    const int64_t nv = t.n / 4;
    for (int64_t v = tid; v < nv; v += stride) {
      const int64_t i = 4 * v;
      const float4 k = Load4(t.k + i), q = Load4(t.q + i);
      Store4(t.out + i, make_float4(MomentumOne(k.x, q.x, mk, mq), MomentumOne(k.y, q.y, mk, mq),
                                    MomentumOne(k.z, q.z, mk, mq), MomentumOne(k.w, q.w, mk, mq)));
    }
    done = 4 * nv;
  }
  for (int64_t i = done + tid; i < t.n; i += stride) t.out[i] = MomentumOne(t.k[i], t.q[i], mk, mq);
}

bool Aligned16(const void* p) { return p == nullptr || detail::IsAligned(p, 16); }

// Launches kernel over ts in batches of kTensorsPerLaunch tensors (Batch: their parameter block;
// vec_ok: whether a tensor takes the float4 path); extra: the kernel's other arguments.
template <class Batch, class T, class Kernel, class... Extra>
cudaError_t LaunchBatches(Kernel kernel, const T* ts, size_t count, cudaStream_t stream, int grid_cap,
                          bool (*vec_ok)(const T&), Extra... extra) {
  for (size_t b0 = 0; b0 < count; b0 += kTensorsPerLaunch) {
    const size_t nb = count - b0 < kTensorsPerLaunch ? count - b0 : kTensorsPerLaunch;
    Batch batch{};
    int64_t most = 0;  // the largest tensor's work items sizes the grid's rows
    for (size_t j = 0; j < nb; ++j) {
      const T& t = ts[b0 + j];
      batch.t[j] = t;
      batch.vec[j] = vec_ok(t);
      const int64_t items = batch.vec[j] ? t.n / 4 + t.n % 4 : t.n;
      if (items > most) most = items;
    }
    if (most == 0) continue;
    const dim3 grid(detail::GridFor(most, kThreads, grid_cap), static_cast<unsigned>(nb));
    SSLINV_LAUNCH(kernel, grid, kThreads, 0, stream, batch, extra...);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

bool SgdVecOk(const SgdDeviceTensor& t) {
  return Aligned16(t.param) && Aligned16(t.grad) && Aligned16(t.buf_in) && Aligned16(t.param_out) &&
         Aligned16(t.buf_out);
}
bool MomentumVecOk(const MomentumDeviceTensor& t) { return Aligned16(t.k) && Aligned16(t.q) && Aligned16(t.out); }

}  // namespace

cudaError_t SgdStepF32(const SgdParams& p, const SgdDeviceTensor* ts, size_t count, cudaStream_t stream,
                       int grid_cap) {
  SgdScalars s;
  s.use_wd = p.weight_decay != 0;
  s.use_momentum = p.momentum != 0;
  s.nesterov = p.nesterov;
  s.wd = static_cast<float>(p.weight_decay);
  s.momentum = static_cast<float>(p.momentum);
  s.damp1 = static_cast<float>(1.0 - p.dampening);  // Python computes 1 - dampening in double
  s.neg_lr = static_cast<float>(-p.lr);
  for (size_t i = 0; i < count; ++i) {
    if (ts[i].n < 0 || (s.use_momentum && ts[i].buf_out == nullptr)) return cudaErrorInvalidValue;
  }
  return LaunchBatches<SgdBatch>(SgdKernel, ts, count, stream, grid_cap, SgdVecOk, s);
}

cudaError_t MomentumUpdateF32(const MomentumDeviceTensor* ts, size_t count, double m, cudaStream_t stream,
                              int grid_cap) {
  if (!(m >= 0 && m <= 1)) return cudaErrorInvalidValue;
  for (size_t i = 0; i < count; ++i) {
    if (ts[i].n < 0) return cudaErrorInvalidValue;
  }
  // param_k * m + param_q * (1. - m): each Python float rounded to float32 (1 - m computed in double).
  const float mk = static_cast<float>(m), mq = static_cast<float>(1.0 - m);
  return LaunchBatches<MomentumBatch>(MomentumKernel, ts, count, stream, grid_cap, MomentumVecOk, mk, mq);
}

}  // namespace sslinv::cuda
