// Emulator test of native/cuda/numpy_random.cu against a sequential MT19937 written here the way
// numpy's legacy RandomState runs it (init_genrand seeding, genrand_res53 doubles): every noise value
// bit for bit for several seeds (0, 1, 2^32 - 1 and others), skips of 0 and 6 doubles (the deform's
// affine offsets), counts that end inside a twist, exactly at twist boundaries (312 doubles) and over
// several twists, and many views in one launch; plus argument checks.
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/numpy_random.cuh"
#include "emu_check.h"

namespace {

struct Mt {
  uint32_t mt[624];
  int mti = 625;
  explicit Mt(uint32_t seed) {
    mt[0] = seed;
    for (int i = 1; i < 624; ++i) mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + static_cast<uint32_t>(i);
    mti = 624;
  }
  uint32_t Next() {
    if (mti >= 624) {
      int kk = 0;
      uint32_t y;
      for (; kk < 624 - 397; ++kk) {
        y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
        mt[kk] = mt[kk + 397] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
      }
      for (; kk < 623; ++kk) {
        y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
        mt[kk] = mt[kk + (397 - 624)] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
      }
      y = (mt[623] & 0x80000000u) | (mt[0] & 0x7fffffffu);
      mt[623] = mt[396] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
      mti = 0;
    }
    uint32_t y = mt[mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
  }
  double Sample() {
    const uint32_t a = Next() >> 5, b = Next() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
};

void Check(const std::vector<uint32_t>& seeds, int64_t skip, int64_t count) {
  std::vector<float> out(seeds.size() * count, -7.f), want(seeds.size() * count);
  for (size_t v = 0; v < seeds.size(); ++v) {
    Mt mt(seeds[v]);
    for (int64_t i = 0; i < skip; ++i) mt.Sample();
    for (int64_t i = 0; i < count; ++i) want[v * count + i] = static_cast<float>(static_cast<float>(mt.Sample()) * 2.0 - 1.0);
  }
  const int err = sslinv::cuda::LaunchNumpyUniformNoise(seeds.data(), static_cast<int>(seeds.size()), skip, count, out.data(), nullptr);
  const std::string what = std::to_string(seeds.size()) + " views, skip " + std::to_string(skip) + ", " + std::to_string(count) + " values";
  emu_check::Report(err == 0, what + ": launch");
  emu_check::ExpectBits(what, out.data(), want.data(), out.size());
}

}  // namespace

int main() {
  Check({0}, 0, 1);
  Check({1}, 6, 306);            // ends exactly at the first twist's last double
  Check({4294967295u}, 6, 307);  // one into the second twist
  Check({12345, 7, 99}, 6, 2 * 37 * 23);
  Check({3, 4}, 0, 312 * 3);
  Check({20261204}, 6, 5000);
  {
    uint32_t s = 0;
    float o = 0;
    const bool bad = sslinv::cuda::LaunchNumpyUniformNoise(&s, -1, 0, 1, &o, nullptr) != 0 &&
                     sslinv::cuda::LaunchNumpyUniformNoise(nullptr, 1, 0, 1, &o, nullptr) != 0 &&
                     sslinv::cuda::LaunchNumpyUniformNoise(&s, 1, -1, 1, &o, nullptr) != 0;
    emu_check::Report(bad && sslinv::cuda::LaunchNumpyUniformNoise(nullptr, 0, 0, 1, nullptr, nullptr) == 0,
                      "negative sizes and missing buffers are rejected; no views is a no-op");
  }
  return emu_check::Finish();
}
