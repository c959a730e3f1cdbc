// Emulation test of the fused MoCo loss kernels (native/cuda/moco_loss.cu) against a float64
// reference computed here: loss, dq and per-row lse for small and odd sizes, several chunkings (one
// tile per chunk, multi-tile chunks with a partial last tile, one chunk), unit-norm inputs and
// unnormalised ones with logits in the hundreds (the max subtraction), the scalar queue path (kq not a
// multiple of 4), the d > 128 variant, run-to-run determinism and argument checks. It runs again as
// cards with less shared memory per block (the emu-env lines: 163 KiB, 99 KiB), where the kernel's
// query blocks are shorter (TM 4, 2, 1), and a dim their shared memory cannot hold must be refused.
// emu-env: SSL_INV_CUDA_EMU_CC=8.0
// emu-env: SSL_INV_CUDA_EMU_CC=8.6
//
// Bounds (docs/KERNELS.md section 6, magnitude-based so cancellation cannot cause false failures):
// with A_ij = sum_d |q_id| |key_jd| / T (the magnitude of logit j of row i) and Amax_i = max_j A_ij,
//   lse_i:  |err| <= rtol (Amax_i + |lse_i|)
//   loss:   |err| <= rtol mean_i (Amax_i + A_i0 + |lse_i| + |loss_i|)
//   dq_id:  |err| <= rtol ((1 + Amax_i) sum_j p_ij |key_jd| + |k_pos_id|) / (T n)
// (a logit error e shifts every p_ij by a relative 2e at most, hence the Amax factor in dq).
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/moco_loss.cuh"
#include "emu_check.h"

