// Parameter updates of MoCo v2's pre-training, in float32, with PyTorch's (1.13, CPU) roundings.
//
// SgdStepF32: one step of torch.optim.SGD for one parameter tensor, as _single_tensor_sgd computes
// it. Every `a.add(b, alpha=s)` of that code is one fused multiply-add in PyTorch's vectorised CPU
// kernel (vec::fmadd; its scalar tail is contracted the same way), so it is fmaf(b, s, a) here;
// multiplications by a scalar are single float32 products. Scalars are rounded to float32 first, as
// PyTorch converts a Python float for a float32 kernel (1 - dampening is computed in double first).
//   d = weight_decay != 0 ? fmaf(param, wd, grad) : grad
//   momentum != 0:  buf = buf_in == null ? d : fmaf(d, 1 - dampening, buf_in * momentum)
//                   d = nesterov ? fmaf(buf, momentum, d) : buf
//   param_out = fmaf(d, -lr, param)
// The same bits as PyTorch on a CPU where PyTorch runs its AVX2 or AVX-512 kernels (any x86-64 with
// FMA); PyTorch's DEFAULT-capability build (no FMA) rounds the products separately instead.
//
// MomentumUpdateF32: MoCo's key-encoder update, param_k * m + param_q * (1. - m) in float32: two
// float32 products (m and 1 - m rounded to float32, 1 - m computed in double) and their sum, never
// fused (this file is compiled with fp-contract off).
#pragma once
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace sslinv {

struct SgdParams {
  double lr = 0, momentum = 0, weight_decay = 0, dampening = 0;
  bool nesterov = false;
};

// Checks PyTorch's rules (lr, momentum, weight_decay >= 0 and finite; dampening finite; nesterov
// needs momentum > 0 and dampening == 0).
Status ValidateSgdParams(const SgdParams& p);

// param, grad [n] -> param_out [n]; buf_in [n] or null (the first step), buf_out [n] (needed when
// momentum != 0, ignored otherwise). No argument may alias another.
Status SgdStepF32(const SgdParams& p, const float* param, const float* grad, const float* buf_in, float* param_out,
                  float* buf_out, int64_t n);

// The same step for many tensors at once, in place: each param[i] and buf[i] is read, then
// overwritten with param_out[i] and buf_out[i] of SgdStepF32 (the same bits). buf_is_new: the tensor's
// first step with momentum (buf is then written only, with buf = d). Every element of every tensor
// goes through one parallel range. No param or buf may overlap another param or buf, and no grad may
// overlap any param or buf (the bindings check both).
struct SgdInPlaceTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* buf = nullptr;  // null without momentum
  bool buf_is_new = false;
  int64_t n = 0;
};
Status SgdStepInPlaceF32(const SgdParams& p, const std::vector<SgdInPlaceTensor>& ts);

// out = k * m + q * (1 - m), 0 <= m <= 1.
Status MomentumUpdateF32(const float* k, const float* q, double m, float* out, int64_t n);

// k = k * m + q * (1 - m) for many tensors, in place (the same bits as MomentumUpdateF32), all in one
// parallel range. A k may be its own q; it may not overlap another k or another k's q.
struct MomentumInPlaceTensor {
  float* k = nullptr;
  const float* q = nullptr;
  int64_t n = 0;
};
Status MomentumUpdateInPlaceF32(const std::vector<MomentumInPlaceTensor>& ts, double m);

}  // namespace sslinv
