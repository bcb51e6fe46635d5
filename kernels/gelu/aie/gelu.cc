// GELU (erf or tanh form) over BF16, one AIE2 compute tile. NOT YET RUN ON HARDWARE.
// Same steps as kernels/gelu/emulated.cc: BF16 -> FP32, GeluF32 (gelu.h) via Gelu16
// (phoenix_aie_math.h: the bf16.h erf / tanh / exp in 16 FP32 lanes), one BF16 rounding.
// The MatMul kernel calls the same Gelu16 in its epilogue.
#include <aie_api/aie.hpp>

#include "phoenix_aie_math.h"

#ifndef MODE
#define MODE 0  // 0 = erf (exact GELU), 1 = tanh approximation
#endif

using namespace phoenix_aie;

extern "C" {

void phoenix_gelu_bf16(const bfloat16* __restrict x, bfloat16* __restrict y, int32_t n) {
  aie::set_rounding(aie::rounding_mode::conv_even);
  for (int i = 0; i < n; i += 16) aie::store_v(y + i, ToBf16(Gelu16(Load16(x + i), MODE)));
}

}  // extern "C"
