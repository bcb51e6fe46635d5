// Quantize BF16 rows for the INT8 GEMM, one AIE2 compute tile (kernels/matmul_int8/README.md, step 1,
// and "On the NPU"): for every element x of `rows` rows of COLS,
//   v = x / sa (FP32 IEEE division, NOT a multiply by 1 / sa), v = v > lo ? v : lo (a NaN becomes lo),
//   v = v < hi ? v : hi, qa'' = round_half_even(v) + shift,
// with qparams = [sa, lo = qmin - za, hi = qmax - za, shift = za - c_a] (provider/devices/xrt/int8_params.h):
// qa'' = qa - c_a is int8 for uint8 (c_a = 128) and int8 (c_a = 0) activations alike, so the GEMM
// after it is upstream mm.cc's int8 x int8 kernel. The integers equal ORT's CPU QuantizeLinear
// (MLAS) and the emulated kernels' QuantizeRow bit for bit: the division is the scalar soft-float
// __divsf3 of Peano's runtime (IEEE, correctly rounded), the clamp and the rounding exact.
// Scalar code on purpose: a vector x * RN(1 / sa) would need the VNNI path's half-integer fix-up
// (kernels/matmul_int8/README.md) to give the same integers; that is the optimisation left
// (the cost model prices this kernel as scalar: npu_model QUANTIZE_CYCLES_PER_ELEMENT).
// NOT YET COMPILED OR RUN (no Peano here).
#include <aie_api/aie.hpp>
#include <stdint.h>

#ifndef COLS
#define COLS 512
#endif
static_assert(COLS % 32 == 0, "COLS must be a multiple of 32 (32-byte aligned int8 rows)");

static inline float RoundHalfEven(float v) {  // |v| <= 255 here: exact in FP32
  float f = __builtin_floorf(v);
  const float d = v - f;  // exact
  if (d > 0.5f || (d == 0.5f && __builtin_fmodf(f, 2.0f) != 0.0f)) f += 1.0f;
  return f;
}

extern "C" {

void phoenix_quantize_i8(const bfloat16* __restrict x, const float* __restrict qparams, int8_t* __restrict y,
                         int32_t rows) {
  const float sa = qparams[0], lo = qparams[1], hi = qparams[2], shift = qparams[3];
  for (int32_t i = 0; i < rows * COLS; ++i) {
    float v = static_cast<float>(x[i]) / sa;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    y[i] = static_cast<int8_t>(static_cast<int32_t>(RoundHalfEven(v)) + static_cast<int32_t>(shift));
  }
}

}  // extern "C"
