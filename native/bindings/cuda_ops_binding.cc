// The CUDA branch of the op bindings (see cuda_ops_binding.h). Compiled into every build; without
// the CUDA backend no tensor can live on a GPU, IsCudaTensorArg is always false and the entry points
// only report that.
#include "bindings/cuda_ops_binding.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "bindings/napi_util.h"
#include "bindings/op_args.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/conv2d.cuh"
#include "cuda/conv2d_pipelined.cuh"
#include "cuda/conv2d_wgmma.cuh"
#include "cuda/conv_autotune.cuh"
#include "cuda/covariance.cuh"
#include "cuda/cublas.h"
#include "cuda/elementwise.cuh"
#include "cuda/layout.cuh"
#include "cuda/moco_loss.cuh"
#include "cuda/moco_rank.cuh"
#include "cuda/multinomial.cuh"
#include "cuda/pool.cuh"
#include "cuda/runtime.h"
#endif

namespace sslinv {
namespace napi {

#ifdef SSL_INV_WITH_CUDA

bool IsCudaTensorArg(Napi::Value v) {
  if (!TensorWrap::IsTensor(v)) return false;
  TensorWrap* w = TensorWrap::Unwrap(v.As<Napi::Object>());
  return !w->disposed() && w->tensor().device().type == DeviceType::kCUDA;
}

Tensor NewDeviceTensor(Napi::Env env, DType dtype, const std::vector<int64_t>& shape, Device device) {
  Tensor t;
  Check(env, NewTensor(dtype, shape, device, &t));
  return t;
}

cudaStream_t StreamOf(Napi::Env env, Device device) {
  cudaStream_t s = nullptr;
  Check(env, cuda::GetStream(device.index, &s));
  return s;
}

namespace {

// A tensor argument on `device` with the given dtype and rank (rank < 0: any).
const Tensor& DeviceTensor(Napi::Env env, Napi::Value v, const char* what, Device device, DType dtype, int rank) {
  const Tensor& t = GetTensor(env, v, what);
  if (!(t.device() == device)) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", std::string(what) + ": expected a tensor on cuda:" +
                                                 std::to_string(device.index) + " like the op's first input, got one on " +
                                                 (t.device().type == DeviceType::kCPU ? std::string("cpu")
                                                                                        : "cuda:" + std::to_string(t.device().index)) +
                                                 " (move it with tensor.to())");
  }
  Check(env, ExpectDType(t, dtype, what));
  if (rank >= 0) Check(env, ExpectRank(t, rank, what));
  return t;
}

const Tensor* OptionalDeviceTensor(Napi::Env env, Napi::Value v, const char* what, Device device,
                                   const std::vector<int64_t>& shape) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  const Tensor& t = DeviceTensor(env, v, what, device, DType::kF32, -1);
  Check(env, ExpectShape(t, shape, what));
  return &t;
}

bool SyncEveryOp() {
  static const bool on = [] {
    const char* v = std::getenv("SSL_INV_CUDA_SYNC");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

// Throws the launch error of `op`, or (with SSL_INV_CUDA_SYNC=1) the error of its execution.
void CheckLaunch(Napi::Env env, cudaError_t err, Device device, const char* op) {
  Check(env, cuda::FromCuda(err, op));
  if (SyncEveryOp()) Check(env, cuda::Synchronize(device.index, op));
}

// Scratch device memory for one op (returned to the allocator's cache when it goes out of scope; the
// stream orders its reuse after the op's kernels).
struct Workspace {
  Tensor t;
  void* data() const { return t.buffer ? t.buffer->data() : nullptr; }
};
Workspace NewWorkspace(Napi::Env env, size_t bytes, Device device) {
  Workspace w;
  if (bytes) w.t = NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(bytes)}, device);
  return w;
}

int CheckedInt(Napi::Env env, int64_t v, const char* what) {
  if (v < 0 || v > 0x7fffffff) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": too large for the CUDA kernels");
  return static_cast<int>(v);
}

}  // namespace

// convPackWeights(w [K, C, R, S] on CUDA, scale?) -> [K, R, S, C] on the same device
Napi::Value CudaConvPackWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& w = GetTensor(env, info[0], "weight");
  const Device dev = w.device();
  DeviceTensor(env, info[0], "weight", dev, DType::kF32, 4);
  const int64_t K = w.dim(0), C = w.dim(1), R = w.dim(2), S = w.dim(3);
  if (K < 1 || C < 1 || R < 1 || S < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", "convPackWeights: empty weight " + w.ShapeString());
  const Tensor* scale = info.Length() > 1 ? OptionalDeviceTensor(env, info[1], "scale", dev, {K}) : nullptr;
  Tensor packed = NewDeviceTensor(env, DType::kF32, {K, R, S, C}, dev);
  CheckLaunch(env, cuda::LaunchPackFilterKRSC(w.data<float>(), scale ? scale->data<float>() : nullptr,
                                              CheckedInt(env, K, "K"), CheckedInt(env, C, "C"), CheckedInt(env, R, "R"),
                                              CheckedInt(env, S, "S"), packed.data<float>(), StreamOf(env, dev)),
              dev, "convPackWeights");
  return TensorWrap::New(env, std::move(packed));
}

namespace {

// The CUDA kernels' shape of a convolution of x [N, H, W, C] with options {outChannels, kernelH, ...},
// validated for their 32-bit GEMM indices.
cuda::Conv2dShape ConvShapeOf(Napi::Env env, const Tensor& x, Napi::Object o) {
  const Conv2dParams p = GetConv2dParams(env, x, o);
  cuda::Conv2dShape sh;
  sh.n = CheckedInt(env, p.n, "N");
  sh.h = CheckedInt(env, p.h, "H");
  sh.w = CheckedInt(env, p.w, "W");
  sh.c = CheckedInt(env, p.c, "C");
  sh.k = CheckedInt(env, p.k, "outChannels");
  sh.r = CheckedInt(env, p.r, "kernelH");
  sh.s = CheckedInt(env, p.s, "kernelW");
  sh.stride_h = CheckedInt(env, p.stride_h, "strideH");
  sh.stride_w = CheckedInt(env, p.stride_w, "strideW");
  sh.pad_h = CheckedInt(env, p.pad_h, "padH");
  sh.pad_w = CheckedInt(env, p.pad_w, "padW");
  if (!cuda::Conv2dShapeIsValid(sh)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "conv2d: the sizes of " + x.ShapeString() + " with this filter exceed the CUDA kernel's 32-bit GEMM indices");
  }
  return sh;
}

