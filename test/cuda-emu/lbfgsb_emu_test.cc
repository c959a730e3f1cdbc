// Emulator test of native/cuda/lbfgsb.cu against host loops written here: the elementwise ops,
// subsm's update and the logistic pack/unpack bit for bit (they are the host solver's expressions,
// src/probes/lbfgsb.ts and logistic.ts); the dot products within 1e-14 of sum |x_i y_i| (fixed-order
// tree, not the host's sequential sum) and bit-identical run to run; max |a| with NaN propagation and
// the "differs" flag (NaN differs from itself, -0 equals 0); sizes 0, 1, 255, 256, 257 and 20,490
// (a CIFAR-10 probe's variables); aliasing dst with an input; argument checks.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/lbfgsb.cuh"
#include "emu_check.h"

namespace {

using namespace sslinv::cuda;

std::vector<double> Rand(size_t n, uint64_t seed, double scale = 1.0) {
  emu_check::Rng r(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = (r.Uniform(-1.f, 1.f) + 1e-8 * r.Uniform(0.f, 1.f)) * scale;
  return v;
}

void VecOps(int64_t n) {
  const auto a = Rand(n, 1 + n), b = Rand(n, 2 + n, 3.0);
  const double s = 0.7310585786300049;
  const char* names[] = {"copy", "neg", "sub", "scale", "axpy"};
  for (int op = 0; op < 5; ++op) {
    std::vector<double> out(n, NAN), want(n);
    for (int64_t i = 0; i < n; ++i) {
      want[i] = op == 0 ? a[i] : op == 1 ? -a[i] : op == 2 ? a[i] - b[i] : op == 3 ? s * a[i] : a[i] + s * b[i];
    }
    const int err = LaunchLbfgsbVecOp(static_cast<LbfgsbVecOp>(op), n, out.data(), a.data(), b.data(), s, nullptr);
    emu_check::Report(err == 0, std::string(names[op]) + " n=" + std::to_string(n) + ": launch");
    emu_check::ExpectBits(std::string(names[op]) + " n=" + std::to_string(n), out.data(), want.data(), n);
  }
  // in place: a = a + s * b
  std::vector<double> inplace = a, want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = a[i] + s * b[i];
  LaunchLbfgsbVecOp(LbfgsbVecOp::kAxpy, n, inplace.data(), inplace.data(), b.data(), s, nullptr);
  emu_check::ExpectBits("axpy in place n=" + std::to_string(n), inplace.data(), want.data(), n);
}

void Dots(int64_t n, int count) {
  const auto x = Rand(n, 10 + n);
  std::vector<std::vector<double>> ys;
  LbfgsbDotArgs args{};
  for (int k = 0; k < count; ++k) {
    ys.push_back(Rand(n, 100 + k + n, 1.0 + k));
    args.y[k] = ys.back().data();
  }
  std::vector<double> out(count, NAN), again(count, NAN);
  const int err = LaunchLbfgsbDots(n, x.data(), args, count, out.data(), nullptr);
  LaunchLbfgsbDots(n, x.data(), args, count, again.data(), nullptr);
  bool ok = err == 0;
  double worst = 0;
  for (int k = 0; k < count; ++k) {
    long double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<long double>(x[i]) * ys[k][i];
      mag += std::fabs(static_cast<long double>(x[i]) * ys[k][i]);
    }
    const double e = static_cast<double>(std::fabs(out[k] - ref) / (mag > 0 ? mag : 1));
    worst = std::fmax(worst, std::isnan(e) ? INFINITY : e);
    if (!(e <= 1e-14)) ok = false;
  }
  char b[64];
  std::snprintf(b, sizeof b, "%.2g", worst);
  emu_check::Report(ok, std::to_string(count) + " dots n=" + std::to_string(n) + " within 1e-14 of sum |x y| (worst " + b + ")", b);
  emu_check::ExpectBits(std::to_string(count) + " dots n=" + std::to_string(n) + " run to run", again.data(), out.data(), count);
}

void MaxAbs() {
  std::vector<double> a = Rand(1000, 5), b = a, out(2, NAN);
  a[777] = -3.5;
  b[777] = -3.5;
  LaunchLbfgsbMaxAbsDiffers(1000, a.data(), b.data(), out.data(), nullptr);
  emu_check::Report(out[0] == 3.5 && out[1] == 0.0, "max |a| = 3.5, a equals b");
  b[12] = -0.0;
  a[12] = 0.0;
  LaunchLbfgsbMaxAbsDiffers(1000, a.data(), b.data(), out.data(), nullptr);
  emu_check::Report(out[1] == 0.0, "-0 equals 0");
  b[999] = std::nextafter(b[999], 2.0);
  LaunchLbfgsbMaxAbsDiffers(1000, a.data(), b.data(), out.data(), nullptr);
  emu_check::Report(out[1] == 1.0, "one ulp at the last element differs");
  b = a;
  a[400] = NAN;
  b[400] = NAN;
  LaunchLbfgsbMaxAbsDiffers(1000, a.data(), b.data(), out.data(), nullptr);
  emu_check::Report(std::isnan(out[0]) && out[1] == 1.0, "a NaN gives max NaN and differs from itself");
  LaunchLbfgsbMaxAbsDiffers(0, a.data(), nullptr, out.data(), nullptr);
  emu_check::Report(out[0] == 0.0 && out[1] == 0.0, "n = 0: max 0, no difference");
}

void Subsm(int64_t n, int col) {
  std::vector<std::vector<double>> wy, ws;
  LbfgsbSubsmArgs s{};
  s.col = col;
  s.theta = 1.7320508075688772;
  for (int j = 0; j < col; ++j) {
    wy.push_back(Rand(n, 300 + j));
    ws.push_back(Rand(n, 400 + j, 0.1));
    s.wy[j] = wy.back().data();
    s.ws[j] = ws.back().data();
    s.a[j] = 0.3 * (j + 1) - 1;
    s.b[j] = 0.05 * (j - 4);
  }
  auto d = Rand(n, 7), z = Rand(n, 8);
  auto wd = d, wz = z;
  // the host solver's loops (lbfgsb.ts subsm): terms in j order, then scale, then z += d
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < col; ++j) wd[i] = wd[i] + (wy[j][i] * s.a[j]) / s.theta + ws[j][i] * s.b[j];
  }
  const double inv = 1 / s.theta;
  for (int64_t i = 0; i < n; ++i) wd[i] = inv * wd[i];
  for (int64_t i = 0; i < n; ++i) wz[i] = wz[i] + wd[i];
  const int err = LaunchLbfgsbSubsm(n, d.data(), z.data(), s, nullptr);
  emu_check::Report(err == 0, "subsm col=" + std::to_string(col) + ": launch");
  emu_check::ExpectBits("subsm col=" + std::to_string(col) + " n=" + std::to_string(n) + ": d", d.data(), wd.data(), n);
  emu_check::ExpectBits("subsm col=" + std::to_string(col) + " n=" + std::to_string(n) + ": z", z.data(), wz.data(), n);
}

