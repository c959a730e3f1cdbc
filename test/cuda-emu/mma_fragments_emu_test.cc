// Emulation test of the warp-level primitives of native/cuda/mma.cuh themselves, against the layouts
// as a second source states them: CUTLASS CuTe's MMA_Traits for SM80_16x8x16_F32BF16BF16F32_TN and
// SM80_16x8x8_F32TF32TF32F32_TN (include/cute/atom/mma_traits_sm80.hpp) and Copy_Traits for
// SM75_U32x4_LDSM_N (include/cute/atom/copy_traits_sm75.hpp), written here from their published
// shape:stride tuples, not from our code. Each tuple maps (lane, value) to a column-major index of
// the operand: A (M x K), B (N x K), C (M x N); ldmatrix's maps (lane, bit) to the bits the 32 lanes'
// rows supply, in lane order.
//   - LdMatrixX4: every lane passes a row of a shuffled set of 32 rows; each register of each lane
//     must hold the 4 bytes CuTe's DstLayout gives.
//   - CpAsync16 / CpAsyncCommit / CpAsyncWait: valid copies land, invalid ones zero-fill.
//   - MmaBf16_16x8x16 and MmaTf32_16x8x8: fragments built from random small integers by CuTe's
//     ALayout / BLayout, accumulators read by its CLayout, against the exact D = A B^T + C (every
//     partial sum is an integer below 2^24, so no accumulation order changes a bit).
// The warp-level primitives under the conv and covariance kernels are tested through those kernels
// too; this program isolates them, so that a GPU run that fails here names the primitive.
//
// It builds two ways: with the host compiler against the emulator (test/cuda-emu/emu.test.ts), and
// with nvcc for an sm_90 GPU (bench/device/build-gpu-tests.sh builds it, bench/device/run.sh runs it
// first on the GPU machine).
//
// emu-kernel-source: none
// gpu-build: -gencode arch=compute_90,code=sm_90
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/cuda_compat.h"
#include "cuda/mma.cuh"
#include "device_copy.h"
#include "emu_check.h"

namespace {

namespace mma = sslinv::cuda::mma;

// A CuTe layout of shape ((4, 8), (V0, V1, V2)) with the given strides, evaluated at (lane, value):
// lane = t0 + 4 t1, value = v0 + V0 v1 + V0 V1 v2 (CuTe's colexicographic order, first mode fastest).
struct LaneValueLayout {
  int vshape[3];
  int tstride[2], vstride[3];
};

__host__ __device__ int Eval(const LaneValueLayout& l, int lane, int value) {
  const int v0 = value % l.vshape[0], v1 = (value / l.vshape[0]) % l.vshape[1], v2 = value / (l.vshape[0] * l.vshape[1]);
  return (lane % 4) * l.tstride[0] + (lane / 4) * l.tstride[1] + v0 * l.vstride[0] + v1 * l.vstride[1] + v2 * l.vstride[2];
}

// CuTe's tuples (a value mode of extent 1 has stride 0); functions, so device code can use them.
__host__ __device__ LaneValueLayout Bf16A() { return {{2, 2, 2}, {32, 1}, {16, 8, 128}}; }  // (M16, K16)
__host__ __device__ LaneValueLayout Bf16B() { return {{2, 2, 1}, {16, 1}, {8, 64, 0}}; }    // (N8, K16)
__host__ __device__ LaneValueLayout Tf32A() { return {{2, 2, 1}, {16, 1}, {8, 64, 0}}; }    // (M16, K8)
__host__ __device__ LaneValueLayout Tf32B() { return {{2, 1, 1}, {8, 1}, {32, 0, 0}}; }     // (N8, K8)
__host__ __device__ LaneValueLayout CLayout() { return {{2, 2, 1}, {32, 1}, {16, 8, 0}}; }  // SM80_16x8_Row: (M16, N8)

// Outputs of the kernel, per lane.
struct LaneOut {
  uint32_t ldsm[4];
  float bf16_d[4], tf32_d[4];
};

// Inputs: 32 shuffled ldmatrix rows of 8 halves; A, B, C of both MMAs (small integers); a cp.async
// source of 32 x 4 words.
struct Inputs {
  uint16_t rows[32][8];
  int row_of_lane[32];
  float bf16_a[16 * 16], bf16_b[8 * 16], tf32_a[16 * 8], tf32_b[8 * 8], c[16 * 8];
  uint32_t copy_src[32][4];
};

__global__ void FragmentsKernel(const Inputs* in, LaneOut* out, uint32_t* copied) {
  __align__(16) __shared__ uint16_t rows[32][8];
  __align__(16) __shared__ uint32_t staged[32][4];
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = 0; i < 8; ++i) rows[lane][i] = in->rows[lane][i];
  __syncthreads();
  uint32_t r[4];
  mma::LdMatrixX4(r, &rows[in->row_of_lane[lane]][0]);
  for (int j = 0; j < 4; ++j) out[lane].ldsm[j] = r[j];

