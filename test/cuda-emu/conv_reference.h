// The float64 reference of the convolution emulation tests (conv2d_emu_test.cc, conv2d_pipelined_emu_test.cc),
// straight from the NHWC / KRSC definition:
//   ref[m, k] = relu?( sum_{r,s,c} x[n, p*sh - ph + r, q*sw - pw + s, c] * w[k, r, s, c] + bias[k] + res[m, k] )
// with m = (n*P + p)*Q + q, and the error scale sum |x w| + |bias| + |res| per output element.
// X(i), W(i), Bias(k) and Res(i) read element i of the tensors as double, whatever their storage;
// has_bias / has_res say whether the last two exist.
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

#include "cuda/conv2d.cuh"

namespace emu_check {

template <class X, class W, class B, class R>
void ConvReference(const sslinv::cuda::Conv2dShape& s, X x, W w, bool has_bias, B bias, bool has_res, R res, bool relu,
                   std::vector<double>& ref, std::vector<double>& scale) {
  const int P = s.p(), Q = s.q();
  ref.assign(size_t(s.n) * P * Q * s.k, 0.0);
  scale.assign(ref.size(), 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q) {
        const size_t m = (size_t(n) * P + p) * Q + q;
        for (int k = 0; k < s.k; ++k) {
          double acc = 0.0, mag = 0.0;
          for (int r = 0; r < s.r; ++r) {
            const int ih = p * s.stride_h - s.pad_h + r;
            if (ih < 0 || ih >= s.h) continue;
            for (int t = 0; t < s.s; ++t) {
              const int iw = q * s.stride_w - s.pad_w + t;
              if (iw < 0 || iw >= s.w) continue;
              for (int c = 0; c < s.c; ++c) {
                const double xv = x(((size_t(n) * s.h + ih) * s.w + iw) * s.c + c);
                const double wv = w(((size_t(k) * s.r + r) * s.s + t) * s.c + c);
                acc += xv * wv;
                mag += std::fabs(xv * wv);
              }
            }
          }
          if (has_bias) acc += bias(k), mag += std::fabs(bias(k));
          if (has_res) acc += res(m * s.k + k), mag += std::fabs(res(m * s.k + k));
          ref[m * s.k + k] = relu && acc < 0 ? 0.0 : acc;
          scale[m * s.k + k] = mag;
        }
      }
}

}  // namespace emu_check
