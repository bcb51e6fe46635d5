// Emulated GELU: FP32 evaluation of GeluF32 (gelu.h), one rounding (BF16, or hi + lo for
// BF16x3). portable::Gelu is the reference form; on CPUs with AVX512_BF16 emulated_avx512.cc
// runs the same steps in 16 lanes (bit-identical). Both are written once over the element type.
#include <algorithm>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "gelu/gelu.h"

namespace phoenix::kernels {
namespace {

template <typename T>
void PortableGelu(GeluMode mode, int64_t n, const T* x, T* y, int num_threads) {
  ParallelFor(n, num_threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = FromF32<T>(GeluF32(ToF32(x[i]), mode));
  });
}

template <typename T>
void DispatchGelu(GeluMode mode, int64_t n, const T* x, T* y, int num_threads) {
  if (n <= 0) return;
  if (!UseAvx512Bf16()) return portable::Gelu(mode, n, x, y, num_threads);
  // Blocks of 16 elements, so every thread's range starts on a whole vector.
  const int64_t blocks = (n + 15) / 16;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, n / 16384)));
  ParallelFor(blocks, threads, [&](int64_t b0, int64_t b1) {
    avx512::GeluRange(mode, x, y, b0 * 16, std::min(n, b1 * 16));
  });
}

}  // namespace

namespace portable {

void Gelu(GeluMode mode, int64_t n, const bf16_t* x, bf16_t* y, int num_threads) { PortableGelu(mode, n, x, y, num_threads); }
void Gelu(GeluMode mode, int64_t n, const split_t* x, split_t* y, int num_threads) { PortableGelu(mode, n, x, y, num_threads); }

}  // namespace portable

void Gelu(GeluMode mode, int64_t n, const bf16_t* x, bf16_t* y, int num_threads) { DispatchGelu(mode, n, x, y, num_threads); }
void Gelu(GeluMode mode, int64_t n, const split_t* x, split_t* y, int num_threads) { DispatchGelu(mode, n, x, y, num_threads); }

}  // namespace phoenix::kernels
