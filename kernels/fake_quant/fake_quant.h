// FakeQuant: a QuantizeLinear -> DequantizeLinear pair on an activation, y = (q - z) * s with
// q = saturate(round_half_even(x / s) + z), computed exactly as kernels/matmul_int8/README.md
// step 1 (ORT's CPU QuantizeLinear) and step 6, on BF16 or BF16x3 elements (one rounding of the
// FP32 result to the element type). Where a quantized MatMul reads the value the pair is folded
// into that kernel instead (it quantizes A while packing); this kernel serves every other reader.
#pragma once
#include "common/bf16.h"
#include "common/tensor_view.h"
#include "matmul_int8/matmul_int8.h"

namespace phoenix::kernels {

// y = fakequant(x) element by element through the two views (same shape). Throws
// std::invalid_argument on a scale that is not finite and > 0 or a zero point out of range.
void FakeQuant(const QuantParams& q, const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv,
               int num_threads);
void FakeQuant(const QuantParams& q, const split_t* x, const TensorView& xv, split_t* y, const TensorView& yv,
               int num_threads);

}  // namespace phoenix::kernels