namespace {

using sslinv::cuda::LaunchMocoLossForwardBackward;
using sslinv::cuda::MocoLossWorkspaceBytes;

struct Case {
  std::string name;
  int n, d, kq;
  float temperature;
  bool unit;        // unit-norm rows of q, k_pos and columns of the queue
  float amplitude;  // otherwise U(-amplitude, amplitude)
  int keys_per_chunk;
  bool positive_dominant = false;  // k_pos = q (times 4): logit 0 far above the queue's
};

struct Inputs {
  std::vector<float> q, k, queue;
};

Inputs MakeInputs(const Case& c, uint64_t seed) {
  emu_check::Rng rng(seed);
  Inputs in;
  in.q.resize(static_cast<size_t>(c.n) * c.d);
  in.k.resize(in.q.size());
  in.queue.resize(static_cast<size_t>(c.d) * c.kq);
  const float a = c.unit ? 1.f : c.amplitude;
  rng.Fill(in.q, -a, a);
  rng.Fill(in.k, -a, a);
  rng.Fill(in.queue, -a, a);
  if (c.unit) {
    auto normalise_rows = [&](std::vector<float>& v, int rows) {
      for (int r = 0; r < rows; ++r) {
        double ss = 0;
        for (int j = 0; j < c.d; ++j) ss += double(v[size_t(r) * c.d + j]) * v[size_t(r) * c.d + j];
        const double inv = 1.0 / std::sqrt(ss);
        for (int j = 0; j < c.d; ++j) v[size_t(r) * c.d + j] = static_cast<float>(v[size_t(r) * c.d + j] * inv);
      }
    };
    normalise_rows(in.q, c.n);
    normalise_rows(in.k, c.n);
    for (int j = 0; j < c.kq; ++j) {
      double ss = 0;
      for (int r = 0; r < c.d; ++r) ss += double(in.queue[size_t(r) * c.kq + j]) * in.queue[size_t(r) * c.kq + j];
      const double inv = 1.0 / std::sqrt(ss);
      for (int r = 0; r < c.d; ++r) in.queue[size_t(r) * c.kq + j] = static_cast<float>(in.queue[size_t(r) * c.kq + j] * inv);
    }
  }
  if (c.positive_dominant)
    for (size_t i = 0; i < in.k.size(); ++i) in.k[i] = 4.f * in.q[i];
  return in;
}

// A copy followed by NaNs, so a read past the end of an input shows up in the results.
std::vector<float> Guarded(const std::vector<float>& v) {
  std::vector<float> g(v);
  g.resize(v.size() + 256, std::nanf(""));
  return g;
}

struct Outputs {
  float loss = 0.f;
  std::vector<float> dq, lse;
  int err = 0;
};

Outputs Run(const Case& c, const Inputs& in) {
  Outputs out;
  out.dq.assign(static_cast<size_t>(c.n) * c.d, std::nanf(""));
  out.lse.assign(static_cast<size_t>(c.n), std::nanf(""));
  const size_t ws_bytes = MocoLossWorkspaceBytes(c.n, c.d, c.kq, c.keys_per_chunk);
  void* ws = std::aligned_alloc(256, (ws_bytes + 255) / 256 * 256);
  std::memset(ws, 0xff, ws_bytes);  // NaN garbage: the kernels must write everything they read
  out.loss = std::nanf("");
  const std::vector<float> q = Guarded(in.q), k = Guarded(in.k), queue = Guarded(in.queue);
  out.err = LaunchMocoLossForwardBackward(q.data(), k.data(), queue.data(), c.n, c.d, c.kq, c.temperature,
                                          &out.loss, out.dq.data(), out.lse.data(), ws, nullptr, c.keys_per_chunk);
  std::free(ws);
  return out;
}

void Check(const Case& c, const Inputs& in, const Outputs& out) {
  emu_check::Report(out.err == 0, c.name + ": launch returns cudaSuccess", "error " + std::to_string(out.err));
  const double T = c.temperature;
  const int K = c.kq + 1;
  std::vector<double> dq_ref(out.dq.size()), dq_scale(out.dq.size()), lse_ref(c.n), lse_scale(c.n);
  double loss_ref = 0, loss_scale = 0;
  std::vector<double> logit(K), mag(K), p(K);
  for (int i = 0; i < c.n; ++i) {
    const float* qi = &in.q[size_t(i) * c.d];
    auto key = [&](int j, int r) -> double {
      return j == 0 ? in.k[size_t(i) * c.d + r] : in.queue[size_t(r) * c.kq + (j - 1)];
    };
    double mx = -INFINITY, amax = 0;
    for (int j = 0; j < K; ++j) {
      double s = 0, a = 0;
      for (int r = 0; r < c.d; ++r) {
        s += double(qi[r]) * key(j, r);
        a += std::fabs(double(qi[r]) * key(j, r));
      }
      logit[j] = s / T;
      mag[j] = a / T;
      mx = std::max(mx, logit[j]);
      amax = std::max(amax, mag[j]);
    }
    double sum = 0;
    for (int j = 0; j < K; ++j) sum += std::exp(logit[j] - mx);
    const double lse = mx + std::log(sum);
    for (int j = 0; j < K; ++j) p[j] = std::exp(logit[j] - lse);
    lse_ref[i] = lse;
    lse_scale[i] = amax + std::fabs(lse);
    const double li = lse - logit[0];
    loss_ref += li;
    loss_scale += amax + mag[0] + std::fabs(lse) + std::fabs(li);
    for (int r = 0; r < c.d; ++r) {
      double g = 0, gm = 0;
      for (int j = 0; j < K; ++j) {
        g += p[j] * key(j, r);
        gm += p[j] * std::fabs(key(j, r));
      }
      const double kp = in.k[size_t(i) * c.d + r];
      dq_ref[size_t(i) * c.d + r] = (g - kp) / (T * c.n);
      dq_scale[size_t(i) * c.d + r] = ((1 + amax) * gm + std::fabs(kp)) / (T * c.n);
    }
  }
  loss_ref /= c.n;
  loss_scale /= c.n;
  const double rtol = 1e-5;
  emu_check::ExpectClose(c.name + ": loss", &out.loss, &loss_ref, 1, rtol, 0.0, &loss_scale);
  emu_check::ExpectClose(c.name + ": lse", out.lse.data(), lse_ref.data(), lse_ref.size(), rtol, 0.0, lse_scale.data());
  emu_check::ExpectClose(c.name + ": dq", out.dq.data(), dq_ref.data(), dq_ref.size(), rtol, 0.0, dq_scale.data());
}

bool BitEqual(const Outputs& a, const Outputs& b) {
  return std::memcmp(&a.loss, &b.loss, sizeof(float)) == 0 &&
         std::memcmp(a.dq.data(), b.dq.data(), a.dq.size() * sizeof(float)) == 0 &&
         std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float)) == 0;
}

}  // namespace