// ConvAlgo 'auto' over `candidates` (candidates[0] the default): tuned on the first call of each
// problem when tuning is on (cuda/conv_autotune.cuh), which needs scratch of the output's size then.
// Scratch that cannot be had (device memory nearly full) leaves the call untuned, not failed: the
// default kernel gives the same bits.
cudaError_t RunAutoConv(Device dev, cuda::ConvFamily family, const cuda::Conv2dShape& sh, bool bias, bool residual, bool relu,
                        const std::vector<cuda::ConvCandidate>& candidates, void* y, size_t y_bytes, cudaStream_t stream) {
  const cuda::ConvTuneKey key{family, dev.index, sh, bias, residual, relu, {}};
  Tensor scratch;
  return cuda::RunConvAuto(
      key, candidates, y, y_bytes,
      [&]() -> void* {
        const int64_t bytes = static_cast<int64_t>(cuda::ConvTuneScratchBytes(y_bytes));
        if (!NewTensor(DType::kU8, {bytes}, dev, &scratch).ok()) return nullptr;
        return scratch.buffer->data();
      },
      stream);
}

// The block tile widths worth tuning for K output channels: `pick` (the launcher's own choice) first,
// then the other `options` that pad K no more than it does (for ResNets, whose K are multiples of 64,
// all of them). Every width gives the same bits.
std::vector<int> TileWidths(int K, std::initializer_list<int> options, int pick) {
  const auto waste = [K](int bn) { return (K + bn - 1) / bn * bn - K; };
  std::vector<int> widths{pick};
  for (int bn : options) {
    if (bn != pick && waste(bn) <= waste(pick)) widths.push_back(bn);
  }
  return widths;
}

// The kernels of the bf16-in-memory convolution, named by options.algo: 'mma-pipelined' the mma.sync
// kernel (conv2d_pipelined.cuh; measured on the H200), 'wgmma' Hopper's warpgroup kernel
// (conv2d_wgmma.cuh: compute capability 9.0, in builds whose toolkit targets sm_90a), 'auto' the
// mma.sync kernel, or the wgmma one where run-time tuning finds it faster with the same bits.
enum class Bf16Kernel { kAuto, kMmaSync, kWgmma };

// Whether `dev` can run the wgmma kernel: this build has it, the device is compute capability 9.0,
// and SSL_INV_SKIP_WGMMA is not 1 (bench/device/run.sh sets it when the kernel failed its first
// look on a GPU, so that 'auto' cannot reach a faulting kernel either).
bool DeviceRunsWgmma(Napi::Env env, Device dev) {
#ifndef SSL_INV_WITH_WGMMA
  (void)env;
  (void)dev;
  return false;
#else
  const char* skip = std::getenv("SSL_INV_SKIP_WGMMA");
  if (skip != nullptr && std::string(skip) == "1") return false;
  cuda::DeviceProps p;
  Check(env, cuda::GetDeviceProps(dev.index, &p));
  return p.major == 9 && p.minor == 0;
#endif
}

Bf16Kernel GetBf16Kernel(Napi::Env env, Napi::Object o, Device dev, const std::string& op) {
  const std::string algo = GetConvAlgo(env, o);
  if (algo == "auto") return Bf16Kernel::kAuto;
  if (algo == "mma-pipelined") return Bf16Kernel::kMmaSync;
  if (algo != "wgmma") {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", op + ": algo '" + algo + "' is an fp32/tf32 kernel; bf16 in memory takes 'auto', 'mma-pipelined' or 'wgmma'");
  }
#ifndef SSL_INV_WITH_WGMMA
  ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", op + ": algo 'wgmma' is not in this build (its CUDA toolkit cannot target sm_90a; CUDA 12.0 or newer can)");
#endif
  cuda::DeviceProps p;
  Check(env, cuda::GetDeviceProps(dev.index, &p));
  if (p.major != 9 || p.minor != 0) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", op + ": algo 'wgmma' runs on compute capability 9.0 (H100, H200) only; cuda:" +
                                                 std::to_string(dev.index) + " is " + p.name + " (" + std::to_string(p.major) + "." +
                                                 std::to_string(p.minor) + ")");
  }
  return Bf16Kernel::kWgmma;
}

cudaError_t LaunchBf16Kernel(Bf16Kernel kernel, const cuda::Conv2dShape& sh, const cuda::Bf16* x, const cuda::Bf16* w, const float* bias,
                             const cuda::Bf16* residual, bool relu, cuda::Bf16* y, cudaStream_t stream) {
#ifdef SSL_INV_WITH_WGMMA
  if (kernel == Bf16Kernel::kWgmma) return cuda::LaunchConv2dForwardBf16Wgmma(sh, x, w, bias, residual, relu, y, stream);
#endif
  (void)kernel;
  return cuda::LaunchConv2dForwardBf16Nhwc(sh, x, w, bias, residual, relu, y, stream);
}

// The bf16-in-memory convolution by `kernel`; 'auto' through RunAutoConv, over the mma.sync kernel at
// each tile width and, where the device has it, the wgmma kernel at each of its widths.
cudaError_t RunBf16Conv(Napi::Env env, Device dev, Bf16Kernel kernel, const cuda::Conv2dShape& sh, const cuda::Bf16* x,
                        const cuda::Bf16* w, const float* bias, const cuda::Bf16* residual, bool relu, cuda::Bf16* y, cudaStream_t stream) {
  if (kernel != Bf16Kernel::kAuto) return LaunchBf16Kernel(kernel, sh, x, w, bias, residual, relu, y, stream);
  std::vector<cuda::ConvCandidate> candidates;
  for (int bn : TileWidths(sh.k, {64, 128}, cuda::ConvPickBlockN(sh.k))) {
    candidates.push_back({cuda::ConvKernel::kBf16Pipelined, bn, [=](void* out) {
                            return cuda::LaunchConv2dForwardBf16NhwcTile(sh, x, w, bias, residual, relu, static_cast<cuda::Bf16*>(out), stream, bn);
                          }});
  }
#ifdef SSL_INV_WITH_WGMMA
  if (DeviceRunsWgmma(env, dev)) {
    for (int bn : TileWidths(sh.k, {64, 128, 256}, cuda::WgmmaPickBlockN(sh.k))) {
      candidates.push_back({cuda::ConvKernel::kBf16Wgmma, bn, [=](void* out) {
                              return cuda::LaunchConv2dForwardBf16WgmmaTile(sh, x, w, bias, residual, relu, static_cast<cuda::Bf16*>(out), stream, bn);
                            }});
    }
  }
#else
  (void)env;
  (void)dev;
#endif
  const size_t y_bytes = 2 * static_cast<size_t>(sh.n) * sh.p() * sh.q() * sh.k;
  return RunAutoConv(dev, cuda::ConvFamily::kBf16Storage, sh, bias != nullptr, residual != nullptr, relu, candidates, y, y_bytes,
                     stream);
}

}  // namespace

