// Emulation test of the streaming covariance kernels (native/cuda/covariance.cu) against a float64
// two-pass reference computed here: d odd and not a multiple of the 128-wide tile (37, 130), the
// vector-load path with a partial tile (136), an unaligned input (scalar path), several row
// sub-chunks, data with a large mean (N(3, 1) and N(100, 1), where the uncentred fp32 formula
// fails), two chunks merged by Chan's rule against one pass, exact symmetry, run-to-run
// determinism and argument checks.
//
// The same checks run the 3xTF32 SYRK (covariance_tf32x3.cu: cp.async pipeline, tensor-core MMAs)
// where it applies (d % 4 == 0, aligned input), with cases whose sub-chunks end inside a 16-row tile.
//
// emu-sources: native/cuda/covariance_tf32x3.cu
//
// Bounds (docs/KERNELS.md section 6): m2_ij within 1e-5 * sum_r |x_ri - mu_i| |x_rj - mu_j| (the
// magnitude of the centred products, so cancellation cannot cause false failures), relative
// Frobenius error <= 1e-5, mean within 1e-12 * sum_r |x_ri| / rows.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/covariance.cuh"
#include "emu_check.h"

namespace {

using sslinv::cuda::CovarianceSyrk;
using sslinv::cuda::CovarianceWorkspaceBytes;
using sslinv::cuda::LaunchCovarianceAccumulate;

std::vector<float> Gaussian(int64_t rows, int d, double mu, double sigma, uint64_t seed) {
  emu_check::Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows) * d);
  for (size_t i = 0; i < x.size(); ++i) {
    const double u1 = 1.0 - rng.Uniform(0.f, 1.f), u2 = rng.Uniform(0.f, 1.f);
    // Per-column offsets too, so the columns' means differ.
    const double col_shift = 0.25 * static_cast<double>(i % d) / d;
    x[i] = static_cast<float>(mu + col_shift + sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  return x;
}

struct Stats {
  int64_t count = 0;
  std::vector<double> mean, m2;
  int err = 0;
};

// Runs the launcher on each chunk in turn. offset_floats shifts the input inside a larger buffer
// (misalignment); the buffer's tail is NaN, so a read past the chunk shows up.
Stats Accumulate(const std::vector<std::vector<float>>& chunks, int d, int split_rows, int offset_floats = 0,
                 CovarianceSyrk syrk = CovarianceSyrk::kAuto) {
  Stats st;
  st.mean.assign(d, std::nan(""));  // ignored when count is 0
  st.m2.assign(static_cast<size_t>(d) * d, std::nan(""));
  for (const auto& x : chunks) {
    const int64_t rows = static_cast<int64_t>(x.size() / d);
    std::vector<float> buf(offset_floats + x.size() + 256, std::nanf(""));
    std::memcpy(buf.data() + offset_floats, x.data(), x.size() * sizeof(float));
    const size_t bytes = CovarianceWorkspaceBytes(rows, d, split_rows);
    void* ws = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    std::memset(ws, 0xff, bytes);
    const int err = LaunchCovarianceAccumulate(buf.data() + offset_floats, rows, d, st.count, st.mean.data(),
                                               st.m2.data(), ws, nullptr, split_rows, syrk);
    std::free(ws);
    if (err != 0) st.err = err;
    st.count += rows;
  }
  return st;
}

void Check(const std::string& name, const std::vector<std::vector<float>>& chunks, int d, const Stats& st) {
  emu_check::Report(st.err == 0, name + ": launches return cudaSuccess", "error " + std::to_string(st.err));
  std::vector<float> x;
  for (const auto& c : chunks) x.insert(x.end(), c.begin(), c.end());
  const int64_t n = static_cast<int64_t>(x.size() / d);
  std::vector<double> mu(d, 0.0), mu_scale(d, 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int c = 0; c < d; ++c) {
      mu[c] += x[r * d + c];
      mu_scale[c] += std::fabs(double(x[r * d + c]));
    }
  for (int c = 0; c < d; ++c) {
    mu[c] /= n;
    mu_scale[c] /= n;
  }
  std::vector<double> ref(static_cast<size_t>(d) * d, 0.0), mag(ref.size(), 0.0), xc(d);
  for (int64_t r = 0; r < n; ++r) {
    for (int c = 0; c < d; ++c) xc[c] = double(x[r * d + c]) - mu[c];
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) {
        ref[size_t(i) * d + j] += xc[i] * xc[j];
        mag[size_t(i) * d + j] += std::fabs(xc[i] * xc[j]);
      }
  }
  // The launcher's outputs are fp64; ExpectClose takes float outputs, so compare in doubles here.
  auto close = [&](const std::string& what, const std::vector<double>& out, const std::vector<double>& want,
                   const std::vector<double>& scale, double rtol) {
    double worst = 0;
    size_t wi = 0;
    bool ok = true;
    for (size_t i = 0; i < out.size(); ++i) {
      const double err = std::fabs(out[i] - want[i]);
      if (!(err <= rtol * scale[i])) ok = false;
      const double rel = err / (scale[i] > 0 ? scale[i] : 1.0);
      if (!std::isnan(worst) && !(rel <= worst)) {  // the first NaN stays the worst
        worst = rel;
        wi = i;
      }
    }
    char buf[200];
    std::snprintf(buf, sizeof buf, "worst relative error %.3g at %zu (out %.12g, ref %.12g)", worst, wi, out[wi], want[wi]);
    emu_check::Report(ok, name + ": " + what + " (" + buf + ")", buf);
  };
  close("mean", st.mean, mu, mu_scale, 1e-12);
  close("m2 elementwise", st.m2, ref, mag, 1e-5);
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (st.m2[i] - ref[i]) * (st.m2[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  const double fro = std::sqrt(num / den);
  char buf[100];
  std::snprintf(buf, sizeof buf, "relative Frobenius error %.3g", fro);
  emu_check::Report(fro <= 1e-5, name + ": m2 " + buf, buf);
  bool sym = true;
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < i; ++j)
      if (std::memcmp(&st.m2[size_t(i) * d + j], &st.m2[size_t(j) * d + i], sizeof(double)) != 0) sym = false;
  emu_check::Report(sym, name + ": m2 exactly symmetric");
}

// Reports ||a - b|| / ||b|| (Frobenius) <= 1e-5 under `what`.
void ExpectFrobeniusClose(const std::string& what, const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  char buf[100];
  std::snprintf(buf, sizeof buf, "relative Frobenius difference %.3g", std::sqrt(num / den));
  emu_check::Report(std::sqrt(num / den) <= 1e-5, what + ": " + buf, buf);
}

std::vector<float> Rows(const std::vector<float>& x, int d, int64_t r0, int64_t r1) {
  return std::vector<float>(x.begin() + r0 * d, x.begin() + r1 * d);
}

}  // namespace

