// Emulated elementwise ops: operands widened to FP32, one FP32 operation, one rounding (BF16,
// or hi + lo for BF16x3). portable::Binary / portable::Copy are the reference forms (any
// strides). The dispatchers collapse the views first; contiguous and last-dim-broadcast operands
// then run as long rows (AVX-512 on CPUs with AVX512_BF16, bit-identical: one IEEE op + the same
// rounding), copies with contiguous rows are memcpy, transposed copies run in cache tiles. Every
// form is written once over the element type (Copy moves 2 or 4 bytes an element).
#include <algorithm>
#include <cstring>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "common/view_collapse.h"
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

template <typename T>
void PortableBinary(BinaryOp op, const T* a, const TensorView& av, const T* b, const TensorView& bv, T* y,
                    const TensorView& yv, int num_threads) {
  const TensorView* views[3] = {&av, &bv, &yv};
  ParallelFor(yv.NumElements(), num_threads, [&](int64_t i0, int64_t i1) {
    ForEachStrided<3>(views, i0, i1, [&](const int64_t* off) {
      y[off[2]] = FromF32<T>(ApplyBinary(op, ToF32(a[off[0]]), ToF32(b[off[1]])));
    });
  });
}

template <typename T>
void PortableCopy(const T* x, const TensorView& xv, T* y, const TensorView& yv, int num_threads) {
  const TensorView* views[2] = {&xv, &yv};
  ParallelFor(yv.NumElements(), num_threads, [&](int64_t i0, int64_t i1) {
    ForEachStrided<2>(views, i0, i1, [&](const int64_t* off) { y[off[1]] = x[off[0]]; });
  });
}

}  // namespace

namespace portable {

void Binary(BinaryOp op, const bf16_t* a, const TensorView& av, const bf16_t* b,
            const TensorView& bv, bf16_t* y, const TensorView& yv, int num_threads) {
  PortableBinary(op, a, av, b, bv, y, yv, num_threads);
}
void Binary(BinaryOp op, const split_t* a, const TensorView& av, const split_t* b,
            const TensorView& bv, split_t* y, const TensorView& yv, int num_threads) {
  PortableBinary(op, a, av, b, bv, y, yv, num_threads);
}

void Copy(const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv, int num_threads) {
  PortableCopy(x, xv, y, yv, num_threads);
}
void Copy(const split_t* x, const TensorView& xv, split_t* y, const TensorView& yv, int num_threads) {
  PortableCopy(x, xv, y, yv, num_threads);
}

}  // namespace portable

namespace {

// Threads for an elementwise job of n elements: about 64K elements per thread at least.
int ElementwiseThreads(int64_t n, int num_threads) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, n / 65536)));
}

template <typename T>
void DispatchBinary(BinaryOp op, const T* a, const TensorView& av, const T* b, const TensorView& bv, T* y,
                    const TensorView& yv, int num_threads) {
  const int64_t total = yv.NumElements();
  if (total <= 0) return;
  const TensorView* views[3] = {&av, &bv, &yv};
  const CollapsedViews c = CollapseViews(views, 3);
  const int64_t inner = c.Inner(), outer = c.Outer();
  const int last = c.rank - 1;
  const int64_t as = c.rank ? c.strides[0][last] : 0, bs = c.rank ? c.strides[1][last] : 0;
  const int64_t ys = c.rank ? c.strides[2][last] : 1;
  const bool rows_ok = ys == 1 && (as == 0 || as == 1) && (bs == 0 || bs == 1) && (inner >= 16 || outer == 1);
  if (!UseAvx512Bf16() || !rows_ok) return portable::Binary(op, a, av, b, bv, y, yv, num_threads);
  const T* a0 = a + av.offset;
  const T* b0 = b + bv.offset;
  T* y0 = y + yv.offset;
  const int threads = ElementwiseThreads(total, num_threads);
  if (outer == 1) {  // one long row: split it in whole vectors
    const int64_t blocks = (inner + 15) / 16;
    ParallelFor(blocks, threads, [&](int64_t q0, int64_t q1) {
      const int64_t i0 = q0 * 16, i1 = std::min(inner, q1 * 16);
      avx512::BinaryRow(op, a0 + i0 * as, as, b0 + i0 * bs, bs, y0 + i0, i1 - i0);
    });
    return;
  }
  ParallelFor(outer, threads, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      avx512::BinaryRow(op, a0 + c.RowOffset(0, o), as, b0 + c.RowOffset(1, o), bs, y0 + c.RowOffset(2, o), inner);
  });
}