// conv2d on a bf16 network's tensors: x [N, H, W, C] and packed [K, R, S, C] bfloat16 (C % 8 == 0),
// bias float32, residual bfloat16 -> y bfloat16, by the bf16-in-memory kernel (conv2d_pipelined.cuh).
Napi::Value CudaConv2dBf16Tensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kBF16, 4);
  const Tensor& w = DeviceTensor(env, info[1], "packedWeight", dev, DType::kBF16, 4);
  Napi::Object o = GetObject(env, info[2], "options");
  if (GetPrecision(env, o) != "bf16") ThrowCode(env, "ERR_INVALID_ARGUMENT", "conv2d: bfloat16 tensors take precision 'bf16'");
  const Bf16Kernel kernel = GetBf16Kernel(env, o, dev, "conv2d");
  const cuda::Conv2dShape sh = ConvShapeOf(env, x, o);
  Check(env, ExpectShape(w, {sh.k, sh.r, sh.s, sh.c}, "packedWeight"));
  if (sh.c % 8 != 0 || sh.k % 2 != 0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "conv2d: bfloat16 tensors need C % 8 == 0 (pad the channels with ops.toBfloat16) and an even outChannels, got C = " +
                                               std::to_string(sh.c) + ", outChannels = " + std::to_string(sh.k));
  }
  const std::vector<int64_t> out_shape{sh.n, sh.p(), sh.q(), sh.k};
  const Tensor* bias = OptionalDeviceTensor(env, o.Get("bias"), "bias", dev, {sh.k});
  const Tensor* res = nullptr;
  Napi::Value rv = o.Get("residual");
  if (!rv.IsUndefined() && !rv.IsNull()) {
    res = &DeviceTensor(env, rv, "residual", dev, DType::kBF16, -1);
    Check(env, ExpectShape(*res, out_shape, "residual"));
  }
  Tensor y = NewDeviceTensor(env, DType::kBF16, out_shape, dev);
  CheckLaunch(env, RunBf16Conv(env, dev, kernel, sh, x.data<cuda::Bf16>(), w.data<cuda::Bf16>(), bias ? bias->data<float>() : nullptr,
                               res ? res->data<cuda::Bf16>() : nullptr, GetBoolProp(env, o, "relu", false), y.data<cuda::Bf16>(),
                               StreamOf(env, dev)),
              dev, "conv2d");
  return TensorWrap::New(env, std::move(y));
}

// toBfloat16(x [..., c] float32, cPad?) -> [..., cPad] bfloat16 on x's device: rounded to nearest
// even, zeros past c.
Napi::Value CudaToBfloat16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kF32, -1);
  const Bf16Padding b = GetBf16Padding(env, x, info[1]);
  Tensor y = NewDeviceTensor(env, DType::kBF16, b.shape, dev);
  CheckLaunch(env, cuda::F32ToBf16PaddedRows(x.data<float>(), x.numel() / b.c, b.c, b.c_pad, y.data<cuda::Bf16>(), StreamOf(env, dev)), dev,
              "toBfloat16");
  return TensorWrap::New(env, std::move(y));
}

// bfloat16ToFloat32(x bfloat16) -> float32, exactly.
Napi::Value CudaBfloat16ToFloat32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kBF16, -1);
  Tensor y = NewDeviceTensor(env, DType::kF32, x.shape, dev);
  CheckLaunch(env, cuda::Bf16ToF32(x.data<cuda::Bf16>(), y.data<float>(), x.numel(), StreamOf(env, dev)), dev, "bfloat16ToFloat32");
  return TensorWrap::New(env, std::move(y));
}

// conv2d(x [N, H, W, C], packed [K, R, S, C], options as on the CPU + precision 'fp32'|'tf32'|'bf16')
Napi::Value CudaConv2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& x0 = GetTensor(env, info[0], "x");
  const Device dev = x0.device();
  if (x0.dtype == DType::kBF16) return CudaConv2dBf16Tensors(info);
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kF32, 4);
  const Tensor& w = DeviceTensor(env, info[1], "packedWeight", dev, DType::kF32, 4);
  Napi::Object o = GetObject(env, info[2], "options");
  const cuda::Conv2dShape sh = ConvShapeOf(env, x, o);
  Check(env, ExpectShape(w, {sh.k, sh.r, sh.s, sh.c}, "packedWeight"));
  const std::vector<int64_t> out_shape{sh.n, sh.p(), sh.q(), sh.k};
  const Tensor* bias = OptionalDeviceTensor(env, o.Get("bias"), "bias", dev, {sh.k});
  const Tensor* res = OptionalDeviceTensor(env, o.Get("residual"), "residual", dev, out_shape);
  const bool relu = GetBoolProp(env, o, "relu", false);
  const std::string precision = GetPrecision(env, o);
  const std::string algo = GetConvAlgo(env, o);
  const bool simt = algo == "simt-bk8" || algo == "simt-bk16", mma = algo == "mma-staged" || algo == "mma-pipelined";
  if (algo == "wgmma") {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "conv2d: algo 'wgmma' is the bf16 kernel for bfloat16 tensors (ops.toBfloat16, or a network with activations 'bfloat16')");
  }
  if ((simt && precision != "fp32") || (mma && precision != "tf32")) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "conv2d: algo '" + algo + "' is a" + (simt ? "n fp32" : " tf32") + " kernel; precision " +
                                               precision + " takes " + (precision == "fp32" ? "'auto', 'simt-bk8' or 'simt-bk16'" : precision == "tf32" ? "'auto', 'mma-staged' or 'mma-pipelined'" : "'auto'"));
  }
  const cuda::ConvAlgo kernel_algo = algo == "simt-bk8"        ? cuda::ConvAlgo::kSimtBk8
                                     : algo == "simt-bk16"     ? cuda::ConvAlgo::kSimtBk16
                                     : algo == "mma-staged"    ? cuda::ConvAlgo::kMmaStaged
                                     : algo == "mma-pipelined" ? cuda::ConvAlgo::kMmaPipelined
                                                               : cuda::ConvAlgo::kAuto;
  Tensor y = NewDeviceTensor(env, DType::kF32, out_shape, dev);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* b = bias ? bias->data<float>() : nullptr;
  const float* r = res ? res->data<float>() : nullptr;
  const cudaStream_t stream = StreamOf(env, dev);
  cudaError_t err;
  if (precision == "bf16") {
    err = cuda::LaunchConv2dForwardBF16(sh, xd, wd, b, r, relu, y.data<float>(), stream);  // one kernel
  } else if (kernel_algo != cuda::ConvAlgo::kAuto) {
    err = precision == "fp32" ? cuda::LaunchConv2dForwardF32Algo(kernel_algo, sh, xd, wd, b, r, relu, y.data<float>(), stream)
                              : cuda::LaunchConv2dForwardTF32Algo(kernel_algo, sh, xd, wd, b, r, relu, y.data<float>(), stream);
  } else {
    // 'auto': the default kernel, or a variant with the same bits that tuning found faster for this shape.
    // fp32: both SIMT variants; tf32: the staged kernel and the pipelined one at each tile width.
    const bool fp32 = precision == "fp32";
    const auto candidate = [&](cuda::ConvAlgo a, cuda::ConvKernel counted) {
      return cuda::ConvCandidate{counted, 0, [=](void* out) {
                                   return fp32 ? cuda::LaunchConv2dForwardF32Algo(a, sh, xd, wd, b, r, relu, static_cast<float*>(out), stream)
                                               : cuda::LaunchConv2dForwardTF32Algo(a, sh, xd, wd, b, r, relu, static_cast<float*>(out), stream);
                                 }};
    };
    std::vector<cuda::ConvCandidate> candidates;
    if (fp32) {
      candidates.push_back(candidate(cuda::ConvAlgo::kSimtBk8, cuda::ConvKernel::kSimtBk8));
      candidates.push_back(candidate(cuda::ConvAlgo::kSimtBk16, cuda::ConvKernel::kSimtBk16));
      if (cuda::F32DefaultAlgo(sh) == cuda::ConvAlgo::kSimtBk16) std::swap(candidates[0], candidates[1]);  // the default first
    } else {
      candidates.push_back(candidate(cuda::ConvAlgo::kMmaStaged, cuda::ConvKernel::kTf32Staged));
      if (cuda::Tf32PipelinedTakes(sh, xd, wd, r, y.data<float>())) {
        for (int bn : TileWidths(sh.k, {64, 128}, cuda::ConvPickBlockN(sh.k))) {
          candidates.push_back({cuda::ConvKernel::kTf32Pipelined, bn, [=](void* out) {
                                  return cuda::LaunchConv2dForwardTF32PipelinedTile(sh, xd, wd, b, r, relu, static_cast<float*>(out), stream, bn);
                                }});
        }
      }
    }
    err = RunAutoConv(dev, fp32 ? cuda::ConvFamily::kFp32 : cuda::ConvFamily::kTf32, sh, b != nullptr, r != nullptr, relu, candidates,
                      y.data<float>(), 4 * static_cast<size_t>(y.numel()), stream);
  }
  CheckLaunch(env, err, dev, "conv2d");
  return TensorWrap::New(env, std::move(y));
}

