#include "graph_view.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <queue>
#include <set>

namespace phoenix {

int64_t GNode::AttrInt(const char* name, int64_t fallback) const {
  auto it = attributes.find(name);
  return it != attributes.end() && it->second.type == Attribute::kInt ? it->second.i : fallback;
}

float GNode::AttrFloat(const char* name, float fallback) const {
  auto it = attributes.find(name);
  return it != attributes.end() && it->second.type == Attribute::kFloat ? it->second.f : fallback;
}

std::string GNode::AttrString(const char* name, const std::string& fallback) const {
  auto it = attributes.find(name);
  return it != attributes.end() && it->second.type == Attribute::kString ? it->second.s : fallback;
}

std::vector<int64_t> GNode::AttrInts(const char* name) const {
  auto it = attributes.find(name);
  return it != attributes.end() && it->second.type == Attribute::kInts ? it->second.ints : std::vector<int64_t>{};
}

int GraphView::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

int64_t GraphView::Symbol(const std::string& name) {
  for (size_t i = 0; i < symbols.size(); ++i)
    if (symbols[i] == name) return kFirstSymbol - static_cast<int64_t>(i);
  symbols.push_back(name);
  return kFirstSymbol - static_cast<int64_t>(symbols.size() - 1);
}

namespace {

// Widens raw constant data of a numeric type; false for other types.
bool Widen(ONNXTensorElementDataType t, const void* raw, size_t n, ConstantData* out) {
  out->dtype = t;
  out->values.resize(n);
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      for (size_t i = 0; i < n; ++i) out->values[i] = static_cast<const float*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      for (size_t i = 0; i < n; ++i) out->values[i] = static_cast<const double*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      out->ints.assign(static_cast<const int64_t*>(raw), static_cast<const int64_t*>(raw) + n);
      for (size_t i = 0; i < n; ++i) out->values[i] = static_cast<double>(out->ints[i]);
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      out->ints.resize(n);
      for (size_t i = 0; i < n; ++i) out->values[i] = out->ints[i] = static_cast<const int32_t*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      out->ints.resize(n);
      for (size_t i = 0; i < n; ++i) out->values[i] = out->ints[i] = static_cast<const int16_t*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
      out->ints.resize(n);
      for (size_t i = 0; i < n; ++i) out->values[i] = out->ints[i] = static_cast<const uint16_t*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
      out->ints.resize(n);
      for (size_t i = 0; i < n; ++i) out->values[i] = out->ints[i] = static_cast<const uint32_t*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64:  // beyond INT64_MAX saturates: never read as a small value
      out->ints.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t u = static_cast<const uint64_t*>(raw)[i];
        out->values[i] = static_cast<double>(u);
        out->ints[i] = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
      }
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      out->bytes.assign(static_cast<const uint8_t*>(raw), static_cast<const uint8_t*>(raw) + n);
      for (size_t i = 0; i < n; ++i) out->values[i] = static_cast<const int8_t*>(raw)[i];
      return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      out->bytes.assign(static_cast<const uint8_t*>(raw), static_cast<const uint8_t*>(raw) + n);
      for (size_t i = 0; i < n; ++i) out->values[i] = static_cast<const uint8_t*>(raw)[i];
      return true;
    default:
      out->values.clear();
      return false;
  }
}

