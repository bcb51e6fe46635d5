// AVX2 (8 FP32 lanes) versions of the shared scalar numerics in bf16.h and gelu.h, for the
// *_avx2.cc kernels ONLY (this header needs -mavx2 -mfma). The 8-lane twin of avx512_math.h,
// under the same two rules, so lane i is bit-identical to the scalar result:
//   * no FMA contraction: each *_avx2.cc starts with #pragma GCC optimize("fp-contract=off");
//   * comparisons replicate the scalar branches lane by lane (compares + blends), never min/max.
// Everything is static inline in an anonymous namespace (no AVX2 code can leak into baseline
// translation units through the linker).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/split_bf16.h"

namespace phoenix::kernels::avx2 {
namespace {

inline __m256 Splat(float v) { return _mm256_set1_ps(v); }

// 8 BF16 -> 8 FP32 (exact).
inline __m256 WidenBf16x8(__m128i v) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16)); }

// F32ToBf16 of bf16.h, lane by lane (nearest even, NaN -> quiet NaN keeping sign and upper
// payload, overflow -> Inf, FP32 denormals round to BF16 denormals).
inline __m128i F32ToBf16x8(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40)), nan);
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));  // values <= 0xffff
}

// x rounded to BF16 and widened back (F32ToBf16 then Bf16ToF32).
inline __m256 RoundBf16V(__m256 x) { return WidenBf16x8(F32ToBf16x8(x)); }

// RoundSplit of bf16.h: hi + bf16(x - hi); Inf and NaN lanes keep hi.
inline __m256 RoundSplitV(__m256 x) {
  const __m256 hi = RoundBf16V(x);
  const __m256 r = _mm256_add_ps(hi, RoundBf16V(_mm256_sub_ps(x, hi)));
  const __m256 abs_hi = _mm256_andnot_ps(Splat(-0.0f), hi);
  return _mm256_blendv_ps(hi, r, _mm256_cmp_ps(abs_hi, Splat(INFINITY), _CMP_LT_OQ));
}

// 8 elements of either storage type, widened exactly / rounded once (BF16, or hi + lo).
inline __m256 Load8(const uint16_t* p) { return WidenBf16x8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 Load8(const split_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline void Store8(uint16_t* p, __m256 v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), F32ToBf16x8(v)); }
inline void Store8(split_t* p, __m256 v) { _mm256_storeu_ps(reinterpret_cast<float*>(p), RoundSplitV(v)); }

// The first n (< 8) elements through a small buffer (no access past p + n).
template <typename T>
inline __m256 LoadN(const T* p, int n) {
  T tmp[8] = {};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return Load8(tmp);
}
template <typename T>
inline void StoreN(T* p, int n, __m256 v) {
  T tmp[8];
  Store8(tmp, v);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}

// 2^f for f in [-0.5, 0.5]: KernelExp's Horner polynomial (bf16.h), same order, no FMA.
inline __m256 Exp2Poly(__m256 f) {
  __m256 p = Splat(1.5403530393381606e-4f);
  p = _mm256_add_ps(_mm256_mul_ps(p, f), Splat(1.3333558146428443e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), Splat(9.6181291076284772e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), Splat(5.5504108664821580e-2f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), Splat(2.4022650695910071e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), Splat(6.9314718055994531e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), Splat(1.0f));
  return p;
}

// KernelExp (bf16.h).
inline __m256 ExpV(__m256 x) {
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 t = _mm256_mul_ps(x, Splat(1.44269504088896341f));
  const __m256 big = _mm256_cmp_ps(t, Splat(128.0f), _CMP_GE_OQ);
  const __m256 small = _mm256_cmp_ps(t, Splat(-126.0f), _CMP_LE_OQ);
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 p = Exp2Poly(_mm256_sub_ps(t, n));
  // n is integral and, on the lanes kept, in [-126, 128]: the conversion is exact.
  const __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
  __m256 r = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
  r = _mm256_blendv_ps(r, _mm256_setzero_ps(), small);
  r = _mm256_blendv_ps(r, Splat(INFINITY), big);
  return _mm256_blendv_ps(r, x, nan);
}

// KernelErf (bf16.h). Same expression tree: poly = ((-z * z) - 1.26551223) + t * (...).
inline __m256 ErfV(__m256 x) {
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 z = _mm256_andnot_ps(Splat(-0.0f), x);
  const __m256 t = _mm256_div_ps(Splat(1.0f), _mm256_add_ps(Splat(1.0f), _mm256_mul_ps(Splat(0.5f), z)));
  __m256 q = _mm256_add_ps(Splat(-0.82215223f), _mm256_mul_ps(t, Splat(0.17087277f)));
  q = _mm256_add_ps(Splat(1.48851587f), _mm256_mul_ps(t, q));
  q = _mm256_add_ps(Splat(-1.13520398f), _mm256_mul_ps(t, q));
  q = _mm256_add_ps(Splat(0.27886807f), _mm256_mul_ps(t, q));
  q = _mm256_add_ps(Splat(-0.18628806f), _mm256_mul_ps(t, q));
  q = _mm256_add_ps(Splat(0.09678418f), _mm256_mul_ps(t, q));
  q = _mm256_add_ps(Splat(0.37409196f), _mm256_mul_ps(t, q));
  q = _mm256_add_ps(Splat(1.00002368f), _mm256_mul_ps(t, q));
  const __m256 negz = _mm256_xor_ps(z, Splat(-0.0f));
  const __m256 poly = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(negz, z), Splat(1.26551223f)), _mm256_mul_ps(t, q));
  const __m256 r = _mm256_sub_ps(Splat(1.0f), _mm256_mul_ps(t, ExpV(poly)));
  const __m256 out = _mm256_blendv_ps(r, _mm256_xor_ps(r, Splat(-0.0f)), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  return _mm256_blendv_ps(out, x, nan);
}

// KernelTanh (bf16.h).
inline __m256 TanhV(__m256 x) {
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 hi = _mm256_cmp_ps(x, Splat(9.0f), _CMP_GT_OQ);
  const __m256 lo = _mm256_cmp_ps(x, Splat(-9.0f), _CMP_LT_OQ);
  const __m256 e = ExpV(_mm256_mul_ps(Splat(2.0f), x));
  __m256 r = _mm256_sub_ps(Splat(1.0f), _mm256_div_ps(Splat(2.0f), _mm256_add_ps(e, Splat(1.0f))));
  r = _mm256_blendv_ps(r, Splat(1.0f), hi);
  r = _mm256_blendv_ps(r, Splat(-1.0f), lo);
  return _mm256_blendv_ps(r, x, nan);
}

// GeluF32 (gelu.h): erf form when tanh_form is false.
inline __m256 GeluV(__m256 x, bool tanh_form) {
  if (!tanh_form) {
    const __m256 e = ErfV(_mm256_mul_ps(x, Splat(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(Splat(0.5f), x), _mm256_add_ps(Splat(1.0f), e));
  }
  const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(Splat(0.044715f), x), x), x);
  const __m256 th = TanhV(_mm256_mul_ps(Splat(0.79788456080286536f), _mm256_add_ps(x, cube)));
  return _mm256_mul_ps(_mm256_mul_ps(Splat(0.5f), x), _mm256_add_ps(Splat(1.0f), th));
}

}  // namespace
}  // namespace phoenix::kernels::avx2
