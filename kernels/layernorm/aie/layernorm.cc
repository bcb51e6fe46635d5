// LayerNorm over rows of COLS BF16 values, for one AIE2 compute tile. NOT YET RUN ON HARDWARE.
// Same steps as kernels/layernorm/emulated.cc: FP32 mean (sum / n), FP32 variance of
// (x - mean) (two passes), KernelRsqrt(var + eps) (here aie::invsqrt + one Newton step),
// y = (x - mean) * inv * gamma [+ beta] in FP32, one BF16 rounding (nearest even).
// Sums run in 16 FP32 lanes and are reduced at the end (emulated: sequential).
#include <aie_api/aie.hpp>

#include "phoenix_aie_math.h"

#ifndef COLS
#define COLS 512
#endif
#ifndef EPSILON
#define EPSILON 1e-5f
#endif
#ifndef HAS_BETA
#define HAS_BETA 1
#endif
static_assert(COLS % 16 == 0, "COLS must be a multiple of 16");

using namespace phoenix_aie;

extern "C" {

// x, y: `rows` rows of COLS BF16; gamma, beta: COLS FP32, both on the tile's second input
// channel (held for the whole run); beta is not read when HAS_BETA is 0.
void phoenix_layernorm_bf16(const bfloat16* __restrict x, const float* __restrict gamma,
                            const float* __restrict beta, bfloat16* __restrict y, int32_t rows) {
  aie::set_rounding(aie::rounding_mode::conv_even);
  const float inv_n = 1.0f / COLS;
  for (int r = 0; r < rows; ++r) {
    const bfloat16* xr = x + r * COLS;
    bfloat16* yr = y + r * COLS;
    v16f acc = aie::zeros<float, 16>();
    for (int i = 0; i < COLS; i += 16) acc = Add(acc, Load16(xr + i));
    const float mean = aie::reduce_add(acc) * inv_n;
    const v16f vmean = aie::broadcast<float, 16>(mean);
    v16f sq = aie::zeros<float, 16>();
    for (int i = 0; i < COLS; i += 16) {
      const v16f d = aie::sub(Load16(xr + i), vmean);
      sq = Add(sq, Mul(d, d));
    }
    const float inv = Rsqrt(aie::reduce_add(sq) * inv_n + EPSILON);
    for (int i = 0; i < COLS; i += 16) {
      v16f v = Mul(MulS(aie::sub(Load16(xr + i), vmean), inv), aie::load_v<16>(gamma + i));
      if (HAS_BETA) v = Add(v, aie::load_v<16>(beta + i));
      aie::store_v(yr + i, ToBf16(v));
    }
  }
}

}  // extern "C"