Attribute ReadAttribute(const Ort::ConstOpAttr& a) {
  Attribute r;
  switch (a.GetType()) {
    case ORT_OP_ATTR_INT:
      if (a.GetValue(r.i).IsOK()) r.type = Attribute::kInt;
      break;
    case ORT_OP_ATTR_FLOAT:
      if (a.GetValue(r.f).IsOK()) r.type = Attribute::kFloat;
      break;
    case ORT_OP_ATTR_STRING:
      if (a.GetValue(r.s).IsOK()) r.type = Attribute::kString;
      break;
    case ORT_OP_ATTR_INTS:
      if (a.GetValueArray(r.ints).IsOK()) r.type = Attribute::kInts;
      break;
    case ORT_OP_ATTR_FLOATS:
      if (a.GetValueArray(r.floats).IsOK()) r.type = Attribute::kFloats;
      break;
    default:
      break;  // graphs, tensors, strings: the ops the provider claims do not read them
  }
  return r;
}

}  // namespace

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
    if (v.has_shape) {
      v.shape = tensor.GetShape();
      std::vector<const char*> sym = tensor.GetSymbolicDimensions();
      for (size_t d = 0; d < v.shape.size(); ++d)
        if (v.shape[d] < 0) v.shape[d] = d < sym.size() && sym[d] && *sym[d] ? Symbol(sym[d]) : kDynamicDim;
    }
  }
  v.is_constant = vi.IsConstantInitializer();
  v.is_graph_input = vi.IsRequiredGraphInput() || vi.IsOptionalGraphInput();
  v.is_graph_output = vi.IsGraphOutput();
  if (v.is_constant) {
    Ort::ConstValue value{nullptr};
    if (vi.GetInitializer(value).IsOK() && static_cast<const OrtValue*>(value) != nullptr) {
      auto info = value.GetTensorTypeAndShapeInfo();
      const size_t count = info.GetElementCount();
      if (!v.has_shape) {
        v.shape = info.GetShape();
        v.has_shape = true;
      }
      int non_unit_dims = 0;
      for (int64_t d : info.GetShape()) non_unit_dims += d != 1;
      // Small constants and vectors (biases, norms, shapes) are copied; matrices are weights,
      // uploaded at Compile straight from ORT's memory.
      const auto t = info.GetElementType();
      const bool quantized = t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 || t == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
      if (quantized) {  // INT8 weights: the bytes only (the values stay empty above the copy limit)
        auto data = std::make_shared<ConstantData>();
        data->dtype = t;
        const auto* raw = static_cast<const uint8_t*>(value.GetTensorRawData());
        data->bytes.assign(raw, raw + count);
        if (count <= static_cast<size_t>(kCopiedConstantLimit)) Widen(t, raw, count, data.get());
        v.data = std::move(data);
      } else if (count <= static_cast<size_t>(kCopiedConstantLimit) ||
                 (non_unit_dims <= 1 && count <= static_cast<size_t>(kCopiedVectorLimit))) {
        auto data = std::make_shared<ConstantData>();
        if (Widen(t, value.GetTensorRawData(), count, data.get())) v.data = std::move(data);
      }
    }
  }
  int id = static_cast<int>(values.size());
  values.push_back(std::move(v));
  by_name_.emplace(name, id);
  return id;
}

GraphView::GraphView(const OrtGraph* graph) {
  Ort::ConstGraph g{graph};
  for (auto& vi : g.GetInputs()) graph_inputs.push_back(Intern(vi));
  for (auto& n : g.GetNodes()) {
    GNode gn;
    gn.ort_id = n.GetId();
    gn.name = n.GetName();
    gn.op_type = n.GetOperatorType();
    gn.domain = n.GetDomain();
    gn.since_version = n.GetSinceVersion();
    for (auto& vi : n.GetInputs()) gn.inputs.push_back(Intern(vi));
    for (auto& vi : n.GetOutputs()) gn.outputs.push_back(Intern(vi));
    for (const Ort::ConstOpAttr& a : n.GetAttributes()) gn.attributes[a.GetName()] = ReadAttribute(a);
    nodes.push_back(std::move(gn));
  }
  for (auto& vi : g.GetOutputs()) graph_outputs.push_back(Intern(vi));
  Finish();
}

int GraphView::AddValue(const std::string& name, ONNXTensorElementDataType dtype, std::vector<int64_t> shape,
                        bool has_shape) {
  GValue v;
  v.name = name;
  v.dtype = dtype;
  v.has_shape = has_shape;
  v.shape = std::move(shape);
  const int id = static_cast<int>(values.size());
  values.push_back(std::move(v));
  by_name_[name] = id;
  return id;
}

int GraphView::AddConstant(const std::string& name, std::vector<int64_t> shape, std::vector<double> data,
                           ONNXTensorElementDataType dtype) {
  const int id = AddValue(name, dtype, std::move(shape));
  auto d = std::make_shared<ConstantData>();
  d->dtype = dtype;
  d->values = std::move(data);
  if (dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
    for (double x : d->values) d->ints.push_back(static_cast<int64_t>(x));
  values[id].is_constant = true;
  values[id].data = std::move(d);
  return id;
}

int GraphView::AddNode(GNode node) {
  nodes.push_back(std::move(node));
  return static_cast<int>(nodes.size()) - 1;
}

void GraphView::Finish() {
  // Topological order (Kahn), stable with respect to the given order.
  const int n = static_cast<int>(nodes.size());
  std::vector<int> producer_of(values.size(), -1);
  for (int i = 0; i < n; ++i)
    for (int o : nodes[i].outputs)
      if (o >= 0) producer_of[o] = i;
  std::vector<int> indegree(n, 0);
  std::vector<std::vector<int>> succ(n);
  for (int i = 0; i < n; ++i)
    for (int in : nodes[i].inputs)
      if (in >= 0 && producer_of[in] >= 0) {
        succ[producer_of[in]].push_back(i);
        ++indegree[i];
      }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (indegree[i] == 0) ready.push(i);
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int s : succ[i])
      if (--indegree[s] == 0) ready.push(s);
  }
  if (static_cast<int>(order.size()) == n) {  // (not a DAG: keep the given order)
    std::vector<GNode> sorted;
    sorted.reserve(n);
    for (int i : order) sorted.push_back(std::move(nodes[i]));
    nodes = std::move(sorted);
  }
  for (GValue& v : values) {
    v.producer = -1;
    v.consumers.clear();
  }
  for (int i = 0; i < n; ++i) {
    for (int o : nodes[i].outputs)
      if (o >= 0) values[o].producer = i;
    for (int in : nodes[i].inputs) {
      if (in < 0) continue;
      auto& c = values[in].consumers;
      if (std::find(c.begin(), c.end(), i) == c.end()) c.push_back(i);
    }
  }
  graph_outputs.erase(std::remove(graph_outputs.begin(), graph_outputs.end(), -1), graph_outputs.end());
  for (int o : graph_outputs) values[o].is_graph_output = true;
  FoldDequantizedConstants();
}

