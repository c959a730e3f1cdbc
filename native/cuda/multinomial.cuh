// The multinomial logistic loss and its gradient on the GPU, float64: the device twin of
// sslinv::MultinomialLossGrad (ops/eigen.h), which scikit-learn's HalfMultinomialLoss defines. It is
// the pointwise half of one L-BFGS evaluation of a batch of logistic-regression problems; the two
// GEMMs around it (Z = X W, X^T G) are cuBLAS DGEMMs (cuda/cublas.h).
//
// Shapes and conventions (row-major, device memory):
//   z    [n, P*K] f64: the raw scores X W of P problems with K classes each (problem p in columns
//        p*K .. p*K+K-1);
//   bias [P*K] f64: the intercepts, added to every row;
//   y    [P, n] i32: problem p's label of row i in 0..K-1, or -1 where the row is not in its training
//        set (that row then contributes nothing);
//   loss [P] f64: sum over the problem's rows of log(sum_k exp(raw_ik)) - raw_{i,y_i};
//   g    [n, P*K] f64: softmax(raw_i) - onehot(y_i) (zeros on unused rows);
//   gb   [P*K] f64: the column sums of g (the intercepts' gradient).
//
// Steps (deterministic: fixed work split, fixed reduction order, no float atomics):
//   1. one thread per (row, problem): max-subtracted softmax as the CPU op computes it, g and the
//      row's loss into the workspace ([n, P], so both reductions below are column sums);
//   2. column sums of g and of the row losses: row-split partial sums (a fixed number of splits),
//      then each column's partials added in split order.
// The sums are therefore not in numpy's pairwise order (the CPU op's), so loss and gb agree with the
// CPU to rounding (about 1e-15 relative), not bit for bit; g agrees to the last bit of exp/log.
//
// A label outside [-1, K) is recorded (its flat index p*n + i, the smallest one) in a device word the
// caller reads back with the results; such a row is treated as unused.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace sslinv {
namespace cuda {

// Bytes of device workspace LaunchMultinomialLossGrad needs (256-byte aligned pieces).
size_t MultinomialWorkspaceBytes(int64_t n, int64_t P, int64_t K);

// The first bad label's flat index (p*n + i) is written to *bad_index (device memory), or
// UINT64_MAX when all labels are valid. Returns cudaErrorInvalidValue for bad sizes or null pointers.
cudaError_t LaunchMultinomialLossGrad(const double* z, const double* bias, const int32_t* y, int64_t n, int64_t P,
                                      int64_t K, double* loss, double* g, double* gb, unsigned long long* bad_index,
                                      void* workspace, cudaStream_t stream);

}  // namespace cuda
}  // namespace sslinv
