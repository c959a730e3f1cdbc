// Run-time tuning of the convolution's 'auto' (see conv_autotune.cuh): the table of tuned problems,
// the device-side comparison of a candidate's output with the default's, and the event timing.
#include "cuda/conv_autotune.cuh"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "cuda/kernel_util.cuh"

namespace sslinv::cuda {

namespace {

// Counts the 32-bit words where a and b differ into *count (grid-stride; one atomic per block).
__global__ void CountUnequalWordsKernel(const uint32_t* __restrict__ a, const uint32_t* __restrict__ b, int64_t n,
                                        unsigned long long* count) {
  __shared__ unsigned block_count;
  if (threadIdx.x == 0) block_count = 0;
  __syncthreads();
  unsigned mine = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) mine += a[i] != b[i];
  if (mine) atomicAdd(&block_count, mine);
  __syncthreads();
  if (threadIdx.x == 0 && block_count) atomicAdd(count, static_cast<unsigned long long>(block_count));
}

// The words of `bytes` (a multiple of 4) where a and b differ, counted on the device; the counter
// lives in `counter` (device memory, 8 bytes).
cudaError_t CountUnequalWords(const void* a, const void* b, size_t bytes, unsigned long long* counter, unsigned long long* host,
                              cudaStream_t stream) {
  cudaError_t err = cudaMemsetAsync(counter, 0, sizeof(unsigned long long), stream);
  if (err != cudaSuccess) return err;
  const int64_t n = static_cast<int64_t>(bytes / 4);
  SSLINV_LAUNCH(CountUnequalWordsKernel, detail::GridFor(n, detail::kThreads, 0), detail::kThreads, 0, stream,
                static_cast<const uint32_t*>(a), static_cast<const uint32_t*>(b), n, counter);
  err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaMemcpyAsync(host, counter, sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  return err;
}

// Milliseconds per launch of `c` into `out`: one untimed launch, then kConvTuneTimedLaunches between two
// events. The untimed launch keeps the device busy while the host queues the rest, so the events
// measure back-to-back kernels, as in a network's forward pass, rather than the host's launch latency.
cudaError_t TimeRound(const ConvCandidate& c, void* out, cudaEvent_t start, cudaEvent_t stop, cudaStream_t stream, float* ms) {
  cudaError_t err = c.launch(out);
  if (err == cudaSuccess) err = cudaEventRecord(start, stream);
  for (int i = 0; i < kConvTuneTimedLaunches && err == cudaSuccess; ++i) err = c.launch(out);
  if (err == cudaSuccess) err = cudaEventRecord(stop, stream);
  if (err == cudaSuccess) err = cudaEventSynchronize(stop);
  if (err == cudaSuccess) err = cudaEventElapsedTime(ms, start, stop);
  if (err == cudaSuccess) *ms /= static_cast<float>(kConvTuneTimedLaunches);
  return err;
}

bool DefaultEnabled() {
  const char* v = std::getenv("SSL_INV_CONV_AUTOTUNE");
  if (v != nullptr && v[0] != '\0') return v[0] != '0';
#if defined(SSLINV_REAL_CUDA_RUNTIME)
  return true;
#else
  return false;  // the emulator: timings mean nothing (tests switch it on)
#endif
}

std::atomic<bool>& Enabled() {
  static std::atomic<bool> on{DefaultEnabled()};
  return on;
}

struct Table {
  std::mutex mu;
  std::map<ConvTuneKey, ConvTuneRecord> records;
};
Table& TheTable() {
  static Table t;
  return t;
}

std::string LaunchRefused(cudaError_t err) { return std::string("launch refused: ") + cudaGetErrorName(err); }

}  // namespace

const char* ConvFamilyName(ConvFamily f) {
  switch (f) {
    case ConvFamily::kFp32: return "fp32";
    case ConvFamily::kTf32: return "tf32";
    case ConvFamily::kBf16Storage: return "bf16-storage";
  }
  return "?";
}

bool operator<(const ConvTuneKey& a, const ConvTuneKey& b) {
  const auto tie = [](const ConvTuneKey& k) {
    const Conv2dShape& s = k.shape;
    return std::make_tuple(static_cast<int>(k.family), k.device, s.n, s.h, s.w, s.c, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h,
                           s.pad_w, k.bias, k.residual, k.relu, k.candidates);
  };
  return tie(a) < tie(b);
}

bool ConvAutotuneEnabled() { return Enabled().load(); }
bool SetConvAutotuneEnabled(bool on) { return Enabled().exchange(on); }

ConvCandidateIds ConvCandidateList(const std::vector<ConvCandidate>& candidates) {
  ConvCandidateIds ids;
  ids.reserve(candidates.size());
  for (const ConvCandidate& c : candidates) ids.emplace_back(static_cast<int>(c.kernel), c.block_n);
  return ids;
}

std::optional<size_t> LookupConvTuning(const ConvTuneKey& key) {
  Table& t = TheTable();
  std::lock_guard<std::mutex> lock(t.mu);
  const auto it = t.records.find(key);
  if (it == t.records.end()) return std::nullopt;
  return it->second.chosen;
}

size_t ConvTuneScratchBytes(size_t y_bytes) {
  // The candidate's output, then the comparison counter 8-byte aligned after it.
  return (y_bytes + 7) / 8 * 8 + sizeof(unsigned long long);
}

cudaError_t TuneConv(ConvTuneKey key, const std::vector<ConvCandidate>& candidates, void* y, size_t y_bytes, void* scratch,
                     cudaStream_t stream) {
  if (candidates.empty() || y == nullptr || scratch == nullptr || y_bytes % 4 != 0) return cudaErrorInvalidValue;
  key.candidates = ConvCandidateList(candidates);
  Table& table = TheTable();
  std::lock_guard<std::mutex> lock(table.mu);
  // 1. The result: the default kernel's.
  cudaError_t err = candidates[0].launch(y);
  if (err != cudaSuccess) return err;

  ConvTuneRecord record{key, 0, {}};
  record.candidates.push_back({candidates[0].kernel, candidates[0].block_n, 0.f, ""});
  // 2. The others into scratch, each compared with y bit for bit.
  auto* counter = reinterpret_cast<unsigned long long*>(static_cast<unsigned char*>(scratch) + (y_bytes + 7) / 8 * 8);
  for (size_t i = 1; i < candidates.size(); ++i) {
    ConvCandidateTiming timing{candidates[i].kernel, candidates[i].block_n, 0.f, ""};
    // All ones first (a NaN no kernel writes), so that a candidate that leaves part of its output
    // unwritten differs there, whatever the previous candidate left in scratch.
    err = cudaMemsetAsync(scratch, 0xFF, y_bytes, stream);
    if (err != cudaSuccess) return err;
    const cudaError_t launched = candidates[i].launch(scratch);
    if (launched != cudaSuccess) {
      cudaGetLastError();  // a refused launch (configuration, resources) is not sticky: clear it
      timing.excluded = LaunchRefused(launched);
    } else {
      unsigned long long differ = 0;
      err = CountUnequalWords(y, scratch, y_bytes, counter, &differ, stream);
      if (err != cudaSuccess) return err;
      if (differ != 0) timing.excluded = "differs from " + std::string(ConvKernelName(candidates[0].kernel)) + " in " + std::to_string(differ) + " of " + std::to_string(y_bytes / 4) + " words";
    }
    record.candidates.push_back(timing);
  }

  // 3. Time the admitted ones (the default included), in interleaved rounds, min per kernel.
  cudaEvent_t start = nullptr, stop = nullptr;
  err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  for (int round = 0; round < kConvTuneRounds && err == cudaSuccess; ++round) {
    for (size_t i = 0; i < candidates.size() && err == cudaSuccess; ++i) {
      ConvCandidateTiming& timing = record.candidates[i];
      if (!timing.excluded.empty()) continue;
      float ms = 0.f;
      err = TimeRound(candidates[i], scratch, start, stop, stream, &ms);
      if (err == cudaSuccess && (round == 0 || ms < timing.ms)) timing.ms = ms;
    }
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (err != cudaSuccess) return err;

  // 4. The fastest, if it beats the default by more than kConvTuneMinGain.
  const float default_ms = record.candidates[0].ms;
  float best_ms = default_ms;
  for (size_t i = 1; i < record.candidates.size(); ++i) {
    const ConvCandidateTiming& timing = record.candidates[i];
    if (timing.excluded.empty() && timing.ms < best_ms && timing.ms < default_ms * (1.f - kConvTuneMinGain)) {
      best_ms = timing.ms;
      record.chosen = i;
    }
  }
  table.records[key] = std::move(record);
  return cudaSuccess;
}

cudaError_t RunConvAuto(ConvTuneKey key, const std::vector<ConvCandidate>& candidates, void* y, size_t y_bytes,
                        const std::function<void*()>& scratch, cudaStream_t stream) {
  if (candidates.empty()) return cudaErrorInvalidValue;
  if (candidates.size() == 1 || !ConvAutotuneEnabled()) return candidates[0].launch(y);
  // The key holds the candidates' identities, so a stored index names the same candidate here.
  key.candidates = ConvCandidateList(candidates);
  if (const std::optional<size_t> chosen = LookupConvTuning(key); chosen && *chosen < candidates.size()) {
    return candidates[*chosen].launch(y);
  }
  void* buffer = scratch();
  if (buffer == nullptr) return candidates[0].launch(y);  // no room to tune now: the default, untuned
  return TuneConv(key, candidates, y, y_bytes, buffer, stream);
}

std::vector<ConvTuneRecord> ConvTuneRecords() {
  Table& t = TheTable();
  std::lock_guard<std::mutex> lock(t.mu);
  std::vector<ConvTuneRecord> out;
  out.reserve(t.records.size());
  for (const auto& [key, record] : t.records) out.push_back(record);
  return out;
}

void ClearConvTuning() {
  Table& t = TheTable();
  std::lock_guard<std::mutex> lock(t.mu);
  t.records.clear();
}

}  // namespace sslinv::cuda
