// MoCo v2 loss, fused forward + backward as a split-KV attention forward. See moco_loss.cuh for the
// math and the contract; this file holds the three kernels and the launcher.
//
// Split kernel (grid: query blocks x queue chunks, 256 threads as 16 x 16):
//   shared memory holds the query block transposed (qt[d][row]), two 64-key tiles of the queue
//   (qs[d][key], double-buffered: the next tile is fetched into registers while this one is
//   computed) and the tile's probabilities (ps[row][key]).
//   per 64-key tile:  S = q . Q_tile / T        thread owns rows ty*TM.., keys tx*4..tx*4+3
//                     online max / sum          the 16 threads of a row group share rows: xor shuffles
//                     O = O * alpha + P . Q_tile^T   thread owns rows ty*TM.., dims tx + 16*jj
//   The two thread mappings are chosen so every shared-memory read is a broadcast or a conflict-free
//   float4 (row strides of 68 floats keep float4 alignment and spread rows over the banks).
// Combine kernel (one block per query row): merges the chunks' (m, l, O) with the positive key.
// Mean kernel (one block): the per-row losses summed in a fixed order in fp64.
#include "cuda/moco_loss.cuh"

#include <cmath>
#include <cstdint>

namespace sslinv {
namespace cuda {
namespace {

constexpr int kThreads = 256;        // split kernel: 16 x 16
constexpr int kTileKeys = 64;        // keys per shared-memory tile
constexpr int kPad = 4;              // floats of row padding: keeps float4 alignment, staggers banks
constexpr int kQsStride = kTileKeys + kPad;
constexpr int kCombineThreads = 128;
constexpr int kMeanThreads = 256;
constexpr int kTargetCtas = 132;     // one wave on an H100/H200 (132 SMs, one 172 KB CTA per SM)
constexpr int kMaxChunks = 8192;     // bounds the combine kernel's shared memory (32 KB of scales)

template <int TM, int DMAX>
struct SplitShape {
  static constexpr int kBm = 16 * TM;                 // query rows per CTA
  static constexpr int kQtStride = kBm + kPad;
  static constexpr int kOCols = DMAX / 16;            // output dims per thread
  static constexpr int kQtFloats = DMAX * kQtStride;
  static constexpr int kQsFloats = DMAX * kQsStride;
  static constexpr int kPFloats = kBm * kQsStride;
  static constexpr int kPrefetch = DMAX * kTileKeys / 4 / kThreads;  // float4 per thread per tile
  static constexpr size_t kSmemBytes = sizeof(float) * (kQtFloats + 2 * kQsFloats + kPFloats);
  static_assert(kPrefetch >= 1 && DMAX % 16 == 0, "tile shape");
};

// SplitShape's shared memory, for any TM (the launcher picks TM at run time from what fits).
constexpr size_t SplitSmemBytes(int tm, int dmax) {
  return sizeof(float) * (static_cast<size_t>(dmax) * (16 * tm + kPad) + 2 * static_cast<size_t>(dmax) * kQsStride +
                          static_cast<size_t>(16 * tm) * kQsStride);
}
static_assert(SplitSmemBytes(8, 128) == SplitShape<8, 128>::kSmemBytes, "SplitSmemBytes follows SplitShape");
static_assert(SplitSmemBytes(1, 256) == SplitShape<1, 256>::kSmemBytes, "SplitSmemBytes follows SplitShape");

// The query-block heights (TM) compiled for each DMAX, tallest first. A taller block reads each queue
// tile for more queries; the shorter ones fit cards with less shared memory per block: with 99 KiB
// (sm_86, sm_89, sm_120) dim 128 runs at TM 2, with 163 KiB (sm_80) at TM 4, with 227 KiB (sm_90) at
// TM 8. Each row's arithmetic is the same whatever the height, and the key chunking is counted with
// the tallest (MakePlan), so the results are the same bits on every card.
constexpr int kHeights32[] = {8};
constexpr int kHeights64[] = {8, 4};
constexpr int kHeights128[] = {8, 4, 2};
constexpr int kHeights256[] = {4, 1};

// The tallest compiled height for dmax whose shared memory fits `smem_limit`; 0 when none does.
int PickHeight(int dmax, size_t smem_limit) {
  auto pick = [&](const auto& heights) {
    for (int tm : heights) {
      if (SplitSmemBytes(tm, dmax) <= smem_limit) return tm;
    }
    return 0;
  };
  return dmax == 32 ? pick(kHeights32) : dmax == 64 ? pick(kHeights64) : dmax == 128 ? pick(kHeights128) : pick(kHeights256);
}

// The current device's opt-in limit on a block's dynamic shared memory (0 if it cannot be read).
size_t CurrentSmemLimit() {
  int device = 0, bytes = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess || bytes < 0) {
    (void)cudaGetLastError();
    return 0;
  }
  return static_cast<size_t>(bytes);
}

struct Plan {
  int dmax = 0, tm = 0, bm = 0, q_blocks = 0, tiles_per_chunk = 0, chunks = 0;
  size_t off_m = 0, off_l = 0, off_o = 0, off_row_loss = 0, bytes = 0;
};

size_t AlignUp(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

__host__ __device__ __forceinline__ int IMin(int a, int b) { return a < b ? a : b; }

// The chunking is a pure function of the sizes and the device's shared memory, so the workspace size
// and the launch agree. p.tm is 0 when no block height fits the device.
Plan MakePlan(int n, int d, int kq, int keys_per_chunk, size_t smem_limit) {
  Plan p;
  p.dmax = d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : 256;
  p.tm = PickHeight(p.dmax, smem_limit);
  p.bm = 16 * (p.tm > 0 ? p.tm : 1);
  p.q_blocks = (n + p.bm - 1) / p.bm;
  const int tiles = (kq + kTileKeys - 1) / kTileKeys;
  int tpc;
  if (keys_per_chunk > 0) {
    tpc = (keys_per_chunk + kTileKeys - 1) / kTileKeys;
  } else {
    // About one wave of CTAs on an H100/H200: fewer, longer chunks amortise the q-block load and the
    // partials. Counted with the tallest block (what sm_90 runs), not this device's, so that the keys
    // are cut into the same chunks, and every row's sums taken in the same order, on every card: a
    // row's arithmetic does not depend on which rows share its block, only on the chunking.
    const int ref_bm = 16 * (p.dmax == 256 ? 4 : 8);
    const int ref_blocks = (n + ref_bm - 1) / ref_bm;
    const int per_block = kTargetCtas / ref_blocks > 1 ? kTargetCtas / ref_blocks : 1;
    tpc = (tiles + per_block - 1) / per_block;
  }
  if (tpc < 1) tpc = 1;
  if (tpc > tiles) tpc = tiles;
  p.tiles_per_chunk = tpc;
  p.chunks = (tiles + tpc - 1) / tpc;
  const size_t cn = static_cast<size_t>(p.chunks) * static_cast<size_t>(n);
  p.off_m = 0;
  p.off_l = p.off_m + AlignUp(cn * sizeof(float));
  p.off_o = p.off_l + AlignUp(cn * sizeof(float));
  p.off_row_loss = p.off_o + AlignUp(cn * static_cast<size_t>(d) * sizeof(float));
  p.bytes = p.off_row_loss + AlignUp(static_cast<size_t>(n) * sizeof(float));
  return p;
}

// Loads one 64-key tile of the queue (rows < d, keys < key_end; zeros elsewhere) into registers.
template <int TM, int DMAX>
__device__ __forceinline__ void LoadQueueTile(const float* __restrict__ queue, int d, int kq, int key0, int key_end,
                                              bool vec, int tid, float4 (&pre)[SplitShape<TM, DMAX>::kPrefetch]) {
#pragma unroll
  for (int r = 0; r < SplitShape<TM, DMAX>::kPrefetch; ++r) {
    const int e = tid + r * kThreads;
    const int row = e >> 4;
    const int key = key0 + (e & 15) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row < d) {
      const float* src = queue + static_cast<size_t>(row) * kq + key;
      if (vec) {
        // kq % 4 == 0 and key_end is kq or a multiple of 64, so a group is all in or all out.
        if (key < key_end) v = __ldg(reinterpret_cast<const float4*>(src));
      } else {
        if (key + 0 < key_end) v.x = __ldg(src + 0);
        if (key + 1 < key_end) v.y = __ldg(src + 1);
        if (key + 2 < key_end) v.z = __ldg(src + 2);
        if (key + 3 < key_end) v.w = __ldg(src + 3);
      }
    }
    pre[r] = v;
  }
}

template <int TM, int DMAX>
__device__ __forceinline__ void StoreQueueTile(float* qs, int tid, const float4 (&pre)[SplitShape<TM, DMAX>::kPrefetch]) {
#pragma unroll
  for (int r = 0; r < SplitShape<TM, DMAX>::kPrefetch; ++r) {
    const int e = tid + r * kThreads;
    *reinterpret_cast<float4*>(qs + (e >> 4) * kQsStride + (e & 15) * 4) = pre[r];
  }
}

template <int TM, int DMAX>
__global__ void __launch_bounds__(kThreads, 1)
    MocoSplitKernel(const float* __restrict__ q, const float* __restrict__ queue, int n, int d, int kq, float inv_t,
                    int tiles_per_chunk, bool vec, float* __restrict__ part_m, float* __restrict__ part_l,
                    float* __restrict__ part_o) {
  using Shape = SplitShape<TM, DMAX>;
  constexpr int kBm = Shape::kBm;
  constexpr int kOCols = Shape::kOCols;
  SSLINV_DYNAMIC_SMEM(float, smem);
  float* qt = smem;
  float* qs_base = qt + Shape::kQtFloats;
  float* ps = qs_base + 2 * Shape::kQsFloats;

  const int tid = threadIdx.x;
  const int tx = tid & 15;
  const int ty = tid >> 4;
  const int row0 = blockIdx.x * kBm;
  const int chunk = blockIdx.y;
  const int key_begin = chunk * tiles_per_chunk * kTileKeys;
  const int key_end = IMin(kq, key_begin + tiles_per_chunk * kTileKeys);
  const int ntiles = (key_end - key_begin + kTileKeys - 1) / kTileKeys;

  // The query block, transposed so a thread's TM rows at one dim are one or two float4 broadcasts.
  for (int e = tid; e < kBm * DMAX; e += kThreads) {
    const int r = e / DMAX, c = e % DMAX;
    float v = 0.f;
    if (row0 + r < n && c < d) v = __ldg(q + static_cast<size_t>(row0 + r) * d + c);
    qt[c * Shape::kQtStride + r] = v;
  }
  float4 pre[Shape::kPrefetch];
  LoadQueueTile<TM, DMAX>(queue, d, kq, key_begin, key_end, vec, tid, pre);
  StoreQueueTile<TM, DMAX>(qs_base, tid, pre);
  if (ntiles > 1) LoadQueueTile<TM, DMAX>(queue, d, kq, key_begin + kTileKeys, key_end, vec, tid, pre);
  __syncthreads();

  float o[TM][kOCols];
  float m_run[TM], l_run[TM];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    m_run[i] = -INFINITY;
    l_run[i] = 0.f;
#pragma unroll
    for (int jj = 0; jj < kOCols; ++jj) o[i][jj] = 0.f;
  }

