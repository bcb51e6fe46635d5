// View algebra (provider/views.h) against index arithmetic: Permute, ReshapeView (when it
// succeeds it addresses exactly the elements a copy-then-reshape would, and it refuses when it
// cannot), BroadcastTo, and InverseLayout (writing through it equals copying through the view).
#include <numeric>
#include <vector>

#include "common/testing.h"
#include "views.h"

using namespace phoenix;
using namespace phoenix::testing;

namespace {

// Offsets of every element of `v` in row-major order of its shape.
std::vector<int64_t> Offsets(const TensorView& v) {
  std::vector<int64_t> out;
  const int64_t n = v.NumElements();
  int64_t idx[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = v.offset;
    for (int d = 0; d < v.rank; ++d) off += idx[d] * v.strides[d];
    out.push_back(off);
    for (int d = v.rank - 1; d >= 0; --d) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

Shape RandomShape(int rank, int max_dim) {
  Shape s(rank);
  for (int64_t& d : s) d = UniformInt(1, max_dim);
  return s;
}

std::vector<int64_t> RandomPerm(int rank) {
  std::vector<int64_t> p(rank);
  std::iota(p.begin(), p.end(), 0);
  std::shuffle(p.begin(), p.end(), Rng());
  return p;
}

// A random reshape target of n elements with up to `rank` dims.
Shape RandomFactoring(int64_t n, int rank) {
  Shape s;
  for (int i = 0; i + 1 < rank && n > 1; ++i) {
    std::vector<int64_t> divisors;
    for (int64_t d = 1; d <= n; ++d)
      if (n % d == 0) divisors.push_back(d);
    const int64_t d = divisors[UniformInt(0, static_cast<int>(divisors.size()) - 1)];
    s.push_back(d);
    n /= d;
  }
  s.push_back(n);
  return s;
}

}  // namespace

PHX_TEST(permute_moves_shape_and_strides) {
  const TensorView v = TensorView::Contiguous({2, 3, 4});
  const TensorView p = Permute(v, {2, 0, 1});
  PHX_CHECK(p.Dims() == Shape({4, 2, 3}));
  PHX_CHECK(p.strides[0] == 1 && p.strides[1] == 12 && p.strides[2] == 4);
}

PHX_TEST(reshape_view_matches_copy_then_reshape) {
  int viewed = 0, refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int rank = UniformInt(1, 4);
    const Shape dims = RandomShape(rank, 4);
    const TensorView v = Permute(TensorView::Contiguous(dims, UniformInt(0, 5)), RandomPerm(rank));
    const Shape target = RandomFactoring(v.NumElements(), UniformInt(1, 5));
    const auto r = ReshapeView(v, target);
    // What a copy of v, reshaped, reads: v's offsets in row-major order.
    const std::vector<int64_t> want = Offsets(v);
    if (!r) {
      ++refused;
      continue;
    }
    ++viewed;
    PHX_CHECK(r->Dims() == target);
    PHX_CHECK(Offsets(*r) == want) << "view " << v.ToString() << " as " << r->ToString();
  }
  PHX_CHECK(viewed > 1000 && refused > 100) << viewed << " viewed, " << refused << " refused";
  // Contiguous tensors can always be viewed, and a different element count never.
  PHX_CHECK(ReshapeView(TensorView::Contiguous({6, 4}), {2, 3, 4}).has_value());
  PHX_CHECK(!ReshapeView(TensorView::Contiguous({6, 4}), {2, 3, 5}).has_value());
  PHX_CHECK(!ReshapeView(TensorView::Contiguous({1, 4}), {1024, 4}).has_value());
}

PHX_TEST(broadcast_gives_stride_zero_to_new_and_unit_dims) {
  const TensorView b = BroadcastTo(TensorView::Contiguous({1, 5}), {3, 4, 5});
  PHX_CHECK(b.Dims() == Shape({3, 4, 5}));
  PHX_CHECK(b.strides[0] == 0 && b.strides[1] == 0 && b.strides[2] == 1);
}

PHX_TEST(inverse_layout_writes_where_the_copy_would) {
  int folded = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const int rank = UniformInt(1, 4);
    const Shape producer = RandomShape(rank, 4);
    // The consumer sees the producer's tensor reshaped (a view), then permuted: the Copy case
    // (attention heads: [T, D] -> [T, H, dh] -> [H, T, dh]).
    const Shape seen = RandomFactoring(TensorView::Contiguous(producer).NumElements(), UniformInt(1, 4));
    TensorView v = Permute(*ReshapeView(TensorView::Contiguous(producer), seen), RandomPerm(static_cast<int>(seen.size())));
    const auto layout = InverseLayout(v, producer);
    if (!layout) continue;
    ++folded;
    // Copy semantics: dst[j] = src[v(j)]. Folded: the producer writes element i at layout(i).
    const std::vector<int64_t> src_of_dst = Offsets(v);          // j -> source offset
    const std::vector<int64_t> dst_of_src = Offsets(*layout);     // i -> destination offset
    bool same = static_cast<int64_t>(dst_of_src.size()) == v.NumElements();
    for (size_t j = 0; same && j < src_of_dst.size(); ++j) same = dst_of_src[src_of_dst[j]] == static_cast<int64_t>(j);
    PHX_CHECK(same) << "producer " << TensorView::Contiguous(producer).ToString() << " read as " << v.ToString();
  }
  PHX_CHECK(folded > 1000) << folded;
  // A view that does not visit every element once (broadcast) has no inverse.
  PHX_CHECK(!InverseLayout(BroadcastTo(TensorView::Contiguous({1, 4}), {3, 4}), {3, 4}).has_value());
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
