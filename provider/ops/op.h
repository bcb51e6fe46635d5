// One file per op family in provider/ops/: what the provider accepts of a node (dtypes,
// constant operands, attributes), the shapes it computes from the node's inputs alone, and how
// it is lowered to kernel calls. Capability, shape specialisation and lowering all read these;
// nothing here trusts the shapes a model declares.
//
// Shapes may hold symbolic dims (graph_view.h: kDynamicDim, named symbols): batch and
// sequence dims stay symbolic at capability and become concrete when a plan is specialised
// for the shapes of a run, so every dim a kernel needs (normalised or reduced axis, head size)
// is known when its plan is built. The same checks run then on the concrete shapes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph_view.h"
#include "gelu/gelu.h"
#include "matmul_int8/matmul_int8.h"
#include "views.h"

namespace phoenix {

class Lowering;

// The rank a tensor view holds (kernels/common/tensor_view.h). Larger ranks stay on the CPU EP.
constexpr int kMaxViewRank = 8;
// Element counts beyond this are refused: offsets stay far from int64 overflow in every kernel.
constexpr int64_t kMaxElements = int64_t{1} << 40;

// What shape inference knows of one node: its inputs' shapes and, for integer tensors whose
// content is known (constants, shape arithmetic such as Shape -> Gather -> Concat), their values
// (a shape, possibly with symbolic dims); the family fills in its outputs'.
struct NodeShapes {
  std::vector<Shape> in;
  std::vector<std::optional<Shape>> in_values;
  std::vector<Shape> out;
  std::vector<std::optional<Shape>> out_values;  // for integer outputs the family computes
};

struct OpFamily {
  const char* name;
  bool (*handles)(const GraphView& g, const GNode& n);
  // "" when the provider can run the node, else why not (static facts: dtypes, constants,
  // attributes). Shapes are judged by infer_shapes.
  std::string (*why_unsupported)(const GraphView& g, const GNode& n);
  // Output shapes (and integer output values) from the inputs'; an error when they are
  // inconsistent (the CPU EP would fail at run time too).
  Status (*infer_shapes)(const GraphView& g, const GNode& n, NodeShapes* io);
  // Emits the node's kernel calls (or views). nullptr for MatMul / Gemm / Conv: they are always
  // lowered as a MatMul chain (fusion/epilogue.h), with or without an epilogue.
  Status (*lower)(Lowering& l, int node);
};

// The family that handles `n`, or nullptr.
const OpFamily* FindOpFamily(const GraphView& g, const GNode& n);

// Shared checks and shape algebra for the families.
std::string ShapeToString(const Shape& s);
bool CheckedNumElements(const Shape& s, int64_t* n);  // false on a non-static dim or an overflow
Status Broadcast(const Shape& a, const Shape& b, Shape* out);  // numpy rules; symbolic dims allowed
bool IsF32(const GraphView& g, int value);
// Every present input in [0, num_inputs) and every output is float32.
std::string CheckF32(const GraphView& g, const GNode& n, size_t num_inputs);
bool IsUsed(const GraphView& g, int value);
// Two dims that must be equal: false only when both are static and differ (symbolic dims are
// checked again when a plan is built for concrete shapes).
inline bool MayEqual(int64_t a, int64_t b) { return a == b || !IsStaticDim(a) || !IsStaticDim(b); }
// Two dims equal for every run: the same static size or the same named symbol (an unknown dim
// equals nothing). For what a kernel cannot check again at run time, such as a broadcast.
inline bool SurelyEqual(int64_t a, int64_t b) { return a == b && a != kDynamicDim; }

// The family tables (defined in provider/ops/<family>.cc).
extern const OpFamily kMatMulFamily;       // MatMul, Gemm
extern const OpFamily kConvFamily;         // Conv (1-D)
extern const OpFamily kLayerNormFamily;    // LayerNormalization
extern const OpFamily kSoftmaxFamily;      // Softmax
extern const OpFamily kGeluFamily;         // Gelu (opset 20); the Erf / Tanh patterns are in patterns.cc
extern const OpFamily kElementwiseFamily;  // Add, Sub, Mul, Div
extern const OpFamily kReshapeFamily;      // Reshape
extern const OpFamily kTransposeFamily;    // Transpose
extern const OpFamily kQdqFamily;          // QuantizeLinear / DequantizeLinear (quantized models)
extern const OpFamily kShapeArithFamily;   // Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast and integer
                                           // Add / Sub / Mul / Div on shapes: evaluated when a plan is built

// The value of an integer constant as shape arithmetic reads it, or nullopt when it is not one it
// represents exactly (values at or beyond 2^40 in magnitude; ops/shape_arith.cc).
std::optional<Shape> ShapeValueOfConstant(const GraphView& g, int value);

// For a DequantizeLinear reading a QuantizeLinear: the pair's per-tensor quantization, or why
// it is not one the provider runs (ops/qdq.cc).
std::string FakeQuantPair(const GraphView& g, const GNode& dq, kernels::QuantParams* out);

// Lowering entry points some families share with the fusion passes.
Status LowerGelu(Lowering& l, int x, int y, kernels::GeluMode mode, const std::string& label);

}  // namespace phoenix
