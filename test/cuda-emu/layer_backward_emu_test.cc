// Emulator tests of native/cuda/layer_backward.cu against the CPU ops of native/cpu/layer_backward.cc
// (which test/backward checks against PyTorch), on the same inputs:
//   batch-norm forward (y, saved mean and invstd, running statistics) and backward (dx, dweight,
//     dbias, with and without the ReLU mask): norm-wise within rel 1e-5 of the CPU op (the float64
//     reductions run in another order), with the share of bit-identical values reported; odd C,
//     rows that are not multiples of any block size, groups 1/2/4 (each group equal bit for bit to a
//     call on its rows alone), residual + ReLU on and off, |mean| >> std, NaN / -0 / 0 in the ReLU
//     masks, misaligned tensors (scalar channels), small grid caps; bit-identical across two runs
//     (with the workspace poisoned in between);
//   reluBackward, maxPool2dBackward (ties, padding borders on negative data, stride 2 with odd H, NaN,
//     windows of -inf, overlapping and disjoint windows) and globalAvgPoolBackward: bit-identical to
//     the CPU ops;
//   sumRows: norm-wise rel 1e-5, m = 0 gives zeros, bit-identical across runs;
//   short workspaces are refused without launching, no store lands outside an output, and no float4
//   access is misaligned.
// Build and run (the emu-sources line is what test/cuda-emu/emu.test.ts adds):
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/layer_backward_emu_test.cc native/cuda/layer_backward.cu <emu-sources> -o /tmp/lbw
//   /tmp/lbw
// emu-sources: native/cuda/elementwise.cu native/cpu/layer_backward.cc native/cpu/pool.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "cuda/layer_backward.cuh"
#include "emu_buffers.h"
#include "emu_check.h"
#include "float_buffers.h"
#include "ops/layer_backward.h"

