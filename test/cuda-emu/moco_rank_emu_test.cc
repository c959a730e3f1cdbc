// Emulation test of the MoCo rank kernel (native/cuda/moco_rank.cu) and of the fused loss's per-row
// losses (native/cuda/moco_loss.cu's row_loss output), against float64 references computed here.
//
// Ranks: the kernel computes float32 dot products, so a queue logit may land on either side of the
// positive one when the two are within float32 rounding. Against float64 logits, each rank must lie
// between the count of queue logits above the positive one by more than the rounding bound
// (2 * 2^-24 * D * sum |q||key| / T, generous) and the count above it less that bound. An exact case
// (small dyadic values: every product and sum exact in float32) pins the tie rule: a queue logit
// equal to the positive one is not counted. Row losses: each within 1e-5 of float64 relative to the
// size of the logits (the moco_loss test's bound), the loss and dq unchanged by asking for them.
// emu-sources: native/cuda/moco_loss.cu
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/moco_loss.cuh"
#include "cuda/moco_rank.cuh"
#include "emu_check.h"

namespace {

using sslinv::cuda::LaunchMocoLossForwardBackward;
using sslinv::cuda::LaunchMocoRanks;
using sslinv::cuda::MocoLossWorkspaceBytes;

uint64_t Next(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

float Uniform(uint64_t& s) { return static_cast<float>(static_cast<double>(Next(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

struct Inputs {
  int n, d, kq;
  std::vector<float> q, k, queue;
};

// Unit-norm rows of q and k (k drifting away from q row by row, so ranks spread from 0 up) and unit
// columns of the queue, as in MoCo.
Inputs Random(int n, int d, int kq, uint64_t seed, float drift = 0.3f) {
  Inputs in{n, d, kq, std::vector<float>(n * d), std::vector<float>(n * d), std::vector<float>(static_cast<size_t>(d) * kq)};
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& v : in.q) v = Uniform(s);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < d; ++c) in.k[i * d + c] = in.q[i * d + c] + drift * static_cast<float>(i) * Uniform(s);
  for (auto& v : in.queue) v = Uniform(s);
  auto unit_rows = [](std::vector<float>& a, int rows, int cols) {
    for (int i = 0; i < rows; ++i) {
      double ss = 0;
      for (int c = 0; c < cols; ++c) ss += static_cast<double>(a[i * cols + c]) * a[i * cols + c];
      for (int c = 0; c < cols; ++c) a[i * cols + c] = static_cast<float>(a[i * cols + c] / std::sqrt(ss));
    }
  };
  unit_rows(in.q, n, d);
  unit_rows(in.k, n, d);
  for (int j = 0; j < kq; ++j) {
    double ss = 0;
    for (int c = 0; c < d; ++c) ss += static_cast<double>(in.queue[c * kq + j]) * in.queue[c * kq + j];
    for (int c = 0; c < d; ++c) in.queue[c * kq + j] = static_cast<float>(in.queue[c * kq + j] / std::sqrt(ss));
  }
  return in;
}

std::vector<int32_t> Ranks(const Inputs& in, float temperature, int* err) {
  std::vector<int32_t> rank(in.n, -7);
  *err = LaunchMocoRanks(in.q.data(), in.k.data(), in.queue.data(), in.n, in.d, in.kq,
                         static_cast<float>(1.0 / temperature), rank.data(), nullptr);
  return rank;
}

void CheckRandom(const std::string& name, const Inputs& in, float temperature) {
  int err = 0;
  const std::vector<int32_t> rank = Ranks(in, temperature, &err);
  emu_check::Report(err == 0, name + ": launches");
  bool ok = true, spread_zero = false, spread_pos = false;
  std::string detail;
  for (int i = 0; i < in.n; ++i) {
    double pos = 0, pos_mag = 0;
    for (int c = 0; c < in.d; ++c) {
      pos += static_cast<double>(in.q[i * in.d + c]) * in.k[i * in.d + c];
      pos_mag += std::fabs(static_cast<double>(in.q[i * in.d + c]) * in.k[i * in.d + c]);
    }
    int lo = 0, hi = 0;
    for (int j = 0; j < in.kq; ++j) {
      double dot = 0, mag = 0;
      for (int c = 0; c < in.d; ++c) {
        const double p = static_cast<double>(in.q[i * in.d + c]) * in.queue[static_cast<size_t>(c) * in.kq + j];
        dot += p;
        mag += std::fabs(p);
      }
      const double bound = 2.0 * in.d * std::ldexp(1.0, -24) * (mag + pos_mag) + std::ldexp(1.0, -22) * (std::fabs(dot) + std::fabs(pos));
      if (dot - pos > bound) ++lo;
      if (dot - pos > -bound) ++hi;
    }
    if (rank[i] < lo || rank[i] > hi) {
      ok = false;
      if (detail.empty()) detail = "row " + std::to_string(i) + ": rank " + std::to_string(rank[i]) + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    }
    spread_zero |= rank[i] == 0;
    spread_pos |= rank[i] > 0;
  }
  emu_check::Report(ok, name + ": every rank within float32 rounding of float64's count", detail);
  emu_check::Report(spread_zero && spread_pos, name + ": the ranks spread (some 0, some above)");
}

// Dyadic values: q row i = e_0 * 1, key values in multiples of 1/4; dot = the key's first entry
// (exact). Row i's positive has first entry 0.5; the queue holds keys with first entries cycling
// through -1, -0.5, 0, 0.25, 0.5 (a tie), 0.75, 1: so 2 of every 7 are strictly above (0.75 and 1).
void CheckTies() {
  const int n = 3, d = 4, kq = 7 * 700;  // several 2048-key blocks and a partial one
  Inputs in{n, d, kq, std::vector<float>(n * d, 0.f), std::vector<float>(n * d, 0.f), std::vector<float>(static_cast<size_t>(d) * kq, 0.f)};
  const float firsts[7] = {-1.f, -0.5f, 0.f, 0.25f, 0.5f, 0.75f, 1.f};
  for (int i = 0; i < n; ++i) {
    in.q[i * d] = 1.f;
    in.k[i * d] = 0.5f;
    in.k[i * d + 1] = 0.25f;  // off the dot product (q's entry there is 0)
  }
  for (int j = 0; j < kq; ++j) {
    in.queue[j] = firsts[j % 7];
    in.queue[static_cast<size_t>(2) * kq + j] = 0.5f;
  }
  int err = 0;
  const std::vector<int32_t> rank = Ranks(in, 0.07f, &err);
  bool ok = err == 0;
  for (int i = 0; i < n; ++i) ok &= rank[i] == 2 * 700;
  emu_check::Report(ok, "exact logits: the ties with the positive are not counted (rank 1400 each)",
                    "ranks " + std::to_string(rank[0]) + " " + std::to_string(rank[1]) + " " + std::to_string(rank[2]));
}

void CheckRowLosses(const std::string& name, const Inputs& in, float temperature) {
  const size_t ws_bytes = MocoLossWorkspaceBytes(in.n, in.d, in.kq);
  std::vector<double> ws_a(ws_bytes / sizeof(double) + 64), ws_b(ws_bytes / sizeof(double) + 64);
  float loss_a = 0, loss_b = 0;
  std::vector<float> dq_a(in.n * in.d), dq_b(in.n * in.d), rows(in.n, -1.f);
  const int e1 = LaunchMocoLossForwardBackward(in.q.data(), in.k.data(), in.queue.data(), in.n, in.d, in.kq, temperature,
                                               &loss_a, dq_a.data(), nullptr, ws_a.data(), nullptr);
  const int e2 = LaunchMocoLossForwardBackward(in.q.data(), in.k.data(), in.queue.data(), in.n, in.d, in.kq, temperature,
                                               &loss_b, dq_b.data(), nullptr, ws_b.data(), nullptr, 0, rows.data());
  emu_check::Report(e1 == 0 && e2 == 0, name + ": loss launches with and without row losses");
  emu_check::Report(loss_a == loss_b && dq_a == dq_b, name + ": asking for the row losses leaves the loss and dq as they were");
  std::vector<double> ref(in.n), mag(in.n);
  for (int i = 0; i < in.n; ++i) {
    std::vector<double> logits(in.kq + 1);
    double amax = 0;
    for (int j = 0; j <= in.kq; ++j) {
      double dot = 0, m = 0;
      for (int c = 0; c < in.d; ++c) {
        const double key = j == 0 ? in.k[i * in.d + c] : in.queue[static_cast<size_t>(c) * in.kq + j - 1];
        dot += static_cast<double>(in.q[i * in.d + c]) * key;
        m += std::fabs(static_cast<double>(in.q[i * in.d + c]) * key);
      }
      logits[j] = dot / temperature;
      amax = std::max(amax, m / temperature);
    }
    double mx = logits[0];
    for (double v : logits) mx = std::max(mx, v);
    double s = 0;
    for (double v : logits) s += std::exp(v - mx);
    ref[i] = mx + std::log(s) - logits[0];
    mag[i] = 2 * amax + std::fabs(ref[i]);
  }
  emu_check::ExpectClose(name + ": row losses against float64", rows.data(), ref.data(), in.n, 1e-5, 0.0, mag.data());
  double mean = 0;
  for (float v : rows) mean += v;
  mean /= in.n;
  emu_check::Report(std::fabs(mean - loss_b) <= 1e-6 * std::fabs(mean), name + ": the loss is the mean of the row losses");
}

}  // namespace

int main() {
  CheckRandom("n 13 d 32 kq 5000", Random(13, 32, 5000, 1), 0.2f);
  CheckRandom("n 8 d 128 kq 4096 (MoCo's dim)", Random(8, 128, 4096, 2, 3.f), 0.07f);
  CheckRandom("n 17 d 200 kq 777 (d > 128, odd K)", Random(17, 200, 777, 3, 1.f), 0.07f);
  CheckTies();
  {
    const Inputs in = Random(9, 64, 3000, 4);
    int e1 = 0, e2 = 0;
    const auto a = Ranks(in, 0.1f, &e1), b = Ranks(in, 0.1f, &e2);
    emu_check::Report(e1 == 0 && e2 == 0 && a == b, "two runs give the same ranks");
  }
  CheckRowLosses("n 13 d 32 kq 5000", Random(13, 32, 5000, 5), 0.2f);
  CheckRowLosses("n 5 d 128 kq 1000", Random(5, 128, 1000, 6), 0.07f);
  {
    float x = 0;
    int32_t r = 0;
    const bool rejected = LaunchMocoRanks(&x, &x, &x, 1, 257, 1, 1.f, &r, nullptr) != 0 &&
                          LaunchMocoRanks(&x, &x, &x, 1, 1, 1, 0.f, &r, nullptr) != 0 &&
                          LaunchMocoRanks(&x, &x, &x, 1, 1, 1, INFINITY, &r, nullptr) != 0 &&
                          LaunchMocoRanks(&x, &x, &x, 0, 1, 1, 1.f, &r, nullptr) != 0 &&
                          LaunchMocoRanks(&x, &x, &x, 1, 1, 1, 1.f, nullptr, nullptr) != 0;
    emu_check::Report(rejected, "bad sizes, scales and null pointers are rejected");
  }
  return emu_check::Finish();
}
