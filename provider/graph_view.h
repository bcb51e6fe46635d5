// A plain snapshot of an OrtGraph (nodes in topological order, values with static shape and
// dtype, producers and consumers) shared by capability and compile. Built once per call;
// the OrtGraph it points into is only valid during that call, so nothing here is kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ort_api.h"

namespace phoenix {

struct GValue {
  std::string name;
  ONNXTensorElementDataType dtype = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  bool has_shape = false;
  std::vector<int64_t> shape;    // -1 for a dynamic dim
  bool is_constant = false;      // a constant initializer
  bool is_graph_input = false;
  bool is_graph_output = false;
  int producer = -1;             // node index, -1 for graph inputs and initializers
  std::vector<int> consumers;    // node indices (within this graph)
  Ort::ConstValueInfo info{nullptr};

  bool IsStatic() const {
    if (!has_shape) return false;
    for (int64_t d : shape) if (d < 0) return false;
    return true;
  }
  int64_t NumElements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct GNode {
  const OrtNode* node = nullptr;
  std::string name, op_type, domain;
  int since_version = 0;
  std::vector<int> inputs;   // value indices; -1 for an omitted optional input
  std::vector<int> outputs;  // value indices; -1 for an omitted optional output
  bool HasAttr(const char* name) const;
  int64_t AttrInt(const char* name, int64_t fallback) const;
  float AttrFloat(const char* name, float fallback) const;
  std::string AttrString(const char* name, const std::string& fallback) const;
  std::vector<int64_t> AttrInts(const char* name) const;
};

class GraphView {
 public:
  explicit GraphView(const OrtGraph* graph);

  std::vector<GNode> nodes;   // topological order
  std::vector<GValue> values;
  std::vector<int> graph_inputs, graph_outputs;

  const GValue& value(int id) const { return values[id]; }
  int FindValue(const std::string& name) const;

  // Constant data widened to float64 / int64 (for scalars, shapes and pattern checks), and
  // raw float32 data for weights. Empty optional when not a constant of a usable type.
  std::optional<std::vector<double>> ConstantAsDoubles(int value_id) const;
  std::optional<std::vector<int64_t>> ConstantAsInts(int value_id) const;
  // A constant's scalar value, when it holds exactly one element.
  std::optional<double> ScalarConstant(int value_id) const;

 private:
  int Intern(Ort::ConstValueInfo vi);
  std::unordered_map<std::string, int> by_name_;
};

}  // namespace phoenix
