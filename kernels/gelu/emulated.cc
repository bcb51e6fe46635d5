// Emulated GELU: FP32 evaluation of GeluF32 (gelu.h), one BF16 rounding.
#include "common/parallel.h"
#include "gelu/gelu.h"

namespace phoenix::kernels {

void Gelu(GeluMode mode, int64_t n, const bf16_t* x, bf16_t* y, int num_threads) {
  ParallelFor(n, num_threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = F32ToBf16(GeluF32(Bf16ToF32(x[i]), mode));
  });
}

}  // namespace phoenix::kernels