namespace {

// The inputs of the bf16-in-memory convolution, rounded to bf16 on the device (nearest even) in
// scratch buffers: x, the packed weights, the residual, and room for y.
struct Bf16Conv {
  cuda::Conv2dShape sh;
  Device dev;
  Workspace x, w, res, y;
  const float* bias = nullptr;
  bool relu = false;
  int64_t y_count = 0;
  Bf16Kernel kernel = Bf16Kernel::kAuto;
};

cuda::Bf16* Bf16Data(const Workspace& ws) { return static_cast<cuda::Bf16*>(ws.data()); }

Bf16Conv PrepareBf16Conv(const Napi::CallbackInfo& info, const char* op) {
  Napi::Env env = info.Env();
  Bf16Conv c;
  c.dev = GetTensor(env, info[0], "x").device();
  if (c.dev.type != DeviceType::kCUDA) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", std::string(op) + ": bf16 activations in memory are a CUDA kernel; move x to a CUDA device");
  }
  const Tensor& x = DeviceTensor(env, info[0], "x", c.dev, DType::kF32, 4);
  const Tensor& w = DeviceTensor(env, info[1], "packedWeight", c.dev, DType::kF32, 4);
  Napi::Object o = GetObject(env, info[2], "options");
  c.sh = ConvShapeOf(env, x, o);
  Check(env, ExpectShape(w, {c.sh.k, c.sh.r, c.sh.s, c.sh.c}, "packedWeight"));
  if (c.sh.c % 8 != 0 || c.sh.k % 2 != 0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": needs C % 8 == 0 (16-byte copies of one tap; pad the channels with zeros) and an even outChannels, got C = " +
                                               std::to_string(c.sh.c) + ", outChannels = " + std::to_string(c.sh.k));
  }
  const std::vector<int64_t> out_shape{c.sh.n, c.sh.p(), c.sh.q(), c.sh.k};
  const Tensor* bias = OptionalDeviceTensor(env, o.Get("bias"), "bias", c.dev, {c.sh.k});
  const Tensor* res = OptionalDeviceTensor(env, o.Get("residual"), "residual", c.dev, out_shape);
  c.relu = GetBoolProp(env, o, "relu", false);
  c.bias = bias ? bias->data<float>() : nullptr;
  c.kernel = GetBf16Kernel(env, o, c.dev, op);
  c.y_count = c.sh.n * int64_t{c.sh.p()} * c.sh.q() * c.sh.k;
  const cudaStream_t stream = StreamOf(env, c.dev);
  c.x = NewWorkspace(env, 2 * static_cast<size_t>(x.numel()), c.dev);
  c.w = NewWorkspace(env, 2 * static_cast<size_t>(w.numel()), c.dev);
  c.y = NewWorkspace(env, 2 * static_cast<size_t>(c.y_count), c.dev);
  CheckLaunch(env, cuda::F32ToBf16(x.data<float>(), Bf16Data(c.x), x.numel(), stream), c.dev, op);
  CheckLaunch(env, cuda::F32ToBf16(w.data<float>(), Bf16Data(c.w), w.numel(), stream), c.dev, op);
  if (res) {
    c.res = NewWorkspace(env, 2 * static_cast<size_t>(res->numel()), c.dev);
    CheckLaunch(env, cuda::F32ToBf16(res->data<float>(), Bf16Data(c.res), res->numel(), stream), c.dev, op);
  }
  return c;
}

cudaError_t LaunchBf16Conv(Napi::Env env, const Bf16Conv& c, cudaStream_t stream) {
  return RunBf16Conv(env, c.dev, c.kernel, c.sh, Bf16Data(c.x), Bf16Data(c.w), c.bias, c.res.data() ? Bf16Data(c.res) : nullptr, c.relu,
                     Bf16Data(c.y), stream);
}

}  // namespace

// conv2dBf16Storage(x [N, H, W, C] f32, packed [K, R, S, C] f32, options as conv2d) -> y f32: the
// convolution of a network whose activations are stored in bf16. x, the weights and the residual are
// rounded to bf16 as storing them would, the bf16-in-memory kernel runs, and its bf16 output comes
// back widened (exactly) to fp32.
Napi::Value CudaConv2dBf16Storage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Bf16Conv c = PrepareBf16Conv(info, "conv2dBf16Storage");
  const cudaStream_t stream = StreamOf(env, c.dev);
  CheckLaunch(env, LaunchBf16Conv(env, c, stream), c.dev, "conv2dBf16Storage");
  Tensor y = NewDeviceTensor(env, DType::kF32, {c.sh.n, c.sh.p(), c.sh.q(), c.sh.k}, c.dev);
  CheckLaunch(env, cuda::Bf16ToF32(Bf16Data(c.y), y.data<float>(), c.y_count, stream), c.dev, "conv2dBf16Storage");
  return TensorWrap::New(env, std::move(y));
}

