// Emulator tests of native/cuda/sgd.cu against the CPU ops of native/cpu/sgd.cc (which
// test/backward/sgd.test.ts checks against PyTorch): bit for bit (any NaN matching any NaN: NaN
// payloads are not IEEE results, see float_buffers.h), on
//   - SgdStepF32: every branch (weight decay on/off, momentum off / first step / with a buffer,
//     dampening, Nesterov), three chained steps, out of place and in place, sizes 0..4099 with
//     float4 heads and tails and misaligned tensors (scalar path), more than 32 tensors (several
//     launches), small grid caps, and values where fused and unfused roundings differ (random
//     floats), plus -0, infinities, NaN and subnormals;
//   - MomentumUpdateF32: out of place, in place (out == k) and with k its own q;
// and that no store lands outside the outputs and no float4 access is misaligned.
// Build and run (the emu-sources line is what test/cuda-emu/emu.test.ts adds):
//   g++ -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -I native -x c++
//     test/cuda-emu/sgd_emu_test.cc native/cuda/sgd.cu <emu-sources> -o /tmp/sgd_emu
//   /tmp/sgd_emu
// emu-sources: native/cpu/sgd.cc native/core/threadpool.cc native/core/status.cc native/core/cpu_features.cc native/core/host_allocator.cc
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "cuda/sgd.cuh"
#include "emu_check.h"
#include "float_buffers.h"
#include "ops/sgd.h"

namespace {

using emu_check::ExpectBits;
using emu_check::FloatBuf;
using emu_check::Report;
using emu_check::Rng;
namespace cu = sslinv::cuda;

const cudaStream_t kStream = nullptr;

// Random floats over many binades, with special values sprinkled in.
void FillValues(Rng& rng, float* v, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng.Next() % 64;
    v[i] = r == 0   ? -0.f
           : r == 1 ? std::numeric_limits<float>::infinity()
           : r == 2 ? std::numeric_limits<float>::quiet_NaN()
           : r == 3 ? std::numeric_limits<float>::denorm_min() * static_cast<float>(1 + rng.Next() % 1000)
                    : scale * rng.Uniform(-1.f, 1.f) * std::ldexp(1.f, static_cast<int>(rng.Next() % 9) - 4);
  }
}

struct Param {
  std::unique_ptr<FloatBuf> p, g, buf;  // buf: this step's input buffer (null before the first)
};

std::string Describe(const sslinv::SgdParams& p) {
  char b[160];
  std::snprintf(b, sizeof b, "lr %g momentum %g wd %g dampening %g%s", p.lr, p.momentum, p.weight_decay, p.dampening,
                p.nesterov ? " nesterov" : "");
  return b;
}

