// Emulated elementwise ops: operands widened to FP32, one FP32 operation, one BF16 rounding.
#include "common/parallel.h"
#include "elementwise/elementwise.h"

namespace phoenix::kernels {
namespace {

// Walks the elements [begin, end) of `shape` in row-major order, keeping one running offset
// per view so the inner loop is a strided stream.
template <int kViews, typename Fn>
void ForEachStrided(const TensorView* views[kViews], int64_t begin, int64_t end, Fn&& fn) {
  const TensorView& ref = *views[kViews - 1];
  const int rank = ref.rank;
  int64_t idx[kMaxRank] = {};
  int64_t rem = begin;
  for (int d = rank - 1; d >= 0; --d) {
    idx[d] = ref.shape[d] ? rem % ref.shape[d] : 0;
    rem = ref.shape[d] ? rem / ref.shape[d] : 0;
  }
  int64_t off[kViews];
  for (int v = 0; v < kViews; ++v) {
    off[v] = views[v]->offset;
    for (int d = 0; d < rank; ++d) off[v] += idx[d] * views[v]->strides[d];
  }
  const int inner = rank - 1;
  for (int64_t i = begin; i < end; ++i) {
    fn(off);
    if (rank == 0) continue;
    // advance the multi-index by one
    for (int d = inner; d >= 0; --d) {
      for (int v = 0; v < kViews; ++v) off[v] += views[v]->strides[d];
      if (++idx[d] < ref.shape[d]) break;
      for (int v = 0; v < kViews; ++v) off[v] -= views[v]->strides[d] * ref.shape[d];
      idx[d] = 0;
    }
  }
}

inline float ApplyBinary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
  }
  return 0.0f;
}

}  // namespace

void Binary(BinaryOp op, const bf16_t* a, const TensorView& av, const bf16_t* b,
            const TensorView& bv, bf16_t* y, const TensorView& yv, int num_threads) {
  const TensorView* views[3] = {&av, &bv, &yv};
  ParallelFor(yv.NumElements(), num_threads, [&](int64_t i0, int64_t i1) {
    ForEachStrided<3>(views, i0, i1, [&](const int64_t* off) {
      y[off[2]] = F32ToBf16(ApplyBinary(op, Bf16ToF32(a[off[0]]), Bf16ToF32(b[off[1]])));
    });
  });
}

void Copy(const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv, int num_threads) {
  const TensorView* views[2] = {&xv, &yv};
  ParallelFor(yv.NumElements(), num_threads, [&](int64_t i0, int64_t i1) {
    ForEachStrided<2>(views, i0, i1, [&](const int64_t* off) { y[off[1]] = x[off[0]]; });
  });
}

}  // namespace phoenix::kernels