  for (int t = 0; t < ntiles; ++t) {
    const float* qs = qs_base + (t & 1) * Shape::kQsFloats;
    const int key0 = key_begin + t * kTileKeys;

    // S = q . Q_tile (rows ty*TM + i, keys tx*4 + j).
    float s[TM][4];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
#pragma unroll 4
    for (int c = 0; c < DMAX; ++c) {
      float a[TM];
#pragma unroll
      for (int i4 = 0; i4 < TM; i4 += 4) {
        if constexpr (TM % 4 == 0) {
          const float4 v = *reinterpret_cast<const float4*>(qt + c * Shape::kQtStride + ty * TM + i4);
          a[i4] = v.x;
          a[i4 + 1] = v.y;
          a[i4 + 2] = v.z;
          a[i4 + 3] = v.w;
        } else {
          // Heights 1 and 2 (cards with less shared memory): a thread's rows are not a whole float4.
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = qt[c * Shape::kQtStride + ty * TM + i];
        }
      }
      const float4 b = *reinterpret_cast<const float4*>(qs + c * kQsStride + tx * 4);
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        s[i][0] = fmaf(a[i], b.x, s[i][0]);
        s[i][1] = fmaf(a[i], b.y, s[i][1]);
        s[i][2] = fmaf(a[i], b.z, s[i][2]);
        s[i][3] = fmaf(a[i], b.w, s[i][3]);
      }
    }