// benchConv2dBf16Nhwc(x, packed, options, iters) -> milliseconds per launch of the bf16-in-memory
// kernel alone (inputs converted once; one warm-up launch; CUDA events around `iters` launches).
// For bench/device: the op above includes the conversions.
Napi::Value CudaBenchConv2dBf16Nhwc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Bf16Conv c = PrepareBf16Conv(info, "benchConv2dBf16Nhwc");
  const int64_t iters = GetInt(env, info[3], "iters");
  if (iters < 1 || iters > 100000) ThrowCode(env, "ERR_INVALID_ARGUMENT", "benchConv2dBf16Nhwc: iters must be 1 to 100000");
  const cudaStream_t stream = StreamOf(env, c.dev);
  CheckLaunch(env, LaunchBf16Conv(env, c, stream), c.dev, "benchConv2dBf16Nhwc");
  cudaEvent_t start = nullptr, stop = nullptr;
  Check(env, cuda::FromCuda(cudaEventCreate(&start), "cudaEventCreate"));
  cudaError_t err = cudaEventCreate(&stop);
  if (err == cudaSuccess) err = cudaEventRecord(start, stream);
  for (int64_t i = 0; i < iters && err == cudaSuccess; ++i) err = LaunchBf16Conv(env, c, stream);
  if (err == cudaSuccess) err = cudaEventRecord(stop, stream);
  if (err == cudaSuccess) err = cudaEventSynchronize(stop);
  float ms = 0.f;
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  Check(env, cuda::FromCuda(err, "benchConv2dBf16Nhwc"));
  return Napi::Number::New(env, static_cast<double>(ms) / static_cast<double>(iters));
}

// maxPool2d(x [N, H, W, C], {kernelH, kernelW, strideH, strideW, padH, padW}) -> [N, P, Q, C]
Napi::Value CudaMaxPool2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& x0 = GetTensor(env, info[0], "x");
  const Device dev = x0.device();
  const bool bf16 = x0.dtype == DType::kBF16;  // a bf16 network's activations: bf16 out
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, bf16 ? DType::kBF16 : DType::kF32, 4);
  const Pool2dParams p = GetPool2dParams(env, x, GetObject(env, info[1], "options"));
  Tensor y = NewDeviceTensor(env, x.dtype, {p.n, p.out_h(), p.out_w(), p.c}, dev);
  const cudaStream_t s = StreamOf(env, dev);
  CheckLaunch(env, bf16 ? cuda::MaxPool2dNHWC(p, x.data<cuda::Bf16>(), y.data<cuda::Bf16>(), nullptr, s)
                        : cuda::MaxPool2dNHWC(p, x.data<float>(), y.data<float>(), nullptr, s),
              dev, "maxPool2d");
  return TensorWrap::New(env, std::move(y));
}

// globalAvgPool(x [N, H, W, C]) -> [N, C]
Napi::Value CudaGlobalAvgPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& x0 = GetTensor(env, info[0], "x");
  const Device dev = x0.device();
  const bool bf16 = x0.dtype == DType::kBF16;  // the features are float32 either way
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, bf16 ? DType::kBF16 : DType::kF32, 4);
  Tensor y = NewDeviceTensor(env, DType::kF32, {x.dim(0), x.dim(3)}, dev);
  if (y.numel() > 0) {
    if (x.dim(1) * x.dim(2) == 0) ThrowCode(env, "ERR_SHAPE_MISMATCH", "globalAvgPool: the input has no pixels");
    const cudaStream_t s = StreamOf(env, dev);
    CheckLaunch(env, bf16 ? cuda::GlobalAvgPoolNHWC(x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.data<cuda::Bf16>(), y.data<float>(), s)
                          : cuda::GlobalAvgPoolNHWC(x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.data<float>(), y.data<float>(), s),
                dev, "globalAvgPool");
  }
  return TensorWrap::New(env, std::move(y));
}

Napi::Value CudaRelu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kF32, -1);
  Tensor y = NewDeviceTensor(env, DType::kF32, x.shape, dev);
  CheckLaunch(env, cuda::ReluF32(x.data<float>(), y.data<float>(), x.numel(), StreamOf(env, dev)), dev, "relu");
  return TensorWrap::New(env, std::move(y));
}

Napi::Value CudaAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "a").device();
  const Tensor& a = DeviceTensor(env, info[0], "a", dev, DType::kF32, -1);
  const Tensor& b = DeviceTensor(env, info[1], "b", dev, DType::kF32, -1);
  Check(env, ExpectShape(b, a.shape, "b"));
  const bool relu = info.Length() > 2 && info[2].ToBoolean().Value();
  Tensor y = NewDeviceTensor(env, DType::kF32, a.shape, dev);
  CheckLaunch(env, cuda::AddF32(a.data<float>(), b.data<float>(), y.data<float>(), a.numel(), relu, StreamOf(env, dev)),
              dev, "add");
  return TensorWrap::New(env, std::move(y));
}

namespace {
double GetEps(Napi::Env env, Napi::Value v) {
  const double eps = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(eps >= 0)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "eps: expected a number >= 0");
  return eps;
}
}  // namespace

Napi::Value CudaBatchNormInference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kF32, -1);
  if (x.ndim() < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", "batchNormInference: x needs a channel dimension");
  const int64_t C = x.dim(-1);
  const char* names[] = {"gamma", "beta", "runningMean", "runningVar"};
  const Tensor* v[4];
  for (int i = 0; i < 4; ++i) {
    v[i] = &DeviceTensor(env, info[1 + i], names[i], dev, DType::kF32, -1);
    Check(env, ExpectShape(*v[i], {C}, names[i]));
  }
  const double eps = GetEps(env, info[5]);
  Tensor y = NewDeviceTensor(env, DType::kF32, x.shape, dev);
  const int64_t rows = C ? x.numel() / C : 0;
  if (rows > 0 && C > 0) {
    CheckLaunch(env, cuda::BatchNormInferenceF32(x.data<float>(), v[0]->data<float>(), v[1]->data<float>(),
                                                 v[2]->data<float>(), v[3]->data<float>(), eps, y.data<float>(), rows, C,
                                                 StreamOf(env, dev)),
                dev, "batchNormInference");
  }
  return TensorWrap::New(env, std::move(y));
}

Napi::Value CudaBatchNormFold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "gamma").device();
  const int64_t C = GetTensor(env, info[0], "gamma").numel();
  const char* names[] = {"gamma", "beta", "runningMean", "runningVar"};
  const Tensor* v[4];
  for (int i = 0; i < 4; ++i) {
    v[i] = &DeviceTensor(env, info[i], names[i], dev, DType::kF32, -1);
    Check(env, ExpectShape(*v[i], {C}, names[i]));
  }
  const double eps = GetEps(env, info[4]);
  Tensor scale = NewDeviceTensor(env, DType::kF32, {C}, dev);
  Tensor shift = NewDeviceTensor(env, DType::kF32, {C}, dev);
  if (C > 0) {
    CheckLaunch(env, cuda::BatchNormFoldF32(v[0]->data<float>(), v[1]->data<float>(), v[2]->data<float>(),
                                            v[3]->data<float>(), eps, scale.data<float>(), shift.data<float>(), C,
                                            StreamOf(env, dev)),
                dev, "batchNormFold");
  }
  return NewTensorArray(env, {std::move(scale), std::move(shift)});
}

