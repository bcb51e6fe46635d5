// FakeQuant on the host: one pass over the output's view. The quantize / dequantize steps are
// the INT8 MatMul's (matmul_int8.h Quantize / Dequantize), so a pair computed here and a pair
// folded into MatMulInt8 give the same integers.
#include <cmath>
#include <stdexcept>

#include "common/parallel.h"
#include "fake_quant/fake_quant.h"

namespace phoenix::kernels {
namespace {

void CheckParams(const QuantParams& q) {
  if (!(std::isfinite(q.scale) && q.scale > 0.0f)) throw std::invalid_argument("FakeQuant: scale must be finite and > 0");
  if (q.zero_point < QuantMin(q) || q.zero_point > QuantMax(q))
    throw std::invalid_argument("FakeQuant: zero point out of its type's range");
}

template <typename T>
void FakeQuantAs(const QuantParams& q, const T* x, const TensorView& xv, T* y, const TensorView& yv, int num_threads) {
  CheckParams(q);
  const int64_t n = yv.NumElements();
  const int rank = yv.rank;
  ParallelFor(n, num_threads, [&](int64_t i0, int64_t i1) {
    int64_t idx[kMaxRank] = {};
    int64_t rest = i0;
    for (int d = rank - 1; d >= 0; --d) {
      idx[d] = yv.shape[d] ? rest % yv.shape[d] : 0;
      rest = yv.shape[d] ? rest / yv.shape[d] : 0;
    }
    for (int64_t i = i0; i < i1; ++i) {
      int64_t xo = xv.offset, yo = yv.offset;
      for (int d = 0; d < rank; ++d) {
        xo += idx[d] * xv.strides[d];
        yo += idx[d] * yv.strides[d];
      }
      y[yo] = FromF32<T>(Dequantize(Quantize(ToF32(x[xo]), q), q));
      for (int d = rank - 1; d >= 0; --d) {
        if (++idx[d] < yv.shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace

void FakeQuant(const QuantParams& q, const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv,
               int num_threads) {
  FakeQuantAs(q, x, xv, y, yv, num_threads);
}
void FakeQuant(const QuantParams& q, const split_t* x, const TensorView& xv, split_t* y, const TensorView& yv,
               int num_threads) {
  FakeQuantAs(q, x, xv, y, yv, num_threads);
}

}  // namespace phoenix::kernels