namespace {

using emu_check::ExpectBits;
using emu_check::ExpectNormClose;
using emu_check::FloatBuf;
using emu_check::Report;
using emu_check::Rng;
using emu_check::Workspace;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;
constexpr double kRtol = 1e-5;

bool Launched(const std::string& what, cudaError_t e) {
  if (e != cudaSuccess) Report(false, what + " launch", cudaGetErrorString(e));
  return e == cudaSuccess;
}

float Normal(Rng& r, float mu, float sigma) {
  const double u1 = (static_cast<double>(r.Next() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(r.Next() >> 11) * 0x1.0p-53;
  return mu + sigma * static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

void Poison(Workspace& ws) {
  for (double& d : ws.mem) d = std::nan("");
}

void ExpectGuards(const std::string& what, std::initializer_list<const FloatBuf*> bufs) {
  bool ok = true;
  for (const FloatBuf* b : bufs) ok = ok && b->GuardsIntact();
  Report(ok, what + ": no store outside the outputs");
}

// ---------------------------------------------------------------------------------------------
// Batch norm.

struct BnCase {
  int64_t n, hw, c, groups;
  bool relu, residual;
  int off;  // element offset of every per-element tensor (1: scalar channels)
  int cap;
  float mu, sigma;
};

std::string Name(const char* op, const BnCase& k) {
  char b[220];
  std::snprintf(b, sizeof b, "%s rows=%lld C=%lld groups=%lld%s%s offset %d cap %d N(%g, %g)", op,
                static_cast<long long>(k.n * k.hw), static_cast<long long>(k.c), static_cast<long long>(k.groups),
                k.relu ? " relu" : "", k.residual ? " residual" : "", k.off, k.cap, k.mu, k.sigma);
  return b;
}

// Per-channel data: channel j ~ N(mu + j * sigma, sigma * (1 + j % 3)) so channels differ.
void FillChannels(Rng& rng, float* x, int64_t rows, int64_t c, float mu, float sigma) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < c; ++j) {
      x[r * c + j] = Normal(rng, mu + static_cast<float>(j) * sigma, sigma * static_cast<float>(1 + j % 3));
    }
}

struct BnTrainOut {
  FloatBuf y, mean, invstd, rm, rv;
  BnTrainOut(int64_t rows, int64_t c, int64_t g, int off)
      : y(rows * c, off), mean(g * c), invstd(g * c), rm(c), rv(c) {}
};

struct BnParamsHost {
  std::vector<float> weight, bias, rm, rv;
};

BnParamsHost Params(Rng& rng, int64_t c) {
  BnParamsHost p{std::vector<float>(c), std::vector<float>(c), std::vector<float>(c), std::vector<float>(c)};
  for (int64_t j = 0; j < c; ++j) {
    p.weight[j] = rng.Uniform(0.5f, 1.5f);
    p.bias[j] = rng.Uniform(-0.5f, 0.5f);
    p.rm[j] = rng.Uniform(-1.f, 1.f);
    p.rv[j] = rng.Uniform(0.5f, 2.f);
  }
  return p;
}

constexpr double kEps = 1e-5, kMomentum = 0.1;

bool RunTrain(const std::string& what, const FloatBuf& x, const FloatBuf* res, int64_t rows, int64_t c, int64_t g,
              bool relu, const BnParamsHost& p, int cap, BnTrainOut& o, Workspace& ws) {
  return Launched(what, cu::BatchNormTrainF32(x.data(), rows, c, g, p.weight.data(), p.bias.data(), p.rm.data(),
                                              p.rv.data(), kEps, kMomentum, relu, res ? res->data() : nullptr,
                                              o.y.data(), o.mean.data(), o.invstd.data(), o.rm.data(), o.rv.data(),
                                              ws.ptr, ws.bytes, kStream, cap));
}

void TestBatchNormTrain() {
  Rng rng(21);
  const BnCase cases[] = {
      // n  hw  c  G  relu   res    off cap  mu      sigma
      {4, 25, 3, 1, false, false, 0, 0, 0.f, 1.f},        // C = 3, 100 rows
      {4, 25, 7, 2, true, true, 0, 3, 0.5f, 2.f},         // odd C, 2 groups of 50 rows, small cap
      {8, 9, 64, 4, true, true, 0, 0, 0.f, 1.f},          // float4 channels, 4 groups of 18 rows
      {8, 9, 64, 4, true, false, 1, 5, 0.f, 1.f},         // misaligned: scalar channels
      {4, 33, 36, 1, false, false, 0, 0, 1000.f, 0.01f},  // |mean| / std = 1e5
      {8, 7, 5, 4, false, true, 0, 2, -300.f, 0.05f},     // groups, |mean| >> std, residual without relu
      {2, 1, 9, 2, true, false, 0, 0, 1.f, 3.f},          // 2 groups of 1 row: refused
      {40, 500, 5, 1, true, false, 0, 0, 2.f, 1.f},       // 20000 rows: several CPU blocks, many row blocks
      {6, 77, 12, 2, false, false, 2, 0, 0.f, 1.f},       // C % 4 == 0, x misaligned by 2
  };
  for (const BnCase& k : cases) {
    const int64_t rows = k.n * k.hw, c = k.c, g = k.groups;
    const std::string name = Name("batch-norm train", k);
    FloatBuf x(rows * c, k.off), res(rows * c, k.off);
    FillChannels(rng, x.data(), rows, c, k.mu, k.sigma);
    for (size_t i = 0; i < res.size(); ++i) res[i] = rng.Uniform(-1.f, 1.f);
    const BnParamsHost p = Params(rng, c);
    const FloatBuf* rp = k.residual ? &res : nullptr;
    Workspace ws(cu::BatchNormTrainWorkspaceBytes(rows, c, g, k.cap));
    BnTrainOut o(rows, c, g, k.off), o2(rows, c, g, k.off);
    if (rows / g < 2) {
      Report(cu::BatchNormTrainF32(x.data(), rows, c, g, p.weight.data(), p.bias.data(), p.rm.data(), p.rv.data(), kEps,
                                   kMomentum, k.relu, nullptr, o.y.data(), o.mean.data(), o.invstd.data(), o.rm.data(),
                                   o.rv.data(), ws.ptr, ws.bytes, kStream, k.cap) == cudaErrorInvalidValue,
             name + ": one row per group is refused");
      continue;
    }
    if (!RunTrain(name, x, rp, rows, c, g, k.relu, p, k.cap, o, ws)) continue;
    Poison(ws);
    if (!RunTrain(name, x, rp, rows, c, g, k.relu, p, k.cap, o2, ws)) continue;
    std::vector<float> y(rows * c), sm(g * c), si(g * c), rm(c), rv(c);
    const sslinv::Status st = sslinv::BatchNormTrainF32(
        x.data(), rows, c, g, p.weight.data(), p.bias.data(), p.rm.data(), p.rv.data(), kEps, kMomentum, k.relu,
        rp ? rp->data() : nullptr, y.data(), sm.data(), si.data(), rm.data(), rv.data());
    Report(st.ok(), name + ": CPU op runs", st.message());
    ExpectNormClose(name + " y", o.y.data(), y.data(), y.size(), kRtol);
    ExpectNormClose(name + " saved mean", o.mean.data(), sm.data(), sm.size(), kRtol);
    ExpectNormClose(name + " saved invstd", o.invstd.data(), si.data(), si.size(), kRtol);
    ExpectNormClose(name + " running mean", o.rm.data(), rm.data(), c, kRtol);
    ExpectNormClose(name + " running var", o.rv.data(), rv.data(), c, kRtol);
    ExpectBits(name + " run-to-run: y", o2.y.data(), o.y.data(), y.size());
    ExpectBits(name + " run-to-run: saved mean", o2.mean.data(), o.mean.data(), sm.size());
    ExpectBits(name + " run-to-run: saved invstd", o2.invstd.data(), o.invstd.data(), si.size());
    ExpectBits(name + " run-to-run: running mean", o2.rm.data(), o.rm.data(), c);
    ExpectBits(name + " run-to-run: running var", o2.rv.data(), o.rv.data(), c);
    ExpectGuards(name, {&o.y, &o.mean, &o.invstd, &o.rm, &o.rv});
    if (g > 1) {
      // Each group: the bits of a call on its rows alone (the running statistics: group 0's).
      const int64_t gr = rows / g;
      bool same = true;
      for (int64_t gi = 0; gi < g && same; ++gi) {
        FloatBuf xg(gr * c, k.off), rg(gr * c, k.off);
        std::memcpy(xg.data(), x.data() + gi * gr * c, gr * c * 4);
        std::memcpy(rg.data(), res.data() + gi * gr * c, gr * c * 4);
        BnTrainOut og(gr, c, 1, k.off);
        Workspace wg(cu::BatchNormTrainWorkspaceBytes(gr, c, 1, k.cap));
        if (!RunTrain(name + " group alone", xg, rp ? &rg : nullptr, gr, c, 1, k.relu, p, k.cap, og, wg)) return;
        same = std::memcmp(og.y.data(), o.y.data() + gi * gr * c, gr * c * 4) == 0 &&
               std::memcmp(og.mean.data(), o.mean.data() + gi * c, c * 4) == 0 &&
               std::memcmp(og.invstd.data(), o.invstd.data() + gi * c, c * 4) == 0 &&
               (gi != 0 || (std::memcmp(og.rm.data(), o.rm.data(), c * 4) == 0 &&
                            std::memcmp(og.rv.data(), o.rv.data(), c * 4) == 0));
      }
      Report(same, name + ": every group is the bits of a call on its rows alone");
    }
  }
  // A short workspace is refused without launching.
  FloatBuf x(64 * 4), y(64 * 4), m(4), s(4), rm(4), rv(4);
  const BnParamsHost p = Params(rng, 4);
  Workspace ws(cu::BatchNormTrainWorkspaceBytes(64, 4, 1));
  Report(cu::BatchNormTrainF32(x.data(), 64, 4, 1, p.weight.data(), p.bias.data(), p.rm.data(), p.rv.data(), kEps,
                               kMomentum, false, nullptr, y.data(), m.data(), s.data(), rm.data(), rv.data(), ws.ptr,
                               ws.bytes - 8, kStream) == cudaErrorInvalidValue &&
             y.GuardsIntact() && std::isnan(y[0]),
         "batch-norm train refuses a short workspace without launching");
}

// A ReLU output for the backward's mask: mostly the real relu(y), with NaN, -0, +0 and negative
// values mixed in (the mask passes dy where y > 0 or NaN).
void FillReluOutput(Rng& rng, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng.Next() % 16;
    y[i] = r == 0   ? std::numeric_limits<float>::quiet_NaN()
           : r == 1 ? -0.f
           : r == 2 ? 0.f
           : r == 3 ? -rng.Uniform(0.f, 1.f)
                    : rng.Uniform(0.f, 2.f);
  }
}

void TestBatchNormBackward() {
  Rng rng(33);
  const BnCase cases[] = {
      // n  hw  c  G  relu   res    off cap  mu      sigma   (res unused)
      {4, 25, 3, 1, false, false, 0, 0, 0.f, 1.f},
      {4, 25, 3, 1, true, false, 0, 0, 0.f, 1.f},         // ReLU mask with NaN, -0, 0
      {4, 25, 7, 2, true, false, 0, 3, 0.5f, 2.f},        // odd C, 2 groups, small cap
      {8, 9, 64, 4, true, false, 0, 0, 0.f, 1.f},         // float4 channels, 4 groups
      {8, 9, 64, 4, false, false, 1, 4, 0.f, 1.f},        // misaligned: scalar channels
      {4, 33, 36, 1, true, false, 0, 0, 1000.f, 0.01f},   // |mean| >> std
      {2, 1, 9, 2, false, false, 0, 0, 1.f, 3.f},         // 2 groups of one row each
      {40, 500, 5, 1, true, false, 0, 0, 2.f, 1.f},       // 20000 rows
      {8, 7, 5, 4, false, false, 0, 2, -300.f, 0.05f},
  };
  for (const BnCase& k : cases) {
    const int64_t rows = k.n * k.hw, c = k.c, g = k.groups, gr = rows / g;
    const std::string name = Name("batch-norm backward", k);
    FloatBuf x(rows * c, k.off), dy(rows * c, k.off), ry(rows * c, k.off);
    FillChannels(rng, x.data(), rows, c, k.mu, k.sigma);
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = Normal(rng, 0.1f, 1.f);
    FillReluOutput(rng, ry.data(), ry.size());
    const FloatBuf* relu_y = k.relu ? &ry : nullptr;
    std::vector<float> weight(c), mean(g * c), invstd(g * c);
    for (int64_t j = 0; j < c; ++j) weight[j] = rng.Uniform(0.5f, 1.5f);
    // The saved statistics as the forward would give them (float64 per group, rounded once).
    for (int64_t gi = 0; gi < g; ++gi)
      for (int64_t j = 0; j < c; ++j) {
        double s = 0, s2 = 0;
        for (int64_t r = gi * gr; r < (gi + 1) * gr; ++r) s += x[r * c + j];
        const double m = s / static_cast<double>(gr);
        for (int64_t r = gi * gr; r < (gi + 1) * gr; ++r) s2 += (x[r * c + j] - m) * (x[r * c + j] - m);
        mean[gi * c + j] = static_cast<float>(m);
        invstd[gi * c + j] = static_cast<float>(1.0 / std::sqrt(s2 / static_cast<double>(gr) + kEps));
      }
    Workspace ws(cu::BatchNormBackwardWorkspaceBytes(rows, c, g, k.cap));
    FloatBuf dx(rows * c, k.off), dw(c), db(c), dx2(rows * c, k.off), dw2(c), db2(c);
    auto run = [&](FloatBuf& ox, FloatBuf& ow, FloatBuf& ob) {
      return Launched(name, cu::BatchNormBackwardF32(dy.data(), relu_y ? relu_y->data() : nullptr, x.data(), rows, c,
                                                     g, weight.data(), mean.data(), invstd.data(), ox.data(),
                                                     ow.data(), ob.data(), ws.ptr, ws.bytes, kStream, k.cap));
    };
    if (!run(dx, dw, db)) continue;
    Poison(ws);
    if (!run(dx2, dw2, db2)) continue;
    std::vector<float> rdx(rows * c), rdw(c), rdb(c);
    const sslinv::Status st = sslinv::BatchNormBackwardF32(dy.data(), relu_y ? relu_y->data() : nullptr, x.data(), rows,
                                                           c, g, weight.data(), mean.data(), invstd.data(), rdx.data(),
                                                           rdw.data(), rdb.data());
    Report(st.ok(), name + ": CPU op runs", st.message());
    ExpectNormClose(name + " dx", dx.data(), rdx.data(), rdx.size(), kRtol);
    ExpectNormClose(name + " dweight", dw.data(), rdw.data(), c, kRtol);
    ExpectNormClose(name + " dbias", db.data(), rdb.data(), c, kRtol);
    ExpectBits(name + " run-to-run: dx", dx2.data(), dx.data(), rdx.size());
    ExpectBits(name + " run-to-run: dweight", dw2.data(), dw.data(), c);
    ExpectBits(name + " run-to-run: dbias", db2.data(), db.data(), c);
    ExpectGuards(name, {&dx, &dw, &db});
  }
  FloatBuf x(64 * 4), dx(64 * 4), dw(4), db(4);
  std::vector<float> ones(4, 1.f);
  Workspace ws(cu::BatchNormBackwardWorkspaceBytes(64, 4, 1));
  Report(cu::BatchNormBackwardF32(x.data(), nullptr, x.data(), 64, 4, 1, ones.data(), ones.data(), ones.data(),
                                  dx.data(), dw.data(), db.data(), ws.ptr, ws.bytes - 8, kStream) ==
                 cudaErrorInvalidValue &&
             dx.GuardsIntact() && std::isnan(dx[0]),
         "batch-norm backward refuses a short workspace without launching");
}

// ---------------------------------------------------------------------------------------------
// ReLU, pools, sumRows.

void TestReluBackward() {
  Rng rng(44);
  const int offs[][3] = {{0, 0, 0}, {1, 1, 1}, {0, 1, 2}, {3, 3, 0}};  // dy, y, dx offsets
  for (const auto& o : offs) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1001}}) {
      FloatBuf dy(n, o[0]), y(n, o[1]), dx(n, o[2]);
      for (int64_t i = 0; i < n; ++i) dy[i] = Normal(rng, 0.f, 1.f);
      FillReluOutput(rng, y.data(), n);
      if (n > 3) dy[2] = -0.f;
      if (!Launched("relu backward", cu::ReluBackwardF32(dy.data(), y.data(), dx.data(), n, kStream, 2))) continue;
      std::vector<float> ref(n);
      sslinv::ReluBackwardF32(dy.data(), y.data(), ref.data(), n);
      const std::string name = "relu backward n=" + std::to_string(n) + " offsets " + std::to_string(o[0]) + "," +
                               std::to_string(o[1]) + "," + std::to_string(o[2]) + " (NaN, -0, 0 in y)";
      ExpectBits(name, dx.data(), ref.data(), n);
      ExpectGuards(name, {&dx});
    }
  }
}

