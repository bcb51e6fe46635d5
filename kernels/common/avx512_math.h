// AVX-512 (16 FP32 lanes) versions of the shared scalar numerics in bf16.h and gelu.h, for the
// *_avx512.cc kernels ONLY (this header needs -mavx512f -mavx512bw -mavx512vl -mavx512dq).
//
// Every function performs the SAME FP32 operations, in the same order, as its scalar
// definition, so lane i is bit-identical to the scalar result (NaN payloads aside: a NaN in
// stays a NaN out). Two rules make that hold:
//   * no FMA contraction: each *_avx512.cc starts with #pragma GCC optimize("fp-contract=off")
//     before any include, because GCC would otherwise fuse _mm512_mul_ps + _mm512_add_ps, while
//     the scalar reference (baseline x86-64 build, no FMA) rounds after the multiply;
//   * comparisons replicate the scalar branches lane by lane (masks + blends), never min/max.
// Everything is static inline in an anonymous namespace: no weak symbols compiled for AVX-512
// can leak into the baseline translation units through the linker.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/split_bf16.h"

namespace phoenix::kernels::avx512 {
namespace {

inline __m512 Splat(float v) { return _mm512_set1_ps(v); }

// Bf16ToF32 of bf16.h, for one value (a local copy: see the ODR note above).
inline float Bf16ToF32Lane(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// 16 BF16 -> 16 FP32 (exact).
inline __m512 WidenBf16x16(__m256i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)); }
inline __m512 LoadBf16x16(const uint16_t* p) {
  return WidenBf16x16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 MaskLoadBf16x16(const uint16_t* p, __mmask16 m) { return WidenBf16x16(_mm256_maskz_loadu_epi16(m, p)); }

// F32ToBf16 of bf16.h, lane by lane (round to nearest even, NaN -> quiet NaN keeping the sign and
// upper payload, overflow -> Inf, FP32 denormals round to BF16 denormals: NOT vcvtneps2bf16,
// which flushes denormal inputs to zero).
inline __m256i F32ToBf16x16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}
inline void StoreBf16x16(uint16_t* p, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), F32ToBf16x16(v));
}
inline void MaskStoreBf16x16(uint16_t* p, __mmask16 m, __m512 v) { _mm256_mask_storeu_epi16(p, m, F32ToBf16x16(v)); }

// x rounded to BF16 and widened back to FP32 (F32ToBf16 then Bf16ToF32, lane by lane).
inline __m512 RoundBf16V(__m512 x) { return WidenBf16x16(F32ToBf16x16(x)); }

// RoundSplit of bf16.h, lane by lane: hi + bf16(x - hi); Inf and NaN lanes keep hi.
inline __m512 RoundSplitV(__m512 x) {
  const __m512 hi = RoundBf16V(x);
  const __m512 r = _mm512_add_ps(hi, RoundBf16V(_mm512_sub_ps(x, hi)));
  const __mmask16 finite = _mm512_cmplt_ps_mask(_mm512_abs_ps(hi), _mm512_set1_ps(INFINITY));
  return _mm512_mask_mov_ps(hi, finite, r);
}

// Loads and stores of 16 elements for kernels written once for both storage types: BF16
// (widened exactly / rounded to nearest even) and BF16x3 (split_t: FP32 hi + lo / RoundSplitV).
inline __m512 Load16(const uint16_t* p) { return LoadBf16x16(p); }
inline __m512 MaskLoad16(const uint16_t* p, __mmask16 m) { return MaskLoadBf16x16(p, m); }
inline void Store16(uint16_t* p, __m512 v) { StoreBf16x16(p, v); }
inline void MaskStore16(uint16_t* p, __mmask16 m, __m512 v) { MaskStoreBf16x16(p, m, v); }
inline __m512 Load16(const split_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
inline __m512 MaskLoad16(const split_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(p)); }
inline void Store16(split_t* p, __m512 v) { _mm512_storeu_ps(reinterpret_cast<float*>(p), RoundSplitV(v)); }
inline void MaskStore16(split_t* p, __mmask16 m, __m512 v) {
  _mm512_mask_storeu_ps(reinterpret_cast<float*>(p), m, RoundSplitV(v));
}