// Three steps of one configuration over tensors of the given sizes and offsets, out of place on the
// device against SgdStepF32 and in place on the device against SgdStepInPlaceF32.
void TestSgdConfig(const sslinv::SgdParams& sp, const std::vector<int64_t>& sizes, int cap, Rng& rng) {
  const size_t count = sizes.size();
  const bool mom = sp.momentum != 0;
  std::vector<Param> dev(count), cpu(count);
  std::vector<std::unique_ptr<FloatBuf>> inplace_p(count), inplace_buf(count);
  for (size_t i = 0; i < count; ++i) {
    const int64_t n = sizes[i];
    const int off = static_cast<int>(i % 3 == 2 ? i % 4 : 0);  // some tensors misaligned
    dev[i].p = std::make_unique<FloatBuf>(n, off);
    FillValues(rng, dev[i].p->data(), n, 1.f);
    cpu[i].p = std::make_unique<FloatBuf>(n);
    std::memcpy(cpu[i].p->data(), dev[i].p->data(), n * 4);
    inplace_p[i] = std::make_unique<FloatBuf>(n, off);
    std::memcpy(inplace_p[i]->data(), dev[i].p->data(), n * 4);
    if (mom) inplace_buf[i] = std::make_unique<FloatBuf>(n, (off + 1) % 4);
  }
  const std::string name = "sgd " + Describe(sp) + " cap " + std::to_string(cap) + ", " + std::to_string(count) + " tensors";
  bool bits_ok = true, inplace_ok = true, guards_ok = true;
  std::string first_bad;
  for (int step = 0; step < 3; ++step) {
    std::vector<std::unique_ptr<FloatBuf>> grads(count), po(count), bo(count), rpo(count), rbo(count);
    std::vector<cu::SgdDeviceTensor> ts(count), ip(count);
    for (size_t i = 0; i < count; ++i) {
      const int64_t n = sizes[i];
      grads[i] = std::make_unique<FloatBuf>(n, static_cast<int>((i + step) % 2));
      FillValues(rng, grads[i]->data(), n, 0.1f);
      po[i] = std::make_unique<FloatBuf>(n, static_cast<int>(i % 2));
      bo[i] = std::make_unique<FloatBuf>(n);
      ts[i] = {dev[i].p->data(), grads[i]->data(), dev[i].buf ? dev[i].buf->data() : nullptr, po[i]->data(),
               mom ? bo[i]->data() : nullptr, n};
      ip[i] = {inplace_p[i]->data(), grads[i]->data(), step > 0 && mom ? inplace_buf[i]->data() : nullptr,
               inplace_p[i]->data(), mom ? inplace_buf[i]->data() : nullptr, n};
    }
    if (cu::SgdStepF32(sp, ts.data(), count, kStream, cap) != cudaSuccess ||
        cu::SgdStepF32(sp, ip.data(), count, kStream, cap) != cudaSuccess) {
      Report(false, name + " launch");
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      const int64_t n = sizes[i];
      rpo[i] = std::make_unique<FloatBuf>(n);
      rbo[i] = std::make_unique<FloatBuf>(n);
      const sslinv::Status st =
          sslinv::SgdStepF32(sp, cpu[i].p->data(), grads[i]->data(), cpu[i].buf ? cpu[i].buf->data() : nullptr,
                             rpo[i]->data(), mom ? rbo[i]->data() : nullptr, n);
      if (!st.ok()) {
        Report(false, name + ": CPU op", st.message());
        return;
      }
      const bool same_p = emu_check::SameBitsOrNaN(po[i]->data(), rpo[i]->data(), n);
      const bool same_b = !mom || emu_check::SameBitsOrNaN(bo[i]->data(), rbo[i]->data(), n);
      if ((!same_p || !same_b) && bits_ok) {
        bits_ok = false;
        first_bad = "step " + std::to_string(step) + " tensor " + std::to_string(i) + (same_p ? " buffer" : " param");
      }
      if (!emu_check::SameBitsOrNaN(inplace_p[i]->data(), rpo[i]->data(), n) ||
          (mom && !emu_check::SameBitsOrNaN(inplace_buf[i]->data(), rbo[i]->data(), n))) {
        inplace_ok = false;
      }
      guards_ok = guards_ok && po[i]->GuardsIntact() && bo[i]->GuardsIntact() && inplace_p[i]->GuardsIntact() &&
                  (!mom || inplace_buf[i]->GuardsIntact());
      // The next step continues from the new values on both sides.
      dev[i].p = std::move(po[i]);
      cpu[i].p = std::move(rpo[i]);
      if (mom) {
        dev[i].buf = std::move(bo[i]);
        cpu[i].buf = std::move(rbo[i]);
      }
    }
  }
  Report(bits_ok, name + ": 3 steps bit-identical to the CPU op", first_bad);
  Report(inplace_ok, name + ": 3 steps in place (param_out == param, buf_out == buf) bit-identical to the CPU op");
  Report(guards_ok, name + ": no store outside the outputs");
}

void TestSgd() {
  Rng rng(91);
  const std::vector<int64_t> sizes = {0, 1, 3, 4, 5, 7, 64, 1000, 4099};
  std::vector<sslinv::SgdParams> configs;
  auto add = [&](double lr, double mom, double wd, double damp, bool nest) {
    sslinv::SgdParams p;
    p.lr = lr, p.momentum = mom, p.weight_decay = wd, p.dampening = damp, p.nesterov = nest;
    configs.push_back(p);
  };
  add(0.03, 0.9, 1e-4, 0, false);   // MoCo v2
  add(0.03, 0, 1e-4, 0, false);     // no momentum
  add(0.5, 0.9, 0, 0, false);       // no weight decay
  add(0.1, 0.9, 5e-4, 0.1, false);  // dampening
  add(0.1, 0.9, 5e-4, 0, true);     // Nesterov
  add(0.03, 0.9, 1e-50, 0, false);  // a decay that rounds to float 0 but is not 0
  for (const auto& p : configs) TestSgdConfig(p, sizes, 0, rng);
  TestSgdConfig(configs[0], sizes, 1, rng);  // one block per tensor: the stride loops wrap
  // 70 tensors: three launches of up to 32.
  std::vector<int64_t> many;
  for (int i = 0; i < 70; ++i) many.push_back(1 + (i * 37) % 300);
  TestSgdConfig(configs[0], many, 2, rng);
  TestSgdConfig(configs[4], many, 0, rng);

  // A missing buffer with momentum is refused.
  FloatBuf p(4), g(4), o(4);
  cu::SgdDeviceTensor t{p.data(), g.data(), nullptr, o.data(), nullptr, 4};
  Report(cu::SgdStepF32(configs[0], &t, 1, kStream) == cudaErrorInvalidValue && o.GuardsIntact() && std::isnan(o[0]),
         "sgd refuses momentum without a buffer output, without launching");
}

