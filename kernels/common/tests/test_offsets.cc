// Offsets and sizes from untrusted dims (issue 11, item 5): the 32-bit gather bound used by the
// AVX-512 LayerNorm, MatMul B^T packing and attention key packing, the saturating element count
// and extent of TensorView, the batch counts, and the dispatchers' overflow-checked scratch
// sizes (a std::length_error on the calling thread, which the provider turns into an error).
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "attention/attention.h"
#include "common/checked_size.h"
#include "common/tensor_view.h"
#include "common/testing.h"
#include "matmul/matmul.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

// AVX-512 LayerNorm: 16 rows per gather, lane j at j * cols * 2 bytes, reading a 32-bit pair.
// Before the fix the offsets wrapped for rows of 71.6M BF16 elements; now such rows take the
// scalar statistics. The boundary, exactly:
PHX_TEST(layernorm_gather_bound) {
  const int64_t last_ok = (INT32_MAX - 4) / 15 / 2;  // 71,582,788 elements
  PHX_CHECK(last_ok == 71582788) << last_ok;
  PHX_CHECK(GatherOffsetsFit(last_ok, 2, 16, 4));
  PHX_CHECK(!GatherOffsetsFit(last_ok + 1, 2, 16, 4));
  PHX_CHECK(15 * (last_ok + 1) * 2 + 4 > INT32_MAX);  // the old code's product would have wrapped here
  PHX_CHECK(GatherOffsetsFit(512, 2, 16, 4));          // Whisper rows gather
  PHX_CHECK(GatherOffsetsFit(512, 4, 16, 8));          // BF16x3 rows: FP32 gathers
  PHX_CHECK(!GatherOffsetsFit(int64_t{1} << 40, 2, 16, 4));
  PHX_CHECK(!GatherOffsetsFit(INT64_MAX, 2, 16, 4));    // no overflow inside the check itself
  PHX_CHECK(!GatherOffsetsFit(-1, 2, 16, 4));
  PHX_CHECK(GatherOffsetsFit(INT64_MAX, 2, 1, 4));      // one lane: offset 0 only
}

// MatMul's K^T packing (16 columns of stride cs) and attention's key tiles (12 keys of stride rs).
PHX_TEST(pack_gather_bounds) {
  PHX_CHECK(GatherOffsetsFit(1536, 2, 16, 4));   // K^T read in place from a fused QKV [T, 3D]
  PHX_CHECK(!GatherOffsetsFit((INT32_MAX / 15) / 2 + 1, 2, 16, 4));
  PHX_CHECK(GatherOffsetsFit(1536, 2, 12, 4));
  PHX_CHECK(!GatherOffsetsFit((INT32_MAX / 11) / 2 + 1, 2, 12, 4));
}

PHX_TEST(tensor_view_sizes_saturate) {
  // Contiguous() of dims whose product overflows: no signed overflow (UBSan runs this), strides
  // saturate, and so do the element count and extent.
  const TensorView huge = TensorView::Contiguous({4, int64_t{1} << 40, int64_t{1} << 40});
  PHX_CHECK(huge.strides[0] == INT64_MAX && huge.strides[1] == int64_t{1} << 40 && huge.strides[2] == 1);
  PHX_CHECK(huge.Extent() == INT64_MAX && huge.NumElements() == INT64_MAX);
  TensorView v = TensorView::Contiguous({int64_t{1} << 40, int64_t{1} << 40});
  PHX_CHECK(v.NumElements() == INT64_MAX);
  PHX_CHECK(v.Extent() == INT64_MAX);  // a bounds check against any buffer now fails
  v.strides[0] = 0;  // broadcast rows: the extent is the last row
  PHX_CHECK(v.Extent() == int64_t{1} << 40) << v.Extent();
  TensorView empty = TensorView::Contiguous({int64_t{1} << 40, int64_t{1} << 40, 0});
  PHX_CHECK(empty.NumElements() == 0 && empty.Extent() == 0);
  TensorView big_stride;
  big_stride.rank = 1;
  big_stride.shape[0] = 3;
  big_stride.strides[0] = INT64_MAX / 2 + 1;
  PHX_CHECK(big_stride.Extent() == INT64_MAX);
  PHX_CHECK(TensorView::Contiguous({3, 5}).Extent() == 15);
}

PHX_TEST(batch_counts_saturate) {
  MatMulArgs m;
  m.batch_rank = 3;
  m.batch_shape[0] = m.batch_shape[1] = m.batch_shape[2] = int64_t{1} << 30;
  PHX_CHECK(m.BatchCount() == INT64_MAX);
  AttentionArgs a;
  a.batch_rank = 2;
  a.batch_shape[0] = a.batch_shape[1] = int64_t{1} << 40;
  PHX_CHECK(a.BatchCount() == INT64_MAX);
}

PHX_TEST(checked_mul_throws) {
  PHX_CHECK(CheckedMul(int64_t{1} << 31, int64_t{1} << 31, "x") == int64_t{1} << 62);
  bool threw = false;
  try {
    CheckedMul(int64_t{1} << 32, int64_t{1} << 32, "x");
  } catch (const std::length_error&) {
    threw = true;
  }
  PHX_CHECK(threw);
  threw = false;
  try {
    CheckedAdd(INT64_MAX, 1, "x");
  } catch (const std::length_error&) {
    threw = true;
  }
  PHX_CHECK(threw);
}

// A MatMul whose operands are broadcast views (stride 0 along K) of one element each: the
// views fit any buffer, but K = 2^61 makes the packed operands' sizes overflow int64. The
// dispatcher must refuse on the calling thread, before any allocation or loop.
PHX_TEST(matmul_refuses_overflowing_scratch) {
  std::vector<bf16_t> A(1, 0x3f80), B(1, 0x3f80), C(1, 0);
  MatMulArgs a;
  a.M = 1; a.N = 1; a.K = int64_t{1} << 61;
  a.a_rs = 0; a.a_cs = 0; a.b_rs = 0; a.b_cs = 0; a.c_rs = 1; a.c_cs = 1;
  bool threw = false;
  try {
    MatMul(a, A.data(), B.data(), C.data(), 1);
  } catch (const std::length_error&) {
    threw = true;
  }
  PHX_CHECK(threw) << "no error for K = 2^61";
  PHX_CHECK(C[0] == 0) << "the output was written";
}

PHX_TEST(attention_refuses_overflowing_scratch) {
  std::vector<bf16_t> Q(1, 0x3f80), K(1, 0x3f80), V(1, 0x3f80), O(1, 0);
  AttentionArgs a;
  a.M = 1; a.N = int64_t{1} << 62; a.D = 1; a.Dv = 1;
  a.q_rs = a.k_rs = a.v_rs = a.o_rs = 0;
  a.q_cs = a.k_cs = a.v_cs = a.o_cs = 0;
  bool threw = false;
  try {
    Attention(a, Q.data(), K.data(), V.data(), O.data(), 1);
  } catch (const std::length_error&) {
    threw = true;
  }
  PHX_CHECK(threw) << "no error for N = 2^62";
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
