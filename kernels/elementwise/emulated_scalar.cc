// Emulated BinaryScalar: FP32 op with the exact scalar, one rounding (BF16, or hi + lo for
// BF16x3). portable::BinaryScalar is the reference form; contiguous rows run on AVX-512 where
// available (bit-identical). Both are written once over the element type.
#include <algorithm>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "common/view_collapse.h"
#include "elementwise/elementwise.h"

namespace phoenix::kernels {
namespace {

template <typename T>
void PortableBinaryScalar(BinaryOp op, const T* a, const TensorView& av, float s, bool scalar_first, T* y,
                          const TensorView& yv, int num_threads) {
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
      const float x = ToF32(a[ao]);
      const float l = scalar_first ? s : x, r = scalar_first ? x : s;
      float v = 0.0f;
      switch (op) {
        case BinaryOp::kAdd: v = l + r; break;
        case BinaryOp::kSub: v = l - r; break;
        case BinaryOp::kMul: v = l * r; break;
        case BinaryOp::kDiv: v = l / r; break;
      }
      y[yo] = FromF32<T>(v);
    }
  });
}

template <typename T>
void DispatchBinaryScalar(BinaryOp op, const T* a, const TensorView& av, float s, bool scalar_first, T* y,
                          const TensorView& yv, int num_threads) {
  const int64_t total = yv.NumElements();
  if (total <= 0) return;
  const TensorView* views[2] = {&av, &yv};
  const CollapsedViews c = CollapseViews(views, 2);
  const int64_t inner = c.Inner(), outer = c.Outer();
  const int last = c.rank - 1;
  const int64_t as = c.rank ? c.strides[0][last] : 1, ys = c.rank ? c.strides[1][last] : 1;
  if (!UseAvx512Bf16() || as != 1 || ys != 1 || (inner < 16 && outer > 1))
    return portable::BinaryScalar(op, a, av, s, scalar_first, y, yv, num_threads);
  const T* a0 = a + av.offset;
  T* y0 = y + yv.offset;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, total / 65536)));
  if (outer == 1) {
    const int64_t blocks = (inner + 15) / 16;
    ParallelFor(blocks, threads, [&](int64_t q0, int64_t q1) {
      const int64_t i0 = q0 * 16, i1 = std::min(inner, q1 * 16);
      avx512::BinaryScalarRow(op, a0 + i0, s, scalar_first, y0 + i0, i1 - i0);
    });
    return;
  }
  ParallelFor(outer, threads, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      avx512::BinaryScalarRow(op, a0 + c.RowOffset(0, o), s, scalar_first, y0 + c.RowOffset(1, o), inner);
  });
}

}  // namespace

namespace portable {

void BinaryScalar(BinaryOp op, const bf16_t* a, const TensorView& av, float s, bool scalar_first,
                  bf16_t* y, const TensorView& yv, int num_threads) {
  PortableBinaryScalar(op, a, av, s, scalar_first, y, yv, num_threads);
}
void BinaryScalar(BinaryOp op, const split_t* a, const TensorView& av, float s, bool scalar_first,
                  split_t* y, const TensorView& yv, int num_threads) {
  PortableBinaryScalar(op, a, av, s, scalar_first, y, yv, num_threads);
}

}  // namespace portable

void BinaryScalar(BinaryOp op, const bf16_t* a, const TensorView& av, float s, bool scalar_first,
                  bf16_t* y, const TensorView& yv, int num_threads) {
  DispatchBinaryScalar(op, a, av, s, scalar_first, y, yv, num_threads);
}
void BinaryScalar(BinaryOp op, const split_t* a, const TensorView& av, float s, bool scalar_first,
                  split_t* y, const TensorView& yv, int num_threads) {
  DispatchBinaryScalar(op, a, av, s, scalar_first, y, yv, num_threads);
}

}  // namespace phoenix::kernels
