// The synthetic-invariance views on a CUDA device: batched photometric ops and the final
// Resize -> CenterCrop -> ToTensor -> Normalize of many views at once, bit-identical to the CPU ops
// (native/cuda/color.cuh, native/cuda/resample.cuh). Images are uint8 HWC tensors on the device.
//
//   cudaColorViews(src, op, params?) -> uint8 views on src's device
//     per-view ops (src [H, W, C], params one number per view -> [V, H, W, C]):
//       'brightness' | 'contrast' | 'saturation' | 'sharpness' (factors), 'hue' (hue factors),
//       'posterize' (bits)
//     batch ops (src [N, H, W, C] -> [N, H, W, C]): 'grayscale', 'invert', 'equalize'
//   cudaResizeCropNormalizeViews(views [V, H, W, C], options, out?, slot?) -> float32 [V, C, h, w]
//     options as the CPU resizeCropNormalizeU8's: {outHeight, outWidth, filter?, box?, top, left,
//     height, width, mean, std}; with `out` (a float32 device tensor [B, C, h, w]) the V results are
//     written to out[slot .. slot + V) instead of a new tensor.
//   cudaGeometricViews(src [H, W, C], op, params) -> uint8 [V, H, W, C]
//     'rotate' (angles in degrees), 'flip' (1 = left-right, 0 = top-bottom), 'affine' (objects
//     {angle, translate: [x, y], scale, shear: [x, y]}, torchvision's F.affine)
//   cudaBlurViews(src [H, W, C], kernelSize, sigmas) -> uint8 [V, H, W, C]: F.gaussian_blur with an
//     odd square kernel and one sigma per view (torchvision's GaussianBlur draws one for both axes)
//   cudaResizedCropViews(src [H, W, C], crops [{top, left, height, width}], options {outHeight,
//     outWidth, mean, std}, out, slot): F.resized_crop (Pillow's rounded crop box, BILINEAR resize to
//     outHeight x outWidth) of each view, normalised into out[slot + v] (float32 [B, C, outH, outW]).
//   cudaResampleViews(views [V, H, W, C], options {outHeight, outWidth, filter?, box?, top, left,
//     height, width}) -> uint8 [V, height, width, C], the window of each view's Pillow resize.
//   cudaElasticViews(src [H, W, C], noise [V, 2, H, W], params [{sigma, alpha, affineOffsets}]) ->
//     uint8 [V, H, W, C]: albumentations' elastic_transform (ElasticU8) of each view, given its random
//     draws: noise a float32 tensor on src's device (view v's dx field, then its dy field) and the six
//     float32 affine offsets per view; sides up to 32767.
// Without the CUDA backend every entry point is ERR_DEVICE_UNAVAILABLE.
#include <algorithm>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/cuda_ops_binding.h"
#include "bindings/image_args.h"
#include "bindings/napi_util.h"

#ifdef SSL_INV_WITH_CUDA
#include "cuda/blur.cuh"
#include "cuda/color.cuh"
#include "cuda/elastic.cuh"
#include "cuda/geometric.cuh"
#include "cuda/resample.cuh"
#include "cuda/runtime.h"
#include "ops/geometric.h"
#endif

namespace sslinv {
namespace napi {
namespace {

#ifdef SSL_INV_WITH_CUDA

// A uint8 image batch on a CUDA device: [H, W, C] (batch = false) or [N, H, W, C].
const Tensor& DeviceImages(Napi::Env env, Napi::Value v, const char* what, bool batch) {
  const Tensor& t = GetTensor(env, v, what);
  if (t.device().type != DeviceType::kCUDA) {
    ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", std::string(what) + ": expected a tensor on a CUDA device (move it with tensor.to())");
  }
  Check(env, ExpectDType(t, DType::kU8, what));
  Check(env, ExpectRank(t, batch ? 4 : 3, what));
  const int64_t c = t.dim(-1);
  if (c < 1 || c > 4) ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(what) + ": 1 to 4 channels, got " + std::to_string(c));
  if (t.dim(-2) < 1 || t.dim(-3) < 1) ThrowCode(env, "ERR_SHAPE_MISMATCH", std::string(what) + ": an empty image");
  return t;
}

void Launched(Napi::Env env, cudaError_t err, const char* op, const std::string& detail = "") {
  if (err == cudaErrorInvalidValue) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(op) + ": the kernel refused its arguments" + (detail.empty() ? "" : " (" + detail + ")"));
  }
  Check(env, cuda::FromCuda(err, op));
}

