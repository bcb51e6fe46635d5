// Builds GraphViews by hand for the provider's C++ tests (no ONNX Runtime needed).
#pragma once

#include <string>
#include <vector>

#include "graph_view.h"

namespace phoenix::testing {

class GraphBuilder {
 public:
  static constexpr ONNXTensorElementDataType kF32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  static constexpr ONNXTensorElementDataType kI64 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;

  // A value by name (created on first use, with the given shape and type).
  int Value(const std::string& name, Shape shape = {}, ONNXTensorElementDataType dtype = kF32) {
    const int v = g.FindValue(name);
    return v >= 0 ? v : g.AddValue(name, dtype, std::move(shape));
  }
  int Input(const std::string& name, Shape shape, ONNXTensorElementDataType dtype = kF32) {
    const int v = Value(name, std::move(shape), dtype);
    g.values[v].is_graph_input = true;
    g.graph_inputs.push_back(v);
    return v;
  }
  int Const(const std::string& name, Shape shape, std::vector<double> data, ONNXTensorElementDataType dtype = kF32) {
    return g.AddConstant(name, std::move(shape), std::move(data), dtype);
  }
  int Scalar(const std::string& name, double x) { return Const(name, {}, {x}); }
  void Output(const std::string& name) { g.graph_outputs.push_back(g.FindValue(name)); }

  // op(inputs) -> outputs; each output gets `out_shape` (declared) and float type unless given.
  GNode& Node(const std::string& op, std::vector<std::string> inputs, std::vector<std::string> outputs,
              Shape out_shape = {}, ONNXTensorElementDataType out_type = kF32) {
    GNode n;
    n.name = op + std::to_string(g.nodes.size());
    n.op_type = op;
    n.since_version = 17;
    n.ort_id = g.nodes.size();
    for (auto& in : inputs) n.inputs.push_back(in.empty() ? -1 : Value(in));
    for (auto& out : outputs) n.outputs.push_back(Value(out, out_shape, out_type));
    g.AddNode(std::move(n));
    return g.nodes.back();
  }
  static void SetInts(GNode& n, const std::string& name, std::vector<int64_t> v) {
    Attribute a;
    a.type = Attribute::kInts;
    a.ints = std::move(v);
    n.attributes[name] = a;
  }
  static void SetInt(GNode& n, const std::string& name, int64_t v) {
    Attribute a;
    a.type = Attribute::kInt;
    a.i = v;
    n.attributes[name] = a;
  }

  GraphView& Finish() {
    g.Finish();
    return g;
  }

  GraphView g;
};

}  // namespace phoenix::testing
