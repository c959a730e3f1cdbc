// Emulation test of the wgmma primitives themselves (native/cuda/wgmma.cuh), against the layouts as a
// second source states them: CUTLASS's CuTe (include/cute/arch/mma_sm90_desc.hpp,
// include/cute/atom/mma_traits_sm90_gmma.hpp), written here from their published field positions and
// shape:stride tuples, not from our code. The conv kernel's emulation test checks the kernel against
// the emulator; this one checks the emulator's reading of the PTX ISA against CuTe's:
//   - the descriptor: start address >> 4 in bits 0-13, leading byte offset (1 for swizzled K-major)
//     in 16-29, stride byte offset >> 4 in 32-45, base offset in 49-51, layout type in 62-63
//     (SWIZZLE_64B = 2);
//   - the 64-byte-swizzle K-major atom: 8 rows x 64 bytes, row stride 64 bytes, Swizzle<2,4,3> on the
//     byte address (bits 4-5 ^= bits 7-8); atoms of 8 rows 512 bytes apart;
//   - the accumulators: CLayout_64xN = ((4,8,4),(2,2,N/8)):((128,1,16),(64,8,512)) from
//     (thread, register) to the column-major index m + 64 n of the 64 x N tile.
// A 64 x 32 A and an N x 32 B of random bf16 are stored at CuTe's addresses, one warpgroup issues the
// two k16 wgmmas of the 64-byte rows (the second from start + 32 bytes, as CuTe's descriptor
// iterator advances), and every thread's registers must equal, bit for bit, the sums over k (exact:
// small integers) at the (m, n) CuTe's layout gives, for N = 64, 128 and 256.
//
// The program builds two ways: with the host compiler against the emulator (test/cuda-emu/emu.test.ts,
// as every *_emu_test.cc), and with nvcc for an H100/H200, where it holds the hardware to the same
// layouts before anything else uses wgmma (bench/device/build-gpu-tests.sh builds it here,
// bench/device/run.sh runs it first):
//   nvcc -x cu -std=c++17 -O2 -gencode arch=compute_90a,code=sm_90a -I native
//        test/cuda-emu/wgmma_layout_emu_test.cc -o wgmma_layout
//
// emu-kernel-source: none
// gpu-build: -gencode arch=compute_90a,code=sm_90a
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/cuda_compat.h"
#include "cuda/wgmma.cuh"
#include "device_copy.h"
#include "emu_check.h"

