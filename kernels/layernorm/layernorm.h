// LayerNorm over the last axis: y = (x - mean) * rsqrt(var + eps) * gamma + beta, on BF16 or
// BF16x3 (split_t) elements. See README.md in this folder for the numerics.
#pragma once
#include <cstdint>
#include "common/bf16.h"

namespace phoenix::kernels {

struct LayerNormArgs {
  int64_t rows = 0, cols = 0;  // x and y are contiguous [rows, cols]
  float epsilon = 1e-5f;
  const float* gamma = nullptr;  // [cols], FP32
  const float* beta = nullptr;   // [cols], FP32, optional
};

void LayerNorm(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int num_threads);
void LayerNorm(const LayerNormArgs& a, const split_t* x, split_t* y, int num_threads);

}  // namespace phoenix::kernels
