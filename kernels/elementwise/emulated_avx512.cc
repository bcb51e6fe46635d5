// Elementwise rows on AVX-512: BF16 -> FP32 (exact), one FP32 operation (IEEE, as the scalar
// reference), one BF16 rounding: bit-identical to the reference (NaN stays NaN).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/avx512_math.h"
#include "common/kernel_isa.h"

namespace phoenix::kernels::avx512 {
namespace {

template <BinaryOp kOp>
inline __m512 Apply(__m512 a, __m512 b) {
  if (kOp == BinaryOp::kAdd) return _mm512_add_ps(a, b);
  if (kOp == BinaryOp::kSub) return _mm512_sub_ps(a, b);
  if (kOp == BinaryOp::kMul) return _mm512_mul_ps(a, b);
  return _mm512_div_ps(a, b);
}

template <BinaryOp kOp>
void Row(const bf16_t* a, int64_t as, const bf16_t* b, int64_t bs, bf16_t* y, int64_t n) {
  const __m512 a0 = as ? _mm512_setzero_ps() : _mm512_set1_ps(Bf16ToF32Lane(a[0]));
  const __m512 b0 = bs ? _mm512_setzero_ps() : _mm512_set1_ps(Bf16ToF32Lane(b[0]));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 av = as ? MaskLoadBf16x16(a + i, m) : a0;
    const __m512 bv = bs ? MaskLoadBf16x16(b + i, m) : b0;
    MaskStoreBf16x16(y + i, m, Apply<kOp>(av, bv));
  }
}

template <BinaryOp kOp>
void ScalarRow(const bf16_t* a, float s, bool scalar_first, bf16_t* y, int64_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 av = MaskLoadBf16x16(a + i, m);
    MaskStoreBf16x16(y + i, m, scalar_first ? Apply<kOp>(sv, av) : Apply<kOp>(av, sv));
  }
}

}  // namespace

void BinaryRow(BinaryOp op, const bf16_t* a, int64_t as, const bf16_t* b, int64_t bs, bf16_t* y, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd: return Row<BinaryOp::kAdd>(a, as, b, bs, y, n);
    case BinaryOp::kSub: return Row<BinaryOp::kSub>(a, as, b, bs, y, n);
    case BinaryOp::kMul: return Row<BinaryOp::kMul>(a, as, b, bs, y, n);
    case BinaryOp::kDiv: return Row<BinaryOp::kDiv>(a, as, b, bs, y, n);
  }
}

void BinaryScalarRow(BinaryOp op, const bf16_t* a, float s, bool scalar_first, bf16_t* y, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd: return ScalarRow<BinaryOp::kAdd>(a, s, scalar_first, y, n);
    case BinaryOp::kSub: return ScalarRow<BinaryOp::kSub>(a, s, scalar_first, y, n);
    case BinaryOp::kMul: return ScalarRow<BinaryOp::kMul>(a, s, scalar_first, y, n);
    case BinaryOp::kDiv: return ScalarRow<BinaryOp::kDiv>(a, s, scalar_first, y, n);
  }
}

}  // namespace phoenix::kernels::avx512