// A non-empty Array of numbers (one per view).
std::vector<double> GetNumbers(Napi::Env env, Napi::Value v, const char* what) {
  std::vector<double> out = GetNumberArray(env, v, what);
  if (out.empty()) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(what) + ": expected at least one value");
  return out;
}

Napi::Value CudaColorViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[1].IsString()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "op: expected a string");
  const std::string op = info[1].As<Napi::String>().Utf8Value();
  const bool batch_op = op == "grayscale" || op == "invert" || op == "equalize";
  const Tensor& src = DeviceImages(env, info[0], "src", batch_op);
  const Device dev = src.device();
  const int64_t h = src.dim(-3), w = src.dim(-2), c = src.dim(-1);
  if (batch_op) {
    const int64_t n = src.dim(0);
    Tensor dst = NewDeviceTensor(env, DType::kU8, src.shape, dev);
    if (op == "grayscale") {
      if (c != 3) ThrowCode(env, "ERR_SHAPE_MISMATCH", "grayscale: expected RGB images");
      Launched(env, cuda::RgbToGrayscaleBatchU8(src.data<uint8_t>(), n, h, w, dst.data<uint8_t>(), StreamOf(env, dev)), "grayscale");
    } else if (op == "invert") {
      Launched(env, cuda::InvertBatchU8(src.data<uint8_t>(), n, h, w, c, dst.data<uint8_t>(), StreamOf(env, dev)), "invert");
    } else {
      const size_t bytes = cuda::EqualizeWorkspaceBytes(n, c);
      Tensor ws = NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(bytes)}, dev);
      Launched(env, cuda::EqualizeBatchU8(src.data<uint8_t>(), n, h, w, c, dst.data<uint8_t>(), ws.buffer->data(), bytes,
                                          StreamOf(env, dev)),
               "equalize");
    }
    return TensorWrap::New(env, std::move(dst));
  }
  const std::vector<double> params = GetNumbers(env, info[2], "params");
  const int64_t views = static_cast<int64_t>(params.size());
  Tensor dst = NewDeviceTensor(env, DType::kU8, {views, h, w, c}, dev);
  EnhanceKind kind;
  if (op == "brightness" || op == "contrast" || op == "saturation" || op == "sharpness") {
    kind = op == "brightness" ? EnhanceKind::kBrightness
           : op == "contrast" ? EnhanceKind::kContrast
           : op == "saturation" ? EnhanceKind::kColor
                                : EnhanceKind::kSharpness;
    if (c != 3) ThrowCode(env, "ERR_SHAPE_MISMATCH", op + ": expected an RGB image");
    const size_t bytes = cuda::EnhanceWorkspaceBytes();
    Tensor ws = NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(bytes)}, dev);
    Launched(env, cuda::EnhanceViewsU8(src.data<uint8_t>(), h, w, kind, params.data(), views, dst.data<uint8_t>(),
                                       ws.buffer->data(), bytes, StreamOf(env, dev)),
             op.c_str(), "factors must be finite");
  } else if (op == "hue") {
    if (c != 3) ThrowCode(env, "ERR_SHAPE_MISMATCH", "hue: expected an RGB image");
    Launched(env, cuda::AdjustHueViewsU8(src.data<uint8_t>(), h, w, params.data(), views, dst.data<uint8_t>(), StreamOf(env, dev)),
             "hue", "hue factors must lie in [-0.5, 0.5]");
  } else if (op == "posterize") {
    std::vector<int64_t> bits(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      if (!(params[i] >= 0 && params[i] <= 8 && params[i] == static_cast<double>(static_cast<int64_t>(params[i])))) {
        ThrowCode(env, "ERR_INVALID_ARGUMENT", "posterize: bits must be integers from 0 to 8");
      }
      bits[i] = static_cast<int64_t>(params[i]);
    }
    Launched(env, cuda::PosterizeViewsU8(src.data<uint8_t>(), h, w, c, bits.data(), views, dst.data<uint8_t>(), StreamOf(env, dev)),
             "posterize");
  } else {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "op: unknown colour op '" + op + "'");
  }
  return TensorWrap::New(env, std::move(dst));
}

