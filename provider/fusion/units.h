// What the fusion passes decide: which ONNX nodes are lowered together as one unit. Passes run
// in order over the region graph at the shapes of one plan (fusion/*.cc, one file per fusion,
// in the spirit of ORT's optimizer); every node not taken by a pass is a unit of its own. The
// lowering then walks the nodes in topological order and lowers each unit at its last node.
#pragma once

#include <vector>

#include "graph_view.h"
#include "matmul/matmul.h"
#include "matmul_int8/matmul_int8.h"
#include "patterns.h"

namespace phoenix {

// One node a MatMul chain absorbed into the kernel's epilogue, in order.
struct ChainStep {
  enum Kind { kScale, kBias, kGelu, kResidual, kReshape, kQuantizeOutput } kind;
  int node = -1;
  float scale = 1.0f;                                      // kScale
  int value = -1;                                          // kBias: the constant; kResidual: the activation
  kernels::Epilogue gelu = kernels::Epilogue::kNone;      // kGelu
  int gelu_unit = -1;                                      // kGelu from a pattern: its unit
  kernels::QuantParams quant = {};                         // kQuantizeOutput: a QuantizeLinear -> DequantizeLinear
};

struct Unit {
  enum Kind { kNode, kGeluPattern, kMatMulChain, kAttention } kind = kNode;
  std::vector<int> nodes;   // ascending; lowered when the walk reaches nodes.back()
  int head = -1;            // kNode: the node; kMatMulChain: the MatMul / Gemm / Conv; kAttention: Q.K^T
  int output = -1;          // the ONNX value the unit produces
  // kGeluPattern
  GeluMatch gelu;
  // kMatMulChain
  std::vector<ChainStep> chain;
  // kAttention: MatMul(Q, K^T) -> [scalar Mul / Div]* -> Softmax -> MatMul(P, V)
  float attention_scale = 1.0f;
  int softmax = -1, pv = -1;
};

struct UnitPlan {
  std::vector<Unit> units;
  std::vector<int> unit_of_node;  // -1 until a pass takes the node

  explicit UnitPlan(size_t num_nodes) : unit_of_node(num_nodes, -1) {}
  bool Free(int node) const { return unit_of_node[node] < 0; }
  int Add(Unit u) {
    const int id = static_cast<int>(units.size());
    for (int n : u.nodes) unit_of_node[n] = id;
    units.push_back(std::move(u));
    return id;
  }
};

using ShapeMap = std::vector<Shape>;  // concrete shape per value id

// The passes, in the order the compiler runs them.
void FuseGeluPatterns(const GraphView& g, const std::vector<GeluMatch>& matches, UnitPlan* plan);
void FuseAttention(const GraphView& g, const ShapeMap& shapes, bool enabled, UnitPlan* plan);
void FuseMatMulEpilogues(const GraphView& g, const ShapeMap& shapes, UnitPlan* plan);

// The value `v`'s only reader, or -1 when it has several, none, or is a region output.
int SoleConsumer(const GraphView& g, int v);

}  // namespace phoenix