void PackUnpack() {
  const int64_t dim = 7, K = 4, P = 3, PK = P * K;
  std::vector<std::vector<double>> xs;
  std::vector<double> m(dim * PK, NAN), bias(PK, NAN);
  for (int64_t p = 0; p < P; ++p) {
    xs.push_back(Rand((dim + 1) * K, 50 + p));
    LaunchLogisticPack(dim, K, PK, p, xs[p].data(), m.data(), bias.data(), nullptr);
  }
  bool ok = true;
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t j = 0; j < dim; ++j) for (int64_t k = 0; k < K; ++k) ok = ok && m[j * PK + p * K + k] == xs[p][j * K + k];
    for (int64_t k = 0; k < K; ++k) ok = ok && bias[p * K + k] == xs[p][dim * K + k];
  }
  emu_check::Report(ok, "pack: 3 problems' weights into [dim, P*K] and their intercepts into [P*K]");
  const auto gx = Rand(dim * PK, 60), gb = Rand(PK, 61);
  for (int64_t p = 0; p < P; ++p) {
    const double l2 = 0.01 * (p + 1);
    std::vector<double> g((dim + 1) * K, NAN), want((dim + 1) * K);
    for (int64_t j = 0; j < dim; ++j) for (int64_t k = 0; k < K; ++k) want[j * K + k] = gx[j * PK + p * K + k] + l2 * xs[p][j * K + k];
    for (int64_t k = 0; k < K; ++k) want[dim * K + k] = gb[p * K + k];
    LaunchLogisticUnpack(dim, K, PK, p, gx.data(), gb.data(), xs[p].data(), l2, g.data(), nullptr);
    emu_check::ExpectBits("unpack problem " + std::to_string(p), g.data(), want.data(), g.size());
  }
}

}  // namespace

int main() {
  for (int64_t n : {0, 1, 255, 256, 257, 20490}) VecOps(n);
  Dots(1, 1);
  Dots(257, 5);
  Dots(20490, 20);
  Dots(20490, kLbfgsbMaxDots);
  MaxAbs();
  Subsm(1, 1);
  Subsm(3001, 10);
  Subsm(20490, 0);
  PackUnpack();
  {
    double a[2] = {1, 2}, out[2];
    LbfgsbDotArgs args{};
    args.y[0] = a;
    const bool bad = LaunchLbfgsbDots(2, a, args, 0, out, nullptr) != 0 && LaunchLbfgsbDots(2, a, args, kLbfgsbMaxDots + 1, out, nullptr) != 0 &&
                     LaunchLbfgsbDots(2, a, args, 2, out, nullptr) != 0 &&  // y[1] missing
                     LaunchLbfgsbVecOp(LbfgsbVecOp::kSub, 2, out, a, nullptr, 0, nullptr) != 0 &&
                     LaunchLbfgsbVecOp(static_cast<LbfgsbVecOp>(9), 2, out, a, a, 0, nullptr) != 0 &&
                     LaunchLogisticPack(3, 2, 4, 2, a, out, out, nullptr) != 0;
    emu_check::Report(bad, "bad counts, missing operands, unknown ops and out-of-range problems are rejected");
  }
  return emu_check::Finish();
}
