// Emulation test of the convolution's run-time tuning (native/cuda/conv_autotune.cu) with synthetic
// candidate kernels whose speed and bits are known: a slow default, a fast one with the same bits, one
// that differs in one word, one whose launch is refused, one slower than the default. It checks what
// is chosen, what is left out and why, that the result is always the default kernel's bits, that a
// tuned problem launches only its chosen kernel, that problems are keyed apart, the switch, and the
// error paths (default kernel failing, no scratch to spare). Speeds differ by 20x or more, so the emulator's
// wall-clock events order them reliably.
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/conv_autotune.cuh"
#include "emu_check.h"

namespace {

using namespace sslinv::cuda;
using emu_check::Report;

constexpr int kWords = 2048;

// y[i] = i * 2654435761 (the same for every "same bits" kernel); `work` iterations of busy
// arithmetic per word make a kernel slower without changing what it writes; `flip` >= 0 flips one bit of
// that word.
__global__ void PatternKernel(uint32_t* y, int n, int work, int flip) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  uint32_t v = static_cast<uint32_t>(i) * 2654435761u, sink = v;
  for (int j = 0; j < work; ++j) {
    sink = sink * 1664525u + 1013904223u;
    asm volatile("" : "+r"(sink));  // keeps the busy work (host-only program)
  }
  y[i] = v ^ (i == flip ? 1u : 0u);
}

struct Launches {
  int count[8] = {};
};

ConvCandidate Pattern(ConvKernel kernel, int work, int flip, Launches* l) {
  return {kernel, [=](void* y) {
            ++l->count[static_cast<int>(kernel)];
            SSLINV_LAUNCH(PatternKernel, dim3((kWords + 255) / 256), dim3(256), 0, nullptr, static_cast<uint32_t*>(y), kWords, work, flip);
            return cudaGetLastError();
          }};
}

ConvCandidate Refused(ConvKernel kernel, Launches* l) {
  return {kernel, [=](void*) {
            ++l->count[static_cast<int>(kernel)];
            return cudaErrorInvalidConfiguration;
          }};
}

ConvTuneKey Key(int n) {
  ConvTuneKey k;
  k.family = ConvFamily::kFp32;
  k.shape = Conv2dShape{n, 8, 8, 16, 32, 3, 3, 1, 1, 1, 1};
  k.bias = true;
  k.relu = true;
  return k;
}

bool IsPattern(const std::vector<uint32_t>& y) {
  for (int i = 0; i < kWords; ++i) {
    if (y[static_cast<size_t>(i)] != static_cast<uint32_t>(i) * 2654435761u) return false;
  }
  return true;
}

const ConvTuneRecord* Find(const std::vector<ConvTuneRecord>& records, const ConvTuneKey& key) {
  for (const ConvTuneRecord& r : records) {
    if (!(r.key < key) && !(key < r.key)) return &r;
  }
  return nullptr;
}

}  // namespace