namespace {
// y rows = bias (broadcast), so that a GEMM with beta = 1 adds it: ScaleShift of zeros is exactly bias.
void FillRowsWithBias(Napi::Env env, const Tensor& bias, Tensor& y, int64_t rows, int64_t cols, Device dev) {
  Check(env, cuda::FromCuda(cudaMemsetAsync(y.buffer->data(), 0, y.nbytes(), StreamOf(env, dev)), "linear"));
  std::vector<float> ones_host(static_cast<size_t>(cols), 1.0f);
  Tensor ones = NewDeviceTensor(env, DType::kF32, {cols}, dev);
  Check(env, cuda::CopyToDevice(dev.index, ones.buffer->data(), ones_host.data(), ones.nbytes()));
  CheckLaunch(env, cuda::ScaleShiftF32(y.data<float>(), ones.data<float>(), bias.data<float>(), y.data<float>(), rows, cols,
                                       StreamOf(env, dev)),
              dev, "linear");
}
}  // namespace

// linear(x [N, in], w [out, in], bias? [out]) -> [N, out]; cuBLAS SGEMM in strict fp32, the bias
// pre-filled so that the GEMM's beta = 1 adds it (one rounding, as PyTorch's addmm).
Napi::Value CudaLinear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kF32, 2);
  const Tensor& w = DeviceTensor(env, info[1], "weight", dev, DType::kF32, 2);
  if (w.dim(1) != x.dim(1)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "linear: x has " + std::to_string(x.dim(1)) + " features but the weight is " + w.ShapeString());
  }
  const Tensor* bias = info.Length() > 2 ? OptionalDeviceTensor(env, info[2], "bias", dev, {w.dim(0)}) : nullptr;
  Tensor y = NewDeviceTensor(env, DType::kF32, {x.dim(0), w.dim(0)}, dev);
  if (y.numel() == 0) return TensorWrap::New(env, std::move(y));
  if (bias) FillRowsWithBias(env, *bias, y, x.dim(0), w.dim(0), dev);
  if (x.dim(1) == 0) {
    // No input features: y = bias (already filled) or 0. cuBLAS would reject this call, since
    // lda = ldb = 0 is below its minimum of max(1, k), and would leave y unwritten.
    if (!bias) Check(env, cuda::FromCuda(cudaMemsetAsync(y.buffer->data(), 0, y.nbytes(), StreamOf(env, dev)), "linear"));
    return TensorWrap::New(env, std::move(y));
  }
  Check(env, cuda::CublasSgemmRowMajor(dev.index, x.dim(0), w.dim(0), x.dim(1), x.data<float>(), x.dim(1), w.data<float>(),
                                       w.dim(1), true, bias ? 1.0f : 0.0f, y.data<float>(), w.dim(0), cuda::GemmMath::kFp32));
  if (SyncEveryOp()) Check(env, cuda::Synchronize(dev.index, "linear"));
  return TensorWrap::New(env, std::move(y));
}

// gemm(a, b, {transA, transB, bias?, relu?}) on CUDA: cuBLAS in strict fp32. A bias [N] is
// pre-filled into every row of y so that the GEMM's beta = 1 adds it (one rounding, as PyTorch's
// addmm; the CPU path adds it after the sum, so the two agree within fp32 rounding, not bit for bit);
// relu then runs in place (NaN kept, as torch.relu). The residual epilogue is not offered here:
// passing one is an error rather than a silent skip.
Napi::Value CudaGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "a").device();
  const Tensor& a = DeviceTensor(env, info[0], "a", dev, DType::kF32, 2);
  const Tensor& b = DeviceTensor(env, info[1], "b", dev, DType::kF32, 2);
  Napi::Object o = GetOptions(env, info, 2);
  if (o.Has("residual") && !o.Get("residual").IsUndefined() && !o.Get("residual").IsNull()) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "matmul on CUDA: the residual epilogue is not supported; add it separately");
  }
  const GemmDims d = GetGemmDims(env, a, b, o, "matmul");
  const Tensor* bias = o.Has("bias") ? OptionalDeviceTensor(env, o.Get("bias"), "bias", dev, {d.N}) : nullptr;
  const bool relu = GetBoolProp(env, o, "relu", false);
  Tensor y = NewDeviceTensor(env, DType::kF32, {d.M, d.N}, dev);
  if (y.numel() == 0) return TensorWrap::New(env, std::move(y));
  if (bias) {
    FillRowsWithBias(env, *bias, y, d.M, d.N, dev);
  } else if (d.K == 0) {
    Check(env, cuda::FromCuda(cudaMemsetAsync(y.buffer->data(), 0, y.nbytes(), StreamOf(env, dev)), "matmul"));
  }
  // K = 0: y is the bias or 0 already (cuBLAS would reject lda = ldb = 0 and leave y unwritten).
  if (d.K > 0) {
    Check(env, cuda::CublasSgemmRowMajorT(dev.index, d.M, d.N, d.K, a.data<float>(), a.dim(1), d.transA, b.data<float>(),
                                          b.dim(1), d.transB, bias ? 1.0f : 0.0f, y.data<float>(), d.N, cuda::GemmMath::kFp32));
  }
  if (relu) CheckLaunch(env, cuda::ReluF32(y.data<float>(), y.data<float>(), y.numel(), StreamOf(env, dev)), dev, "matmul");
  if (SyncEveryOp()) Check(env, cuda::Synchronize(dev.index, "matmul"));
  return TensorWrap::New(env, std::move(y));
}

// nchwToNhwc / nhwcToNchw of a 4-byte-element tensor on CUDA.
Napi::Value CudaLayout(const Napi::CallbackInfo& info, bool to_nhwc) {
  Napi::Env env = info.Env();
  const Tensor& x = GetTensor(env, info[0], "x");
  const Device dev = x.device();
  Check(env, ExpectRank(x, 4, "x"));
  if (DTypeSize(x.dtype) != 4) {
    ThrowCode(env, "ERR_DTYPE_MISMATCH", std::string("layout conversion on CUDA takes 4-byte elements, got ") + DTypeName(x.dtype));
  }
  const int64_t n = x.dim(0);
  const int64_t c = to_nhwc ? x.dim(1) : x.dim(3), h = to_nhwc ? x.dim(2) : x.dim(1), w = to_nhwc ? x.dim(3) : x.dim(2);
  Tensor y = NewDeviceTensor(env, x.dtype, to_nhwc ? std::vector<int64_t>{n, h, w, c} : std::vector<int64_t>{n, c, h, w}, dev);
  if (y.numel() > 0) {
    const cudaError_t err = to_nhwc ? cuda::NchwToNhwc(x.buffer->data(), y.buffer->data(), n, c, h, w, StreamOf(env, dev))
                                    : cuda::NhwcToNchw(x.buffer->data(), y.buffer->data(), n, c, h, w, StreamOf(env, dev));
    CheckLaunch(env, err, dev, to_nhwc ? "nchwToNhwc" : "nhwcToNchw");
  }
  return TensorWrap::New(env, std::move(y));
}

