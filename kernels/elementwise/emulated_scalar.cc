// Emulated BinaryScalar, reference form: FP32 op with the exact scalar, one BF16 rounding.
#include "common/parallel.h"
#include "elementwise/elementwise.h"

namespace phoenix::kernels {

void BinaryScalar(BinaryOp op, const bf16_t* a, const TensorView& av, float s, bool scalar_first,
                  bf16_t* y, const TensorView& yv, int num_threads) {
  const int rank = yv.rank;
  ParallelFor(yv.NumElements(), num_threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t rem = i, ao = av.offset, yo = yv.offset;
      for (int d = rank - 1; d >= 0; --d) {
        const int64_t idx = rem % yv.shape[d];
        rem /= yv.shape[d];
        ao += idx * av.strides[d];
        yo += idx * yv.strides[d];
      }
      const float x = Bf16ToF32(a[ao]);
      const float l = scalar_first ? s : x, r = scalar_first ? x : s;
      float v = 0.0f;
      switch (op) {
        case BinaryOp::kAdd: v = l + r; break;
        case BinaryOp::kSub: v = l - r; break;
        case BinaryOp::kMul: v = l * r; break;
        case BinaryOp::kDiv: v = l / r; break;
      }
      y[yo] = F32ToBf16(v);
    }
  });
}

}  // namespace phoenix::kernels
