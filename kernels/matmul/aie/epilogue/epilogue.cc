// The MatMul epilogue pass, one AIE2 compute tile: y = bf16(gelu(ALPHA * acc + bias) + residual)
// over rows of COLS. The GEMM before it (upstream mm.cc, matmul_bf16_f32) leaves acc in FP32, so
// the numerics are those of kernels/matmul/emulated.cc: FP32 accumulation never rounded, the
// epilogue in FP32 (GELU via Gelu16 = the bf16.h erf / tanh), residual added after it, ONE BF16
// rounding (nearest even). NOT YET COMPILED OR RUN (no Peano here).
#include <aie_api/aie.hpp>

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
static_assert(COLS % 16 == 0, "COLS must be a multiple of 16 (whole FP32 vectors)");

using namespace phoenix_aie;

extern "C" {

// The FP32 bias row arrives as the tile's first acc object (one row of COLS): keep a copy.
void phoenix_epi_keep_bias(const float* __restrict row, float* __restrict bias) {
  for (int i = 0; i < COLS; i += 16) aie::store_v(bias + i, aie::load_v<16>(row + i));
}

// One row: acc (COLS FP32), bias (COLS FP32, read when HAS_BIAS), residual (COLS BF16: an argument
// only when HAS_RESIDUAL; design.py declares the same signature, so no object of another type is
// passed in its place), y (COLS BF16).
#if HAS_RESIDUAL
void phoenix_epilogue(const float* __restrict acc, const float* __restrict bias, const bfloat16* __restrict residual,
                      bfloat16* __restrict y) {
#else
void phoenix_epilogue(const float* __restrict acc, const float* __restrict bias, bfloat16* __restrict y) {
#endif
  aie::set_rounding(aie::rounding_mode::conv_even);
  for (int i = 0; i < COLS; i += 16) {
    v16f v = MulS(aie::load_v<16>(acc + i), ALPHA);
    if (HAS_BIAS) v = Add(v, aie::load_v<16>(bias + i));
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