inline __mmask16 TailMask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// 2^f for f in [-0.5, 0.5]: KernelExp's Horner polynomial (bf16.h), same order, no FMA.
inline __m512 Exp2Poly(__m512 f) {
  __m512 p = Splat(1.5403530393381606e-4f);
  p = _mm512_add_ps(_mm512_mul_ps(p, f), Splat(1.3333558146428443e-3f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), Splat(9.6181291076284772e-3f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), Splat(5.5504108664821580e-2f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), Splat(2.4022650695910071e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), Splat(6.9314718055994531e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), Splat(1.0f));
  return p;
}

// KernelExp (bf16.h).
inline __m512 ExpV(__m512 x) {
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const __m512 t = _mm512_mul_ps(x, Splat(1.44269504088896341f));
  const __mmask16 big = _mm512_cmp_ps_mask(t, Splat(128.0f), _CMP_GE_OQ);
  const __mmask16 small = _mm512_cmp_ps_mask(t, Splat(-126.0f), _CMP_LE_OQ);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  const __m512 p = Exp2Poly(f);
  // n is integral and, on the lanes kept, in [-126, 128]: the conversion is exact.
  const __m512i e = _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127));
  __m512 r = _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(e, 23)));
  r = _mm512_mask_mov_ps(r, small, _mm512_setzero_ps());
  r = _mm512_mask_mov_ps(r, big, Splat(INFINITY));
  return _mm512_mask_mov_ps(r, nan, x);
}

// KernelExp for arguments that are <= 0 or NaN (softmax: scale*x - max): the t >= 128 branch
// cannot fire and a NaN argument already gives a NaN through the polynomial, so those blends
// are dropped; the exponent is applied with vscalefps (p * 2^n, n integral, one rounding like
// the reference's p * 2^n). Bit-identical to KernelExp over every FP32 value <= 0, and over
// every value below 88 too (n <= 127: KernelExp's 2^n is a normal float, its p * 2^n the same
// one rounding), which ErfV relies on.
inline __m512 ExpNonPositive(__m512 x) {
  const __m512 t = _mm512_mul_ps(x, Splat(1.44269504088896341f));
  const __mmask16 small = _mm512_cmp_ps_mask(t, Splat(-126.0f), _CMP_LE_OQ);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_maskz_scalef_ps(static_cast<__mmask16>(~small), Exp2Poly(_mm512_sub_ps(t, n)), n);
}

// 1.0f / d for d >= 1 or NaN, bit for bit (correctly rounded), without vdivps (about 10 cycles
// a zmm on this class of CPU, most of GELU's cost in a MatMul epilogue): vrcp14ps then two
// Newton steps with FMA (explicit intrinsics, each rounded once; fp-contract does not apply).
// Checked over every FP32 d in [1, Inf) (kernels/gelu/tests: recip_at_least_one_*): the result
// equals the division except where d's mantissa is all ones or d >= 2^126 (the reciprocal is
// then subnormal), and those lanes (2^-23 of the rest, and Inf / NaN) are divided.
inline __m512 RecipAtLeastOne(__m512 d) {
  const __m512 one = Splat(1.0f);
  const __m512 y0 = _mm512_rcp14_ps(d);
  const __m512 y1 = _mm512_fmadd_ps(y0, _mm512_fnmadd_ps(d, y0, one), y0);
  const __m512 y2 = _mm512_fmadd_ps(y1, _mm512_fnmadd_ps(d, y1, one), y1);
  const __m512i mant = _mm512_set1_epi32(0x7fffff);
  const __mmask16 exc = _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(d), mant), mant) |
                        _mm512_cmp_ps_mask(d, Splat(0x1p126f), _CMP_NLT_UQ);
  return __builtin_expect(exc == 0, 1) ? y2 : _mm512_mask_div_ps(y2, exc, one, d);
}