    // Online softmax. Keys past the chunk are -inf (p = 0); every tile has at least one valid key,
    // so the running max is finite after the first tile and expf(-inf - finite) = 0 rescales the
    // empty initial state.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[i][j] = key0 + tx * 4 + j < key_end ? s[i][j] * inv_t : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
#pragma unroll
      for (int off = 8; off >= 1; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off, 16));
      const float m_new = fmaxf(m_run[i], mx);
      const float alpha = expf(m_run[i] - m_new);
      m_run[i] = m_new;
      float4 p;
      p.x = expf(s[i][0] - m_new);
      p.y = expf(s[i][1] - m_new);
      p.z = expf(s[i][2] - m_new);
      p.w = expf(s[i][3] - m_new);
      l_run[i] = l_run[i] * alpha + ((p.x + p.y) + (p.z + p.w));
#pragma unroll
      for (int jj = 0; jj < kOCols; ++jj) o[i][jj] *= alpha;
      // ps was last read by the previous tile's P . Q^T, which ended at the loop's last barrier.
      *reinterpret_cast<float4*>(ps + (ty * TM + i) * kQsStride + tx * 4) = p;
    }

    // Stage the prefetched tile into the other buffer (last read by the previous tile, before the
    // barrier) and start fetching the one after, so its latency hides behind P . Q^T and the next S.
    if (t + 1 < ntiles) {
      StoreQueueTile<TM, DMAX>(qs_base + ((t + 1) & 1) * Shape::kQsFloats, tid, pre);
      if (t + 2 < ntiles) LoadQueueTile<TM, DMAX>(queue, d, kq, key0 + 2 * kTileKeys, key_end, vec, tid, pre);
    }
    __syncthreads();

    // O += P . Q_tile^T (rows ty*TM + i, dims tx + 16*jj), four keys per step.