struct PoolCase {
  int64_t n, h, w, c, kh, kw, sh, sw, ph, pw;
  int off;    // offset of dy, x, dx
  int cap;
  int levels;     // > 0: values drawn from this many levels (many ties)
  bool negative;  // all-negative data (a padded zero must never win)
  bool nans, neg_inf;
};

void TestMaxPoolBackward() {
  Rng rng(55);
  const PoolCase cases[] = {
      // n h   w  c  kh kw sh sw ph pw off cap lev neg    nan    -inf
      {2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 0, 4, 3, false, false, false},   // stem pool, odd H, ties
      {2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1, 3, 0, true, true, false},     // negative, NaN, misaligned
      {1, 9, 5, 8, 3, 3, 2, 2, 1, 1, 0, 2, 2, true, false, false},    // float4, padding borders, ties
      {1, 9, 5, 8, 3, 3, 2, 2, 1, 1, 1, 0, 0, true, true, false},     // C % 4 == 0, misaligned: scalar
      {2, 5, 7, 4, 2, 2, 2, 2, 0, 0, 0, 0, 2, false, true, false},    // disjoint windows, floor mode
      {1, 6, 6, 5, 3, 3, 1, 1, 1, 1, 0, 3, 2, true, false, true},     // stride 1: a winner of 9 windows
      {1, 8, 7, 12, 3, 2, 1, 2, 1, 1, 0, 0, 3, false, true, true},    // non-square kernel and stride
      {1, 11, 13, 16, 5, 4, 3, 2, 2, 2, 0, 0, 0, true, true, false},  // larger pads, float4
      {1, 3, 3, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0, false, false, false},   // 1x1: a copy
  };
  for (const PoolCase& k : cases) {
    sslinv::Pool2dParams p;
    p.n = k.n, p.h = k.h, p.w = k.w, p.c = k.c;
    p.kernel_h = k.kh, p.kernel_w = k.kw, p.stride_h = k.sh, p.stride_w = k.sw, p.pad_h = k.ph, p.pad_w = k.pw;
    const int64_t nx = k.n * k.h * k.w * k.c, ny = k.n * p.out_h() * p.out_w() * k.c;
    FloatBuf x(nx, k.off), dy(ny, k.off), dx(nx, k.off);
    for (int64_t i = 0; i < nx; ++i) {
      const float v = k.levels > 0 ? static_cast<float>(rng.Next() % k.levels) : rng.Uniform(-2.f, 2.f);
      x[i] = k.negative ? -1.f - std::fabs(v) : v;
    }
    if (k.nans) {
      for (int64_t i = 0; i < nx; i += 1 + static_cast<int64_t>(rng.Next() % 23)) {
        x[i] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    if (k.neg_inf) {
      for (int64_t ih = 0; ih < 3; ++ih)
        for (int64_t iw = 0; iw < 3; ++iw)
          for (int64_t c = 0; c < k.c; ++c) x[(ih * k.w + iw) * k.c + c] = -INFINITY;
    }
    for (int64_t i = 0; i < ny; ++i) dy[i] = Normal(rng, 0.f, 1.f);
    Workspace ws(cu::MaxPool2dBackwardWorkspaceBytes(p));
    char name[200];
    std::snprintf(name, sizeof name, "max pool backward N%lld H%lld W%lld C%lld k%lldx%lld s%lldx%lld p%lldx%lld offset %d%s%s%s%s",
                  (long long)k.n, (long long)k.h, (long long)k.w, (long long)k.c, (long long)k.kh, (long long)k.kw,
                  (long long)k.sh, (long long)k.sw, (long long)k.ph, (long long)k.pw, k.off,
                  k.levels ? " ties" : "", k.negative ? " negative" : "", k.nans ? " NaN" : "",
                  k.neg_inf ? " -inf windows" : "");
    if (!Launched(name, cu::MaxPool2dBackwardNHWC(p, dy.data(), x.data(), dx.data(), ws.ptr, ws.bytes, kStream, k.cap))) {
      continue;
    }
    std::vector<float> ref(nx);
    const sslinv::Status st = sslinv::MaxPool2dBackwardNHWC(p, dy.data(), x.data(), ref.data());
    Report(st.ok(), std::string(name) + ": CPU op runs", st.message());
    ExpectBits(name, dx.data(), ref.data(), nx);
    ExpectGuards(name, {&dx});
  }
  sslinv::Pool2dParams p;
  p.n = 1, p.h = 4, p.w = 4, p.c = 4, p.kernel_h = p.kernel_w = 2, p.stride_h = p.stride_w = 2;
  FloatBuf x(64), dy(16), dx(64);
  Workspace ws(cu::MaxPool2dBackwardWorkspaceBytes(p));
  Report(cu::MaxPool2dBackwardNHWC(p, dy.data(), x.data(), dx.data(), ws.ptr, ws.bytes - 4, kStream) ==
                 cudaErrorInvalidValue && dx.GuardsIntact() && std::isnan(dx[0]),
         "max pool backward refuses a short workspace without launching");
}

void TestGlobalAvgPoolBackward() {
  Rng rng(66);
  struct Case {
    int64_t n, h, w, c;
    int off, cap;
  };
  const Case cases[] = {{3, 7, 5, 3, 0, 0}, {2, 7, 7, 8, 0, 2}, {2, 3, 5, 8, 1, 0}, {1, 1, 1, 5, 0, 0}, {4, 2, 3, 12, 2, 1}};
  for (const Case& k : cases) {
    FloatBuf dy(k.n * k.c, k.off), dx(k.n * k.h * k.w * k.c, k.off);
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = Normal(rng, 0.f, 3.f);
    char name[160];
    std::snprintf(name, sizeof name, "global avg pool backward N%lld H%lld W%lld C%lld offset %d cap %d", (long long)k.n,
                  (long long)k.h, (long long)k.w, (long long)k.c, k.off, k.cap);
    if (!Launched(name, cu::GlobalAvgPoolBackwardNHWC(k.n, k.h, k.w, k.c, dy.data(), dx.data(), kStream, k.cap))) continue;
    std::vector<float> ref(dx.size());
    sslinv::GlobalAvgPoolBackwardNHWC(k.n, k.h, k.w, k.c, dy.data(), ref.data());
    ExpectBits(name, dx.data(), ref.data(), ref.size());
    ExpectGuards(name, {&dx});
  }
}

void TestSumRows() {
  Rng rng(77);
  struct Case {
    int64_t m, n;
    int off, cap;
    float mu;
  };
  const Case cases[] = {{0, 5, 0, 0, 0.f},      {1, 3, 0, 0, 1.f},     {1000, 3, 0, 2, 0.f}, {5000, 64, 0, 3, 10.f},
                        {777, 64, 1, 0, -5.f},  {70000, 1, 0, 0, 0.f}, {33, 2049, 0, 0, 0.f}};
  for (const Case& k : cases) {
    FloatBuf x(k.m * k.n, k.off), out(k.n), out2(k.n);
    for (size_t i = 0; i < x.size(); ++i) x[i] = Normal(rng, k.mu, 1.f);
    Workspace ws(cu::SumRowsWorkspaceBytes(k.m, k.n, k.cap));
    char name[160];
    std::snprintf(name, sizeof name, "sumRows [%lld, %lld] offset %d cap %d", (long long)k.m, (long long)k.n, k.off, k.cap);
    if (!Launched(name, cu::SumRowsF32(x.data(), k.m, k.n, out.data(), ws.ptr, ws.bytes, kStream, k.cap))) continue;
    Poison(ws);
    if (!Launched(name, cu::SumRowsF32(x.data(), k.m, k.n, out2.data(), ws.ptr, ws.bytes, kStream, k.cap))) continue;
    std::vector<float> ref(k.n);
    const sslinv::Status st = sslinv::SumRowsF32(x.data(), k.m, k.n, ref.data());
    Report(st.ok(), std::string(name) + ": CPU op runs", st.message());
    if (k.m == 0) {
      ExpectBits(std::string(name) + ": zeros", out.data(), ref.data(), k.n);
    } else {
      ExpectNormClose(name, out.data(), ref.data(), k.n, kRtol);
    }
    ExpectBits(std::string(name) + " run-to-run", out2.data(), out.data(), k.n);
    ExpectGuards(name, {&out});
  }
}

}  // namespace

int main() {
  TestBatchNormTrain();
  TestBatchNormBackward();
  TestReluBackward();
  TestMaxPoolBackward();
  TestGlobalAvgPoolBackward();
  TestSumRows();
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector access (would fault on a GPU)",
         std::to_string(misaligned) + " misaligned accesses");
  return emu_check::Finish();
}
