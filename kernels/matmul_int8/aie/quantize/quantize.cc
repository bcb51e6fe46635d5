// Quantize BF16 rows for the INT8 GEMM, one AIE2 compute tile (kernels/matmul_int8/README.md, step 1,
// and "On the NPU"): for every element x of `rows` rows of COLS, the integer of the contract
//   q = round_half_even(clamp(RN(x / sa), lo, hi)) + shift   (RN(x / sa): FP32 IEEE division; a NaN -> lo)
// with qparams = [sa, lo = qmin - za, hi = qmax - za, shift = za - c_a] (provider/devices/xrt/int8_params.h):
// qa'' = qa - c_a is int8 for uint8 (c_a = 128) and int8 (c_a = 0) activations alike, so the GEMM after
// it is upstream mm.cc's int8 x int8 kernel. The integers equal ORT's CPU QuantizeLinear (MLAS) and the
// emulated kernels' QuantizeRow bit for bit.
//
// Vector form (16 lanes), as the host VNNI path (../../emulated_avx512_vnni.cc, Quotient): AIE-ML has
// no vector division and no FP32 vector multiplier, so the quotient is x * r with r = RN(1 / sa) (one
// scalar IEEE division per call) split into three BF16 pieces r = r0 + r1 + r2 (exactly: r has 24
// significant bits, each piece takes 8; all >= 0), and
//   p = ((x r0 + x r1) + x r2)    three BF16 MACs into an FP32 accumulator (each product is exact:
//                                 8 x 8 significant bits; each accumulation rounds once)
// Error bound: |r - 1/sa| <= 2^-24 / sa, and each accumulation errs by at most 2^-23 of its result
// (one FP32 ulp, whatever the accumulator's rounding rule: nearest or toward zero), so
// |p - x / sa| < 2^-21.9 |x / sa|; ORT's RN(x / sa) is within 2^-16 of x / sa for |x / sa| < 256.
// So while |x / sa| <= 256, |p - RN(x / sa)| < 2^-13.5. The integer is a step function of the clamped
// quotient with steps at the half-integers (lo, hi are integers, |lo|, |hi| <= 255): where the clamped
// p is at least 2^-12 from every half-integer, the clamped RN(x / sa) is on the same step (clamping
// does not increase distances). Where |x / sa| > 256, |p| > 255.99 on the same side: both clamp to the
// same bound. The remaining lanes -- within 2^-12 of a half-integer (about 1 in 2000 for data spread
// over many quanta), and x NaN or +-Inf (found from the bits) -- take the scalar IEEE division, as the
// VNNI path divides them. r outside [2^-100, 2^100] (absurd scales: the pieces could be subnormal and
// flushed) sends the whole call to the scalar path.
// Rounding p to an integer: t = p + 1.5 * 2^23 (an FP32 add; for |p| <= 255 the result has ulp 1),
// n = bits(t) - bits(1.5 * 2^23), d = p - (t - 1.5 * 2^23); then n is moved by one where |d| > 1/2, so n
// is the nearest integer whatever the accumulator's rounding rule (aie::to_fixed itself is this magic
// add on aie2, AIE API detail/aie2/elementary.hpp, and its rounding is the accumulator's, not
// aie::set_rounding's), and the lanes where |d| is within 2^-12 of 1/2 are the ones divided.
// The stand-in's reference body (iron_standin/reference.py, phoenix_quantize_i8) computes exactly this,
// and tests/test_iron_standin.py checks it against ORT on every BF16 value for several scales, with the
// accumulator rounding to nearest, toward zero and flushing subnormals.
// DUP = 2 (an INT8 MatMul whose weights have zero points, docs/npu.md 2d): every output row is written
// twice, [qa'' | qa''] (2 * COLS int8), so that the GEMM after it, on K' = 2K against B' = [qb; -zb],
// sums qa'' (qb - zb) exactly.
// Cost (npu_model.quantize_cycles_per_element): 26 vector instructions per 16 lanes, listed below.
// NOT YET COMPILED OR RUN (no Peano here).
#include <aie_api/aie.hpp>
#include <stdint.h>
#include <string.h>

#ifndef COLS
#define COLS 512
#endif
#ifndef DUP
#define DUP 1
#endif
static_assert(COLS % 32 == 0, "COLS must be a multiple of 32 (32-byte aligned int8 rows)");
static_assert(DUP == 1 || DUP == 2, "DUP: 1, or 2 for weights with zero points");

namespace {

using v16f = aie::vector<float, 16>;
using v16i = aie::vector<int32, 16>;
using v16bf = aie::vector<bfloat16, 16>;

constexpr float kMagic = 12582912.0f;        // 1.5 * 2^23
constexpr int32_t kMagicBits = 0x4B400000;
constexpr float kNear = 0.000244140625f;     // 2^-12

inline float RoundHalfEven(float v) {  // |v| <= 255 here: exact in FP32
  float f = __builtin_floorf(v);
  const float d = v - f;  // exact
  if (d > 0.5f || (d == 0.5f && __builtin_fmodf(f, 2.0f) != 0.0f)) f += 1.0f;
  return f;
}

// The contract's step 1 in scalar IEEE arithmetic (Peano's soft-float __divsf3: correctly rounded).
inline int8_t Exact(float x, float sa, float lo, float hi, float shift) {
  float v = x / sa;
  v = v > lo ? v : lo;  // NaN -> lo
  v = v < hi ? v : hi;
  return static_cast<int8_t>(static_cast<int32_t>(RoundHalfEven(v)) + static_cast<int32_t>(shift));
}

inline uint32_t Bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
inline float FromBits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline bfloat16 Bf16Exact(float f) {  // f has <= 8 significant bits: the conversion is exact
  return static_cast<bfloat16>(f);
}

}  // namespace

