// Elementwise Binary / BinaryScalar / Copy (elementwise.h) at BF16 and BF16x3: the dispatched
// kernels (collapsed views, AVX-512 rows, tiled transposes, memcpy) are bit-identical to the
// portable reference on broadcasting patterns, transposed and offset views and NaN / Inf; the
// reference is checked against a direct FP32 evaluation of each element.
#include <cmath>
#include <string>
#include <vector>

#include "common/kernel_isa.h"
#include "common/testing.h"
#include "elementwise/elementwise.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

template <typename T>
std::vector<T> Specials(size_t n) {
  const std::vector<bf16_t> b = SpecialVec(n, 2.0f, 0.02);
  std::vector<T> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = FromF32<T>(Bf16ToF32(b[i]) * (sizeof(T) == 4 ? 1.003f : 1.0f));
  return x;
}

float Apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
  }
  return 0;
}

// Element i (row-major over v's shape) of a view.
int64_t OffsetOf(const TensorView& v, int64_t i) {
  int64_t off = v.offset;
  for (int d = v.rank - 1; d >= 0; --d) {
    off += (i % v.shape[d]) * v.strides[d];
    i /= v.shape[d];
  }
  return off;
}

struct BPat {
  const char* name;
  std::vector<int64_t> ashape, bshape;
  bool transpose_a;
};
const std::vector<BPat> kPatterns = {
    {"contiguous", {4, 37, 50}, {4, 37, 50}, false},
    {"bias along last dim", {4, 37, 50}, {50}, false},
    {"broadcast last dim ([...,1])", {4, 37, 50}, {4, 37, 1}, false},
    {"scalar tensor", {4, 37, 50}, {}, false},
    {"middle broadcast", {4, 37, 50}, {4, 1, 50}, false},
    {"transposed a", {4, 37, 50}, {4, 37, 50}, true},
    {"short rows [4,37,3]", {4, 37, 3}, {4, 37, 3}, false},
    {"one long row", {1500 * 64 + 7}, {1500 * 64 + 7}, false},
};

template <typename T>
void BinaryPatterns() {
  for (const BPat& pat : kPatterns)
    for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv}) {
      const TensorView yv = TensorView::Contiguous(pat.ashape);
      TensorView av = TensorView::Contiguous(pat.ashape);
      if (pat.transpose_a) {  // a stored as [50, 37, 4], read permuted
        const TensorView t = TensorView::Contiguous({pat.ashape[2], pat.ashape[1], pat.ashape[0]});
        for (int d = 0; d < 3; ++d) { av.shape[d] = t.shape[2 - d]; av.strides[d] = t.strides[2 - d]; }
      }
      TensorView bv = yv;  // b broadcast to y's shape with zero strides
      const TensorView bc = TensorView::Contiguous(pat.bshape);
      for (int d = 0; d < yv.rank; ++d) {
        const int bd = d - (yv.rank - bc.rank);
        bv.strides[d] = (bd < 0 || bc.shape[bd] == 1) ? 0 : bc.strides[bd];
      }
      const std::vector<T> A = Specials<T>(av.Extent() + 3), B = Specials<T>(bv.Extent() + 3);
      av.offset = 1;  // views with offsets
      bv.offset = 2;
      const int64_t n = yv.NumElements();
      std::vector<T> r(n), f(n);
      portable::Binary(op, A.data(), av, B.data(), bv, r.data(), yv, 2);
      Binary(op, A.data(), av, B.data(), bv, f.data(), yv, 2);
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i)
        wrong += !SameValue(r[i], FromF32<T>(Apply(op, AsF32(A[OffsetOf(av, i)]), AsF32(B[OffsetOf(bv, i)]))));
      PHX_CHECK(wrong == 0) << "reference, op " << int(op) << " " << pat.name << ": " << wrong << " elements wrong";
      const Agreement ag = Compare(r, f);
      PHX_CHECK(ag.exact == ag.count) << "op " << int(op) << " " << pat.name << ": " << ag.count - ag.exact << " differ";
      for (bool first : {false, true}) {
        portable::BinaryScalar(op, A.data(), av, 0.7071f, first, r.data(), yv, 2);
        BinaryScalar(op, A.data(), av, 0.7071f, first, f.data(), yv, 2);
        wrong = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float x = AsF32(A[OffsetOf(av, i)]);
          wrong += !SameValue(r[i], FromF32<T>(first ? Apply(op, 0.7071f, x) : Apply(op, x, 0.7071f)));
        }
        PHX_CHECK(wrong == 0) << "reference scalar op " << int(op) << " " << pat.name;
        const Agreement as = Compare(r, f);
        PHX_CHECK(as.exact == as.count) << "scalar op " << int(op) << (first ? " s-first " : " ") << pat.name;
      }
    }
}

template <typename T>
void CopyPatterns() {
  struct CPat {
    const char* name;
    std::vector<int64_t> src;
    std::vector<int> perm;
  };
  for (const CPat& c : std::vector<CPat>{{"[T,H,Dh] -> [H,T,Dh]", {150, 8, 64}, {1, 0, 2}},
                                         {"[H,T,Dh] -> [T,H,Dh]", {8, 150, 64}, {1, 0, 2}},
                                         {"K^T [H,T,Dh] -> [H,Dh,T]", {8, 150, 64}, {0, 2, 1}},
                                         {"2-D transpose 77x45", {77, 45}, {1, 0}},
                                         {"[B,C,L] -> [B,L,C] odd", {3, 13, 29}, {0, 2, 1}},
                                         {"contiguous", {5, 7, 300}, {0, 1, 2}},
                                         {"[a,b,c,d] perm 2,0,3,1", {3, 5, 7, 11}, {2, 0, 3, 1}}}) {
    const TensorView s = TensorView::Contiguous(c.src);
    TensorView xv;
    xv.rank = s.rank;
    for (int d = 0; d < s.rank; ++d) { xv.shape[d] = s.shape[c.perm[d]]; xv.strides[d] = s.strides[c.perm[d]]; }
    const TensorView yv = TensorView::Contiguous(xv.Dims());
    const std::vector<T> X = Specials<T>(s.NumElements());
    std::vector<T> r(yv.NumElements()), f(yv.NumElements());
    portable::Copy(X.data(), xv, r.data(), yv, 2);
    Copy(X.data(), xv, f.data(), yv, 2);
    int64_t wrong = 0;
    for (int64_t i = 0; i < yv.NumElements(); ++i) wrong += !SameValue(r[i], X[OffsetOf(xv, i)]);
    PHX_CHECK(wrong == 0) << "reference copy " << c.name;
    const Agreement ag = Compare(r, f);
    PHX_CHECK(ag.exact == ag.count) << "copy " << c.name << ": " << ag.count - ag.exact << " differ";
  }
}

}  // namespace

PHX_TEST(binary_bf16_patterns) { BinaryPatterns<bf16_t>(); }
PHX_TEST(binary_bf16x3_patterns) { BinaryPatterns<split_t>(); }
PHX_TEST(copy_bf16_patterns) { CopyPatterns<bf16_t>(); }
PHX_TEST(copy_bf16x3_patterns) { CopyPatterns<split_t>(); }

int main(int argc, char** argv) { return RunAll(argc, argv); }
