// Emulator test of native/cuda/multinomial.cu against the CPU op it mirrors (MultinomialLossGrad,
// native/cpu/eigen.cc): g bit for bit (same operations in the same order; the emulator's exp/log are
// the host's, so this checks the indexing, not the GPU's libm), loss and gb within 1e-13 of the
// magnitude of what they sum (the GPU sums rows in a fixed split order, the CPU pairwise as numpy).
// Cases: one problem and several, K = 1, 2, 3, 10 and 101 (Caltech101's classes), n = 0, 1, odd
// sizes, more rows than one split (so the split partials are merged), rows outside a problem's
// training set (-1), scores in the hundreds (the max subtraction), bad labels (the smallest bad flat
// index is reported; the other outputs stay finite), run-to-run determinism and argument checks.
//
// emu-sources: native/cpu/eigen.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/multinomial.cuh"
#include "emu_check.h"
#include "ops/eigen.h"

namespace {

using sslinv::cuda::LaunchMultinomialLossGrad;
using sslinv::cuda::MultinomialWorkspaceBytes;

struct Case {
  std::string name;
  int64_t n, P, K;
  double amplitude;      // scores U(-a, a)
  double unused = 0.25;  // fraction of (problem, row) labels set to -1
};

struct Out {
  std::vector<double> loss, g, gb;
  unsigned long long bad = 0;
  int err = 0;
};

Out RunGpu(const std::vector<double>& z, const std::vector<double>& bias, const std::vector<int32_t>& y, int64_t n,
           int64_t P, int64_t K) {
  Out o;
  o.loss.assign(P, std::nan(""));
  o.g.assign(static_cast<size_t>(n * P * K), std::nan(""));
  o.gb.assign(static_cast<size_t>(P * K), std::nan(""));
  const size_t bytes = MultinomialWorkspaceBytes(n, P, K);
  void* ws = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  std::memset(ws, 0xff, bytes);  // NaN patterns: anything read before written shows
  o.err = LaunchMultinomialLossGrad(z.data(), bias.data(), y.data(), n, P, K, o.loss.data(), o.g.data(), o.gb.data(),
                                    &o.bad, ws, nullptr);
  std::free(ws);
  return o;
}

struct Inputs {
  std::vector<double> z, bias;
  std::vector<int32_t> y;
};

Inputs Make(const Case& c, uint64_t seed) {
  emu_check::Rng rng(seed);
  Inputs in;
  in.z.resize(static_cast<size_t>(c.n * c.P * c.K));
  in.bias.resize(static_cast<size_t>(c.P * c.K));
  for (auto& v : in.z) v = (2.0 * rng.Uniform(0.f, 1.f) - 1.0) * c.amplitude + 1e-9 * rng.Uniform(0.f, 1.f);
  for (auto& v : in.bias) v = 2.0 * rng.Uniform(0.f, 1.f) - 1.0;
  in.y.resize(static_cast<size_t>(c.P * c.n));
  for (auto& v : in.y) {
    v = rng.Uniform(0.f, 1.f) < c.unused ? -1 : static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(c.K));
  }
  return in;
}

// |gpu - cpu| <= 1e-13 * sum of |terms| for each sum, with the terms' magnitudes computed here.
std::string Sci(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

void CheckSums(const std::string& what, const Case& c, const Inputs& in, const Out& gpu, const std::vector<double>& loss,
               const std::vector<double>& gb, const std::vector<double>& g) {
  std::vector<double> loss_mag(c.P, 0.0), gb_mag(static_cast<size_t>(c.P * c.K), 0.0);
  for (int64_t p = 0; p < c.P; ++p) {
    for (int64_t i = 0; i < c.n; ++i) {
      if (in.y[p * c.n + i] < 0) continue;
      double m = 0;  // |loss_i| <= 2 max |raw| + log K
      for (int64_t k = 0; k < c.K; ++k) m = std::fmax(m, std::fabs(in.z[(i * c.P + p) * c.K + k] + in.bias[p * c.K + k]));
      loss_mag[p] += 2 * m + std::log(static_cast<double>(c.K)) + 1;
      for (int64_t k = 0; k < c.K; ++k) gb_mag[p * c.K + k] += std::fabs(g[(i * c.P + p) * c.K + k]) + 1e-300;
    }
  }
  bool ok = true;
  double worst = 0;
  for (int64_t p = 0; p < c.P; ++p) {
    const double e = std::fabs(gpu.loss[p] - loss[p]) / (loss_mag[p] + 1e-300);
    if (!(e <= 1e-13)) ok = false;
    worst = std::fmax(worst, std::isnan(e) ? INFINITY : e);
  }
  emu_check::Report(ok, what + ": loss within 1e-13 of the summed magnitude (worst " + Sci(worst) + ")",
                    "worst " + Sci(worst));
  ok = true;
  worst = 0;
  for (size_t j = 0; j < gb.size(); ++j) {
    const double e = std::fabs(gpu.gb[j] - gb[j]) / (gb_mag[j] + 1e-300);
    if (!(e <= 1e-13)) ok = false;
    worst = std::fmax(worst, std::isnan(e) ? INFINITY : e);
  }
  emu_check::Report(ok, what + ": gb within 1e-13 of the summed magnitude (worst " + Sci(worst) + ")",
                    "worst " + Sci(worst));
}

void RunCase(const Case& c, uint64_t seed) {
  const Inputs in = Make(c, seed);
  std::vector<double> loss(c.P), g(static_cast<size_t>(c.n * c.P * c.K)), gb(static_cast<size_t>(c.P * c.K));
  const sslinv::Status st =
      sslinv::MultinomialLossGrad(in.z.data(), in.bias.data(), in.y.data(), c.n, c.P, c.K, loss.data(), g.data(), gb.data());
  emu_check::Report(st.ok(), c.name + ": CPU reference runs", st.message());
  const Out gpu = RunGpu(in.z, in.bias, in.y, c.n, c.P, c.K);
  emu_check::Report(gpu.err == 0, c.name + ": launch succeeds", "error " + std::to_string(gpu.err));
  emu_check::Report(gpu.bad == ~0ull, c.name + ": no bad label reported", std::to_string(gpu.bad));
  emu_check::ExpectBits(c.name + ": g", gpu.g.data(), g.data(), g.size());
  CheckSums(c.name, c, in, gpu, loss, gb, g);
  // Run-to-run: the same bits again.
  const Out again = RunGpu(in.z, in.bias, in.y, c.n, c.P, c.K);
  emu_check::ExpectBits(c.name + ": loss run to run", again.loss.data(), gpu.loss.data(), gpu.loss.size());
  emu_check::ExpectBits(c.name + ": gb run to run", again.gb.data(), gpu.gb.data(), gpu.gb.size());
}

}  // namespace

