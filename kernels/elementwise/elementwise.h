// Elementwise binary ops with broadcasting, and the strided Copy that materialises a view.
// Both read and write through TensorViews, so broadcast (stride 0) and transposed operands
// need no extra copies. All run on BF16 or BF16x3 (split_t) elements (the binary ops: one FP32
// operation, one rounding to the stored type). See README.md in this folder for the numerics.
#pragma once
#include <cstdint>
#include "common/bf16.h"
#include "common/tensor_view.h"

namespace phoenix::kernels {

enum class BinaryOp : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };

// y = a (op) b. All three views have y's shape (broadcast dims carry stride 0).
void Binary(BinaryOp op, const bf16_t* a, const TensorView& av, const bf16_t* b,
            const TensorView& bv, bf16_t* y, const TensorView& yv, int num_threads);
void Binary(BinaryOp op, const split_t* a, const TensorView& av, const split_t* b,
            const TensorView& bv, split_t* y, const TensorView& yv, int num_threads);

// y = a (op) s with an FP32 scalar s (or s (op) a when scalar_first): the graph's scalar
// constants (1.0, 0.5, sqrt(2), attention scales) stay exact instead of becoming BF16 tensors.
void BinaryScalar(BinaryOp op, const bf16_t* a, const TensorView& av, float s, bool scalar_first,
                  bf16_t* y, const TensorView& yv, int num_threads);
void BinaryScalar(BinaryOp op, const split_t* a, const TensorView& av, float s, bool scalar_first,
                  split_t* y, const TensorView& yv, int num_threads);

// y = x, element by element through the two views (same shape).
void Copy(const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv, int num_threads);
void Copy(const split_t* x, const TensorView& xv, split_t* y, const TensorView& yv, int num_threads);

}  // namespace phoenix::kernels
