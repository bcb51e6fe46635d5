// An owned snapshot of an OrtGraph: nodes in topological order with their attributes, values
// with dtype and shape (symbolic dims kept by name), producers and consumers, and the data of
// small constants. Capability builds one per GetCapability call; each region's snapshot is cut
// out of it and kept for the life of the compiled region, so shape-specialised plans can be
// built at run time, long after the OrtGraph is gone. C++ tests build graphs directly with
// AddValue / AddNode.
//
// Large constants (weights) are not copied: ReadConstantF32 reads them from the live OrtGraph,
// which is valid only during the ORT call that built the snapshot (Compile uploads them then).
#pragma once

#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/tensor_view.h"
#include "ort_api.h"

namespace phoenix {

// A dim: >= 0 concrete; kDynamicDim unknown; <= kFirstSymbol a named symbol (the same name
// gives the same id throughout one graph: "batch_size" in every value is one dim).
constexpr int64_t kDynamicDim = -1;
constexpr int64_t kFirstSymbol = -(int64_t{1} << 40);
inline bool IsStaticDim(int64_t d) { return d >= 0; }
// Integer values computed from shapes (Shape -> Gather -> Concat ...) hold literal integers
// (Reshape's -1 and 0 included), symbols, or kUnknownValue; unknown dims become kUnknownValue
// there so they cannot be mistaken for a literal -1.
constexpr int64_t kUnknownValue = INT64_MIN;
inline bool IsSymbol(int64_t v) { return v <= kFirstSymbol && v != kUnknownValue; }
inline int64_t DimToValue(int64_t d) { return d == kDynamicDim ? kUnknownValue : d; }

struct Attribute {
  enum Type { kInt, kFloat, kString, kInts, kFloats, kOther } type = kOther;
  int64_t i = 0;
  float f = 0.0f;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};

// Constant data copied out of ORT (small initializers: shapes, scalars, biases, norms; and
// every INT8 / UINT8 initializer: the weights of quantized models, 1 byte per element).
struct ConstantData {
  ONNXTensorElementDataType dtype = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<double> values;  // float / double / integer types widened (exact for int32 and float)
  std::vector<int64_t> ints;   // int64 / int32 data, exact
  std::vector<uint8_t> bytes;  // int8 / uint8 data as stored
};

// A DequantizeLinear of constants is itself a constant (its output value is marked so): the
// values it was made from, to read it as FP32 ((q - zero_point) * scale) or to keep it INT8.
struct DequantizedConstant {
  int quantized = -1, scale = -1, zero_point = -1;  // value ids (zero_point may be -1)
  int64_t axis = -1;                                 // per-axis scales: the axis they run along
};

struct GValue {
  std::string name;
  ONNXTensorElementDataType dtype = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  bool has_shape = false;
  std::vector<int64_t> shape;  // see kDynamicDim / kFirstSymbol
  bool is_constant = false;    // a constant initializer
  bool is_graph_input = false;
  bool is_graph_output = false;
  int producer = -1;           // node index, -1 for graph inputs and initializers
  std::vector<int> consumers;  // node indices (within this graph)
  std::shared_ptr<const ConstantData> data;  // small constants only
  std::optional<DequantizedConstant> dequantized;  // a constant made by a DequantizeLinear node
  Ort::ConstValueInfo info{nullptr};         // live only during the ORT call that built the graph

  bool IsStatic() const {
    if (!has_shape) return false;
    for (int64_t d : shape)
      if (!IsStaticDim(d)) return false;
    return true;
  }
  int64_t NumElements() const {  // static shapes only
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct GNode {
  size_t ort_id = 0;  // ORT's node id (the same in GetCapability's graph and Compile's subgraph)
  std::string name, op_type, domain;
  int since_version = 0;
  std::vector<int> inputs;   // value indices; -1 for an omitted optional input
  std::vector<int> outputs;  // value indices; -1 for an omitted optional output
  std::map<std::string, Attribute> attributes;

  bool HasAttribute(const char* name) const { return attributes.count(name) > 0; }
  // "MatMul 'name'" or "MatMul" when the node has no name: for messages and labels.
  std::string Label() const { return name.empty() ? op_type : name; }
  int64_t AttrInt(const char* name, int64_t fallback) const;
  float AttrFloat(const char* name, float fallback) const;
  std::string AttrString(const char* name, const std::string& fallback) const;
  std::vector<int64_t> AttrInts(const char* name) const;
};

class GraphView {
 public:
  GraphView() = default;
  explicit GraphView(const OrtGraph* graph);

  std::vector<GNode> nodes;  // topological order
  std::vector<GValue> values;
  std::vector<int> graph_inputs, graph_outputs;
  std::vector<std::string> symbols;  // symbol k has dim id kFirstSymbol - k

  const GValue& value(int id) const { return values[id]; }
  int FindValue(const std::string& name) const;

  // Constant data (small constants, copied) widened to float64 / int64; empty when the value is
  // not a constant of a usable type or was too large to copy.
  std::optional<std::vector<double>> ConstantAsDoubles(int value_id) const;
  std::optional<std::vector<int64_t>> ConstantAsInts(int value_id) const;
  // A constant's value when it holds exactly one element.
  std::optional<double> ScalarConstant(int value_id) const;
  // Any float constant as float32 values: copied data, dequantized INT8 data, or read from the
  // live OrtGraph (valid only during the ORT call that built this graph).
  bool ReadConstantF32(int value_id, std::vector<float>* out) const;
  // A QuantizeLinear / DequantizeLinear (no block_size) whose scale and zero point have shapes the
  // CPU EP accepts: the scale a scalar, a 1-element vector or a vector along `axis` of the data,
  // the zero point (if any) of the scale's shape. The CPU EP rejects the rest at run time.
  bool QuantParamShapesValid(const GNode& n) const;

  // The subgraph of `node_ids` (indices into nodes, any order): its nodes, every value they
  // touch, the values read from outside as graph inputs and the values used outside (or graph
  // outputs) as graph outputs. Keeps symbols and constant data; drops live ORT handles.
  GraphView Subgraph(const std::vector<int>& node_ids) const;

  // Building by hand (C++ tests): values first, then nodes, then Finish() to order and link.
  int AddValue(const std::string& name, ONNXTensorElementDataType dtype, std::vector<int64_t> shape,
               bool has_shape = true);
  int AddConstant(const std::string& name, std::vector<int64_t> shape, std::vector<double> data,
                  ONNXTensorElementDataType dtype = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  int AddNode(GNode node);
  int64_t Symbol(const std::string& name);  // the dim id of a named symbolic dim
  void Finish();                         // topological order, producers, consumers

 private:
  int Intern(Ort::ConstValueInfo vi);
  void FoldDequantizedConstants();
  std::unordered_map<std::string, int> by_name_;
};

// Constants with at most this many elements, and vectors up to kCopiedVectorLimit, are copied
// into the snapshot.
constexpr int64_t kCopiedConstantLimit = 1 << 16;
constexpr int64_t kCopiedVectorLimit = 1 << 22;

}  // namespace phoenix
