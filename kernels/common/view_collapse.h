// Collapses several TensorViews of one shape into the fewest dims (size-1 dims dropped,
// adjacent dims merged where every view is contiguous across them), so elementwise kernels can
// run long inner rows. Used by the elementwise dispatchers (baseline code).
#pragma once

#include <cstdint>

#include "common/tensor_view.h"

namespace phoenix {

struct CollapsedViews {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};  // per view
  int64_t Outer() const {             // elements of all dims but the last
    int64_t n = 1;
    for (int d = 0; d + 1 < rank; ++d) n *= shape[d];
    return n;
  }
  int64_t Inner() const { return rank ? shape[rank - 1] : 1; }
  // Offset of outer row o (row-major over dims [0, rank-1)) in view v.
  int64_t RowOffset(int v, int64_t o) const {
    int64_t off = 0;
    for (int d = rank - 2; d >= 0; --d) {
      off += (o % shape[d]) * strides[v][d];
      o /= shape[d];
    }
    return off;
  }
};

// views[0..n) all have views[n-1]'s shape (n <= 3).
inline CollapsedViews CollapseViews(const TensorView* const* views, int n) {
  CollapsedViews c;
  const TensorView& ref = *views[n - 1];
  for (int d = 0; d < ref.rank; ++d) {
    if (ref.shape[d] == 1) continue;
    if (c.rank > 0) {
      bool merge = true;
      for (int v = 0; v < n; ++v) merge &= c.strides[v][c.rank - 1] == views[v]->strides[d] * ref.shape[d];
      if (merge) {
        c.shape[c.rank - 1] *= ref.shape[d];
        for (int v = 0; v < n; ++v) c.strides[v][c.rank - 1] = views[v]->strides[d];
        continue;
      }
    }
    c.shape[c.rank] = ref.shape[d];
    for (int v = 0; v < n; ++v) c.strides[v][c.rank] = views[v]->strides[d];
    ++c.rank;
  }
  return c;
}

}  // namespace phoenix