Tensor Workspace(Napi::Env env, size_t bytes, Device dev) {
  return bytes ? NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(bytes)}, dev) : Tensor{};
}

void* Data(const Tensor& t) { return t.buffer ? t.buffer->data() : nullptr; }

double NumberProp(Napi::Env env, Napi::Object o, const char* key) { return GetNumber(env, o.Get(key), key); }

void PairProp(Napi::Env env, Napi::Object o, const char* key, double out[2]) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) ThrowCode(env, "ERR_INVALID_ARGUMENT", std::string(key) + ": expected [x, y]");
  out[0] = GetNumber(env, v.As<Napi::Array>().Get(0u), key);
  out[1] = GetNumber(env, v.As<Napi::Array>().Get(1u), key);
}

Napi::Value CudaGeometricViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& src = DeviceImages(env, info[0], "src", false);
  const Device dev = src.device();
  const int64_t h = src.dim(0), w = src.dim(1), c = src.dim(2);
  if (!info[1].IsString()) ThrowCode(env, "ERR_INVALID_ARGUMENT", "op: expected a string");
  const std::string op = info[1].As<Napi::String>().Utf8Value();
  if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() == 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", "params: expected a non-empty array");
  Napi::Array params = info[2].As<Napi::Array>();
  const int64_t views = params.Length();
  Tensor dst = NewDeviceTensor(env, DType::kU8, {views, h, w, c}, dev);
  Tensor ws = Workspace(env, cuda::GeometricWorkspaceBytes(views, h, w), dev);
  const size_t ws_bytes = ws.buffer ? ws.nbytes() : 0;
  cudaError_t err;
  if (op == "rotate") {
    const std::vector<double> angles = GetNumbers(env, params, "angles");
    err = cuda::RotateViewsU8(src.data<uint8_t>(), h, w, c, 0, angles.data(), views, dst.data<uint8_t>(), Data(ws), ws_bytes, StreamOf(env, dev));
  } else if (op == "flip") {
    std::vector<uint8_t> horizontal(static_cast<size_t>(views));
    for (int64_t i = 0; i < views; ++i) horizontal[static_cast<size_t>(i)] = GetNumber(env, params.Get(static_cast<uint32_t>(i)), "flip") != 0;
    err = cuda::FlipViewsU8(src.data<uint8_t>(), h, w, c, 0, horizontal.data(), views, dst.data<uint8_t>(), Data(ws), ws_bytes, StreamOf(env, dev));
  } else if (op == "affine") {
    std::vector<AffineParams> ps(static_cast<size_t>(views));
    for (int64_t i = 0; i < views; ++i) {
      Napi::Object o = GetObject(env, params.Get(static_cast<uint32_t>(i)), "affine params");
      AffineParams& a = ps[static_cast<size_t>(i)];
      a.angle = NumberProp(env, o, "angle");
      a.scale = NumberProp(env, o, "scale");
      PairProp(env, o, "translate", a.translate);
      PairProp(env, o, "shear", a.shear);
    }
    err = cuda::TorchvisionAffineViewsU8(src.data<uint8_t>(), h, w, c, 0, ps.data(), views, dst.data<uint8_t>(), Data(ws), ws_bytes,
                                         StreamOf(env, dev));
  } else {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "op: unknown geometric op '" + op + "'");
  }
  Launched(env, err, op.c_str(), "parameters must be finite; scale > 0");
  return TensorWrap::New(env, std::move(dst));
}

Napi::Value CudaBlurViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& src = DeviceImages(env, info[0], "src", false);
  const Device dev = src.device();
  const int64_t h = src.dim(0), w = src.dim(1), c = src.dim(2);
  const int64_t k = GetInt(env, info[1], "kernelSize");
  if (k < 1 || k % 2 == 0 || k / 2 >= h || k / 2 >= w) {
    ThrowCode(env, "ERR_INVALID_ARGUMENT", "kernelSize: expected an odd size whose half is below the image sides");
  }
  const std::vector<double> sigmas = GetNumbers(env, info[2], "sigmas");
  const int64_t views = static_cast<int64_t>(sigmas.size());
  Tensor dst = NewDeviceTensor(env, DType::kU8, {views, h, w, c}, dev);
  Tensor ws = Workspace(env, cuda::GaussianBlurTorchWorkspaceBytes(views, k, k), dev);
  Launched(env, cuda::GaussianBlurTorchViewsU8(src.data<uint8_t>(), h, w, c, 0, k, k, sigmas.data(), nullptr, views,
                                               dst.data<uint8_t>(), Data(ws), ws.buffer ? ws.nbytes() : 0, StreamOf(env, dev)),
           "gaussianBlur", "sigmas must be positive and finite");
  return TensorWrap::New(env, std::move(dst));
}

