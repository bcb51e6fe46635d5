#include "graph_view.h"

#include <algorithm>
#include <cstring>
#include <queue>

namespace phoenix {

namespace {

Ort::ConstOpAttr FindAttr(const OrtNode* node, const char* name) {
  Ort::ConstNode n{node};
  Ort::ConstOpAttr attr{nullptr};
  Ort::Status st = n.GetAttributeByName(name, attr);
  if (!st.IsOK()) return Ort::ConstOpAttr{nullptr};
  return attr;
}

}  // namespace

bool GNode::HasAttr(const char* attr_name) const {
  return static_cast<const OrtOpAttr*>(FindAttr(node, attr_name)) != nullptr;
}

int64_t GNode::AttrInt(const char* attr_name, int64_t fallback) const {
  auto attr = FindAttr(node, attr_name);
  if (static_cast<const OrtOpAttr*>(attr) == nullptr) return fallback;
  int64_t v = fallback;
  return attr.GetValue(v).IsOK() ? v : fallback;
}

float GNode::AttrFloat(const char* attr_name, float fallback) const {
  auto attr = FindAttr(node, attr_name);
  if (static_cast<const OrtOpAttr*>(attr) == nullptr) return fallback;
  float v = fallback;
  return attr.GetValue(v).IsOK() ? v : fallback;
}

std::string GNode::AttrString(const char* attr_name, const std::string& fallback) const {
  auto attr = FindAttr(node, attr_name);
  if (static_cast<const OrtOpAttr*>(attr) == nullptr) return fallback;
  std::string v;
  return attr.GetValue(v).IsOK() ? v : fallback;
}

std::vector<int64_t> GNode::AttrInts(const char* attr_name) const {
  auto attr = FindAttr(node, attr_name);
  std::vector<int64_t> v;
  if (static_cast<const OrtOpAttr*>(attr) != nullptr) attr.GetValueArray(v);
  return v;
}

int GraphView::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

int GraphView::Intern(Ort::ConstValueInfo vi) {
  if (static_cast<const OrtValueInfo*>(vi) == nullptr) return -1;
  std::string name = vi.GetName();
  if (name.empty()) return -1;  // an omitted optional input/output
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  GValue v;
  v.name = name;
  v.info = vi;
  Ort::ConstTypeInfo type = vi.TypeInfo();
  if (type.GetONNXType() == ONNX_TYPE_TENSOR) {
    auto tensor = type.GetTensorTypeAndShapeInfo();
    v.dtype = tensor.GetElementType();
    v.has_shape = tensor.HasShape();
    if (v.has_shape) v.shape = tensor.GetShape();
  }
  v.is_constant = vi.IsConstantInitializer();
  v.is_graph_input = vi.IsRequiredGraphInput() || vi.IsOptionalGraphInput();
  v.is_graph_output = vi.IsGraphOutput();
  int id = static_cast<int>(values.size());
  values.push_back(std::move(v));
  by_name_.emplace(name, id);
  return id;
}

GraphView::GraphView(const OrtGraph* graph) {
  Ort::ConstGraph g{graph};
  for (auto& vi : g.GetInputs()) graph_inputs.push_back(Intern(vi));
  std::vector<Ort::ConstNode> ort_nodes = g.GetNodes();
  std::vector<GNode> raw;
  raw.reserve(ort_nodes.size());
  for (auto& n : ort_nodes) {
    GNode gn;
    gn.node = n;
    gn.name = n.GetName();
    gn.op_type = n.GetOperatorType();
    gn.domain = n.GetDomain();
    gn.since_version = n.GetSinceVersion();
    for (auto& vi : n.GetInputs()) gn.inputs.push_back(Intern(vi));
    for (auto& vi : n.GetOutputs()) gn.outputs.push_back(Intern(vi));
    raw.push_back(std::move(gn));
  }
  for (auto& vi : g.GetOutputs()) graph_outputs.push_back(Intern(vi));

  // Topological order (Kahn), stable with respect to ORT's order.
  std::unordered_map<int, int> producer_of;
  for (int i = 0; i < static_cast<int>(raw.size()); ++i)
    for (int o : raw[i].outputs) if (o >= 0) producer_of[o] = i;
  std::vector<int> indegree(raw.size(), 0);
  std::vector<std::vector<int>> succ(raw.size());
  for (int i = 0; i < static_cast<int>(raw.size()); ++i) {
    for (int in : raw[i].inputs) {
      auto it = in >= 0 ? producer_of.find(in) : producer_of.end();
      if (it != producer_of.end()) {
        succ[it->second].push_back(i);
        ++indegree[i];
      }
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < static_cast<int>(raw.size()); ++i) if (indegree[i] == 0) ready.push(i);
  std::vector<int> order;
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int s : succ[i]) if (--indegree[s] == 0) ready.push(s);
  }
  if (order.size() != raw.size()) {  // not a DAG (should not happen): keep ORT's order
    order.clear();
    for (int i = 0; i < static_cast<int>(raw.size()); ++i) order.push_back(i);
  }
  nodes.reserve(raw.size());
  for (int i : order) nodes.push_back(std::move(raw[i]));
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    for (int o : nodes[i].outputs) if (o >= 0) values[o].producer = i;
    for (int in : nodes[i].inputs) {
      if (in < 0) continue;
      auto& c = values[in].consumers;
      if (std::find(c.begin(), c.end(), i) == c.end()) c.push_back(i);
    }
  }
}

namespace {

template <typename Out, typename Fn>
std::optional<std::vector<Out>> ReadConstant(const GValue& v, Fn&& convert_ok) {
  if (!v.is_constant) return std::nullopt;
  Ort::ConstValue value{nullptr};
  if (!v.info.GetInitializer(value).IsOK() || static_cast<const OrtValue*>(value) == nullptr)
    return std::nullopt;
  auto info = value.GetTensorTypeAndShapeInfo();
  const size_t count = info.GetElementCount();
  const void* raw = value.GetTensorRawData();
  std::vector<Out> out(count);
  if (!convert_ok(info.GetElementType(), raw, count, out.data())) return std::nullopt;
  return out;
}

template <typename Out>
bool Widen(ONNXTensorElementDataType t, const void* raw, size_t n, Out* out) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<Out>(static_cast<const float*>(raw)[i]);
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<Out>(static_cast<const double*>(raw)[i]);
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<Out>(static_cast<const int64_t*>(raw)[i]);
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<Out>(static_cast<const int32_t*>(raw)[i]);
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::vector<double>> GraphView::ConstantAsDoubles(int value_id) const {
  if (value_id < 0) return std::nullopt;
  return ReadConstant<double>(values[value_id], Widen<double>);
}

std::optional<std::vector<int64_t>> GraphView::ConstantAsInts(int value_id) const {
  if (value_id < 0) return std::nullopt;
  const GValue& v = values[value_id];
  if (v.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 && v.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
    return std::nullopt;
  return ReadConstant<int64_t>(v, Widen<int64_t>);
}

std::optional<double> GraphView::ScalarConstant(int value_id) const {
  if (value_id < 0 || !values[value_id].is_constant) return std::nullopt;
  if (values[value_id].has_shape && values[value_id].NumElements() != 1) return std::nullopt;
  auto d = ConstantAsDoubles(value_id);
  if (!d || d->size() != 1) return std::nullopt;
  return (*d)[0];
}

}  // namespace phoenix
