// AIE2 (AIE-ML, npu1) vector versions of the scalar numerics in kernels/common/bf16.h.
// NOT YET COMPILED OR RUN: this machine has no Peano/mlir-aie; written against the AIE API.
//
// Each function follows the steps of its bf16.h counterpart, 16 FP32 lanes at a time:
//   Exp16   = KernelExp   (x*log2e, round-to-nearest-even n, f = t - n, the same degree-6
//                          Horner polynomial in the same order, 2^n built in the exponent bits,
//                          t >= 128 -> +Inf, t <= -126 -> 0, NaN -> NaN)
//   Erf16   = KernelErf   (t = 1/(1 + z/2), the same 9-step Horner fit, t*Exp(poly), sign)
//   Tanh16  = KernelTanh  (1 - 2/(Exp(2x)+1), saturating past |x| > 9)
//   Rsqrt   = KernelRsqrt (aie::invsqrt + one Newton step; KernelRsqrt is the correctly
//                          rounded 1/sqrt, so the last bit may differ)
// Where the hardware differs: AIE-ML has no FP32 vector multiplier; Peano emulates a 16-lane FP32
// multiply with BF16 products, by default "safe" (13 MAC-slot instructions; macros
// AIE2_FP32_EMULATION_ACCURACY_FAST / _LOW in llvm-aie's aiev2_core.h select cheaper, less
// accurate forms; build_xclbin.py keeps the default). FP32 adds run natively on the accumulator.
// Float comparisons: only lt / ge / gt are used (Peano's aiev2 float compares; no le / neq on
// float vectors), and NaN is found from the bits (exponent all ones, mantissa non-zero), since a
// compare of x with itself cannot be trusted to see it. Division uses aie::inv (emulated) and
// is not correctly rounded. Sums are formed in 16 lanes and reduced at the end: a different
// order from the emulated kernels' sequential sums (same accuracy class, not bit-identical).
#pragma once

#include <aie_api/aie.hpp>

namespace phoenix_aie {

using v16f = aie::vector<float, 16>;
using v16bf = aie::vector<bfloat16, 16>;
using v16i = aie::vector<int32, 16>;

inline v16f Mul(v16f a, v16f b) { return aie::mul(a, b).template to_vector<float>(); }
inline v16f MulS(v16f a, float s) { return aie::mul(a, s).template to_vector<float>(); }
inline v16f Add(v16f a, v16f b) { return aie::add(a, b); }
inline v16f AddS(v16f a, float s) { return aie::add(a, aie::broadcast<float, 16>(s)); }

inline v16f Load16(const bfloat16* p) {  // BF16 -> FP32 is exact
  v16bf v = aie::load_v<16>(p);
  return aie::accum<accfloat, 16>(v).template to_vector<float>();
}

// FP32 -> BF16, round to nearest even (the caller sets aie::rounding_mode::conv_even once).
inline v16bf ToBf16(v16f x) { return aie::accum<accfloat, 16>(x).template to_vector<bfloat16>(); }

// Lanes holding NaN, from the bits: |x| > +Inf as unsigned integers.
inline aie::mask<16> IsNan16(v16f x) {
  const v16i bits = x.template cast_to<int32>();
  const v16i mag = aie::bit_and(bits, aie::broadcast<int32, 16>(0x7FFFFFFF));
  return aie::gt(mag, aie::broadcast<int32, 16>(0x7F800000));
}

inline v16f Exp16(v16f x) {
  const v16f t = MulS(x, 1.44269504088896341f);
  // n = nearbyint(t): to_fixed rounds with the current rounding mode (conv_even).
  const v16i n = aie::to_fixed<int32>(t, 0);
  const v16f f = aie::sub(t, aie::to_float(n, 0));
  v16f p = aie::broadcast<float, 16>(1.5403530393381606e-4f);
  p = AddS(Mul(p, f), 1.3333558146428443e-3f);
  p = AddS(Mul(p, f), 9.6181291076284772e-3f);
  p = AddS(Mul(p, f), 5.5504108664821580e-2f);
  p = AddS(Mul(p, f), 2.4022650695910071e-1f);
  p = AddS(Mul(p, f), 6.9314718055994531e-1f);
  p = AddS(Mul(p, f), 1.0f);
  // 2^n as float bits: (n + 127) << 23 (valid for -126 < t < 128; the ends are selected below).
  const v16i e = aie::upshift(aie::add(n, aie::broadcast<int32, 16>(127)), 23);
  v16f r = Mul(p, e.template cast_to<float>());
  r = aie::select(aie::broadcast<float, 16>(0.0f), r, aie::gt(t, aie::broadcast<float, 16>(-126.0f)));  // t <= -126 -> 0
  r = aie::select(r, aie::broadcast<float, 16>(__builtin_inff()), aie::ge(t, aie::broadcast<float, 16>(128.0f)));
  r = aie::select(r, x, IsNan16(x));  // NaN stays NaN
  return r;
}

inline v16f Erf16(v16f x) {
  const v16f z = aie::abs(x);
  const v16f t = aie::inv(AddS(MulS(z, 0.5f), 1.0f));
  v16f q = aie::broadcast<float, 16>(0.17087277f);
  q = AddS(Mul(q, t), -0.82215223f);
  q = AddS(Mul(q, t), 1.48851587f);
  q = AddS(Mul(q, t), -1.13520398f);
  q = AddS(Mul(q, t), 0.27886807f);
  q = AddS(Mul(q, t), -0.18628806f);
  q = AddS(Mul(q, t), 0.09678418f);
  q = AddS(Mul(q, t), 0.37409196f);
  q = AddS(Mul(q, t), 1.00002368f);
  // poly = -z*z - 1.26551223 + t*q  (same association as bf16.h)
  const v16f poly = Add(AddS(aie::neg(Mul(z, z)), -1.26551223f), Mul(t, q));
  const v16f r = aie::sub(aie::broadcast<float, 16>(1.0f), Mul(t, Exp16(poly)));
  v16f out = aie::select(r, aie::neg(r), aie::lt(x, aie::broadcast<float, 16>(0.0f)));
  return aie::select(out, x, IsNan16(x));
}

inline v16f Tanh16(v16f x) {
  const v16f e = Exp16(MulS(x, 2.0f));
  v16f r = aie::sub(aie::broadcast<float, 16>(1.0f), MulS(aie::inv(AddS(e, 1.0f)), 2.0f));
  r = aie::select(r, aie::broadcast<float, 16>(1.0f), aie::gt(x, aie::broadcast<float, 16>(9.0f)));
  r = aie::select(r, aie::broadcast<float, 16>(-1.0f), aie::lt(x, aie::broadcast<float, 16>(-9.0f)));
  return aie::select(r, x, IsNan16(x));
}

// GeluF32 of kernels/gelu/gelu.h: mode 0 = erf, 1 = tanh.
inline v16f Gelu16(v16f x, int mode) {
  const v16f half_x = MulS(x, 0.5f);
  if (mode == 0) return Mul(half_x, AddS(Erf16(MulS(x, 0.70710678118654752f)), 1.0f));
  const v16f x3 = Mul(Mul(x, x), x);
  const v16f inner = MulS(Add(x, MulS(x3, 0.044715f)), 0.79788456080286536f);
  return Mul(half_x, AddS(Tanh16(inner), 1.0f));
}

// KernelRsqrt: aie::invsqrt, then one Newton step y = y * (1.5 - 0.5 * v * y * y).
inline float Rsqrt(float v) {
  float y = aie::invsqrt(v);
  return y * (1.5f - 0.5f * v * y * y);
}

}  // namespace phoenix_aie
