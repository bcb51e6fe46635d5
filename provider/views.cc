#include "views.h"

#include <algorithm>
#include <numeric>

namespace phoenix {

TensorView Permute(const TensorView& v, const std::vector<int64_t>& perm) {
  TensorView r = v;
  for (int i = 0; i < v.rank; ++i) {
    r.shape[i] = v.shape[perm[i]];
    r.strides[i] = v.strides[perm[i]];
  }
  return r;
}

std::optional<TensorView> ReshapeView(const TensorView& v, const Shape& dims) {
  if (static_cast<int>(dims.size()) > kMaxRank) return std::nullopt;
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  if (count != v.NumElements()) return std::nullopt;
  TensorView r;
  r.rank = static_cast<int>(dims.size());
  r.offset = v.offset;
  if (count == 0) {  // an empty tensor: any strides do
    for (int i = 0; i < r.rank; ++i) r.shape[i] = dims[i];
    return r;
  }
  std::vector<int64_t> od, os;  // the input without its size-1 dims
  for (int i = 0; i < v.rank; ++i)
    if (v.shape[i] != 1) od.push_back(v.shape[i]), os.push_back(v.strides[i]);
  size_t oi = 0;
  int ni = 0;
  while (ni < r.rank) {
    if (dims[ni] == 1) {
      r.shape[ni] = 1;
      r.strides[ni] = 0;
      ++ni;
      continue;
    }
    if (oi >= od.size()) return std::nullopt;
    // Grow input dims [oi, oj) and output dims [ni, nj) until their products match.
    int64_t p_in = od[oi], p_out = dims[ni];
    size_t oj = oi + 1;
    int nj = ni + 1;
    while (p_in != p_out) {
      if (p_in < p_out) {
        if (oj >= od.size()) return std::nullopt;
        p_in *= od[oj++];
      } else {
        if (nj >= r.rank) return std::nullopt;
        p_out *= dims[nj++];
      }
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (os[k] != os[k + 1] * od[k + 1]) return std::nullopt;  // the merged run is not contiguous
    int64_t stride = os[oj - 1];
    for (int k = nj - 1; k >= ni; --k) {
      r.shape[k] = dims[k];
      r.strides[k] = dims[k] == 1 ? 0 : stride;
      stride *= dims[k];
    }
    oi = oj;
    ni = nj;
  }
  if (oi != od.size()) return std::nullopt;
  return r;
}

TensorView BroadcastTo(const TensorView& v, const Shape& dims) {
  TensorView r;
  r.rank = static_cast<int>(dims.size());
  r.offset = v.offset;
  const int shift = r.rank - v.rank;
  for (int i = 0; i < r.rank; ++i) {
    r.shape[i] = dims[i];
    const int j = i - shift;
    r.strides[i] = (j >= 0 && v.shape[j] != 1) ? v.strides[j] : 0;
  }
  return r;
}

std::optional<TensorView> InverseLayout(const TensorView& v, const Shape& producer_dims) {
  if (v.offset != 0) return std::nullopt;
  // The copy's destination is contiguous in v's shape: its strides per dim of v.
  int64_t dst_strides[kMaxRank];
  int64_t s = 1;
  for (int i = v.rank - 1; i >= 0; --i) {
    dst_strides[i] = s;
    s *= v.shape[i];
  }
  // v's non-trivial dims in the tensor's memory order (largest stride first) must tile the
  // tensor exactly: stride of each = size of everything after it.
  std::vector<int> order;
  for (int i = 0; i < v.rank; ++i)
    if (v.shape[i] != 1) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return v.strides[a] > v.strides[b]; });
  int64_t expect = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (v.strides[*it] != expect) return std::nullopt;
    expect *= v.shape[*it];
  }
  // The destination seen in the tensor's memory order, then in the producer's shape.
  TensorView w;
  w.rank = static_cast<int>(order.size());
  for (int k = 0; k < w.rank; ++k) {
    w.shape[k] = v.shape[order[k]];
    w.strides[k] = dst_strides[order[k]];
  }
  return ReshapeView(w, producer_dims);
}

}  // namespace phoenix
