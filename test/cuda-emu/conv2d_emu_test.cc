// Emulation test of native/cuda/conv2d.cu: runs the F32, TF32 and BF16 forward launchers and the
// filter packer through the host CUDA emulator and compares each output element with a float64
// reference computed here straight from the NHWC / KRSC definitions:
//   y[n,p,q,k] = relu?( sum_{r,s,c} x[n, p*sh - ph + r, q*sw - pw + s, c] * w[k,r,s,c] + bias[k] + res[n,p,q,k] )
// Bound per element (docs/KERNELS.md section 6): |y - ref| <= rtol * (sum |x||w| + |bias| + |res|),
// rtol = 1e-5 (fp32), 2e-3 (tf32), 1.5e-2 (bf16). Guard zones around y catch out-of-bounds stores.
//
// emu-sources: native/cuda/conv2d_pipelined.cu
// Build and run from the repository root (about 10 s on 2 cores; the emulator runs every CUDA
// thread as an OS thread):
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++ test/cuda-emu/conv2d_emu_test.cc
//       native/cuda/conv2d.cu native/cuda/conv2d_pipelined.cu -o /tmp/conv_emu && /tmp/conv_emu
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/conv2d.cuh"
#include "cuda/kernel_util.cuh"
#include "conv_reference.h"
#include "emu_check.h"

using sslinv::cuda::Conv2dShape;