#pragma unroll 2
    for (int k4 = 0; k4 < kTileKeys; k4 += 4) {
      float4 kf[kOCols];
#pragma unroll
      for (int jj = 0; jj < kOCols; ++jj) kf[jj] = *reinterpret_cast<const float4*>(qs + (tx + 16 * jj) * kQsStride + k4);
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const float4 pv = *reinterpret_cast<const float4*>(ps + (ty * TM + i) * kQsStride + k4);
#pragma unroll
        for (int jj = 0; jj < kOCols; ++jj) {
          float acc = o[i][jj];
          acc = fmaf(pv.x, kf[jj].x, acc);
          acc = fmaf(pv.y, kf[jj].y, acc);
          acc = fmaf(pv.z, kf[jj].z, acc);
          acc = fmaf(pv.w, kf[jj].w, acc);
          o[i][jj] = acc;
        }
      }
    }
    __syncthreads();
  }

  // Partials: (m, l) per row, O per row and dim, unnormalised.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    float l = l_run[i];
#pragma unroll
    for (int off = 8; off >= 1; off >>= 1) l += __shfl_xor_sync(0xffffffffu, l, off, 16);
    const int row = row0 + ty * TM + i;
    if (row < n) {
      const size_t cr = static_cast<size_t>(chunk) * n + row;
      if (tx == 0) {
        part_m[cr] = m_run[i];
        part_l[cr] = l;
      }
#pragma unroll
      for (int jj = 0; jj < kOCols; ++jj) {
        const int c = tx + 16 * jj;
        if (c < d) part_o[cr * d + c] = o[i][jj];
      }
    }
  }
}

// Block-wide reductions for kCombineThreads threads in a fixed order (deterministic). `red` holds
// at least kCombineThreads / 32 floats; the trailing barrier lets the caller reuse it.
__device__ __forceinline__ float BlockSum(float v, float* red) {
#pragma unroll
  for (int off = 16; off >= 1; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) red[warp] = v;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < kCombineThreads / 32; ++w) total += red[w];
  __syncthreads();
  return total;
}

__device__ __forceinline__ float BlockMax(float v, float* red) {
#pragma unroll
  for (int off = 16; off >= 1; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int warp = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) red[warp] = v;
  __syncthreads();
  float total = red[0];
#pragma unroll
  for (int w = 1; w < kCombineThreads / 32; ++w) total = fmaxf(total, red[w]);
  __syncthreads();
  return total;
}