// The plan's table on the device (an int32 tensor; empty plans need none).
Tensor UploadTable(Napi::Env env, const cuda::ResamplePlan& plan, Device dev) {
  Tensor t;
  if (plan.table.empty()) return t;
  t = NewDeviceTensor(env, DType::kI32, {static_cast<int64_t>(plan.table.size())}, dev);
  Check(env, cuda::CopyToDevice(dev.index, t.buffer->data(), plan.table.data(), plan.table.size() * sizeof(int32_t)));
  return t;
}

Napi::Value CudaResizeCropNormalizeViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& src = DeviceImages(env, info[0], "views", true);
  const Device dev = src.device();
  const int64_t v = src.dim(0), h = src.dim(1), w = src.dim(2), c = src.dim(3);
  Napi::Object o = GetObject(env, info[1], "options");
  const ResampleSpec spec = GetResampleSpec(env, o);
  const Window crop = GetWindow(env, o);
  const std::vector<float> mean = GetChannelFloats(env, o, "mean", c), std_ = GetChannelFloats(env, o, "std", c);
  cuda::ResamplePlan plan;
  Check(env, cuda::PlanResizeCropNormalize(h, w, c, spec, crop, &plan));
  Tensor out;
  int64_t slot = 0;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    out = GetTensor(env, info[2], "out");
    if (!(out.device() == dev)) ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "out: expected a tensor on the views' device");
    Check(env, ExpectDType(out, DType::kF32, "out"));
    Check(env, ExpectRank(out, 4, "out"));
    if (out.dim(1) != c || out.dim(2) != crop.height || out.dim(3) != crop.width) {
      ThrowCode(env, "ERR_SHAPE_MISMATCH", "out: expected [B, " + std::to_string(c) + ", " + std::to_string(crop.height) + ", " +
                                               std::to_string(crop.width) + "], got " + out.ShapeString());
    }
    slot = GetInt(env, info[3], "slot");
    if (slot < 0 || slot + v > out.dim(0)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "slot: the views do not fit in out");
  } else {
    out = NewDeviceTensor(env, DType::kF32, {v, c, crop.height, crop.width}, dev);
  }
  Tensor table = UploadTable(env, plan, dev);
  const size_t ws_bytes = plan.WorkspaceBytes(v);
  Tensor ws = ws_bytes ? NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(ws_bytes)}, dev) : Tensor{};
  float* dst = out.data<float>() + slot * c * crop.height * crop.width;
  Launched(env, cuda::ResizeCropNormalizeViewsU8(src.data<uint8_t>(), v, plan, table.buffer ? table.data<int32_t>() : nullptr,
                                                 mean.data(), std_.data(), ws.buffer ? ws.buffer->data() : nullptr, ws_bytes,
                                                 dst, StreamOf(env, dev)),
           "resizeCropNormalizeViews", "mean and std must be finite and std non-zero");
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) return env.Undefined();
  return TensorWrap::New(env, std::move(out));
}