namespace {

struct Case {
  const char* name;
  Conv2dShape shape;  // n, h, w, c, k, r, s, stride_h, stride_w, pad_h, pad_w
  bool bias, residual, relu;
  unsigned misalign;  // tensors (kX | kW | kY | kBias | kRes) offset by one float: forces the scalar paths
};

enum : unsigned { kX = 1, kW = 2, kY = 4, kBias = 8, kRes = 16, kAll = 31 };

// Kept small: every 128-row block costs ~10 ms of thread start-up in the emulator, and each
// emulated MMA is a dozen warp shuffles.
const Case kCases[] = {
    {"stem 7x7 s2 p3, C=3, odd H", {1, 15, 13, 3, 16, 7, 7, 2, 2, 3, 3}, true, false, true, 0},
    {"1x1 s1, K=80 (partial N tile), bias+res+relu", {2, 7, 7, 32, 80, 1, 1, 1, 1, 0, 0}, true, true, true, 0},
    {"1x1 s2, odd H, residual only", {2, 9, 9, 16, 24, 1, 1, 2, 2, 0, 0}, false, true, false, 0},
    {"3x3 s1 p1, odd H/W, bias+relu", {2, 9, 7, 12, 20, 3, 3, 1, 1, 1, 1}, true, false, true, 0},
    {"3x3 s2 p1, odd H, bias+res+relu", {1, 13, 13, 8, 36, 3, 3, 2, 2, 1, 1}, true, true, true, 0},
    {"3x3 s1 p1, C=4, K=136, M=144 (2x2 blocks)", {1, 12, 12, 4, 136, 3, 3, 1, 1, 1, 1}, false, false, false, 0},
    {"3x3 s2 p0, C=6 (scalar gather), K=10", {1, 10, 10, 6, 10, 3, 3, 2, 2, 0, 0}, true, true, false, 0},
    {"3x5 stride (2,1) pad (1,2), C=8", {1, 11, 9, 8, 12, 3, 5, 2, 1, 1, 2}, true, false, true, 0},
    {"3x3 s1 p1, all pointers misaligned", {1, 7, 7, 8, 16, 3, 3, 1, 1, 1, 1}, true, true, true, kAll},
    {"3x3 s1 p1, x misaligned", {1, 6, 5, 8, 16, 3, 3, 1, 1, 1, 1}, true, true, true, kX},
    {"1x1 s1, w misaligned", {1, 6, 5, 8, 16, 1, 1, 1, 1, 0, 0}, false, false, false, kW},
    {"1x1 s1, y misaligned", {1, 6, 5, 8, 16, 1, 1, 1, 1, 0, 0}, true, true, true, kY},
    {"1x1 s1, residual misaligned", {1, 6, 5, 8, 16, 1, 1, 1, 1, 0, 0}, true, true, true, kRes},
    {"1x1 s1, K=192 (BN=64, 3 N tiles), C=64", {1, 5, 5, 64, 192, 1, 1, 1, 1, 0, 0}, true, false, true, 0},
};

using Launcher = cudaError_t (*)(const Conv2dShape&, const float*, const float*, const float*, const float*, bool,
                                 float*, cudaStream_t);

struct Precision {
  const char* name;
  Launcher launch;
  double rtol;
};

// The fp32 kernel's variants, named (LaunchConv2dForwardF32 itself runs kAuto).
template <sslinv::cuda::ConvAlgo kAlgo>
cudaError_t LaunchF32Algo(const Conv2dShape& sh, const float* x, const float* w, const float* bias, const float* res,
                          bool relu, float* y, cudaStream_t stream) {
  return sslinv::cuda::LaunchConv2dForwardF32Algo(kAlgo, sh, x, w, bias, res, relu, y, stream);
}
template <sslinv::cuda::ConvAlgo kAlgo>
cudaError_t LaunchTf32Algo(const Conv2dShape& sh, const float* x, const float* w, const float* bias, const float* res,
                           bool relu, float* y, cudaStream_t stream) {
  return sslinv::cuda::LaunchConv2dForwardTF32Algo(kAlgo, sh, x, w, bias, res, relu, y, stream);
}

const Precision kPrecisions[] = {
    {"f32", sslinv::cuda::LaunchConv2dForwardF32, 1e-5},
    {"f32 bk8", LaunchF32Algo<sslinv::cuda::ConvAlgo::kSimtBk8>, 1e-5},
    {"f32 bk16", LaunchF32Algo<sslinv::cuda::ConvAlgo::kSimtBk16>, 1e-5},
    {"tf32", sslinv::cuda::LaunchConv2dForwardTF32, 2e-3},
    {"tf32 pipelined", LaunchTf32Algo<sslinv::cuda::ConvAlgo::kMmaPipelined>, 2e-3},
    {"bf16", sslinv::cuda::LaunchConv2dForwardBF16, 1.5e-2},
};

constexpr size_t kGuard = 64;
constexpr float kSentinel = -12345.0f;

// Inputs of one case, each vector holding one leading float of slack so `misalign` can shift it.
struct Data {
  Conv2dShape sh;
  int P, Q, M;
  std::vector<float> x, w, bias, res;
  unsigned misalign;
  int Off(unsigned which) const { return misalign & which ? 1 : 0; }
  const float* X() const { return x.data() + Off(kX); }
  const float* W() const { return w.data() + Off(kW); }
  const float* Bias() const { return bias.empty() ? nullptr : bias.data() + Off(kBias); }
  const float* Res() const { return res.empty() ? nullptr : res.data() + Off(kRes); }
};

Data MakeData(const Case& cs, uint64_t seed) {
  Data d;
  d.sh = cs.shape;
  d.P = d.sh.p();
  d.Q = d.sh.q();
  d.M = d.sh.n * d.P * d.Q;
  d.misalign = cs.misalign;
  emu_check::Rng rng(seed);
  const Conv2dShape& s = d.sh;
  d.x.resize(size_t(s.n) * s.h * s.w * s.c + 1);
  d.w.resize(size_t(s.k) * s.r * s.s * s.c + 1);
  rng.Fill(d.x, -1.f, 1.f);
  rng.Fill(d.w, -1.f, 1.f);
  if (cs.bias) {
    d.bias.resize(s.k + 1);
    rng.Fill(d.bias, -1.f, 1.f);
  }
  if (cs.residual) {
    d.res.resize(size_t(d.M) * s.k + 1);
    rng.Fill(d.res, -1.f, 1.f);
  }
  return d;
}

// Float64 reference and the error scale sum |x||w| + |bias| + |res| per output element.
void Reference(const Data& d, bool relu, std::vector<double>& ref, std::vector<double>& scale) {
  const float *x = d.X(), *w = d.W(), *bias = d.Bias(), *res = d.Res();
  emu_check::ConvReference(
      d.sh, [&](size_t i) { return double(x[i]); }, [&](size_t i) { return double(w[i]); }, bias != nullptr,
      [&](int k) { return double(bias[k]); }, res != nullptr, [&](size_t i) { return double(res[i]); }, relu, ref, scale);
}

// Runs one launcher; returns the outputs (without guards), checking the guard zones.
std::vector<float> Run(const Precision& prec, const Case& cs, const Data& d, const std::string& what) {
  const size_t count = size_t(d.M) * d.sh.k;
  // The trailing guard spans a whole 128-row block tile, so a missing row predicate shows up here
  // rather than as heap corruption.
  std::vector<float> buf(kGuard + 1 + count + 128 * size_t(d.sh.k) + kGuard, kSentinel);
  const size_t y0 = kGuard + d.Off(kY);
  float* y = buf.data() + y0;
  const cudaError_t err = prec.launch(d.sh, d.X(), d.W(), d.Bias(), d.Res(), cs.relu, y, nullptr);
  emu_check::Report(err == cudaSuccess, what + ": launch returns cudaSuccess", cudaGetErrorString(err));
  bool guards_ok = true;
  for (size_t i = 0; i < buf.size(); ++i) {
    const bool inside = i >= y0 && i < y0 + count;
    if (!inside && buf[i] != kSentinel) guards_ok = false;
  }
  emu_check::Report(guards_ok, what + ": no stores outside y", "guard zone overwritten");
  return std::vector<float>(y, y + count);
}

constexpr int kNumPrecisions = static_cast<int>(sizeof(kPrecisions) / sizeof(kPrecisions[0]));
double g_worst[kNumPrecisions] = {};

void CheckCase(int pi, const Case& cs, uint64_t seed) {
  const Precision& prec = kPrecisions[pi];
  const Data d = MakeData(cs, seed);
  std::vector<double> ref, scale;
  Reference(d, cs.relu, ref, scale);
  const std::string what = std::string(prec.name) + " " + cs.name;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> y = Run(prec, cs, d, what);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  emu_check::ExpectClose(what, y.data(), ref.data(), y.size(), prec.rtol, 0.0, scale.data());
  for (size_t i = 0; i < y.size(); ++i) {
    const double rel = std::fabs(y[i] - ref[i]) / (scale[i] > 0 ? scale[i] : 1.0);
    if (!(rel <= g_worst[pi])) g_worst[pi] = rel;
  }
  std::printf("# %s: %.2f s\n", what.c_str(), secs);
}

// The same launch twice gives bit-identical output (no atomics, fixed reduction order).
void CheckDeterminism(int pi, const Case& cs) {
  const Precision& prec = kPrecisions[pi];
  const Data d = MakeData(cs, 99);
  const std::string what = std::string(prec.name) + " determinism " + cs.name;
  const std::vector<float> a = Run(prec, cs, d, what + " (run 1)");
  const std::vector<float> b = Run(prec, cs, d, what + " (run 2)");
  emu_check::Report(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0, what, "runs differ");
}

// residual may alias y (a block's residual add in place): each element is read before it is written.
void CheckInPlaceResidual(int pi, const Case& cs) {
  const Precision& prec = kPrecisions[pi];
  const Data d = MakeData(cs, 5);
  std::vector<double> ref, scale;
  Reference(d, cs.relu, ref, scale);
  std::vector<float> y(d.Res(), d.Res() + ref.size());  // y starts as the residual
  const cudaError_t err = prec.launch(d.sh, d.X(), d.W(), d.Bias(), y.data(), cs.relu, y.data(), nullptr);
  const std::string what = std::string(prec.name) + " in-place residual (residual == y) " + cs.name;
  emu_check::Report(err == cudaSuccess, what + ": launch returns cudaSuccess");
  emu_check::ExpectClose(what, y.data(), ref.data(), y.size(), prec.rtol, 0.0, scale.data());
}

// The variants of a precision sum the same terms in the same order (GEMM-K ascending), so
// they agree bit for bit; an algo outside the enum launches nothing.
void CheckVariantsAgree() {
  using sslinv::cuda::ConvAlgo;
  for (const Case& cs : {kCases[0], kCases[4], kCases[13]}) {
    const Data d = MakeData(cs, 123);
    const std::vector<float> a = Run(kPrecisions[1], cs, d, std::string("f32 bk8 ") + cs.name);
    const std::vector<float> b = Run(kPrecisions[2], cs, d, std::string("f32 bk16 ") + cs.name);
    emu_check::Report(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
                      std::string("f32 bk8 and bk16 give the same bits: ") + cs.name, "variants differ");
  }
  std::vector<float> buf(64, 0.f);
  const Conv2dShape good{1, 4, 4, 4, 4, 1, 1, 1, 1, 0, 0};
  float* p = buf.data();
  emu_check::Report(sslinv::cuda::LaunchConv2dForwardF32Algo(static_cast<ConvAlgo>(7), good, p, p, nullptr, nullptr, false, p, nullptr) ==
                            cudaErrorInvalidValue &&
                        sslinv::cuda::LaunchConv2dForwardF32Algo(ConvAlgo::kMmaPipelined, good, p, p, nullptr, nullptr, false, p, nullptr) ==
                            cudaErrorInvalidValue &&
                        sslinv::cuda::LaunchConv2dForwardTF32Algo(ConvAlgo::kSimtBk16, good, p, p, nullptr, nullptr, false, p, nullptr) ==
                            cudaErrorInvalidValue,
                    "an unknown algo, or one of the other precision, is cudaErrorInvalidValue");
  // The tf32 variants agree bit for bit on every case, the pipelined kernel's fall-backs included
  // (C = 3 and 6, misaligned tensors: the staged kernel runs them).
  for (const Case& cs : kCases) {
    const Data d = MakeData(cs, 321);
    const std::vector<float> a = Run(kPrecisions[3], cs, d, std::string("tf32 ") + cs.name);
    const std::vector<float> b = Run(kPrecisions[4], cs, d, std::string("tf32 pipelined ") + cs.name);
    emu_check::Report(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
                      std::string("tf32 staged and pipelined give the same bits: ") + cs.name, "variants differ");
  }
}

void CheckInvalidShapes() {
  std::vector<float> buf(64, 0.f);
  const float* p = buf.data();
  const Conv2dShape bad[] = {
      {1, 4, 4, 0, 4, 1, 1, 1, 1, 0, 0},  // C = 0
      {1, 2, 2, 4, 4, 3, 3, 1, 1, 0, 0},  // filter larger than the (unpadded) input
      {1, 4, 4, 4, 4, 1, 1, 0, 1, 0, 0},  // stride 0
      {1, 4, 4, 4, 4, 3, 3, 1, 1, -1, 0},  // negative padding
  };
  for (const Precision& prec : kPrecisions) {
    bool ok = true;
    for (const Conv2dShape& s : bad)
      ok = ok && prec.launch(s, p, p, nullptr, nullptr, false, buf.data(), nullptr) == cudaErrorInvalidValue;
    const Conv2dShape good{1, 4, 4, 4, 4, 1, 1, 1, 1, 0, 0};
    ok = ok && prec.launch(good, nullptr, p, nullptr, nullptr, false, buf.data(), nullptr) == cudaErrorInvalidValue;
    emu_check::Report(ok, std::string(prec.name) + " rejects invalid shapes and null tensors");
  }
}

// Pack [K, C, R, S] -> [K, R, S, C] with and without a per-channel scale, then run the F32 conv on the
// packed filter against a reference that indexes the PyTorch layout directly.
void CheckPackFilter() {
  const int K = 20, C = 6, R = 3, S = 2;
  emu_check::Rng rng(7);
  std::vector<float> kcrs(size_t(K) * C * R * S), scale(K);
  rng.Fill(kcrs, -1.f, 1.f);
  rng.Fill(scale, 0.5f, 2.f);
  for (const bool scaled : {false, true}) {
    std::vector<float> krsc(kcrs.size() + kGuard, kSentinel);
    const cudaError_t err = sslinv::cuda::LaunchPackFilterKRSC(kcrs.data(), scaled ? scale.data() : nullptr, K, C, R,
                                                               S, krsc.data(), nullptr);
    std::vector<double> ref(kcrs.size());
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r)
          for (int s = 0; s < S; ++s)
            ref[((size_t(k) * R + r) * S + s) * C + c] =
                double(kcrs[((size_t(k) * C + c) * R + r) * S + s]) * (scaled ? double(scale[k]) : 1.0);
    const std::string what = std::string("pack KCRS->KRSC") + (scaled ? " with scale" : "");
    emu_check::Report(err == cudaSuccess, what + ": launch returns cudaSuccess");
    emu_check::ExpectClose(what, krsc.data(), ref.data(), ref.size(), 1e-7);
    bool guard_ok = true;
    for (size_t i = ref.size(); i < krsc.size(); ++i) guard_ok = guard_ok && krsc[i] == kSentinel;
    emu_check::Report(guard_ok, what + ": no stores past the end");

    if (!scaled) continue;
    // End to end: conv with the packed, scaled filter vs. a reference on the KCRS weights.
    const Conv2dShape sh{2, 5, 6, C, K, R, S, 1, 2, 1, 0};
    const int P = sh.p(), Q = sh.q(), M = sh.n * P * Q;
    std::vector<float> x(size_t(sh.n) * sh.h * sh.w * C), y(size_t(M) * K + 128 * K, kSentinel);
    rng.Fill(x, -1.f, 1.f);
    const cudaError_t err2 = sslinv::cuda::LaunchConv2dForwardF32(sh, x.data(), krsc.data(), nullptr, nullptr, false,
                                                                  y.data(), nullptr);
    std::vector<double> yref(size_t(M) * K), mag(yref.size());
    for (int n = 0; n < sh.n; ++n)
      for (int p = 0; p < P; ++p)
        for (int q = 0; q < Q; ++q)
          for (int k = 0; k < K; ++k) {
            double acc = 0, m = 0;
            for (int c = 0; c < C; ++c)
              for (int r = 0; r < R; ++r)
                for (int s = 0; s < S; ++s) {
                  const int ih = p * sh.stride_h - sh.pad_h + r, iw = q * sh.stride_w - sh.pad_w + s;
                  if (ih < 0 || ih >= sh.h || iw < 0 || iw >= sh.w) continue;
                  const double v = double(x[((size_t(n) * sh.h + ih) * sh.w + iw) * C + c]) *
                                   kcrs[((size_t(k) * C + c) * R + r) * S + s] * scale[k];
                  acc += v;
                  m += std::fabs(v);
                }
            const size_t o = ((size_t(n) * P + p) * Q + q) * K + k;
            yref[o] = acc;
            mag[o] = m;
          }
    emu_check::Report(err2 == cudaSuccess, "f32 conv on packed filter: launch returns cudaSuccess");
    emu_check::ExpectClose("f32 conv on packed+scaled KCRS filter", y.data(), yref.data(), yref.size(), 1e-5, 0.0,
                           mag.data());
    bool tail_ok = true;
    for (size_t i = yref.size(); i < y.size(); ++i) tail_ok = tail_ok && y[i] == kSentinel;
    emu_check::Report(tail_ok, "f32 conv on packed filter: no stores past the end");
  }
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  CheckInvalidShapes();
  CheckPackFilter();
  for (int pi = 0; pi < kNumPrecisions; ++pi) {
    uint64_t seed = 1;
    for (const Case& cs : kCases) CheckCase(pi, cs, seed++);
    CheckDeterminism(pi, kCases[4]);
    CheckInPlaceResidual(pi, kCases[1]);
  }
  // Every vector (float2 / float4 / 16-byte shared) access above was aligned: the launchers' choice of
  // vector or scalar paths is right, which the emulator could not otherwise tell.
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  emu_check::Report(misaligned == 0, "no misaligned vector accesses", std::to_string(misaligned) + " misaligned");
  CheckVariantsAgree();
  for (int pi = 0; pi < kNumPrecisions; ++pi)
    std::printf("# worst error / (sum|x||w| + |bias| + |res|), %s: %.3g (rtol %.3g)\n", kPrecisions[pi].name,
                g_worst[pi], kPrecisions[pi].rtol);
  std::printf("# total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return emu_check::Finish();
}