// One block per query row: lse and dq from the chunks' partials and the positive key.
__global__ void __launch_bounds__(kCombineThreads)
    MocoCombineKernel(const float* __restrict__ q, const float* __restrict__ k_pos, int n, int d, int chunks,
                      float inv_t, float grad_scale, const float* __restrict__ part_m,
                      const float* __restrict__ part_l, const float* __restrict__ part_o, float* __restrict__ dq,
                      float* __restrict__ lse_out, float* __restrict__ row_loss) {
  SSLINV_DYNAMIC_SMEM(float, sm);
  float* red = sm;              // kCombineThreads / 32
  float* scale = sm + 32;       // [chunks]: exp(m_c - M)
  const int row = blockIdx.x;
  const int tid = threadIdx.x;
  const float* qr = q + static_cast<size_t>(row) * d;
  const float* kr = k_pos + static_cast<size_t>(row) * d;

  float dot = 0.f;
  for (int c = tid; c < d; c += kCombineThreads) dot = fmaf(__ldg(qr + c), __ldg(kr + c), dot);
  const float s0 = BlockSum(dot, red) * inv_t;

  float mx = -INFINITY;
  for (int c = tid; c < chunks; c += kCombineThreads) mx = fmaxf(mx, part_m[static_cast<size_t>(c) * n + row]);
  const float big_m = fmaxf(s0, BlockMax(mx, red));

  float lsum = 0.f;
  for (int c = tid; c < chunks; c += kCombineThreads) {
    const size_t cr = static_cast<size_t>(c) * n + row;
    const float sc = expf(part_m[cr] - big_m);
    scale[c] = sc;
    lsum = fmaf(part_l[cr], sc, lsum);
  }
  const float e0 = expf(s0 - big_m);
  const float big_l = e0 + BlockSum(lsum, red);  // BlockSum's barriers also publish scale[]
  const float inv_l = 1.f / big_l;

  for (int c = tid; c < d; c += kCombineThreads) {
    const float kv = __ldg(kr + c);
    float acc = e0 * kv;
    const float* po = part_o + static_cast<size_t>(row) * d + c;
    const size_t chunk_stride = static_cast<size_t>(n) * d;
    for (int ch = 0; ch < chunks; ++ch) acc = fmaf(scale[ch], po[ch * chunk_stride], acc);
    dq[static_cast<size_t>(row) * d + c] = (acc * inv_l - kv) * grad_scale;
  }
  if (tid == 0) {
    // lse - s0 written as (M - s0) + log L: exact cancellation when the positive is the max.
    const float log_l = logf(big_l);
    if (lse_out) lse_out[row] = big_m + log_l;
    row_loss[row] = (big_m - s0) + log_l;
  }
}

// One block: the mean of the per-row losses, summed in fp64 in a fixed order.
__global__ void __launch_bounds__(kMeanThreads) MocoMeanKernel(const float* __restrict__ row_loss, int n,
                                                               float* __restrict__ loss) {
  SSLINV_DYNAMIC_SMEM(double, red);
  const int tid = threadIdx.x;
  double acc = 0.0;
  for (int i = tid; i < n; i += kMeanThreads) acc += static_cast<double>(row_loss[i]);
  red[tid] = acc;
  __syncthreads();
  for (int w = kMeanThreads / 2; w >= 1; w >>= 1) {
    if (tid < w) red[tid] += red[tid + w];
    __syncthreads();
  }
  if (tid == 0) *loss = static_cast<float>(red[0] / static_cast<double>(n));
}

template <int TM, int DMAX>
cudaError_t LaunchSplit(const Plan& p, const float* q, const float* queue, int n, int d, int kq, float inv_t,
                        bool vec, float* part_m, float* part_l, float* part_o, cudaStream_t stream) {
  auto kernel = MocoSplitKernel<TM, DMAX>;
  const size_t smem = SplitShape<TM, DMAX>::kSmemBytes;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(kernel, dim3(p.q_blocks, p.chunks), dim3(kThreads), smem, stream, q, queue, n, d, kq, inv_t,
                p.tiles_per_chunk, vec, part_m, part_l, part_o);
  return cudaGetLastError();
}

}  // namespace

