// Which kernel taps of a convolution's windows fall inside the input, along one axis: positions
// grouped into runs whose windows keep the same taps. Near the borders a window's outer taps fall in
// the padding; the forward (cpu/conv2d.cc) and the backward (cpu/conv2d_backward.cc) split their
// GEMMs by these runs to skip the multiply-adds of those taps.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace sslinv {
namespace conv_taps {

// Positions [first, first + count) along one axis whose windows all keep taps [t_begin, t_end)
// (t_begin == t_end: none). Forward and wgrad: output positions and kernel taps; dgrad: a phase's
// dx positions and window taps (dx is 0 where none is kept).
struct Segment {
  int64_t first, count, t_begin, t_end;
};

// Positions 0..count-1 grouped into runs of consecutive positions whose tap range [lo, hi) =
// taps(i) is the same.
template <typename Taps>
std::vector<Segment> RunsOfSameTaps(int64_t count, const Taps& taps) {
  std::vector<Segment> segs;
  for (int64_t i = 0; i < count; ++i) {
    const auto [lo, hi] = taps(i);
    if (!segs.empty() && segs.back().t_begin == lo && segs.back().t_end == hi) {
      ++segs.back().count;
    } else {
      segs.push_back({i, 1, lo, hi});
    }
  }
  return segs;
}

// One axis of output positions split into runs with the same kernel taps inside the input: position
// o's tap t lies in the input when 0 <= o * stride - pad + t < size.
inline std::vector<Segment> OutputSegments(int64_t out, int64_t kernel, int64_t stride, int64_t pad, int64_t size) {
  return RunsOfSameTaps(out, [&](int64_t o) {
    const int64_t start = o * stride - pad;
    const int64_t lo = std::clamp<int64_t>(-start, 0, kernel);
    return std::pair<int64_t, int64_t>{lo, std::clamp<int64_t>(size - start, lo, kernel)};
  });
}

}  // namespace conv_taps
}  // namespace sslinv