void TestMomentum() {
  Rng rng(92);
  const std::vector<int64_t> sizes = {0, 1, 3, 4, 5, 64, 1001, 4099};
  for (double m : {0.999, 0.5, 0.0, 1.0, 0.99}) {
    for (int cap : {0, 1}) {
      const size_t count = sizes.size();
      std::vector<std::unique_ptr<FloatBuf>> k(count), q(count), out(count), kin(count), self(count);
      std::vector<cu::MomentumDeviceTensor> ts(count), ip(count), own(count);
      for (size_t i = 0; i < count; ++i) {
        const int64_t n = sizes[i];
        const int off = static_cast<int>(i % 4);
        k[i] = std::make_unique<FloatBuf>(n, off);
        q[i] = std::make_unique<FloatBuf>(n, i % 2 ? off : 0);
        out[i] = std::make_unique<FloatBuf>(n, off);
        kin[i] = std::make_unique<FloatBuf>(n, off);
        self[i] = std::make_unique<FloatBuf>(n, off);
        FillValues(rng, k[i]->data(), n, 1.f);
        FillValues(rng, q[i]->data(), n, 1.f);
        std::memcpy(kin[i]->data(), k[i]->data(), n * 4);
        std::memcpy(self[i]->data(), k[i]->data(), n * 4);
        ts[i] = {k[i]->data(), q[i]->data(), out[i]->data(), n};
        ip[i] = {kin[i]->data(), q[i]->data(), kin[i]->data(), n};
        own[i] = {self[i]->data(), self[i]->data(), self[i]->data(), n};
      }
      const std::string name = "momentum update m=" + std::to_string(m) + " cap " + std::to_string(cap);
      if (cu::MomentumUpdateF32(ts.data(), count, m, kStream, cap) != cudaSuccess ||
          cu::MomentumUpdateF32(ip.data(), count, m, kStream, cap) != cudaSuccess ||
          cu::MomentumUpdateF32(own.data(), count, m, kStream, cap) != cudaSuccess) {
        Report(false, name + " launch");
        continue;
      }
      bool ok = true, ok_ip = true, ok_own = true, guards = true;
      for (size_t i = 0; i < count; ++i) {
        const int64_t n = sizes[i];
        std::vector<float> ref(n), ref_own(n);
        sslinv::MomentumUpdateF32(k[i]->data(), q[i]->data(), m, ref.data(), n);
        sslinv::MomentumUpdateF32(k[i]->data(), k[i]->data(), m, ref_own.data(), n);
        ok = ok && emu_check::SameBitsOrNaN(out[i]->data(), ref.data(), n);
        ok_ip = ok_ip && emu_check::SameBitsOrNaN(kin[i]->data(), ref.data(), n);
        ok_own = ok_own && emu_check::SameBitsOrNaN(self[i]->data(), ref_own.data(), n);
        guards = guards && out[i]->GuardsIntact() && kin[i]->GuardsIntact() && self[i]->GuardsIntact();
      }
      Report(ok, name + ": bit-identical to the CPU op");
      Report(ok_ip, name + ": in place (out == k) bit-identical");
      Report(ok_own, name + ": k its own q, in place, bit-identical");
      Report(guards, name + ": no store outside the outputs");
    }
  }
  FloatBuf k(4), o(4);
  cu::MomentumDeviceTensor t{k.data(), k.data(), o.data(), 4};
  Report(cu::MomentumUpdateF32(&t, 1, 1.5, kStream) == cudaErrorInvalidValue && o.GuardsIntact(),
         "momentum update refuses m outside [0, 1]");
}

}  // namespace

int main() {
  TestSgd();
  TestMomentum();
  const long long misaligned = sslinv::cuda::detail::EmuMisalignedAccesses().load();
  Report(misaligned == 0, "no misaligned vector access (would fault on a GPU)",
         std::to_string(misaligned) + " misaligned accesses");
  return emu_check::Finish();
}
