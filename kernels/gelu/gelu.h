// GELU, exact (erf) or tanh approximation, on BF16 or BF16x3 (split_t) elements. Also used as
// the MatMul epilogue. See README.md in this folder for the numerics.
#pragma once
#include <cstdint>
#include "common/bf16.h"

namespace phoenix::kernels {

enum class GeluMode : int { kErf = 0, kTanh = 1 };

// FP32 -> FP32 GELU, the single definition shared by the standalone kernel and the epilogue.
inline float GeluF32(float x, GeluMode mode) {
  if (mode == GeluMode::kErf) return 0.5f * x * (1.0f + KernelErf(x * 0.70710678118654752f));
  const float k = 0.79788456080286536f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + KernelTanh(k * (x + 0.044715f * x * x * x)));
}

void Gelu(GeluMode mode, int64_t n, const bf16_t* x, bf16_t* y, int num_threads);
void Gelu(GeluMode mode, int64_t n, const split_t* x, split_t* y, int num_threads);

}  // namespace phoenix::kernels
