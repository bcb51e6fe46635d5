// Softmax over rows of COLS BF16 values with the scale folded in: y = softmax(SCALE * x).
// One AIE2 compute tile. NOT YET RUN ON HARDWARE.
// Same steps as kernels/softmax/emulated.cc: FP32 row max of SCALE*x, KernelExp(SCALE*x - max)
// (Exp16, phoenix_aie_math.h), FP32 sum, multiply by the FP32 reciprocal (aie::inv here, not
// correctly rounded), one BF16 rounding; a NaN anywhere in the row makes the row NaN.
// COLS need not be a multiple of 16 (Whisper: 1500 = 93*16 + 12): the tail is masked. Rows are
// 3000 bytes, not a multiple of 32: the design (npu_model.rows_design) puts ONE row in each L1
// buffer, which the allocator aligns to 32 bytes, so every 256-bit load below is aligned.
#include <aie_api/aie.hpp>

#include "phoenix_aie_math.h"

#ifndef COLS
#define COLS 1500
#endif
#ifndef SCALE
#define SCALE 1.0f
#endif

using namespace phoenix_aie;

namespace {
constexpr int kFull = COLS / 16 * 16;

// Lanes >= n of a tail vector are set to `fill`.
inline v16f Tail(const bfloat16* p, int n, float fill) {
  alignas(32) bfloat16 tmp[16];
  for (int i = 0; i < 16; ++i) tmp[i] = i < n ? p[i] : bfloat16(0.0f);
  v16f v = MulS(Load16(tmp), SCALE);
  for (int i = n; i < 16; ++i) v[i] = fill;
  return v;
}
}  // namespace

extern "C" {

void phoenix_softmax_bf16(const bfloat16* __restrict x, bfloat16* __restrict y, int32_t rows) {
  aie::set_rounding(aie::rounding_mode::conv_even);
  for (int r = 0; r < rows; ++r) {
    const bfloat16* xr = x + r * COLS;
    bfloat16* yr = y + r * COLS;
    v16f mx = aie::broadcast<float, 16>(-__builtin_inff());
    bool has_nan = false;
    for (int i = 0; i < kFull; i += 16) {
      const v16f v = MulS(Load16(xr + i), SCALE);
      mx = aie::max(mx, v);
      has_nan |= IsNan16(v).count() > 0;  // from the bits (no float neq on aie2)
    }
    if (kFull < COLS) {
      const v16f v = Tail(xr + kFull, COLS - kFull, -__builtin_inff());
      mx = aie::max(mx, v);
      has_nan |= IsNan16(v).count() > 0;
    }
    const float m = aie::reduce_max(mx);
    const v16f vm = aie::broadcast<float, 16>(m);
    v16f sum = aie::zeros<float, 16>();
    for (int i = 0; i < kFull; i += 16) sum = Add(sum, Exp16(aie::sub(MulS(Load16(xr + i), SCALE), vm)));
    if (kFull < COLS) sum = Add(sum, Exp16(aie::sub(Tail(xr + kFull, COLS - kFull, -__builtin_inff()), vm)));
    const float inv = has_nan ? __builtin_nanf("") : aie::inv(aie::reduce_add(sum));
    // Third pass recomputes the exponentials (L1 holds no FP32 copy of the row), as the
    // emulated kernel's values: e[i] = KernelExp(scale*x[i] - max), y = bf16(e * inv).
    for (int i = 0; i < kFull; i += 16)
      aie::store_v(yr + i, ToBf16(MulS(Exp16(aie::sub(MulS(Load16(xr + i), SCALE), vm)), inv)));
    if (kFull < COLS) {
      const v16bf t = ToBf16(MulS(Exp16(aie::sub(Tail(xr + kFull, COLS - kFull, -__builtin_inff()), vm)), inv));
      for (int i = 0; i < COLS - kFull; ++i) yr[kFull + i] = t[i];
    }
  }
}

}  // extern "C"