extern "C" {

void phoenix_quantize_i8(const bfloat16* __restrict x, const float* __restrict qparams, int8_t* __restrict y,
                         int32_t rows) {
  const float sa = qparams[0], lo = qparams[1], hi = qparams[2], shift = qparams[3];
  const float r = 1.0f / sa;  // RN(1 / sa), once per call
  if (!(r >= 0x1p-100f && r <= 0x1p100f)) {  // also NaN / Inf / 0: everything divided
    for (int32_t row = 0; row < rows; ++row)
      for (int32_t i = 0; i < COLS; ++i)
        for (int c = 0; c < DUP; ++c)
          y[(row * DUP + c) * COLS + i] = Exact(static_cast<float>(x[row * COLS + i]), sa, lo, hi, shift);
    return;
  }
  // r = r0 + r1 + r2, each a BF16 (truncations; the subtractions are exact)
  const float f0 = FromBits(Bits(r) & 0xFFFF0000u);
  const float rem = r - f0;
  const float f1 = FromBits(Bits(rem) & 0xFFFF0000u);
  const float f2 = rem - f1;
  const bfloat16 r0 = Bf16Exact(f0), r1 = Bf16Exact(f1), r2 = Bf16Exact(f2);

  const v16f lo_v = aie::broadcast<float, 16>(lo), hi_v = aie::broadcast<float, 16>(hi);
  const v16f magic = aie::broadcast<float, 16>(kMagic);
  const v16i shift_v = aie::broadcast<int32, 16>(static_cast<int32_t>(shift));
  for (int32_t row = 0; row < rows; ++row)
  for (int32_t i0 = 0; i0 < COLS; i0 += 16) {
    const int32_t i = row * COLS + i0, o = row * DUP * COLS + i0;  // input, first output copy
    const v16bf xv = aie::load_v<16>(x + i);
    // p = x r0 + x r1 + x r2                                                    [3 MAC, 1 move]
    aie::accum<accfloat, 16> acc = aie::mul(xv, r0);
    acc = aie::mac(acc, xv, r1);
    acc = aie::mac(acc, xv, r2);
    v16f p = acc.template to_vector<float>();
    // clamp (p > lo ? p : lo, p < hi ? p : hi); NaN lanes are divided below     [2 cmp, 2 select]
    p = aie::select(lo_v, p, aie::gt(p, lo_v));
    p = aie::select(hi_v, p, aie::lt(p, hi_v));
    // nearest integer n and the distance d = p - n                              [2 add, 1 int sub, 1 add]
    const v16f t = aie::add(p, magic);
    v16i n = aie::sub(t.template cast_to<int32>(), aie::broadcast<int32, 16>(kMagicBits));
    const v16f d = aie::sub(p, aie::sub(t, magic));
    // move n by one where |d| > 1/2 (an accumulator that did not round to nearest)  [2 cmp, 2 add/select]
    n = aie::select(n, aie::add(n, 1), aie::gt(d, aie::broadcast<float, 16>(0.5f)));
    n = aie::select(n, aie::sub(n, 1), aie::lt(d, aie::broadcast<float, 16>(-0.5f)));
    // lanes within 2^-12 of a half-integer, and NaN / Inf inputs (exponent bits all ones)
    //                                                                        [abs, add, abs, cmp, and, cmp]
    const v16f to_half = aie::abs(aie::sub(aie::abs(d), aie::broadcast<float, 16>(0.5f)));
    const aie::mask<16> near = aie::lt(to_half, aie::broadcast<float, 16>(kNear));
    const aie::vector<int16, 16> xb = xv.template cast_to<int16>();
    const aie::mask<16> special =
        aie::eq(aie::bit_and(xb, aie::broadcast<int16, 16>(0x7F80)), aie::broadcast<int16, 16>(0x7F80));
    // + shift, to int8 (exact: the values are in [-128, 127]), store           [add, pack]
    const aie::vector<int8, 16> q = aie::accum<acc32, 16>(aie::add(n, shift_v)).template to_vector<int8>(0);
    aie::store_v(y + o, q);
    if (DUP == 2) aie::store_v(y + o + COLS, q);
    // the divided lanes                                                        [mask or, test: scalar]
    uint32_t fix = (near | special).to_uint32();
    while (fix) {
      const int l = __builtin_ctz(fix);
      fix &= fix - 1;
      const int8_t e = Exact(static_cast<float>(x[i + l]), sa, lo, hi, shift);
      y[o + l] = e;
      if (DUP == 2) y[o + COLS + l] = e;
    }
  }
}

}  // extern "C"
