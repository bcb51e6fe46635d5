// BF16 storage and the shared scalar numerics of every kernel (emulated and AIE).
//
// Contract (DESIGN.md, "Numerics contract"): tensors between kernels are BF16, rounded to
// nearest-even from FP32; NaN stays NaN (quiet), overflow past the BF16 range becomes Inf.
// Reductions and accumulations run in FP32. The transcendental functions below are the ONE
// definition used by the emulated kernels; each AIE kernel implements the same steps.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/split_bf16.h"

namespace phoenix {

using bf16_t = uint16_t;

inline float Bf16ToF32(bf16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline bf16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep sign, force a quiet payload
    return static_cast<bf16_t>((bits >> 16) | 0x0040u);
  }
  // Round to nearest, ties to even. Carries into the exponent correctly, including to Inf.
  uint32_t lsb = (bits >> 16) & 1u;
  bits += 0x7fffu + lsb;
  return static_cast<bf16_t>(bits >> 16);
}

// BF16x3 rounding (split_bf16.h): hi = bf16(f), lo = bf16(f - hi), returned as hi + lo.
// Inf and NaN stay as BF16 rounds them (f past the BF16 range becomes Inf, as for bf16_t).
inline float RoundSplit(float f) {
  const float hi = Bf16ToF32(F32ToBf16(f));
  if (!std::isfinite(hi)) return hi;
  return hi + Bf16ToF32(F32ToBf16(f - hi));
}

// The two halves of a BF16x3 value: hi = bf16(v) and lo = v - hi (exact, so bf16(v - hi) = v - hi).
// Inf and NaN have lo = 0, and their hi is replaced by 0 in the cross terms (SplitHiCross): the
// products hi*lo and lo*hi must never be Inf * 0 = NaN where the FP32 product is +-Inf.
inline bf16_t SplitHi(split_t s) { return F32ToBf16(s.v); }
inline bf16_t SplitLo(split_t s) {
  return std::isfinite(s.v) ? F32ToBf16(s.v - Bf16ToF32(F32ToBf16(s.v))) : bf16_t(0);
}
inline bf16_t SplitHiCross(split_t s) { return std::isfinite(s.v) ? SplitHi(s) : bf16_t(0); }

// Element access for kernels written once for both storage types.
inline float ToF32(bf16_t v) { return Bf16ToF32(v); }
inline float ToF32(split_t v) { return v.v; }
template <typename T> T FromF32(float f);
template <> inline bf16_t FromF32<bf16_t>(float f) { return F32ToBf16(f); }
template <> inline split_t FromF32<split_t>(float f) { return split_t{RoundSplit(f)}; }

// exp(x) for the kernels: exp2(x * log2(e)) with range reduction to [-0.5, 0.5] and a
// degree-6 polynomial for 2^f (relative error < 2e-7 before BF16 rounding), then the integer
// part goes into the exponent. -Inf -> 0, +Inf -> Inf, NaN -> NaN, underflow flushes to 0
// (AIE2 has no denormals).
inline float KernelExp(float x) {
  if (std::isnan(x)) return x;
  float t = x * 1.44269504088896341f;
  if (t >= 128.0f) return INFINITY;
  if (t <= -126.0f) return 0.0f;
  float n = std::nearbyint(t);
  float f = t - n;  // in [-0.5, 0.5]
  // Taylor coefficients of 2^f = e^(f ln2), Horner order fixed (the AIE kernel uses the same).
  float p = 1.5403530393381606e-4f;
  p = p * f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  int32_t e = static_cast<int32_t>(n) + 127;
  uint32_t scale_bits = static_cast<uint32_t>(e) << 23;
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

// erf(x): Abramowitz & Stegun 7.1.26-style rational form refined to |error| < 1.2e-7 (the
// Numerical Recipes erfc Chebyshev fit), using KernelExp. Odd symmetry handled explicitly.
inline float KernelErf(float x) {
  if (std::isnan(x)) return x;
  float z = std::fabs(x);
  float t = 1.0f / (1.0f + 0.5f * z);
  float poly = -z * z - 1.26551223f +
               t * (1.00002368f +
               t * (0.37409196f +
               t * (0.09678418f +
               t * (-0.18628806f +
               t * (0.27886807f +
               t * (-1.13520398f +
               t * (1.48851587f +
               t * (-0.82215223f +
               t * 0.17087277f))))))));
  float erfc = t * KernelExp(poly);
  float r = 1.0f - erfc;
  return x < 0.0f ? -r : r;
}

// tanh(x) = 1 - 2 / (exp(2x) + 1), saturating for |x| > 9 (tanh is 1 to FP32 precision).
inline float KernelTanh(float x) {
  if (std::isnan(x)) return x;
  if (x > 9.0f) return 1.0f;
  if (x < -9.0f) return -1.0f;
  return 1.0f - 2.0f / (KernelExp(2.0f * x) + 1.0f);
}

// 1/sqrt(v), correctly rounded FP32 (the AIE kernel refines aie::invsqrt with one Newton step).
inline float KernelRsqrt(float v) { return 1.0f / std::sqrt(v); }

}  // namespace phoenix