template <typename T>
void DispatchCopy(const T* x, const TensorView& xv, T* y, const TensorView& yv, int num_threads) {
  const int64_t total = yv.NumElements();
  if (total <= 0) return;
  const TensorView* views[2] = {&xv, &yv};
  const CollapsedViews c = CollapseViews(views, 2);
  const int64_t inner = c.Inner(), outer = c.Outer();
  const int last = c.rank - 1;
  const int64_t xs = c.rank ? c.strides[0][last] : 1, ys = c.rank ? c.strides[1][last] : 1;
  const T* x0 = x + xv.offset;
  T* y0 = y + yv.offset;
  const int threads = ElementwiseThreads(total, num_threads);
  if (xs == 1 && ys == 1 && (inner >= 16 || outer == 1)) {  // contiguous rows: memcpy
    if (outer == 1) {
      ParallelFor(inner, threads, [&](int64_t i0, int64_t i1) {
        std::memcpy(y0 + i0, x0 + i0, static_cast<size_t>(i1 - i0) * sizeof(T));
      });
      return;
    }
    ParallelFor(outer, threads, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o)
        std::memcpy(y0 + c.RowOffset(1, o), x0 + c.RowOffset(0, o), static_cast<size_t>(inner) * sizeof(T));
    });
    return;
  }
  // Transposed copy: y's rows are contiguous, x is contiguous along some other dim t. Copy 2-D
  // tiles of (t, last) so both sides stream through whole cache lines.
  int t = -1;
  if (ys == 1 && c.rank >= 2)
    for (int d = 0; d < last; ++d)
      if (c.strides[0][d] == 1) t = d;
  if (t < 0) return portable::Copy(x, xv, y, yv, num_threads);
  const int64_t nt = c.shape[t], yts = c.strides[1][t];
  // the remaining dims (all but t and last), walked as one index
  int64_t rest_shape[kMaxRank], rest_x[kMaxRank], rest_y[kMaxRank];
  int nrest = 0;
  for (int d = 0; d < last; ++d)
    if (d != t) {
      rest_shape[nrest] = c.shape[d];
      rest_x[nrest] = c.strides[0][d];
      rest_y[nrest] = c.strides[1][d];
      ++nrest;
    }
  int64_t rest = 1;
  for (int d = 0; d < nrest; ++d) rest *= rest_shape[d];
  constexpr int64_t kTile = 32;
  const int64_t tiles_t = (nt + kTile - 1) / kTile;
  ParallelFor(rest * tiles_t, threads, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      int64_t o = q / tiles_t, xo = 0, yo = 0;
      for (int d = nrest - 1; d >= 0; --d) {
        xo += (o % rest_shape[d]) * rest_x[d];
        yo += (o % rest_shape[d]) * rest_y[d];
        o /= rest_shape[d];
      }
      const int64_t i0 = (q % tiles_t) * kTile, i1 = std::min(nt, i0 + kTile);
      for (int64_t j0 = 0; j0 < inner; j0 += kTile) {
        const int64_t j1 = std::min(inner, j0 + kTile);
        for (int64_t i = i0; i < i1; ++i) {
          const T* src = x0 + xo + i;
          T* dst = y0 + yo + i * yts;
          for (int64_t j = j0; j < j1; ++j) dst[j] = src[j * xs];
        }
      }
    }
  });
}

}  // namespace

void Binary(BinaryOp op, const bf16_t* a, const TensorView& av, const bf16_t* b, const TensorView& bv,
            bf16_t* y, const TensorView& yv, int num_threads) {
  DispatchBinary(op, a, av, b, bv, y, yv, num_threads);
}
void Binary(BinaryOp op, const split_t* a, const TensorView& av, const split_t* b, const TensorView& bv,
            split_t* y, const TensorView& yv, int num_threads) {
  DispatchBinary(op, a, av, b, bv, y, yv, num_threads);
}

void Copy(const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv, int num_threads) {
  DispatchCopy(x, xv, y, yv, num_threads);
}
void Copy(const split_t* x, const TensorView& xv, split_t* y, const TensorView& yv, int num_threads) {
  DispatchCopy(x, xv, y, yv, num_threads);
}

}  // namespace phoenix::kernels
