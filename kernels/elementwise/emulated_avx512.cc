// Elementwise rows on AVX-512: elements widened to FP32 (exact), one FP32 operation (IEEE, as
// the scalar reference), one rounding at the store (BF16, or hi + lo for BF16x3; one template
// per row kind): bit-identical to the reference (NaN stays NaN).
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

// p[0] widened to FP32 in every lane (a broadcast operand, stride 0).
template <typename T>
inline __m512 Broadcast(const T* p) {
  return _mm512_broadcastss_ps(_mm512_castps512_ps128(MaskLoad16(p, __mmask16(1))));
}

template <BinaryOp kOp, typename T>
void Row(const T* a, int64_t as, const T* b, int64_t bs, T* y, int64_t n) {
  const __m512 a0 = as ? _mm512_setzero_ps() : Broadcast(a);
  const __m512 b0 = bs ? _mm512_setzero_ps() : Broadcast(b);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 av = as ? MaskLoad16(a + i, m) : a0;
    const __m512 bv = bs ? MaskLoad16(b + i, m) : b0;
    MaskStore16(y + i, m, Apply<kOp>(av, bv));
  }
}

template <BinaryOp kOp, typename T>
void ScalarRow(const T* a, float s, bool scalar_first, T* y, int64_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 av = MaskLoad16(a + i, m);
    MaskStore16(y + i, m, scalar_first ? Apply<kOp>(sv, av) : Apply<kOp>(av, sv));
  }
}

template <typename T>
void BinaryRowOf(BinaryOp op, const T* a, int64_t as, const T* b, int64_t bs, T* y, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd: return Row<BinaryOp::kAdd>(a, as, b, bs, y, n);
    case BinaryOp::kSub: return Row<BinaryOp::kSub>(a, as, b, bs, y, n);
    case BinaryOp::kMul: return Row<BinaryOp::kMul>(a, as, b, bs, y, n);
    case BinaryOp::kDiv: return Row<BinaryOp::kDiv>(a, as, b, bs, y, n);
  }
}

template <typename T>
void BinaryScalarRowOf(BinaryOp op, const T* a, float s, bool scalar_first, T* y, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd: return ScalarRow<BinaryOp::kAdd>(a, s, scalar_first, y, n);
    case BinaryOp::kSub: return ScalarRow<BinaryOp::kSub>(a, s, scalar_first, y, n);
    case BinaryOp::kMul: return ScalarRow<BinaryOp::kMul>(a, s, scalar_first, y, n);
    case BinaryOp::kDiv: return ScalarRow<BinaryOp::kDiv>(a, s, scalar_first, y, n);
  }
}

}  // namespace

void BinaryRow(BinaryOp op, const bf16_t* a, int64_t as, const bf16_t* b, int64_t bs, bf16_t* y, int64_t n) {
  BinaryRowOf(op, a, as, b, bs, y, n);
}
void BinaryRow(BinaryOp op, const split_t* a, int64_t as, const split_t* b, int64_t bs, split_t* y, int64_t n) {
  BinaryRowOf(op, a, as, b, bs, y, n);
}

void BinaryScalarRow(BinaryOp op, const bf16_t* a, float s, bool scalar_first, bf16_t* y, int64_t n) {
  BinaryScalarRowOf(op, a, s, scalar_first, y, n);
}
void BinaryScalarRow(BinaryOp op, const split_t* a, float s, bool scalar_first, split_t* y, int64_t n) {
  BinaryScalarRowOf(op, a, s, scalar_first, y, n);
}

}  // namespace phoenix::kernels::avx512