int main() {
  {
    const int d = 37;
    const auto x = Gaussian(1000, d, 3.0, 1.0, 1);
    Check("rows 1000 d37 N(3,1), one sub-chunk", {x}, d, Accumulate({x}, d, 0));
  }
  {
    const int d = 130;
    const auto x = Gaussian(777, d, 3.0, 1.0, 2);
    Check("rows 777 d130 N(3,1), 4 sub-chunks of <= 256 rows", {x}, d, Accumulate({x}, d, 256));
  }
  {
    const int d = 136;  // d % 4 == 0: the float4 loader, with a partial second column block
    const auto x = Gaussian(600, d, 100.0, 1.0, 3);
    Check("rows 600 d136 N(100,1), vector loads, 3 sub-chunks", {x}, d, Accumulate({x}, d, 200));
  }
  {
    const int d = 64;  // d % 4 == 0 but the input is misaligned: the scalar loader
    const auto x = Gaussian(301, d, 3.0, 2.0, 4);
    Check("rows 301 d64 N(3,2), misaligned input", {x}, d, Accumulate({x}, d, 100, 1));
  }
  {
    const int d = 130;
    const auto x = Gaussian(833, d, 3.0, 1.0, 5);
    const std::vector<std::vector<float>> two = {Rows(x, d, 0, 500), Rows(x, d, 500, 833)};
    const Stats merged = Accumulate(two, d, 128);
    Check("rows 500 + 333 d130 N(3,1), two chunks merged", two, d, merged);
    const std::vector<std::vector<float>> three = {Rows(x, d, 0, 7), Rows(x, d, 7, 700), Rows(x, d, 700, 833)};
    Check("rows 7 + 693 + 133 d130, three chunks merged", three, d, Accumulate(three, d, 0));
    ExpectFrobeniusClose("two chunks merged vs one pass", merged.m2, Accumulate({x}, d, 0).m2);
  }
  {
    const int d = 130;
    const auto x = Gaussian(400, d, 3.0, 1.0, 6);
    const std::vector<std::vector<float>> two = {Rows(x, d, 0, 250), Rows(x, d, 250, 400)};
    const Stats a = Accumulate(two, d, 100), b = Accumulate(two, d, 100);
    const bool same = std::memcmp(a.m2.data(), b.m2.data(), a.m2.size() * sizeof(double)) == 0 &&
                      std::memcmp(a.mean.data(), b.mean.data(), a.mean.size() * sizeof(double)) == 0;
    emu_check::Report(same, "d130 two chunks: two runs bit-identical");
  }
  // The SIMT SYRK at 16 rows per k-slice: the same bits as at 8 (each output's products summed over
  // the rows in the same order), on sub-chunks that end mid-slice, several tiles and chunks, and the
  // inputs it hands to BK 8 (d % 4 != 0, misaligned rows).
  {
    const CovarianceSyrk bk16 = CovarianceSyrk::kSimtBk16, simt = CovarianceSyrk::kSimt;
    const auto same_bits = [](const Stats& a, const Stats& b) {
      return a.err == 0 && b.err == 0 && std::memcmp(a.m2.data(), b.m2.data(), a.m2.size() * sizeof(double)) == 0 &&
             std::memcmp(a.mean.data(), b.mean.data(), a.mean.size() * sizeof(double)) == 0;
    };
    const int d = 260;
    const auto x = Gaussian(301, d, 3.0, 1.0, 12);
    const std::vector<std::vector<float>> two = {Rows(x, d, 0, 137), Rows(x, d, 137, 301)};
    const Stats a = Accumulate(two, d, 57, 0, bk16), b = Accumulate(two, d, 57, 0, simt);
    emu_check::Report(same_bits(a, b), "simt-bk16: rows 137 + 164 d260 in sub-chunks of <= 57 rows (6 tiles): the bits of simt");
    Check("simt-bk16: rows 137 + 164 d260 against float64", two, d, a);
    const Stats c = Accumulate({x}, d, 0, 0, bk16), e = Accumulate({x}, d, 0, 0, simt);
    emu_check::Report(same_bits(c, e), "simt-bk16: rows 301 d260, one sub-chunk: the bits of simt");
    const int d_odd = 130;
    const auto xo = Gaussian(90, d_odd, 3.0, 1.0, 13);
    emu_check::Report(same_bits(Accumulate({xo}, d_odd, 0, 0, bk16), Accumulate({xo}, d_odd, 0, 0, simt)),
                      "simt-bk16 on d % 4 != 0 runs BK 8: the bits of simt");
    const auto xm = Gaussian(90, 64, 3.0, 1.0, 14);
    emu_check::Report(same_bits(Accumulate({xm}, 64, 0, 1, bk16), Accumulate({xm}, 64, 0, 1, simt)),
                      "simt-bk16 on misaligned rows runs BK 8: the bits of simt");
  }
  // 3xTF32 SYRK.
  const CovarianceSyrk tc = CovarianceSyrk::kTf32x3;
  {
    const int d = 136;
    const auto x = Gaussian(232, d, 100.0, 1.0, 3);
    Check("3xtf32: rows 232 d136 N(100,1), 3 sub-chunks of <= 100 rows (tiles end mid-sub-chunk)", {x}, d,
          Accumulate({x}, d, 100, 0, tc));
  }
  {
    const int d = 132;
    const auto x = Gaussian(300, d, 3.0, 1.0, 7);
    Check("3xtf32: rows 300 d132 N(3,1), 3 sub-chunks, partial column tile", {x}, d, Accumulate({x}, d, 128, 0, tc));
  }
  {
    const int d = 256;
    const auto x = Gaussian(167, d, 3.0, 2.0, 8);
    const std::vector<std::vector<float>> two = {Rows(x, d, 0, 100), Rows(x, d, 100, 167)};
    const Stats merged = Accumulate(two, d, 0, 0, tc);
    Check("3xtf32: rows 100 + 67 d256 N(3,2), two chunks merged (3 tiles, 1 off-diagonal)", two, d, merged);
    const Stats simt = Accumulate(two, d, 0, 0, CovarianceSyrk::kSimt);
    ExpectFrobeniusClose("3xtf32 vs the SIMT SYRK", merged.m2, simt.m2);
    const bool mean_same = std::memcmp(merged.mean.data(), simt.mean.data(), simt.mean.size() * sizeof(double)) == 0;
    emu_check::Report(mean_same, "3xtf32 leaves the means bit-identical (they do not use the SYRK)");
  }
  {
    // One full default sub-chunk (4,096 rows): 512 k8 steps per accumulator. The emulated MMAs round
    // toward zero as tensor cores do, so chaining every MMA of a sub-chunk into one fp32 accumulator
    // biases the diagonal (sums of squares) by about 3e-5; the kernel sums each k8 step's three
    // MMAs into fresh registers and adds those to the accumulators with round-to-nearest.
    const int d = 128;
    const auto x = Gaussian(4096, d, 3.0, 1.0, 15);
    Check("3xtf32: rows 4096 d128 N(3,1), one default sub-chunk of 512 k8 steps", {x}, d, Accumulate({x}, d, 0, 0, tc));
  }
  {
    // Input it cannot take is refused before any kernel runs: the statistics stay as they were.
    const int d = 130;
    const auto x = Gaussian(50, d, 3.0, 1.0, 9);
    const Stats odd = Accumulate({x}, d, 0, 0, tc);
    const int d2 = 64;
    const auto x2 = Gaussian(50, d2, 3.0, 1.0, 10);
    const Stats mis = Accumulate({x2}, d2, 0, 1, tc);
    emu_check::Report(odd.err != 0 && std::isnan(odd.mean[0]) && mis.err != 0 && std::isnan(mis.mean[0]),
                      "3xtf32 refuses d % 4 != 0 and misaligned input, writing nothing");
  }
  {
    double mean = 0, m2 = 0;
    float x = 0;
    std::vector<unsigned char> ws(4096);
    const int e0 = LaunchCovarianceAccumulate(&x, 0, 1, 0, &mean, &m2, ws.data(), nullptr);
    const int e1 = LaunchCovarianceAccumulate(&x, 1, 0, 0, &mean, &m2, ws.data(), nullptr);
    const int e2 = LaunchCovarianceAccumulate(&x, 1, 1, -1, &mean, &m2, ws.data(), nullptr);
    emu_check::Report(e0 == 0 && mean == 0 && e1 != 0 && e2 != 0, "rows 0 is a no-op; d 0 and count < 0 are rejected");
  }
  {
    // A workspace that is not 16-byte aligned (its vector stores would fault on a GPU), and d past the
    // merge grid's 65,535 tiles (d > 46,208), are refused before anything is written.
    const int d = 8;
    const auto x = Gaussian(20, d, 3.0, 1.0, 16);
    std::vector<double> mean(d, 7.0), m2(size_t(d) * d, 7.0);
    const size_t bytes = CovarianceWorkspaceBytes(20, d);
    unsigned char* ws = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + 256 + 255) / 256 * 256));
    const int mis = LaunchCovarianceAccumulate(x.data(), 20, d, 0, mean.data(), m2.data(), ws + 8, nullptr);
    const int ok = LaunchCovarianceAccumulate(x.data(), 20, d, 0, mean.data(), m2.data(), ws, nullptr);
    std::free(ws);
    emu_check::Report(mis != 0 && ok == 0, "a workspace not 16-byte aligned is refused; aligned, the same call runs");
    const int big = 46209;
    std::vector<float> row(big, 1.f);
    double mean1 = 7.0, m21 = 7.0;
    alignas(256) static unsigned char small_ws[256];
    const int e = LaunchCovarianceAccumulate(row.data(), 1, big, 0, &mean1, &m21, small_ws, nullptr);
    emu_check::Report(e != 0 && mean1 == 7.0 && m21 == 7.0, "d 46,209 (65,703 merge tiles) is refused, nothing written");
  }
  return emu_check::Finish();
}