int main() {
  const Case cases[] = {
      {"n=1 P=1 K=2", 1, 1, 2, 3.0, 0.0},
      {"n=37 P=1 K=10", 37, 1, 10, 5.0},
      {"n=700 P=3 K=10 (3 row splits)", 700, 3, 10, 5.0},
      {"n=1000 P=2 K=101", 1000, 2, 101, 8.0},
      {"n=300 P=5 K=3 scores in the hundreds", 300, 5, 3, 400.0},
      {"n=33 P=4 K=1", 33, 4, 1, 2.0},
      {"n=515 P=1 K=2 every row unused in 90%", 515, 1, 2, 1.0, 0.9},
  };
  uint64_t seed = 11;
  for (const Case& c : cases) RunCase(c, seed++);

  // n = 0: zero loss and intercept gradient.
  {
    std::vector<double> z, bias(6, 0.5);
    std::vector<int32_t> y;
    const Out o = RunGpu(z, bias, y, 0, 2, 3);
    bool zero = o.err == 0;
    for (double v : o.loss) zero = zero && v == 0.0;
    for (double v : o.gb) zero = zero && v == 0.0;
    emu_check::Report(zero, "n=0: loss and gb are zero");
  }
  // Bad labels: the smallest flat index p*n + i is reported.
  {
    const Case c{"bad labels", 50, 3, 4, 1.0};
    Inputs in = Make(c, 99);
    in.y[2 * 50 + 7] = 4;    // p=2, i=7 -> 107
    in.y[1 * 50 + 30] = -2;  // p=1, i=30 -> 80 (the smallest)
    in.y[2 * 50 + 49] = 1000;
    const Out o = RunGpu(in.z, in.bias, in.y, c.n, c.P, c.K);
    emu_check::Report(o.err == 0 && o.bad == 80ull, "bad labels: the smallest bad flat index (80) is reported",
                      "got " + std::to_string(o.bad));
    bool finite = true;
    for (double v : o.loss) finite = finite && std::isfinite(v);
    for (double v : o.gb) finite = finite && std::isfinite(v);
    emu_check::Report(finite, "bad labels: the other outputs stay finite");
  }
  // Argument checks.
  {
    std::vector<double> z(6), bias(3), loss(1), g(6), gb(3);
    std::vector<int32_t> y(2);
    unsigned long long bad = 0;
    char ws[1024];
    const int e1 = LaunchMultinomialLossGrad(z.data(), bias.data(), y.data(), 2, 0, 3, loss.data(), g.data(), gb.data(),
                                             &bad, ws, nullptr);
    const int e2 = LaunchMultinomialLossGrad(z.data(), bias.data(), y.data(), 2, 1, 0, loss.data(), g.data(), gb.data(),
                                             &bad, ws, nullptr);
    const int e3 = LaunchMultinomialLossGrad(z.data(), bias.data(), y.data(), 2, 1, 3, loss.data(), g.data(), gb.data(),
                                             &bad, nullptr, nullptr);
    emu_check::Report(e1 != 0 && e2 != 0 && e3 != 0, "P = 0, K = 0 and a missing workspace are rejected");
    emu_check::Report(MultinomialWorkspaceBytes(-1, 1, 1) == 0, "negative n: no workspace size");
  }
  return emu_check::Failures() == 0 ? 0 : 1;
}