// KernelErf (bf16.h). Same expression tree: poly = ((-z * z) - 1.26551223) + t * (...).
// t = 1 / (1 + z / 2) by RecipAtLeastOne (bit-identical); exp(poly) by ExpNonPositive: poly <=
// -z^2 - 1.27 + t * q with t in [0, 1] and |q| < 6.5 (the sum of |coefficients|), so poly < 6
// (or NaN with x), where ExpNonPositive equals KernelExp (see there).
inline __m512 ErfV(__m512 x) {
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const __m512 z = _mm512_andnot_ps(Splat(-0.0f), x);
  const __m512 t = RecipAtLeastOne(_mm512_add_ps(Splat(1.0f), _mm512_mul_ps(Splat(0.5f), z)));
  __m512 q = _mm512_add_ps(Splat(-0.82215223f), _mm512_mul_ps(t, Splat(0.17087277f)));
  q = _mm512_add_ps(Splat(1.48851587f), _mm512_mul_ps(t, q));
  q = _mm512_add_ps(Splat(-1.13520398f), _mm512_mul_ps(t, q));
  q = _mm512_add_ps(Splat(0.27886807f), _mm512_mul_ps(t, q));
  q = _mm512_add_ps(Splat(-0.18628806f), _mm512_mul_ps(t, q));
  q = _mm512_add_ps(Splat(0.09678418f), _mm512_mul_ps(t, q));
  q = _mm512_add_ps(Splat(0.37409196f), _mm512_mul_ps(t, q));
  q = _mm512_add_ps(Splat(1.00002368f), _mm512_mul_ps(t, q));
  const __m512 negz = _mm512_xor_ps(z, Splat(-0.0f));
  const __m512 poly = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(negz, z), Splat(1.26551223f)), _mm512_mul_ps(t, q));
  const __m512 erfc = _mm512_mul_ps(t, ExpNonPositive(poly));
  const __m512 r = _mm512_sub_ps(Splat(1.0f), erfc);
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 out = _mm512_mask_mov_ps(r, neg, _mm512_xor_ps(r, Splat(-0.0f)));
  return _mm512_mask_mov_ps(out, nan, x);
}

// KernelTanh (bf16.h).
inline __m512 TanhV(__m512 x) {
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const __mmask16 hi = _mm512_cmp_ps_mask(x, Splat(9.0f), _CMP_GT_OQ);
  const __mmask16 lo = _mm512_cmp_ps_mask(x, Splat(-9.0f), _CMP_LT_OQ);
  const __m512 e = ExpV(_mm512_mul_ps(Splat(2.0f), x));
  __m512 r = _mm512_sub_ps(Splat(1.0f), _mm512_div_ps(Splat(2.0f), _mm512_add_ps(e, Splat(1.0f))));
  r = _mm512_mask_mov_ps(r, hi, Splat(1.0f));
  r = _mm512_mask_mov_ps(r, lo, Splat(-1.0f));
  return _mm512_mask_mov_ps(r, nan, x);
}

// GeluF32 (gelu.h): erf form when tanh_form is false.
inline __m512 GeluV(__m512 x, bool tanh_form) {
  if (!tanh_form) {
    const __m512 e = ErfV(_mm512_mul_ps(x, Splat(0.70710678118654752f)));
    return _mm512_mul_ps(_mm512_mul_ps(Splat(0.5f), x), _mm512_add_ps(Splat(1.0f), e));
  }
  const __m512 cube = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(Splat(0.044715f), x), x), x);
  const __m512 th = TanhV(_mm512_mul_ps(Splat(0.79788456080286536f), _mm512_add_ps(x, cube)));
  return _mm512_mul_ps(_mm512_mul_ps(Splat(0.5f), x), _mm512_add_ps(Splat(1.0f), th));
}

}  // namespace
}  // namespace phoenix::kernels::avx512
