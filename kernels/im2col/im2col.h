// Im2Col for 1-D convolution: turns Conv1d into a MatMul. Pure data movement (on the NPU a
// memtile DMA pattern with zero padding) of BF16 or BF16x3 (split_t) elements; no arithmetic,
// so no rounding.
#pragma once
#include <cstdint>
#include "common/bf16.h"
#include "common/tensor_view.h"

namespace phoenix::kernels {

struct Im2ColArgs {
  int64_t kernel = 1, stride = 1, dilation = 1, pad_begin = 0;
  int64_t out_length = 0;  // L_out
};

// x: view [B, C, L] (any strides). y: contiguous [B, L_out, C * kernel] with
// y[b, t, c * kernel + j] = x[b, c, t * stride + j * dilation - pad_begin], or 0 outside [0, L).
void Im2Col(const Im2ColArgs& a, const bf16_t* x, const TensorView& xv, bf16_t* y, int num_threads);
void Im2Col(const Im2ColArgs& a, const split_t* x, const TensorView& xv, split_t* y, int num_threads);

}  // namespace phoenix::kernels
