// numpy's legacy RandomState(seed).random_sample() stream on the GPU, for the elastic deform's noise
// fields (src/transforms/geometric.ts elasticDraws): view v uses RandomState(seeds[v]) seeded as
// numpy seeds it from an integer (MT19937 init_genrand), skips the first `skip` doubles (the deform's
// six affine offsets, which the host draws itself because it needs them for the affine matrix), then
// writes count doubles d as float32(float32(d) * 2 - 1), exactly what
// `rand(h, w).astype(np.float32) * 2 - 1` gives.
//
// Shapes: seeds [V] (device); out [V, count] float32 (device), row v for view v.
//
// One block per view, 224 threads: each MT19937 twist (624 words) runs in three parallel phases
// (words 0..226 depend only on the old state; 227..453 on words 0..226 of the new one; 454..623 on
// 227..396), each phase reading its inputs before any thread writes; the 624 tempered words then
// become 312 doubles, two consecutive words per double (genrand_res53), written in order. The output
// is the sequential generator's, bit for bit.
#pragma once
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

cudaError_t LaunchNumpyUniformNoise(const uint32_t* seeds, int views, int64_t skip, int64_t count, float* out,
                                    cudaStream_t stream);

}  // namespace cuda
}  // namespace sslinv
