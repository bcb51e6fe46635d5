// One file per op family in provider/ops/: what the provider accepts of a node (dtypes,
// constant operands, attributes) and the shapes it computes, from the node's inputs alone.
// Capability and compile both read these; nothing here trusts the shapes a model declares:
// a declared output shape that differs from the computed one means the node is not claimed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph_view.h"

namespace phoenix {

using Shape = std::vector<int64_t>;

// The rank a tensor view holds (kernels/common/tensor_view.h). Larger ranks stay on the CPU EP.
constexpr int kMaxViewRank = 8;
// Element counts beyond this are refused: offsets stay far from int64 overflow in every kernel.
constexpr int64_t kMaxElements = int64_t{1} << 40;

struct OpFamily {
  const char* name;
  bool (*handles)(const GNode& n);
  // "" when the provider can run the node, else why not (static facts: dtypes, constants,
  // attributes). Shapes are judged by infer_shapes.
  std::string (*why_unsupported)(const GraphView& g, const GNode& n);
  // Output shapes from the input shapes (and the node's attributes and constant inputs); an
  // error when they are inconsistent (the CPU EP would fail at run time too).
  Status (*infer_shapes)(const GraphView& g, const GNode& n, const std::vector<Shape>& inputs,
                         std::vector<Shape>* outputs);
};

// The family that handles `n`, or nullptr.
const OpFamily* FindOpFamily(const GNode& n);

// Shared checks and shape algebra for the families.
std::string ShapeToString(const Shape& s);
bool CheckedNumElements(const Shape& s, int64_t* n);  // false on a negative dim or an overflow
Status Broadcast(const Shape& a, const Shape& b, Shape* out);  // numpy rules
bool IsF32(const GraphView& g, int value);
// Every present input in [0, num_inputs) and every output is float32.
std::string CheckF32(const GraphView& g, const GNode& n, size_t num_inputs);
bool IsUsed(const GraphView& g, int value);

// The family tables (defined in provider/ops/<family>.cc).
extern const OpFamily kMatMulFamily;       // MatMul, Gemm
extern const OpFamily kConvFamily;         // Conv (1-D)
extern const OpFamily kLayerNormFamily;    // LayerNormalization
extern const OpFamily kSoftmaxFamily;      // Softmax
extern const OpFamily kGeluFamily;         // Gelu (opset 20); the Erf / Tanh patterns are in patterns.cc
extern const OpFamily kElementwiseFamily;  // Add, Sub, Mul, Div
extern const OpFamily kReshapeFamily;      // Reshape
extern const OpFamily kTransposeFamily;    // Transpose

}  // namespace phoenix