  // cp.async: odd lanes' copies are invalid and must zero-fill.
  for (int i = 0; i < 4; ++i) staged[lane][i] = 0xDEADBEEFu;
  __syncthreads();
  mma::CpAsync16(&staged[lane][0], &in->copy_src[lane][0], lane % 2 == 0);
  mma::CpAsyncCommit();
  mma::CpAsyncWait<0>();
  __syncthreads();
  for (int i = 0; i < 4; ++i) copied[lane * 4 + i] = staged[(lane + 1) % 32][i];  // another lane's copy

  // bf16 m16n8k16: A value v of this lane is A[m][k] with m + 16 k = Eval(Bf16A(), lane, v); pairs
  // (v, v + 1) share a register, the lower value in the low half.
  uint32_t a[4], b[2];
  for (int w = 0; w < 4; ++w) {
    const int i0 = Eval(Bf16A(), lane, 2 * w), i1 = Eval(Bf16A(), lane, 2 * w + 1);
    a[w] = mma::PackBf16x2(in->bf16_a[(i0 % 16) * 16 + i0 / 16], in->bf16_a[(i1 % 16) * 16 + i1 / 16]);
  }
  for (int w = 0; w < 2; ++w) {
    const int i0 = Eval(Bf16B(), lane, 2 * w), i1 = Eval(Bf16B(), lane, 2 * w + 1);
    b[w] = mma::PackBf16x2(in->bf16_b[(i0 % 8) * 16 + i0 / 8], in->bf16_b[(i1 % 8) * 16 + i1 / 8]);
  }
  float c[4], d[4];
  for (int v = 0; v < 4; ++v) {
    const int i = Eval(CLayout(), lane, v);
    c[v] = in->c[(i % 16) * 8 + i / 16];
  }
  mma::MmaBf16_16x8x16(d, a, b, c);
  for (int v = 0; v < 4; ++v) out[lane].bf16_d[v] = d[v];

  // tf32 m16n8k8: one value per register.
  for (int v = 0; v < 4; ++v) {
    const int i = Eval(Tf32A(), lane, v);
    a[v] = mma::ToTf32(in->tf32_a[(i % 16) * 8 + i / 16]);
  }
  for (int v = 0; v < 2; ++v) {
    const int i = Eval(Tf32B(), lane, v);
    b[v] = mma::ToTf32(in->tf32_b[(i % 8) * 8 + i / 8]);
  }
  mma::MmaTf32_16x8x8(d, a, b, c);
  for (int v = 0; v < 4; ++v) out[lane].tf32_d[v] = d[v];
}

uint64_t g_state = 0x2545F4914F6CDD1Dull;
uint32_t Next() {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<uint32_t>(g_state >> 33);
}
float SmallInt() { return static_cast<float>(static_cast<int>(Next() % 33) - 16); }

// D = A B^T + C of the logical matrices (A: M x K row-major, B: N x K row-major, C: M x N row-major).
float Exact(const float* a, const float* b, const float* c, int m, int n, int k_extent) {
  float s = c[m * 8 + n];
  for (int k = 0; k < k_extent; ++k) s += a[m * k_extent + k] * b[n * k_extent + k];
  return s;
}

void CheckMma(const char* what, const std::vector<LaneOut>& out, const float* a, const float* b, const float* c, int k_extent, bool bf16) {
  int bad = 0;
  std::string first;
  for (int lane = 0; lane < 32; ++lane)
    for (int v = 0; v < 4; ++v) {
      const int i = Eval(CLayout(), lane, v), m = i % 16, n = i / 16;
      const float want = Exact(a, b, c, m, n, k_extent);
      const float got = bf16 ? out[lane].bf16_d[v] : out[lane].tf32_d[v];
      if (std::memcmp(&want, &got, 4) != 0 && bad++ == 0) {
        first = "lane " + std::to_string(lane) + " value " + std::to_string(v) + " (m " + std::to_string(m) + ", n " + std::to_string(n) +
                "): " + std::to_string(got) + " vs " + std::to_string(want);
      }
    }
  emu_check::Report(bad == 0, what, std::to_string(bad) + " of 128 differ; first: " + first);
}

}  // namespace

