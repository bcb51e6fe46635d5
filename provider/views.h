// View algebra: Transpose, Reshape and broadcasting as strided views of a tensor instead of
// copies. The compiler composes these; the C++ tests check them against index arithmetic.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/tensor_view.h"

namespace phoenix {


// dims[i] of the result is v.dims[perm[i]] (ONNX Transpose).
TensorView Permute(const TensorView& v, const std::vector<int64_t>& perm);

// `v` seen with another shape of the same element count, without moving data, when its strides
// allow it (numpy's no-copy rule: each run of merged dims must be contiguous with itself).
// nullopt when a copy is needed or the counts differ.
std::optional<TensorView> ReshapeView(const TensorView& v, const Shape& dims);

// `v` right-aligned to `dims` (numpy broadcasting): missing and size-1 dims get stride 0.
TensorView BroadcastTo(const TensorView& v, const Shape& dims);

// When `v` visits every element of a contiguous tensor of `v.NumElements()` elements exactly
// once (a permutation of the tensor's dims, possibly reshaped), the view W over `producer_dims`
// (the tensor's own shape, contiguous) such that writing element i of the producer through W
// puts it where reading through `v` and writing contiguously would have put it: the Copy that
// `v` needed becomes the producer's output layout. nullopt when no such view exists.
std::optional<TensorView> InverseLayout(const TensorView& v, const Shape& producer_dims);

}  // namespace phoenix
