// The MoCo v2 loss and gradient on the CPU (see ops/moco_loss.h).
#include "ops/moco_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/host_allocator.h"
#include "core/threadpool.h"
#include "ops/gemm.h"

namespace sslinv {

namespace {
constexpr int64_t kKeysPerBlock = 4096;  // a block of logits is n x 4096 floats (4 MiB at n = 256)
}

Status MocoLossForwardBackward(const float* q, const float* k_pos, const float* queue, int64_t n, int64_t d, int64_t k,
                               double temperature, float* loss, float* dq, int32_t* rank, float* row_loss) {
  if (n < 1 || d < 1 || k < 1) return InvalidArgument("mocoLoss: n, dim and K must be >= 1");
  if (!(temperature > 0)) return InvalidArgument("mocoLoss: the temperature must be > 0");
  const float inv_t = static_cast<float>(1.0 / temperature);
  const int64_t block = std::min(k, kKeysPerBlock);
  HostArray<float> s(static_cast<size_t>(n * block));
  HostArray<float> acc(static_cast<size_t>(n * d));
  if (!s || !acc) return OutOfMemory("mocoLoss: could not allocate the logits block");

  // Per query: the positive logit, the running maximum mx of the logits seen so far, the running
  // sum of exp(logit - mx) (float64), and in acc (float32, by the GEMM) the running
  // sum_j exp(logit_j - mx) queue_j. The positive starts them: mx = pos, sum = exp(0) = 1.
  std::vector<double> pos(static_cast<size_t>(n)), mx(static_cast<size_t>(n)), sum(static_cast<size_t>(n));
  std::vector<int64_t> above(static_cast<size_t>(n), 0);  // queue logits > the positive logit
  for (int64_t i = 0; i < n; ++i) {
    float dot = 0.f;
    for (int64_t c = 0; c < d; ++c) dot += q[i * d + c] * k_pos[i * d + c];
    pos[i] = static_cast<double>(dot * inv_t);
    mx[i] = pos[i];
    sum[i] = 1.0;
  }
  std::fill(acc.get(), acc.get() + n * d, 0.f);
  GemmEpilogue plain;
  GemmEpilogue accumulate;
  accumulate.accumulate = true;
  // One pass over the queue, block by block (online soft-max): the block's logits; per row, a new
  // maximum rescales the row's sum and acc; the block's exp(logit - mx) replace its logits and are
  // added into acc by a second GEMM. Rows are independent, so splitting them across threads does
  // not change a bit.
  for (int64_t j0 = 0; j0 < k; j0 += block) {
    const int64_t nb = std::min(block, k - j0);
    SSLINV_RETURN_IF_ERROR(Sgemm(n, nb, d, q, d, false, queue + j0, k, false, s.get(), nb, plain));
    ForRange(n > 1, n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        float* row = s.get() + i * nb;
        double m = mx[i];
        int64_t count = 0;
        for (int64_t j = 0; j < nb; ++j) {
          const double v = static_cast<double>(row[j] * inv_t);
          m = std::max(m, v);
          count += v > pos[i] ? 1 : 0;
        }
        above[i] += count;
        if (m > mx[i]) {
          const double r = std::exp(mx[i] - m);
          sum[i] *= r;
          const float rf = static_cast<float>(r);
          float* a = acc.get() + i * d;
          for (int64_t c = 0; c < d; ++c) a[c] *= rf;
          mx[i] = m;
        }
        double t = 0.0;
        for (int64_t j = 0; j < nb; ++j) {
          const double e = std::exp(static_cast<double>(row[j] * inv_t) - m);
          t += e;
          row[j] = static_cast<float>(e);
        }
        sum[i] += t;
      }
    });
    SSLINV_RETURN_IF_ERROR(Sgemm(n, d, nb, s.get(), nb, false, queue + j0, k, true, acc.get(), d, accumulate));
  }
  // lse = mx + log(sum); the soft-max weights are exp(logit - mx) / sum, so the queue part of
  // sum_j p_j key_j is acc / sum; dq = (acc / sum + p_pos k_pos - k_pos) / (T n).
  double total = 0.0;
  const double scale = 1.0 / (temperature * static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double lse = mx[i] + std::log(sum[i]);
    total += lse - pos[i];
    if (row_loss) row_loss[i] = static_cast<float>(lse - pos[i]);
    const double p_pos = std::exp(pos[i] - lse), inv_sum = 1.0 / sum[i];
    for (int64_t c = 0; c < d; ++c) {
      const double kp = k_pos[i * d + c];
      dq[i * d + c] = static_cast<float>((static_cast<double>(acc.get()[i * d + c]) * inv_sum + (p_pos - 1.0) * kp) * scale);
    }
  }
  *loss = static_cast<float>(total / static_cast<double>(n));
  if (rank) {
    for (int64_t i = 0; i < n; ++i) rank[i] = static_cast<int32_t>(above[i]);
  }
  return Status::Ok();
}

}  // namespace sslinv