bool GraphView::QuantParamShapesValid(const GNode& n) const {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return false;
  const GValue& x = values[n.inputs[0]];
  const GValue& s = values[n.inputs[1]];
  if (!x.has_shape || !s.has_shape || s.shape.size() > 1) return false;
  const bool per_tensor = s.shape.empty() || s.shape[0] == 1;
  if (!per_tensor) {
    const int64_t r = static_cast<int64_t>(x.shape.size());
    int64_t axis = n.AttrInt("axis", 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r || x.shape[axis] != s.shape[0]) return false;
  }
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const GValue& z = values[n.inputs[2]];
    if (!z.has_shape || z.shape != s.shape) return false;
  }
  return true;
}

void GraphView::FoldDequantizedConstants() {
  for (const GNode& n : nodes) {
    if (!n.domain.empty() || n.op_type != "DequantizeLinear" || n.inputs.size() < 2 || n.outputs.empty()) continue;
    const int q = n.inputs[0], s = n.inputs[1], z = n.inputs.size() > 2 ? n.inputs[2] : -1, y = n.outputs[0];
    if (q < 0 || s < 0 || y < 0 || !values[q].is_constant || !values[s].is_constant) continue;
    if (z >= 0 && !values[z].is_constant) continue;
    const ConstantData* qd = values[q].data.get();
    const ConstantData* sd = values[s].data.get();
    // INT8 / UINT8 weights (their bytes), or small INT32 constants (quantized biases).
    if (!qd || (qd->bytes.empty() && qd->dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32) || !sd || sd->values.empty()) continue;
    if (qd->bytes.empty() && qd->ints.empty()) continue;
    if (n.HasAttribute("block_size") || values[y].dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) continue;
    if (!QuantParamShapesValid(n)) continue;  // left to the CPU EP, which rejects it
    DequantizedConstant dq{q, s, z, n.AttrInt("axis", 1)};
    GValue& out = values[y];
    out.is_constant = true;
    out.dequantized = dq;
    if (!out.has_shape) out.shape = values[q].shape, out.has_shape = values[q].has_shape;
    // Small ones get their FP32 values now (biases, norms, scalars); weights are dequantized on use.
    if (static_cast<int64_t>(std::max(qd->bytes.size(), qd->ints.size())) <= kCopiedConstantLimit) {
      std::vector<float> f;
      if (ReadConstantF32(y, &f)) {
        auto data = std::make_shared<ConstantData>();
        data->dtype = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
        data->values.assign(f.begin(), f.end());
        out.data = std::move(data);
      }
    }
  }
}

GraphView GraphView::Subgraph(const std::vector<int>& node_ids) const {
  GraphView sub;
  sub.symbols = symbols;
  std::vector<int> ids = node_ids;
  std::sort(ids.begin(), ids.end());
  const std::set<int> inside(ids.begin(), ids.end());
  std::unordered_map<int, int> map;  // value id here -> there
  auto intern = [&](int v) {
    if (v < 0) return -1;
    auto it = map.find(v);
    if (it != map.end()) return it->second;
    GValue copy = values[v];
    copy.info = Ort::ConstValueInfo{nullptr};
    if (copy.dequantized) {  // folded again by Finish when its DequantizeLinear is in the subgraph
      copy.dequantized.reset();
      copy.is_constant = false;
      copy.data = nullptr;
    }
    copy.producer = -1;
    copy.consumers.clear();
    copy.is_graph_input = copy.is_graph_output = false;
    const int id = static_cast<int>(sub.values.size());
    sub.by_name_[copy.name] = id;
    sub.values.push_back(std::move(copy));
    map[v] = id;
    return id;
  };
  for (int ni : ids) {
    GNode n = nodes[ni];
    for (int& v : n.inputs) v = intern(v);
    for (int& v : n.outputs) v = intern(v);
    sub.nodes.push_back(std::move(n));
  }
  for (auto& [v, sv] : map) {
    const GValue& orig = values[v];
    const bool produced_inside = orig.producer >= 0 && inside.count(orig.producer);
    if (!produced_inside && (!orig.is_constant || orig.dequantized)) {
      sub.values[sv].is_graph_input = true;
      sub.graph_inputs.push_back(sv);
    }
    bool used_outside = orig.is_graph_output;
    for (int c : orig.consumers) used_outside |= !inside.count(c);
    if (produced_inside && used_outside) sub.graph_outputs.push_back(sv);
  }
  std::sort(sub.graph_inputs.begin(), sub.graph_inputs.end());
  std::sort(sub.graph_outputs.begin(), sub.graph_outputs.end());
  sub.Finish();
  return sub;
}

