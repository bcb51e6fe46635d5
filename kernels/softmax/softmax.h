// Softmax over the last axis, with an optional scale folded in: y = softmax(scale * x), on BF16
// or BF16x3 (split_t) elements. See README.md in this folder for the numerics.
#pragma once
#include <cstdint>
#include "common/bf16.h"

namespace phoenix::kernels {

struct SoftmaxArgs {
  int64_t rows = 0, cols = 0;  // x and y are contiguous [rows, cols]
  float scale = 1.0f;
};

void Softmax(const SoftmaxArgs& a, const bf16_t* x, bf16_t* y, int num_threads);
void Softmax(const SoftmaxArgs& a, const split_t* x, split_t* y, int num_threads);

}  // namespace phoenix::kernels
