// The vector work of L-BFGS-B on the GPU, for solvers whose objective runs there (the logistic
// probes): src/probes/lbfgsb-device.ts keeps a solver's n-vectors (x, g, z, r, d, t, the last
// evaluated x and the 2m memory columns s_j, y_j) in one float64 device tensor and calls these
// kernels; only scalars (dot products, max |g|) and the 2m-sized wv come back to or go to the host,
// where the small dense algebra (the 2m x 2m Cholesky factors, the line search) stays.
//
// Conventions: vectors are float64, n elements, device memory; dst may alias an input.
//   - Elementwise ops compute exactly the host solver's expressions (native/cuda is built with
//     -fmad=false, so a + s * b is a rounded product then a rounded sum, as in JavaScript).
//   - Dot products are reduced in a fixed order (each thread sums a strided subset in index order,
//     then a fixed tree), so they are deterministic run to run but not in the host's sequential order:
//     a device solver agrees with the host solver to rounding, not bit for bit.
// Also here: packing the logistic problems' weights into the stacked GEMM operand and assembling
// their gradients from it (the device side of src/probes/logistic.ts's LogisticBatchObjective).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

enum class LbfgsbVecOp : int {
  kCopy = 0,   // dst = a
  kNeg = 1,    // dst = -a
  kSub = 2,    // dst = a - b
  kScale = 3,  // dst = s * a
  kAxpy = 4,   // dst = a + s * b
};

constexpr int kLbfgsbMaxDots = 32;   // dot products per LaunchLbfgsbDots call
constexpr int kLbfgsbMaxMemory = 32; // largest history size m the subsm kernel takes

struct LbfgsbDotArgs {
  const double* y[kLbfgsbMaxDots];
};

// subsm's update for nbd = 0 (see lbfgsb.ts): per element, d += (wy_j * a_j) / theta + ws_j * b_j for
// j = 0..col-1 in order, then d = (1 / theta) * d and z = z + d.
struct LbfgsbSubsmArgs {
  const double* wy[kLbfgsbMaxMemory];
  const double* ws[kLbfgsbMaxMemory];
  double a[kLbfgsbMaxMemory];
  double b[kLbfgsbMaxMemory];
  int col;
  double theta;
};

cudaError_t LaunchLbfgsbVecOp(LbfgsbVecOp op, int64_t n, double* dst, const double* a, const double* b, double s,
                              cudaStream_t stream);

// out[k] = sum_i x[i] * y_k[i] for k < count (1 <= count <= kLbfgsbMaxDots); out is device memory.
cudaError_t LaunchLbfgsbDots(int64_t n, const double* x, const LbfgsbDotArgs& ys, int count, double* out,
                             cudaStream_t stream);

// out[0] = max_i |a_i| (0 for n = 0), NaN when some a_i is NaN (the host's projgr returns the NaN);
// out[1] = 1 when a and b differ somewhere (a_i != b_i, NaN differing from everything), else 0.
// b may be null (out[1] is then 0). out is device memory, 2 doubles.
cudaError_t LaunchLbfgsbMaxAbsDiffers(int64_t n, const double* a, const double* b, double* out, cudaStream_t stream);

cudaError_t LaunchLbfgsbSubsm(int64_t n, double* d, double* z, const LbfgsbSubsmArgs& args, cudaStream_t stream);

// Problem p's weights x (scipy's layout, (dim + 1) * K: W[j, k] at j * K + k, intercepts last) into
// columns p*K .. p*K+K-1 of m [dim, PK] and of bias [PK].
cudaError_t LaunchLogisticPack(int64_t dim, int64_t K, int64_t PK, int64_t p, const double* x, double* m, double* bias,
                               cudaStream_t stream);

// Problem p's gradient in scipy's layout from gx = X^T G [dim, PK] and gb [PK]:
//   g[j*K + k] = gx[j, p*K + k] + l2 * x[j*K + k],  g[dim*K + k] = gb[p*K + k].
cudaError_t LaunchLogisticUnpack(int64_t dim, int64_t K, int64_t PK, int64_t p, const double* gx, const double* gb,
                                 const double* x, double l2, double* g, cudaStream_t stream);

}  // namespace cuda
}  // namespace sslinv