int main() {
  std::vector<Inputs> in(1);
  Inputs& x = in[0];
  for (int r = 0; r < 32; ++r)
    for (int i = 0; i < 8; ++i) x.rows[r][i] = static_cast<uint16_t>(r * 256 + i * 16 + 5);  // row and column readable in the bits
  for (int l = 0; l < 32; ++l) x.row_of_lane[l] = (l * 13 + 7) % 32;  // a permutation (13 is odd)
  for (float& v : x.bf16_a) v = SmallInt();
  for (float& v : x.bf16_b) v = SmallInt();
  for (float& v : x.tf32_a) v = SmallInt();
  for (float& v : x.tf32_b) v = SmallInt();
  for (float& v : x.c) v = SmallInt();
  for (auto& row : x.copy_src)
    for (uint32_t& w : row) w = Next();

  Inputs* in_d = nullptr;
  LaneOut* out_d = nullptr;
  uint32_t* copied_d = nullptr;
  cudaError_t err = emu_check::ToDevice(in.data(), 1, &in_d, cudaSuccess);
  err = emu_check::ToDevice<LaneOut>(nullptr, 32, &out_d, err);
  err = emu_check::ToDevice<uint32_t>(nullptr, 128, &copied_d, err);
  if (err == cudaSuccess) {
    SSLINV_LAUNCH(FragmentsKernel, 1, 32, 0, nullptr, in_d, out_d, copied_d);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  std::vector<LaneOut> out(32);
  std::vector<uint32_t> copied(128);
  if (err == cudaSuccess) err = cudaMemcpy(out.data(), out_d, 32 * sizeof(LaneOut), cudaMemcpyDeviceToHost);
  if (err == cudaSuccess) err = cudaMemcpy(copied.data(), copied_d, 128 * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  for (void* p : {static_cast<void*>(in_d), static_cast<void*>(out_d), static_cast<void*>(copied_d)}) {
    if (p) cudaFree(p);
  }
  emu_check::Report(err == cudaSuccess, "the kernel runs", cudaGetErrorString(err));
  if (err != cudaSuccess) return emu_check::Finish();

  // ldmatrix x4 (CuTe's SM75_U32x4_LDSM_N): bit b of register j of lane t is bit 32 t + b + 1024 j of
  // the 32 lanes' 128-bit rows in lane order, i.e. bytes 4 (t % 4) .. + 3 of lane 8 j + t / 4's row.
  int bad = 0;
  std::string first;
  for (int t = 0; t < 32; ++t)
    for (int j = 0; j < 4; ++j) {
      const int bit = 32 * t + 1024 * j, src_lane = bit / 128, byte = (bit % 128) / 8;
      uint32_t want;
      std::memcpy(&want, reinterpret_cast<const unsigned char*>(x.rows[x.row_of_lane[src_lane]]) + byte, 4);
      if (out[t].ldsm[j] != want && bad++ == 0) first = "lane " + std::to_string(t) + " register " + std::to_string(j);
    }
  emu_check::Report(bad == 0, "LdMatrixX4: every register holds the bytes of CuTe's SM75_U32x4_LDSM_N DstLayout (shuffled row addresses)",
                    std::to_string(bad) + " of 128 differ; first: " + first);

  bad = 0;
  for (int lane = 0; lane < 32; ++lane) {
    const int src = (lane + 1) % 32;
    for (int i = 0; i < 4; ++i) bad += copied[lane * 4 + i] != (src % 2 == 0 ? x.copy_src[src][i] : 0u);
  }
  emu_check::Report(bad == 0, "CpAsync16: valid copies land, invalid ones zero-fill, visible to other lanes after the wait and a barrier",
                    std::to_string(bad) + " of 128 words differ");

  CheckMma("MmaBf16_16x8x16: fragments by CuTe's ALayout / BLayout, accumulators by its CLayout, exact", out, x.bf16_a, x.bf16_b,
           x.c, 16, true);
  CheckMma("MmaTf32_16x8x8: fragments by CuTe's ALayout / BLayout, accumulators by its CLayout, exact", out, x.tf32_a, x.tf32_b,
           x.c, 8, false);
  return emu_check::Finish();
}