size_t MocoLossWorkspaceBytes(int n, int d, int kq, int keys_per_chunk) {
  if (n < 1 || d < 1 || kq < 1) return 0;
  return MakePlan(n, d, kq, keys_per_chunk, CurrentSmemLimit()).bytes;
}

size_t MocoLossSharedMemoryNeeded(int d) {
  if (d < 1 || d > 256) return 0;
  const int dmax = d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : 256;
  const int smallest = dmax == 32 ? 8 : dmax == 64 ? 4 : dmax == 128 ? 2 : 1;
  return SplitSmemBytes(smallest, dmax);
}

bool MocoLossFits(int d) {
  const size_t need = MocoLossSharedMemoryNeeded(d);
  return need > 0 && need <= CurrentSmemLimit();
}

cudaError_t LaunchMocoLossForwardBackward(const float* q, const float* k_pos, const float* queue, int n, int d,
                                          int kq, float temperature, float* loss, float* dq, float* lse,
                                          void* workspace, cudaStream_t stream, int keys_per_chunk,
                                          float* row_loss_out) {
  if (n < 1 || d < 1 || d > 256 || kq < 1 || !(temperature > 0.f)) return cudaErrorInvalidValue;
  if (!q || !k_pos || !queue || !loss || !dq || !workspace) return cudaErrorInvalidValue;
  const Plan p = MakePlan(n, d, kq, keys_per_chunk, CurrentSmemLimit());
  if (p.tm == 0 || p.chunks > kMaxChunks || p.q_blocks > 65535) return cudaErrorInvalidValue;
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  float* part_m = reinterpret_cast<float*>(ws + p.off_m);
  float* part_l = reinterpret_cast<float*>(ws + p.off_l);
  float* part_o = reinterpret_cast<float*>(ws + p.off_o);
  // The caller's buffer when it wants the per-row losses, else the workspace's.
  float* row_loss = row_loss_out ? row_loss_out : reinterpret_cast<float*>(ws + p.off_row_loss);
  const float inv_t = 1.f / temperature;
  const bool vec = kq % 4 == 0 && reinterpret_cast<uintptr_t>(queue) % 16 == 0;

  cudaError_t err;
  // Every (DMAX, TM) pair of the kHeights lists; PickHeight returned one of them.
  switch (p.dmax * 16 + p.tm) {
#define SSLINV_MOCO_SPLIT(TM, DMAX) \
  case (DMAX) * 16 + (TM): err = LaunchSplit<TM, DMAX>(p, q, queue, n, d, kq, inv_t, vec, part_m, part_l, part_o, stream); break;
    SSLINV_MOCO_SPLIT(8, 32)
    SSLINV_MOCO_SPLIT(8, 64)
    SSLINV_MOCO_SPLIT(4, 64)
    SSLINV_MOCO_SPLIT(8, 128)
    SSLINV_MOCO_SPLIT(4, 128)
    SSLINV_MOCO_SPLIT(2, 128)
    SSLINV_MOCO_SPLIT(4, 256)
    SSLINV_MOCO_SPLIT(1, 256)
#undef SSLINV_MOCO_SPLIT
    default: return cudaErrorInvalidValue;
  }
  if (err != cudaSuccess) return err;

  const float grad_scale = 1.f / (temperature * static_cast<float>(n));
  // scale[] is rounded up to whole float4s: compute-sanitizer on an H200 caught the unrolled
  // remainder of the dq loop (ld.shared of scale[ch..ch+2] at once) reading up to 3 floats past an
  // exact-size allocation.
  const size_t combine_smem = sizeof(float) * (32 + (static_cast<size_t>(p.chunks) + 3) / 4 * 4);
  SSLINV_LAUNCH(MocoCombineKernel, dim3(n), dim3(kCombineThreads), combine_smem, stream, q, k_pos, n, d, p.chunks,
                inv_t, grad_scale, part_m, part_l, part_o, dq, lse, row_loss);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  SSLINV_LAUNCH(MocoMeanKernel, dim3(1), dim3(kMeanThreads), sizeof(double) * kMeanThreads, stream, row_loss, n,
                loss);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace sslinv