int main() {
  std::vector<uint32_t> y(kWords), scratch(ConvTuneScratchBytes(kWords * 4) / 4);
  int scratch_calls = 0;
  auto give_scratch = [&]() -> void* { ++scratch_calls; return scratch.data(); };
  const size_t y_bytes = kWords * 4;

  Report(!ConvAutotuneEnabled(), "off by default in the emulated build (timings mean nothing there)");
  {
    Launches l;
    std::vector<ConvCandidate> c{Pattern(ConvKernel::kSimtBk8, 200, -1, &l), Pattern(ConvKernel::kSimtBk16, 0, -1, &l)};
    c[0].kernel = ConvKernel::kSimtBk8;
    const ConvTuneKey key = Key(1);
    const cudaError_t err = RunConvAuto(key, c, y.data(), y_bytes, give_scratch, nullptr);
    Report(err == cudaSuccess && IsPattern(y) && l.count[0] == 1 && l.count[1] == 0 && scratch_calls == 0 && ConvTuneRecords().empty(),
           "switched off: 'auto' launches the default kernel once, tunes nothing");
  }

  SetConvAutotuneEnabled(true);
  Report(ConvAutotuneEnabled(), "SetConvAutotuneEnabled switches it on");

  // The main case: slow default, fast same bits, one differing word, a refused launch, a slower one.
  Launches l;
  const std::vector<ConvCandidate> cands{
      Pattern(ConvKernel::kSimtBk8, 400, -1, &l),        // default: slow
      Pattern(ConvKernel::kSimtBk16, 0, -1, &l),         // same bits, 400x less work
      Pattern(ConvKernel::kTf32Staged, 0, 77, &l),       // fast but one bit of word 77 differs
      Refused(ConvKernel::kTf32Pipelined, &l),           // launch refused
      Pattern(ConvKernel::kBf16Staged, 8000, -1, &l),    // same bits, slower than the default
  };
  const ConvTuneKey key = Key(2);
  std::fill(y.begin(), y.end(), 0u);
  cudaError_t err = RunConvAuto(key, cands, y.data(), y_bytes, give_scratch, nullptr);
  Report(err == cudaSuccess, "tuning a new problem succeeds", cudaGetErrorName(err));
  Report(IsPattern(y), "the result is the default kernel's bits (word 77 untouched by the differing candidate)");
  Report(scratch_calls == 1, "scratch is asked for once, for the new problem", std::to_string(scratch_calls));
  Report(cudaGetLastError() == cudaSuccess, "the refused launch's error is cleared");
  const std::vector<ConvTuneRecord> records = ConvTuneRecords();
  const ConvTuneRecord* r = Find(records, key);
  Report(r != nullptr && records.size() == 1, "one record, under the problem's key");
  if (r != nullptr && r->candidates.size() == 5) {
    Report(r->chosen == ConvKernel::kSimtBk16, "the fast candidate with the same bits is chosen", ConvKernelName(r->chosen));
    Report(r->candidates[0].kernel == ConvKernel::kSimtBk8 && r->candidates[0].excluded.empty() && r->candidates[0].ms > 0.f,
           "the default is timed first");
    Report(r->candidates[1].excluded.empty() && r->candidates[1].ms * 5 < r->candidates[0].ms, "the fast one is timed faster",
           std::to_string(r->candidates[1].ms) + " vs " + std::to_string(r->candidates[0].ms));
    Report(r->candidates[2].excluded == "differs from fp32 simt-bk8 in 1 of 2048 words", "one differing word leaves a candidate out",
           r->candidates[2].excluded);
    Report(r->candidates[3].excluded == "launch refused: cudaErrorInvalidConfiguration", "a refused launch leaves a candidate out",
           r->candidates[3].excluded);
    Report(r->candidates[4].excluded.empty() && r->candidates[4].ms > r->candidates[0].ms, "the slow one is timed slower");
  } else {
    Report(false, "the record lists all five candidates");
  }
  // Launches: the default 1 (the result), the others 1 (the comparison); then each admitted one
  // kConvTuneRounds x (1 untimed + kConvTuneTimedLaunches timed).
  const int timing = kConvTuneRounds * (1 + kConvTuneTimedLaunches);
  Report(l.count[0] == 1 + timing && l.count[1] == 1 + timing && l.count[2] == 1 && l.count[3] == 1 && l.count[4] == 1 + timing,
         "tuning runs each candidate once (the result, or the comparison), then times the admitted ones",
         std::to_string(l.count[0]) + " " + std::to_string(l.count[1]) + " " + std::to_string(l.count[4]));

  // Tuned: one launch of the chosen kernel, no scratch.
  Launches before = l;
  std::fill(y.begin(), y.end(), 0u);
  err = RunConvAuto(key, cands, y.data(), y_bytes, give_scratch, nullptr);
  bool only_chosen = l.count[1] == before.count[1] + 1;
  for (int k = 0; k < 8; ++k) only_chosen = only_chosen && (k == 1 || l.count[k] == before.count[k]);
  Report(err == cudaSuccess && only_chosen && scratch_calls == 1 && IsPattern(y), "a tuned problem launches its chosen kernel once, no scratch");

  // A different problem (another batch size) is tuned on its own; ties go to the default.
  Launches l2;
  const std::vector<ConvCandidate> slower{Pattern(ConvKernel::kSimtBk8, 0, -1, &l2), Pattern(ConvKernel::kSimtBk16, 400, -1, &l2)};
  const ConvTuneKey key3 = Key(3);
  err = RunConvAuto(key3, slower, y.data(), y_bytes, give_scratch, nullptr);
  const std::optional<ConvKernel> chosen3 = LookupConvTuning(key3);
  Report(err == cudaSuccess && chosen3 && *chosen3 == ConvKernel::kSimtBk8 && ConvTuneRecords().size() == 2,
         "another shape is tuned apart; a slower candidate leaves the default");
  ConvTuneKey key3b = key3;
  key3b.candidates = ConvKernelMask(slower);
  Report(!LookupConvTuning(key3b), "the candidate mask is part of the key");
  key3b = key3;
  key3b.residual = true;
  Report(!LookupConvTuning(key3b), "the epilogue is part of the key");

  // A single candidate is not tuned.
  Launches l3;
  err = RunConvAuto(Key(4), {Pattern(ConvKernel::kSimtBk8, 0, -1, &l3)}, y.data(), y_bytes, give_scratch, nullptr);
  Report(err == cudaSuccess && l3.count[0] == 1 && !LookupConvTuning(Key(4)), "one candidate: launched once, nothing recorded");

  // Errors: the default kernel's error is returned and nothing stored; no scratch is out of memory.
  Launches l4;
  err = RunConvAuto(Key(5), {Refused(ConvKernel::kSimtBk8, &l4), Pattern(ConvKernel::kSimtBk16, 0, -1, &l4)}, y.data(), y_bytes,
                    give_scratch, nullptr);
  Report(err == cudaErrorInvalidConfiguration && !LookupConvTuning(Key(5)) && l4.count[1] == 0,
         "the default kernel's launch error is returned, nothing tuned or stored");
  Launches l5;
  std::fill(y.begin(), y.end(), 0u);
  err = RunConvAuto(Key(6), {Pattern(ConvKernel::kSimtBk8, 0, -1, &l5), Pattern(ConvKernel::kSimtBk16, 0, -1, &l5)}, y.data(), y_bytes,
                    [] { return static_cast<void*>(nullptr); }, nullptr);
  Report(err == cudaSuccess && IsPattern(y) && l5.count[0] == 1 && l5.count[1] == 0 && !LookupConvTuning(Key(6)),
         "no scratch to spare: the default kernel runs once, the problem stays untuned");
  err = TuneConv(Key(7), cands, y.data(), 4 * kWords - 2, scratch.data(), nullptr);
  Report(err == cudaErrorInvalidValue, "an output size that is not whole words is refused");

  ClearConvTuning();
  Report(ConvTuneRecords().empty() && !LookupConvTuning(key), "ClearConvTuning forgets every problem");
  Report(SetConvAutotuneEnabled(false) && !ConvAutotuneEnabled(), "SetConvAutotuneEnabled returns the previous setting");
  return emu_check::Failures() == 0 ? 0 : 1;
}
