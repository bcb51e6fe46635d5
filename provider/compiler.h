// Compile: lowers one fused region (an OrtGraph of supported nodes) to a Plan of kernel calls.
//
// Lowering is view-based: Transpose and Reshape produce views of their input (no kernel);
// a scalar Mul/Div is kept as a pending scale on the value and folded into the consumer
// (MatMul alpha, Softmax scale) when it can take one; a MatMul absorbs its bias Add, GELU and
// residual Add into its epilogue. A Copy is emitted only when a kernel needs contiguous rows
// and gets a view that is not.
#pragma once

#include <string>
#include <vector>

#include "graph_view.h"
#include "plan.h"

namespace phoenix {

struct CompileOptions {
  bool fuse_attention = true;  // MatMul(Q, K^T) [-> scale] -> Softmax -> MatMul(P, V) as one kernel
  // Element type of activations and weights: kBF16 (the contract) or kSplit (precision=bf16x3,
  // every tensor a BF16 pair).
  DType element = DType::kBF16;
};

// `input_names` are the fused node's runtime inputs, in the order ORT passes them to Compute;
// `output_names` its outputs in order.
Status CompileRegion(const GraphView& g, const std::string& name,
                     const std::vector<std::string>& input_names,
                     const std::vector<std::string>& output_names, const CompileOptions& options, Plan* plan);

}  // namespace phoenix
