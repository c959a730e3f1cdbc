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
  // (n < kWords: a kernel that leaves the rest of its output unwritten)
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

ConvCandidate Pattern(ConvKernel kernel, int work, int flip, Launches* l, int block_n = 0, int words = kWords) {
  return {kernel, block_n, [=](void* y) {
            ++l->count[static_cast<int>(kernel)];
            SSLINV_LAUNCH(PatternKernel, dim3((words + 255) / 256), dim3(256), 0, nullptr, static_cast<uint32_t*>(y), words, work, flip);
            return cudaGetLastError();
          }};
}

ConvCandidate Refused(ConvKernel kernel, Launches* l) {
  return {kernel, 0, [=](void*) {
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

// The key as the tuner stores it: with the candidates' identities.
ConvTuneKey Stored(ConvTuneKey k, const std::vector<ConvCandidate>& candidates) {
  k.candidates = ConvCandidateList(candidates);
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
  const ConvTuneRecord* r = Find(records, Stored(key, cands));
  Report(r != nullptr && records.size() == 1, "one record, under the problem's key");
  if (r != nullptr && r->candidates.size() == 5) {
    Report(r->chosen == 1, "the fast candidate with the same bits is chosen", std::to_string(r->chosen));
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
  const std::optional<size_t> chosen3 = LookupConvTuning(Stored(key3, slower));
  Report(err == cudaSuccess && chosen3 && *chosen3 == 0 && ConvTuneRecords().size() == 2,
         "another shape is tuned apart; a slower candidate leaves the default");
  ConvTuneKey key3b = Stored(key3, slower);
  key3b.residual = true;
  Report(!LookupConvTuning(key3b), "the epilogue is part of the key");
  // The same kernels at other tile widths are other candidates: a list of its own, tuned apart, and
  // the width is what is chosen.
  Launches l6;
  const std::vector<ConvCandidate> widths{Pattern(ConvKernel::kBf16Wgmma, 400, -1, &l6, 256), Pattern(ConvKernel::kBf16Wgmma, 0, -1, &l6, 128)};
  err = RunConvAuto(key3, widths, y.data(), y_bytes, give_scratch, nullptr);
  const std::optional<size_t> chosen3w = LookupConvTuning(Stored(key3, widths));
  Report(err == cudaSuccess && chosen3w && *chosen3w == 1 && ConvTuneRecords().size() == 3,
         "the candidates' kernels and tile widths are part of the key; a width can be chosen");
  const std::vector<ConvTuneRecord> all = ConvTuneRecords();
  const ConvTuneRecord* rw = Find(all, Stored(key3, widths));
  Report(rw != nullptr && rw->candidates[0].block_n == 256 && rw->candidates[1].block_n == 128, "the record keeps each candidate's width");
  before = l6;
  err = RunConvAuto(key3, widths, y.data(), y_bytes, give_scratch, nullptr);
  Report(err == cudaSuccess && l6.count[static_cast<int>(ConvKernel::kBf16Wgmma)] == before.count[static_cast<int>(ConvKernel::kBf16Wgmma)] + 1,
         "and a tuned problem then launches the chosen width once");

  // A candidate that writes half its output, after one that wrote all of it into the same scratch.
  Launches l7;
  const std::vector<ConvCandidate> partial{Pattern(ConvKernel::kTf32Staged, 0, -1, &l7), Pattern(ConvKernel::kTf32Pipelined, 0, -1, &l7, 128),
                                           Pattern(ConvKernel::kTf32Pipelined, 0, -1, &l7, 64, kWords / 2)};
  err = RunConvAuto(Key(8), partial, y.data(), y_bytes, give_scratch, nullptr);
  const std::vector<ConvTuneRecord> with_partial = ConvTuneRecords();
  const ConvTuneRecord* rp = Find(with_partial, Stored(Key(8), partial));
  Report(err == cudaSuccess && rp != nullptr && rp->candidates[1].excluded.empty() &&
             rp->candidates[2].excluded == "differs from tf32 mma-staged in 1024 of 2048 words",
         "a candidate that leaves part of its output unwritten differs there (scratch is reset between candidates)",
         rp ? rp->candidates[2].excluded : "no record");

  // A single candidate is not tuned.
  Launches l3;
  const std::vector<ConvCandidate> one{Pattern(ConvKernel::kSimtBk8, 0, -1, &l3)};
  err = RunConvAuto(Key(4), one, y.data(), y_bytes, give_scratch, nullptr);
  Report(err == cudaSuccess && l3.count[0] == 1 && !LookupConvTuning(Stored(Key(4), one)), "one candidate: launched once, nothing recorded");

  // Errors: the default kernel's error is returned and nothing stored; no scratch is out of memory.
  Launches l4;
  const std::vector<ConvCandidate> failing{Refused(ConvKernel::kSimtBk8, &l4), Pattern(ConvKernel::kSimtBk16, 0, -1, &l4)};
  err = RunConvAuto(Key(5), failing, y.data(), y_bytes, give_scratch, nullptr);
  Report(err == cudaErrorInvalidConfiguration && !LookupConvTuning(Stored(Key(5), failing)) && l4.count[1] == 0,
         "the default kernel's launch error is returned, nothing tuned or stored");
  Launches l5;
  std::fill(y.begin(), y.end(), 0u);
  const std::vector<ConvCandidate> two{Pattern(ConvKernel::kSimtBk8, 0, -1, &l5), Pattern(ConvKernel::kSimtBk16, 0, -1, &l5)};
  err = RunConvAuto(Key(6), two, y.data(), y_bytes, [] { return static_cast<void*>(nullptr); }, nullptr);
  Report(err == cudaSuccess && IsPattern(y) && l5.count[0] == 1 && l5.count[1] == 0 && !LookupConvTuning(Stored(Key(6), two)),
         "no scratch to spare: the default kernel runs once, the problem stays untuned");
  err = TuneConv(Key(7), cands, y.data(), 4 * kWords - 2, scratch.data(), nullptr);
  Report(err == cudaErrorInvalidValue, "an output size that is not whole words is refused");

  ClearConvTuning();
  Report(ConvTuneRecords().empty() && !LookupConvTuning(Stored(key, cands)), "ClearConvTuning forgets every problem");
  Report(SetConvAutotuneEnabled(false) && !ConvAutotuneEnabled(), "SetConvAutotuneEnabled returns the previous setting");
  return emu_check::Failures() == 0 ? 0 : 1;
}