Napi::Value CudaResizedCropViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& src = DeviceImages(env, info[0], "src", false);
  const Device dev = src.device();
  const int64_t h = src.dim(0), w = src.dim(1), c = src.dim(2);
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", "crops: expected a non-empty array");
  Napi::Array crops = info[1].As<Napi::Array>();
  const int64_t views = crops.Length();
  Napi::Object o = GetObject(env, info[2], "options");
  ResizedCropSpec spec;
  spec.out_height = GetIntProp(env, o, "outHeight");
  spec.out_width = GetIntProp(env, o, "outWidth");
  spec.filter = ResampleFilter::kBilinear;
  const std::vector<float> mean = GetChannelFloats(env, o, "mean", c), std_ = GetChannelFloats(env, o, "std", c);
  // Pillow's boxes, on the host with the CPU's own rounding.
  std::vector<int64_t> boxes(static_cast<size_t>(views) * 4);
  int64_t largest = 1;
  for (int64_t v = 0; v < views; ++v) {
    Napi::Object b = GetObject(env, crops.Get(static_cast<uint32_t>(v)), "crop");
    spec.top = GetNumber(env, b.Get("top"), "top");
    spec.left = GetNumber(env, b.Get("left"), "left");
    spec.height = GetNumber(env, b.Get("height"), "height");
    spec.width = GetNumber(env, b.Get("width"), "width");
    int64_t* box = boxes.data() + v * 4;
    Check(env, ResizedCropBox(spec, box));
    largest = std::max(largest, (box[2] - box[0]) * (box[3] - box[1]) * c);
  }
  Tensor out = GetTensor(env, info[3], "out");
  if (!(out.device() == dev)) ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "out: expected a tensor on the image's device");
  Check(env, ExpectDType(out, DType::kF32, "out"));
  Check(env, ExpectRank(out, 4, "out"));
  if (out.dim(1) != c || out.dim(2) != spec.out_height || out.dim(3) != spec.out_width) {
    ThrowCode(env, "ERR_SHAPE_MISMATCH", "out: expected [B, C, outHeight, outWidth], got " + out.ShapeString());
  }
  const int64_t slot = GetInt(env, info[4], "slot");
  if (slot < 0 || slot + views > out.dim(0)) ThrowCode(env, "ERR_INVALID_ARGUMENT", "slot: the views do not fit in out");
  // 1. Every view's crop, packed at a stride that holds the largest.
  const int64_t stride = (largest + 15) / 16 * 16;
  Tensor cropped = NewDeviceTensor(env, DType::kU8, {views * stride}, dev);
  Tensor ws = Workspace(env, cuda::GeometricWorkspaceBytes(views, 0, 0), dev);
  Launched(env, cuda::CropBoxesViewsU8(src.data<uint8_t>(), h, w, c, 0, boxes.data(), views, cropped.data<uint8_t>(), stride,
                                       Data(ws), ws.buffer ? ws.nbytes() : 0, StreamOf(env, dev)),
           "resizedCrop");
  // 2. Each crop resized (its own plan: the crops differ in size) and normalised into its slot.
  ResampleSpec rs;
  rs.out_height = spec.out_height;
  rs.out_width = spec.out_width;
  rs.filter = ResampleFilter::kBilinear;
  const Window all{0, 0, spec.out_height, spec.out_width};
  const int64_t per_view = c * spec.out_height * spec.out_width;
  for (int64_t v = 0; v < views; ++v) {
    const int64_t* box = boxes.data() + v * 4;
    cuda::ResamplePlan plan;
    Check(env, cuda::PlanResizeCropNormalize(box[3] - box[1], box[2] - box[0], c, rs, all, &plan));
    Tensor table = UploadTable(env, plan, dev);
    const size_t ws_bytes = plan.WorkspaceBytes(1);
    Tensor rws = Workspace(env, ws_bytes, dev);
    Launched(env, cuda::ResizeCropNormalizeViewsU8(cropped.data<uint8_t>() + v * stride, 1, plan,
                                                   table.buffer ? table.data<int32_t>() : nullptr, mean.data(), std_.data(),
                                                   Data(rws), ws_bytes, out.data<float>() + (slot + v) * per_view,
                                                   StreamOf(env, dev)),
             "resizedCrop", "mean and std must be finite and std non-zero");
  }
  return env.Undefined();
}

Napi::Value CudaResampleViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& src = DeviceImages(env, info[0], "views", true);
  const Device dev = src.device();
  const int64_t v = src.dim(0), h = src.dim(1), w = src.dim(2), c = src.dim(3);
  Napi::Object o = GetObject(env, info[1], "options");
  const ResampleSpec spec = GetResampleSpec(env, o);
  const Window region = GetWindow(env, o);
  cuda::ResamplePlan plan;
  Check(env, cuda::PlanResampleRegion(h, w, c, spec, region, &plan));
  Tensor out = NewDeviceTensor(env, DType::kU8, {v, region.height, region.width, c}, dev);
  Tensor table = UploadTable(env, plan, dev);
  const size_t ws_bytes = plan.WorkspaceBytes(v);
  Tensor ws = ws_bytes ? NewDeviceTensor(env, DType::kU8, {static_cast<int64_t>(ws_bytes)}, dev) : Tensor{};
  Launched(env, cuda::ResampleViewsU8(src.data<uint8_t>(), v, plan, table.buffer ? table.data<int32_t>() : nullptr,
                                      ws.buffer ? ws.buffer->data() : nullptr, ws_bytes, out.data<uint8_t>(), StreamOf(env, dev)),
           "resampleViews");
  return TensorWrap::New(env, std::move(out));
}