// covarianceAccumulate(x [n, d] float32 on CUDA, mean [d] float64, m2 [d, d] float64 on the same
// device, count) -> the new count. See cuda/covariance.cuh; float64 chunks are not taken on CUDA.
Napi::Value CudaCovarianceAccumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "x").device();
  const Tensor& x = DeviceTensor(env, info[0], "x", dev, DType::kF32, 2);
  const int64_t d = x.dim(1);
  const Tensor& mean = DeviceTensor(env, info[1], "mean", dev, DType::kF64, 1);
  const Tensor& m2 = DeviceTensor(env, info[2], "m2", dev, DType::kF64, 2);
  Check(env, ExpectShape(mean, {d}, "mean"));
  Check(env, ExpectShape(m2, {d, d}, "m2"));
  const int64_t count = GetInt(env, info[3], "count");
  if (count < 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", "count: expected an integer >= 0");
  const int di = CheckedInt(env, d, "d");
  if (di < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", "covarianceAccumulate: rows of 0 values");
  const int64_t rows = x.dim(0);
  const std::string syrk = GetCovarianceSyrk(env, info[4]);
  if (syrk == "3xtf32" && di % 4 != 0) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "covarianceAccumulate: syrk '3xtf32' copies rows 16 bytes at a time and needs dim % 4 == 0, got " +
                                               std::to_string(di) + " (use 'auto')");
  }
  if (rows > 0) {
    Workspace ws = NewWorkspace(env, cuda::CovarianceWorkspaceBytes(rows, di), dev);
    const cuda::CovarianceSyrk kernel = syrk == "simt"        ? cuda::CovarianceSyrk::kSimt
                                        : syrk == "simt-bk16" ? cuda::CovarianceSyrk::kSimtBk16
                                        : syrk == "3xtf32"    ? cuda::CovarianceSyrk::kTf32x3
                                                              : cuda::CovarianceSyrk::kAuto;
    CheckLaunch(env, cuda::LaunchCovarianceAccumulate(x.data<float>(), rows, di, count, mean.data<double>(),
                                                      m2.data<double>(), ws.data(), StreamOf(env, dev), 0, kernel),
                dev, "covarianceAccumulate");
  }
  return Napi::Number::New(env, static_cast<double>(count + rows));
}

// mocoLoss(q [N, D], kPos [N, D], queue [D, K], temperature) -> [loss [1], dq [N, D]]
Napi::Value CudaMocoLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "q").device();
  const Tensor& q = DeviceTensor(env, info[0], "q", dev, DType::kF32, 2);
  const Tensor& kp = DeviceTensor(env, info[1], "kPos", dev, DType::kF32, 2);
  const Tensor& queue = DeviceTensor(env, info[2], "queue", dev, DType::kF32, 2);
  Check(env, ExpectShape(kp, q.shape, "kPos"));
  if (queue.dim(0) != q.dim(1)) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "mocoLoss: queue must be [dim, K] with dim = " + std::to_string(q.dim(1)) + ", got " + queue.ShapeString());
  }
  const double t = GetNumber(env, info[3], "temperature");
  if (!(t > 0) || !(t < 1e30)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "temperature: expected a positive number");
  const int n = CheckedInt(env, q.dim(0), "N"), d = CheckedInt(env, q.dim(1), "dim"), kq = CheckedInt(env, queue.dim(1), "K");
  if (n < 1 || d < 1 || kq < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", "mocoLoss: empty input");
  if (d > 256) ThrowCode(env, "ERR_SHAPE_MISMATCH", "mocoLoss: the CUDA kernel takes dim <= 256, got " + std::to_string(d));
  auto flag = [&](size_t i) { return info.Length() > i && info[i].IsBoolean() && info[i].As<Napi::Boolean>().Value(); };
  const bool ranks = flag(4), row_losses = flag(5);
  Tensor loss = NewDeviceTensor(env, DType::kF32, {1}, dev);
  Tensor dq = NewDeviceTensor(env, DType::kF32, q.shape, dev);
  Tensor rank = ranks ? NewDeviceTensor(env, DType::kI32, {q.dim(0)}, dev) : Tensor();
  Tensor row_loss = row_losses ? NewDeviceTensor(env, DType::kF32, {q.dim(0)}, dev) : Tensor();
  // The plan and the check read the current device's limits: make it dev's (GetStream sets it).
  (void)StreamOf(env, dev);
  if (!cuda::MocoLossFits(d)) {
    cuda::DeviceProps props;
    Check(env, cuda::GetDeviceProps(dev.index, &props));
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "mocoLoss: dim " + std::to_string(d) + " needs " +
              std::to_string(cuda::MocoLossSharedMemoryNeeded(d) / 1024) + " KiB of shared memory per block; cuda:" +
              std::to_string(dev.index) + " (" + props.name + ") allows " + std::to_string(props.smem_optin / 1024) +
              " KiB (dim <= 128 fits every supported card; or use the CPU)");
  }
  Workspace ws = NewWorkspace(env, cuda::MocoLossWorkspaceBytes(n, d, kq), dev);
  CheckLaunch(env, cuda::LaunchMocoLossForwardBackward(q.data<float>(), kp.data<float>(), queue.data<float>(), n, d, kq,
                                                       static_cast<float>(t), loss.data<float>(), dq.data<float>(), nullptr,
                                                       ws.data(), StreamOf(env, dev), 0,
                                                       row_losses ? row_loss.data<float>() : nullptr),
              dev, "mocoLoss");
  if (ranks) {
    // The logit scale as the CPU op computes it (float32 of 1 / T in double), so both count alike.
    CheckLaunch(env, cuda::LaunchMocoRanks(q.data<float>(), kp.data<float>(), queue.data<float>(), n, d, kq,
                                           static_cast<float>(1.0 / t), rank.data<int32_t>(), StreamOf(env, dev)),
                dev, "mocoLoss");
  }
  std::vector<Tensor> out;
  out.push_back(std::move(loss));
  out.push_back(std::move(dq));
  if (ranks) out.push_back(std::move(rank));
  if (row_losses) out.push_back(std::move(row_loss));
  return NewTensorArray(env, std::move(out));
}

// dgemm(a, b, {transA, transB}) of float64 matrices on CUDA: cuBLAS DGEMM (IEEE fp64, no reduced
// precision mode exists for it). Summation order differs from the CPU GEMM, so results agree with it
// to rounding, not bit for bit.
Napi::Value CudaDgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "a").device();
  const Tensor& a = DeviceTensor(env, info[0], "a", dev, DType::kF64, 2);
  const Tensor& b = DeviceTensor(env, info[1], "b", dev, DType::kF64, 2);
  const GemmDims d = GetGemmDims(env, a, b, GetOptions(env, info, 2), "dgemm");
  Tensor c = NewDeviceTensor(env, DType::kF64, {d.M, d.N}, dev);
  if (c.numel() == 0) return TensorWrap::New(env, std::move(c));
  if (d.K == 0) {
    Check(env, cuda::ZeroOnDevice(dev.index, c.buffer->data(), c.nbytes()));
    return TensorWrap::New(env, std::move(c));
  }
  Check(env, cuda::CublasDgemmRowMajor(dev.index, d.M, d.N, d.K, a.data<double>(), a.dim(1), d.transA, b.data<double>(),
                                       b.dim(1), d.transB, c.data<double>(), d.N));
  if (SyncEveryOp()) Check(env, cuda::Synchronize(dev.index, "dgemm"));
  return TensorWrap::New(env, std::move(c));
}

