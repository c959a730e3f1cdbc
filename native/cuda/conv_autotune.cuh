// Run-time tuning of the CUDA convolution's ConvAlgo 'auto' (as cudnn.benchmark does, with one
// difference that matters here: a kernel is chosen only if it gives the default kernel's bits).
//
// A precision has several kernels that compute the same sums in the same order (conv2d.cuh:
// fp32 simt-bk8 / simt-bk16, tf32 mma-staged / mma-pipelined; bf16 in memory: mma.sync / wgmma), and
// the tensor-core ones several block tile widths (64, 128, 256 output channels), which also leave
// each output's sum as it is. Which is fastest depends on the shape and the card, so the first 'auto'
// convolution of each distinct problem (device, shape, epilogue, and which candidates can take these
// pointers) runs:
//   1. the default kernel (candidates[0], the measured choice of conv2d.cu) into y: the result;
//   2. every other candidate into a scratch buffer (first set to all ones, so that an output word a
//      kernel fails to write differs), compared word for word with y on the device; a candidate that
//      differs in any bit, or whose launch is refused, is left out (and recorded why),
//      so 'auto' gives the default kernel's bits on every card whatever the timings say;
//   3. the admitted candidates, timed with CUDA events in kConvTuneRounds interleaved rounds of one
//      untimed and kConvTuneTimedLaunches timed back-to-back launches (min per kernel);
//   4. the fastest, unless it beats the default by less than kMinGain (then the default: ties and
//      noise keep the measured default).
// Later calls of the same problem launch the chosen kernel once. A kernel fault during tuning is
// returned like any launch's (it is a bug to report, not a candidate to skip).
//
// Enabled by default in GPU builds; SSL_INV_CONV_AUTOTUNE=0 turns it off at start-up (then 'auto' is
// the default kernel), SetConvAutotuneEnabled at run time. Off by default in the emulated-device
// build, where timings mean nothing; its tests switch it on to check the mechanism.
// Thread-safe: one mutex guards the table (tuning holds it; a tuned problem is a map lookup).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cuda/conv2d.cuh"
#include "cuda/conv_launch_counts.h"
#include "cuda/cuda_compat.h"

namespace sslinv::cuda {

// The kernels that may replace one another under 'auto': the same bits by construction (and checked).
enum class ConvFamily : int { kFp32 = 0, kTf32 = 1, kBf16Storage = 2 };
const char* ConvFamilyName(ConvFamily f);

// A kernel that may run the problem, at a block tile width (`block_n` output channels; 0 = the
// launcher's own pick, for kernels with one width); `launch` writes the whole output to `y` (same
// shape and dtype as the caller's output) and returns its launcher's error. Tuning launches each
// candidate several times, so no input may alias the output (the bindings always write a fresh one).
struct ConvCandidate {
  ConvKernel kernel;
  int block_n = 0;
  std::function<cudaError_t(void* y)> launch;
};

// (kernel, block_n) of each candidate, in order: part of the key, since which candidates can take a
// call depends on its pointers' alignment as well as its shape.
using ConvCandidateIds = std::vector<std::pair<int, int>>;
ConvCandidateIds ConvCandidateList(const std::vector<ConvCandidate>& candidates);

// One distinct problem. TuneConv and RunConvAuto fill `candidates` from the list they are given.
struct ConvTuneKey {
  ConvFamily family = ConvFamily::kFp32;
  int device = 0;
  Conv2dShape shape{};
  bool bias = false, residual = false, relu = false;
  ConvCandidateIds candidates;
};
bool operator<(const ConvTuneKey& a, const ConvTuneKey& b);

// What tuning found for one candidate: its time (min over rounds, ms), or why it was left out.
struct ConvCandidateTiming {
  ConvKernel kernel;
  int block_n = 0;
  float ms = 0.f;
  std::string excluded;  // empty when admitted
};

struct ConvTuneRecord {
  ConvTuneKey key;
  size_t chosen = 0;  // index into candidates (0: the default)
  std::vector<ConvCandidateTiming> candidates;  // in the order offered; [0] is the default
};

constexpr int kConvTuneRounds = 3;
constexpr int kConvTuneTimedLaunches = 2;
constexpr float kConvTuneMinGain = 0.02f;  // a candidate must beat the default by more than 2%

bool ConvAutotuneEnabled();
// Returns the previous setting.
bool SetConvAutotuneEnabled(bool on);

// The index of the candidate chosen for `key`, if it has been tuned.
std::optional<size_t> LookupConvTuning(const ConvTuneKey& key);

// Bytes of scratch device memory TuneConv needs for an output of y_bytes (y_bytes % 4 == 0).
size_t ConvTuneScratchBytes(size_t y_bytes);

// Steps 1-4 above on `stream`; the result is in y when it returns cudaSuccess (with the record
// stored). On an error of the default kernel, of the events or of the comparison, nothing is stored.
cudaError_t TuneConv(ConvTuneKey key, const std::vector<ConvCandidate>& candidates, void* y, size_t y_bytes, void* scratch,
                     cudaStream_t stream);

// 'auto': the tuned kernel when tuning is on and there is a choice; the default otherwise. Needs
// scratch (ConvTuneScratchBytes) only when the problem is new: `scratch` is called then, once; when
// it returns nullptr (no memory to spare), the default kernel runs and the problem stays untuned.
cudaError_t RunConvAuto(ConvTuneKey key, const std::vector<ConvCandidate>& candidates, void* y, size_t y_bytes,
                        const std::function<void*()>& scratch, cudaStream_t stream);

// Every problem tuned so far in this process, in key order; and forgetting them (benchmarks, tests).
std::vector<ConvTuneRecord> ConvTuneRecords();
void ClearConvTuning();


}  // namespace sslinv::cuda