namespace {

namespace wg = sslinv::cuda::wgmma;

constexpr int kM = 64, kK = 32;  // one warpgroup's rows; one 64-byte row of bf16
constexpr uint32_t kAlign = 1024;

// CuTe's K-major SW64 atom: byte offset of element k of row r in a tile of 8-row atoms 512 bytes apart.
__host__ __device__ uint32_t CuteKSw64Offset(int r, int k) {
  uint32_t o = static_cast<uint32_t>((r % 8) * 64 + 2 * k);
  o ^= ((o >> 7) & 3u) << 4;  // Swizzle<2,4,3>
  return static_cast<uint32_t>(r / 8) * 512u + o;
}

// CuTe's CLayout_64xN: (thread t, register v) -> (m, n).
void CuteAccumulator(int t, int v, int* m, int* n) {
  const int t0 = t % 4, t1 = (t / 4) % 8, t2 = t / 32;
  const int v0 = v % 2, v1 = (v / 2) % 2, v2 = v / 4;
  const int idx = 128 * t0 + 1 * t1 + 16 * t2 + 64 * v0 + 8 * v1 + 512 * v2;
  *m = idx % 64;
  *n = idx / 64;
}

struct Descriptors {
  uint64_t a[2], b[2];
  uint32_t stage_addr;  // the shared address the tiles start at
};

template <int kN>
__global__ void LayoutKernel(const uint16_t* a_bits, const uint16_t* b_bits, float* out, Descriptors* descs) {
  SSLINV_DYNAMIC_SMEM(unsigned char, smem_raw);
  const uint32_t raw_addr = wg::SharedAddress(smem_raw);
  const uint32_t pad = (kAlign - raw_addr % kAlign) % kAlign;
  unsigned char* smem = smem_raw + pad;
  const uint32_t addr = raw_addr + pad, b_addr = addr + kM * 64;
  const int t = static_cast<int>(threadIdx.x);
  for (int i = t; i < (kM + kN) * kK; i += 128) {
    const int r = i / kK, k = i % kK;
    const uint32_t off = r < kM ? CuteKSw64Offset(r, k) : kM * 64 + CuteKSw64Offset(r - kM, k);
    const uint16_t bits = r < kM ? a_bits[r * kK + k] : b_bits[(r - kM) * kK + k];
    *reinterpret_cast<uint16_t*>(smem + off) = bits;
  }
  wg::FenceProxyAsyncShared();
  __syncthreads();
  float d[kN / 8][4] = {};
  wg::WgmmaFence();
  uint64_t da[2], db[2];
  for (int ks = 0; ks < 2; ++ks) {
    da[ks] = wg::KMajorDescriptor(addr + 32 * ks, 512, wg::Swizzle::k64B);
    db[ks] = wg::KMajorDescriptor(b_addr + 32 * ks, 512, wg::Swizzle::k64B);
    wg::WgmmaBf16Async<kN>(d, da[ks], db[ks]);
  }
  wg::WgmmaCommit();
  wg::WgmmaWait<0>();
  for (int v = 0; v < kN / 2; ++v) out[t * (kN / 2) + v] = d[v / 4][v % 4];
  if (t == 0) *descs = {{da[0], da[1]}, {db[0], db[1]}, addr};
}

uint64_t g_state = 0x9E3779B97F4A7C15ull;
// A random integer in [-16, 16] as bf16 bits (exact). Products and every partial sum of 32 of them are
// integers below 2^24, exact in fp32 in any order, so the hardware's accumulation order and internal
// precision cannot change a bit of the result: any difference is a layout error.
uint16_t RandomBf16() {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  const float v = static_cast<float>(static_cast<int>((g_state >> 33) % 33) - 16);
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return static_cast<uint16_t>(u >> 16);  // exact: a 5-bit integer needs no more than bf16's 8 bits
}

float Bf16Float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void CheckDescriptor(const std::string& what, uint64_t desc, uint32_t addr) {
  const bool ok = (desc & 0x3FFFu) == ((addr & 0x3FFFFu) >> 4) && ((desc >> 16) & 0x3FFFu) == 1 &&
                  ((desc >> 32) & 0x3FFFu) == 512 / 16 && ((desc >> 49) & 7u) == 0 && (desc >> 62) == 2 &&
                  (desc & 0x3FFFC000C000C000ull & ~(7ull << 49)) == 0;  // the unused bits are 0
  char detail[64];
  std::snprintf(detail, sizeof detail, "0x%016llx for address %u", static_cast<unsigned long long>(desc), addr);
  emu_check::Report(ok, what, detail);
}

template <int kN>
void CheckN() {
  std::vector<uint16_t> a(kM * kK), b(kN * kK);
  for (auto& x : a) x = RandomBf16();
  for (auto& x : b) x = RandomBf16();
  std::vector<float> out(128 * kN / 2, -1.f);
  std::vector<Descriptors> descs(1);
  const std::string n = "N = " + std::to_string(kN);
  uint16_t *a_d = nullptr, *b_d = nullptr;
  float* out_d = nullptr;
  Descriptors* descs_d = nullptr;
  cudaError_t err = emu_check::ToDevice(a.data(), a.size(), &a_d, cudaSuccess);
  err = emu_check::ToDevice(b.data(), b.size(), &b_d, err);
  err = emu_check::ToDevice(out.data(), out.size(), &out_d, err);
  err = emu_check::ToDevice(descs.data(), descs.size(), &descs_d, err);
  const size_t smem = kAlign + static_cast<size_t>(kM + kN) * 64;
  if (err == cudaSuccess) {
    SSLINV_LAUNCH(LayoutKernel<kN>, 1, 128, smem, nullptr, a_d, b_d, out_d, descs_d);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  if (err == cudaSuccess) err = cudaMemcpy(out.data(), out_d, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
  if (err == cudaSuccess) err = cudaMemcpy(descs.data(), descs_d, sizeof(Descriptors), cudaMemcpyDeviceToHost);
  for (void* p : {static_cast<void*>(a_d), static_cast<void*>(b_d), static_cast<void*>(out_d), static_cast<void*>(descs_d)}) {
    if (p) cudaFree(p);
  }
  emu_check::Report(err == cudaSuccess, n + ": the kernel runs", cudaGetErrorString(err));
  if (err != cudaSuccess) return;
  const uint32_t base = descs[0].stage_addr;
  emu_check::Report(base % kAlign == 0, n + ": the tiles start at a 1 KiB-aligned shared address", std::to_string(base));
  for (int ks = 0; ks < 2; ++ks) {
    CheckDescriptor(n + ": A descriptor, k16 step " + std::to_string(ks) + ", CuTe's GmmaDescriptor fields", descs[0].a[ks], base + 32 * ks);
    CheckDescriptor(n + ": B descriptor, k16 step " + std::to_string(ks) + ", CuTe's GmmaDescriptor fields", descs[0].b[ks], base + kM * 64 + 32 * ks);
  }
  int bad = 0;
  std::string first;
  for (int t = 0; t < 128; ++t)
    for (int v = 0; v < kN / 2; ++v) {
      int m, col;
      CuteAccumulator(t, v, &m, &col);
      float sum = 0.f;
      for (int k = 0; k < kK; ++k) sum += Bf16Float(a[m * kK + k]) * Bf16Float(b[col * kK + k]);
      const float got = out[t * (kN / 2) + v];
      if (std::memcmp(&got, &sum, 4) != 0 && bad++ == 0) {
        first = "thread " + std::to_string(t) + " register " + std::to_string(v) + " (m " + std::to_string(m) + ", n " + std::to_string(col) +
                "): " + std::to_string(got) + " vs " + std::to_string(sum);
      }
    }
  emu_check::Report(bad == 0, n + ": every register holds D[m][n] of CuTe's CLayout_64xN, bit for bit (operands at CuTe's SW64 K-major addresses)",
                    std::to_string(bad) + " differ; first: " + first);
}

}  // namespace

int main() {
  CheckN<64>();
  CheckN<128>();
  CheckN<256>();
  return emu_check::Finish();
}