Napi::Value CudaElasticViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Tensor& src = DeviceImages(env, info[0], "src", false);
  const Device dev = src.device();
  const int64_t h = src.dim(0), w = src.dim(1), c = src.dim(2);
  if (h > 32767 || w > 32767) ThrowCode(env, "ERR_INVALID_ARGUMENT", "src: sides up to 32767 (OpenCV's remap indexes with int16)");
  if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() == 0) ThrowCode(env, "ERR_INVALID_ARGUMENT", "params: expected a non-empty array");
  Napi::Array params = info[2].As<Napi::Array>();
  const int64_t views = params.Length();
  const Tensor& noise = GetTensor(env, info[1], "noise");
  if (!(noise.device() == dev)) ThrowCode(env, "ERR_DEVICE_UNAVAILABLE", "noise: expected a tensor on src's device");
  Check(env, ExpectDType(noise, DType::kF32, "noise"));
  Check(env, ExpectShape(noise, {views, 2, h, w}, "noise"));
  std::vector<cuda::ElasticViewParams> ps(static_cast<size_t>(views));
  for (int64_t i = 0; i < views; ++i) {
    Napi::Object o = GetObject(env, params.Get(static_cast<uint32_t>(i)), "elastic params");
    cuda::ElasticViewParams& p = ps[static_cast<size_t>(i)];
    p.sigma = NumberProp(env, o, "sigma");
    p.alpha = NumberProp(env, o, "alpha");
    const std::vector<double> off = GetNumbers(env, o.Get("affineOffsets"), "affineOffsets");
    if (off.size() != 6) ThrowCode(env, "ERR_SHAPE_MISMATCH", "affineOffsets: expected 6 numbers");
    for (size_t k = 0; k < 6; ++k) p.affine_offsets[k] = static_cast<float>(off[k]);
  }
  Tensor dst = NewDeviceTensor(env, DType::kU8, {views, h, w, c}, dev);
  Tensor ws = Workspace(env, cuda::ElasticWorkspaceBytes(views, h, w, c), dev);
  Launched(env, cuda::ElasticViewsU8(src.data<uint8_t>(), h, w, c, 0, noise.data<float>(), ps.data(), views, dst.data<uint8_t>(),
                                     Data(ws), ws.buffer ? ws.nbytes() : 0, StreamOf(env, dev)),
           "elastic", "sigma must be positive, alpha and the affine offsets finite");
  return TensorWrap::New(env, std::move(dst));
}

#else

#define CudaColorViews NoCudaBackend
#define CudaResizeCropNormalizeViews NoCudaBackend
#define CudaResampleViews NoCudaBackend
#define CudaGeometricViews NoCudaBackend
#define CudaBlurViews NoCudaBackend
#define CudaResizedCropViews NoCudaBackend
#define CudaElasticViews NoCudaBackend

#endif

}  // namespace

void RegisterCudaViewBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaColorViews", Napi::Function::New(env, CudaColorViews, "cudaColorViews"));
  exports.Set("cudaResizeCropNormalizeViews", Napi::Function::New(env, CudaResizeCropNormalizeViews, "cudaResizeCropNormalizeViews"));
  exports.Set("cudaGeometricViews", Napi::Function::New(env, CudaGeometricViews, "cudaGeometricViews"));
  exports.Set("cudaBlurViews", Napi::Function::New(env, CudaBlurViews, "cudaBlurViews"));
  exports.Set("cudaResizedCropViews", Napi::Function::New(env, CudaResizedCropViews, "cudaResizedCropViews"));
  exports.Set("cudaResampleViews", Napi::Function::New(env, CudaResampleViews, "cudaResampleViews"));
  exports.Set("cudaElasticViews", Napi::Function::New(env, CudaElasticViews, "cudaElasticViews"));
}

}  // namespace napi
}  // namespace sslinv