// multinomialLossGrad(z [n, P*K] f64, bias [P*K] f64, y [P, n] i32, K) -> [loss [P], g [n, P*K], gb [P*K]],
// all on the device (cuda/multinomial.cuh). The labels are checked on the device; the call waits for
// that check (one 8-byte copy back) so a bad label throws here, as on the CPU, instead of poisoning
// the results silently.
Napi::Value CudaMultinomialLossGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device dev = GetTensor(env, info[0], "z").device();
  const Tensor& z = DeviceTensor(env, info[0], "z", dev, DType::kF64, 2);
  const Tensor& bias = DeviceTensor(env, info[1], "bias", dev, DType::kF64, 1);
  const Tensor& y = DeviceTensor(env, info[2], "y", dev, DType::kI32, 2);
  const int64_t K = GetInt(env, info[3], "K");
  const int64_t n = z.dim(0), P = y.dim(0);
  if (K < 1) ThrowCode(env, "ERR_INVALID_ARGUMENT", "multinomialLossGrad: K must be >= 1");
  if (P < 1 || y.dim(1) != n || z.dim(1) != P * K || bias.dim(0) != P * K) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "multinomialLossGrad: z is " + z.ShapeString() + ", bias " + bias.ShapeString() +
                                             ", y " + y.ShapeString() + " with K = " + std::to_string(K));
  }
  Tensor loss = NewDeviceTensor(env, DType::kF64, {P}, dev);
  Tensor g = NewDeviceTensor(env, DType::kF64, {n, P * K}, dev);
  Tensor gb = NewDeviceTensor(env, DType::kF64, {P * K}, dev);
  const size_t bytes = cuda::MultinomialWorkspaceBytes(n, P, K);
  Workspace ws = NewWorkspace(env, bytes + 256, dev);
  auto* bad = reinterpret_cast<unsigned long long*>(static_cast<unsigned char*>(ws.data()) + bytes);
  CheckLaunch(env, cuda::LaunchMultinomialLossGrad(z.data<double>(), bias.data<double>(), y.data<int32_t>(), n, P, K,
                                                   loss.data<double>(), g.data<double>(), gb.data<double>(), bad,
                                                   ws.data(), StreamOf(env, dev)),
              dev, "multinomialLossGrad");
  unsigned long long bad_host = 0;
  Check(env, cuda::CopyToHost(dev.index, &bad_host, bad, sizeof bad_host));
  if (bad_host != ~0ull) {
    const int64_t p = static_cast<int64_t>(bad_host) / std::max<int64_t>(n, 1), i = static_cast<int64_t>(bad_host) % std::max<int64_t>(n, 1);
    int32_t label = 0;
    Check(env, cuda::CopyToHost(dev.index, &label, y.data<int32_t>() + bad_host, sizeof label));
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "multinomialLossGrad: label " + std::to_string(label) + " outside [-1, " +
                                               std::to_string(K) + ") at problem " + std::to_string(p) + ", row " +
                                               std::to_string(i));
  }
  return NewTensorArray(env, {std::move(loss), std::move(g), std::move(gb)});
}

Napi::Value CudaNormalizeImagesU8(Napi::Env env, const Tensor& x, const std::vector<float>& mean,
                                  const std::vector<float>& std_) {
  const Device dev = x.device();
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  Tensor y = NewDeviceTensor(env, DType::kF32, {n, c, h, w}, dev);
  if (y.numel() == 0) return TensorWrap::New(env, std::move(y));
  Workspace nhwc = NewWorkspace(env, static_cast<size_t>(y.nbytes()), dev);
  CheckLaunch(env, cuda::Uint8HwcToNormalizedNhwc(x.data<uint8_t>(), static_cast<float*>(nhwc.data()), n, h, w, c,
                                                  mean.data(), std_.data(), StreamOf(env, dev)),
              dev, "normalizeImagesU8");
  CheckLaunch(env, cuda::NhwcToNchw(nhwc.data(), y.data<float>(), n, c, h, w, StreamOf(env, dev)), dev, "normalizeImagesU8");
  return TensorWrap::New(env, std::move(y));
}

Napi::Value CudaGatherRows(Napi::Env env, const Tensor& x, const std::vector<int32_t>& index,
                           const std::vector<int64_t>& shape, int64_t row_bytes) {
  const Device dev = x.device();
  Tensor y = NewDeviceTensor(env, x.dtype, shape, dev);
  const int64_t n = static_cast<int64_t>(index.size());
  if (n > 0 && row_bytes > 0) {
    Workspace ws = NewWorkspace(env, index.size() * sizeof(int32_t), dev);
    Check(env, cuda::CopyToDevice(dev.index, ws.data(), index.data(), index.size() * sizeof(int32_t)));
    CheckLaunch(env, cuda::GatherRows(x.buffer->data(), y.buffer->data(), static_cast<const int32_t*>(ws.data()), n, row_bytes,
                                      StreamOf(env, dev)),
                dev, "gatherRows");
  }
  return TensorWrap::New(env, std::move(y));
}

#else  // no CUDA backend

bool IsCudaTensorArg(Napi::Value) { return false; }

#define SSLINV_NO_CUDA(name) \
  Napi::Value name(const Napi::CallbackInfo& info) { return NoCudaBackend(info); }
SSLINV_NO_CUDA(CudaConvPackWeights)
SSLINV_NO_CUDA(CudaConv2d)
SSLINV_NO_CUDA(CudaConv2dBf16Storage)
SSLINV_NO_CUDA(CudaToBfloat16)
SSLINV_NO_CUDA(CudaBfloat16ToFloat32)
SSLINV_NO_CUDA(CudaBenchConv2dBf16Nhwc)
SSLINV_NO_CUDA(CudaMaxPool2d)
SSLINV_NO_CUDA(CudaGlobalAvgPool)
SSLINV_NO_CUDA(CudaRelu)
SSLINV_NO_CUDA(CudaAdd)
SSLINV_NO_CUDA(CudaBatchNormInference)
SSLINV_NO_CUDA(CudaBatchNormFold)
SSLINV_NO_CUDA(CudaLinear)
SSLINV_NO_CUDA(CudaGemm)
SSLINV_NO_CUDA(CudaCovarianceAccumulate)
SSLINV_NO_CUDA(CudaMocoLoss)
SSLINV_NO_CUDA(CudaDgemm)
SSLINV_NO_CUDA(CudaMultinomialLossGrad)
#undef SSLINV_NO_CUDA
Napi::Value CudaLayout(const Napi::CallbackInfo& info, bool) { return NoCudaBackend(info); }
Napi::Value CudaGatherRows(Napi::Env env, const Tensor&, const std::vector<int32_t>&, const std::vector<int64_t>&, int64_t) {
  ThrowNoCudaBackend(env);
}
Napi::Value CudaNormalizeImagesU8(Napi::Env env, const Tensor&, const std::vector<float>&, const std::vector<float>&) {
  ThrowNoCudaBackend(env);
}

#endif

}  // namespace napi
}  // namespace sslinv
