// GELU on AVX-512: GeluF32 (gelu.h) step for step in 16 FP32 lanes (GeluV), one rounding at the
// store (BF16, or hi + lo for BF16x3; one template): bit-identical to the reference (NaN stays
// NaN).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/avx512_math.h"
#include "common/kernel_isa.h"

namespace phoenix::kernels::avx512 {
namespace {

template <typename T>
void Range(GeluMode mode, const T* x, T* y, int64_t i0, int64_t i1) {
  const bool tanh_form = mode == GeluMode::kTanh;
  for (int64_t i = i0; i < i1; i += 16) {
    const __mmask16 m = TailMask(i1 - i);
    MaskStore16(y + i, m, GeluV(MaskLoad16(x + i, m), tanh_form));
  }
}

}  // namespace

void GeluRange(GeluMode mode, const bf16_t* x, bf16_t* y, int64_t i0, int64_t i1) { Range(mode, x, y, i0, i1); }
void GeluRange(GeluMode mode, const split_t* x, split_t* y, int64_t i0, int64_t i1) { Range(mode, x, y, i0, i1); }

}  // namespace phoenix::kernels::avx512