std::optional<std::vector<double>> GraphView::ConstantAsDoubles(int value_id) const {
  if (value_id < 0 || !values[value_id].is_constant || !values[value_id].data) return std::nullopt;
  const ConstantData& d = *values[value_id].data;
  if (d.values.empty() && !d.ints.empty()) return std::nullopt;
  return d.values;
}

std::optional<std::vector<int64_t>> GraphView::ConstantAsInts(int value_id) const {
  if (value_id < 0 || !values[value_id].is_constant || !values[value_id].data) return std::nullopt;
  const ConstantData& d = *values[value_id].data;
  if (d.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 || d.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8) {
    if (d.values.size() != d.bytes.size()) return std::nullopt;  // above the copy limit
    return std::vector<int64_t>(d.values.begin(), d.values.end());
  }
  if (d.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 && d.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 &&
      d.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16 && d.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16 &&
      d.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32 && d.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64)
    return std::nullopt;
  return d.ints;
}

std::optional<double> GraphView::ScalarConstant(int value_id) const {
  if (value_id < 0 || !values[value_id].is_constant || !values[value_id].data) return std::nullopt;
  const ConstantData& d = *values[value_id].data;
  if (d.values.size() != 1) return std::nullopt;
  return d.values[0];
}

bool GraphView::ReadConstantF32(int value_id, std::vector<float>* out) const {
  if (value_id < 0 || !values[value_id].is_constant) return false;
  const GValue& v = values[value_id];
  if (v.dequantized && !(v.data && !v.data->values.empty())) {  // (q - zero_point) * scale, in FP32 as ORT does
    const DequantizedConstant& d = *v.dequantized;
    const ConstantData& q = *values[d.quantized].data;
    const std::vector<double>& scale = values[d.scale].data->values;
    const ConstantData* zp = d.zero_point >= 0 ? values[d.zero_point].data.get() : nullptr;
    const Shape& shape = values[d.quantized].shape;
    const bool is_signed = q.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    int64_t axis = d.axis < 0 ? d.axis + static_cast<int64_t>(shape.size()) : d.axis;
    int64_t inner = 1, channels = 1;
    if (scale.size() > 1) {
      if (axis < 0 || axis >= static_cast<int64_t>(shape.size()) || shape[axis] != static_cast<int64_t>(scale.size()))
        return false;
      channels = shape[axis];
      for (size_t k = axis + 1; k < shape.size(); ++k) inner *= shape[k];
    }
    if (zp && std::max(zp->bytes.size(), zp->ints.size()) != scale.size()) return false;
    const bool int32 = q.bytes.empty();  // a quantized bias: int32 values, zero point 0 or int32 too
    const size_t count = int32 ? q.ints.size() : q.bytes.size();
    out->resize(count);
    for (size_t i = 0; i < count; ++i) {
      const size_t c = channels > 1 ? (i / inner) % channels : 0;
      const int64_t qi = int32 ? q.ints[i] : (is_signed ? static_cast<int8_t>(q.bytes[i]) : q.bytes[i]);
      int64_t zi = 0;
      if (zp && int32) zi = c < zp->ints.size() ? zp->ints[c] : 0;
      else if (zp) zi = is_signed ? static_cast<int8_t>(zp->bytes[c]) : zp->bytes[c];
      (*out)[i] = static_cast<float>(qi - zi) * static_cast<float>(scale[c]);
    }
    return true;
  }
  if (v.data && !v.data->values.empty()) {
    out->assign(v.data->values.begin(), v.data->values.end());
    return true;
  }
  if (static_cast<const OrtValueInfo*>(v.info) == nullptr) return false;
  Ort::ConstValue value{nullptr};
  if (!v.info.GetInitializer(value).IsOK() || static_cast<const OrtValue*>(value) == nullptr) return false;
  auto info = value.GetTensorTypeAndShapeInfo();
  const size_t count = info.GetElementCount();
  const void* raw = value.GetTensorRawData();
  if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    out->resize(count);
    std::memcpy(out->data(), raw, count * sizeof(float));
    return true;
  }
  ConstantData wide;
  if (!Widen(info.GetElementType(), raw, count, &wide) || wide.values.empty()) return false;
  out->assign(wide.values.begin(), wide.values.end());
  return true;
}

}  // namespace phoenix
