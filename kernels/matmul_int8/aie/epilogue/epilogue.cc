// The INT8 MatMul's dequantizing epilogue, one AIE2 compute tile (kernels/matmul_int8/README.md,
// steps 3-5 and 7, "On the NPU"): per row of COLS,
//   acc = S + corr[n]                  (wrapping 32-bit add: the true sum fits int32, so it is exact)
//   v = float(acc) * s_ab[n]           (int32 -> FP32 round to nearest even; one FP32 multiply)
//   v = v * ALPHA, + bias[n], GELU     (the MatMul epilogue, FP32; GELU via Gelu16 = the bf16.h forms)
//   v = v + residual; y = bf16(v)      (ONE rounding, nearest even)
// S is the upstream mm.cc i8 GEMM's int32 output (../gemm), corr / s_ab / bias the column parameters
// (provider/devices/xrt/int8_params.h), kept in L1 as 32-bit words (s_ab and bias are FP32 bit
// patterns). The multiplies are Peano's emulated FP32 (AIE-ML has no FP32 multiplier; "safe"
// accuracy, as ../../../matmul/aie/epilogue): they are the steps whose bits the host test checks.
// NOT YET COMPILED OR RUN (no Peano here).
#include <aie_api/aie.hpp>
#include <stdint.h>

#include "phoenix_aie_math.h"

#ifndef COLS
#define COLS 512
#endif
#ifndef ALPHA
#define ALPHA 1.0f
#endif
#ifndef GELU_MODE
#define GELU_MODE -1  // -1 none, 0 erf, 1 tanh
#endif
#ifndef HAS_BIAS
#define HAS_BIAS 1
#endif
#ifndef HAS_RESIDUAL
#define HAS_RESIDUAL 0
#endif
static_assert(COLS % 16 == 0, "COLS must be a multiple of 16 (whole 32-bit vectors)");

using namespace phoenix_aie;

extern "C" {

// A column-parameter row arrives as one of the tile's first acc objects: keep a copy.
void phoenix_epi8_keep_row(const int32_t* __restrict row, int32_t* __restrict dst) {
  for (int i = 0; i < COLS; i += 16) aie::store_v(dst + i, aie::load_v<16>(row + i));
}

#if HAS_RESIDUAL
void phoenix_epilogue_i8(const int32_t* __restrict acc, const int32_t* __restrict corr, const int32_t* __restrict scale,
                         const int32_t* __restrict bias, const bfloat16* __restrict residual, bfloat16* __restrict y) {
#else
void phoenix_epilogue_i8(const int32_t* __restrict acc, const int32_t* __restrict corr, const int32_t* __restrict scale,
                         const int32_t* __restrict bias, bfloat16* __restrict y) {
#endif
  aie::set_rounding(aie::rounding_mode::conv_even);
  for (int i = 0; i < COLS; i += 16) {
    const aie::vector<int32_t, 16> s = aie::add(aie::load_v<16>(acc + i), aie::load_v<16>(corr + i));  // wraps
    v16f v = Mul(aie::to_float(s, 0), aie::load_v<16>(scale + i).cast_to<float>());
    if (ALPHA != 1.0f) v = MulS(v, ALPHA);
    if (HAS_BIAS) v = Add(v, aie::load_v<16>(bias + i).cast_to<float>());
#if GELU_MODE >= 0
    v = Gelu16(v, GELU_MODE);
#endif
#if HAS_RESIDUAL
    v = Add(v, Load16(residual + i));
#endif
    aie::store_v(y + i, ToBf16(v));
  }
}

}  // extern "C"