int main() {
  const std::vector<Case> cases = {
      // One 64-key tile per chunk, 5 chunks, the last one partial (300 = 4 * 64 + 44).
      {"n5 d17 kq300 unit, 64-key chunks", 5, 17, 300, 0.2f, true, 0.f, 64},
      // Multi-tile chunks (2, 2, 1 tiles): the double buffer and the online rescaling across tiles.
      {"n5 d17 kq300 unit, 128-key chunks", 5, 17, 300, 0.2f, true, 0.f, 128},
      {"n5 d17 kq300 unit, one chunk", 5, 17, 300, 0.2f, true, 0.f, 1 << 20},
      {"n5 d17 kq300 large logits, 128-key chunks", 5, 17, 300, 0.07f, false, 3.f, 128},
      {"n8 d128 kq1000 unit, 256-key chunks", 8, 128, 1000, 0.2f, true, 0.f, 256},
      {"n8 d128 kq1000 large logits, auto chunks", 8, 128, 1000, 0.1f, false, 1.f, 0},
      // kq not a multiple of 4: the scalar queue loads; d in (32, 64].
      {"n3 d40 kq301 large logits, 128-key chunks", 3, 40, 301, 0.05f, false, 1.f, 128},
      // Two query blocks, the second partial.
      {"n130 d64 kq200 unit, 128-key chunks", 130, 64, 200, 0.2f, true, 0.f, 128},
      // d > 128: the 64-row, 256-dim variant, two query blocks.
      {"n70 d200 kq130 large logits, 64-key chunks", 70, 200, 130, 0.2f, false, 0.5f, 64},
      // The positive logit (~1000) far above every queue logit: it must enter the row max.
      {"n4 d17 kq200 positive dominant, 64-key chunks", 4, 17, 200, 0.05f, false, 3.f, 64, true},
      // Several query blocks at dim 128 whatever their height (128, 64 or 32 rows), the last partial.
      {"n130 d128 kq300 unit, auto chunks", 130, 128, 300, 0.2f, true, 0.f, 0},
      {"n70 d100 kq257 large logits, 64-key chunks", 70, 100, 257, 0.1f, false, 0.5f, 64},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const Inputs in = MakeInputs(c, seed++);
    if (!sslinv::cuda::MocoLossFits(c.d)) {
      // dim > 128 needs 161 KiB of shared memory per block: more than sm_86/89 cards have.
      const Outputs out = Run(c, in);
      emu_check::Report(out.err != 0 && sslinv::cuda::MocoLossSharedMemoryNeeded(c.d) > 99 * 1024,
                        c.name + ": refused, its shared memory does not fit this device");
      continue;
    }
    Check(c, in, Run(c, in));
  }

  {
    const Case& c = cases[4];
    const Inputs in = MakeInputs(c, 99);
    const Outputs a = Run(c, in), b = Run(c, in);
    emu_check::Report(BitEqual(a, b), c.name + ": two runs bit-identical");
  }

  {
    float loss = 0, dq = 0;
    std::vector<unsigned char> ws(4096);
    const int e1 = LaunchMocoLossForwardBackward(&loss, &loss, &loss, 1, 257, 1, 0.2f, &loss, &dq, nullptr, ws.data(),
                                                 nullptr);
    const int e2 = LaunchMocoLossForwardBackward(&loss, &loss, &loss, 1, 1, 1, 0.f, &loss, &dq, nullptr, ws.data(),
                                                 nullptr);
    emu_check::Report(e1 != 0 && e2 != 0, "d > 256 and T = 0 are rejected");
  }
  return emu_check::Finish();
}
