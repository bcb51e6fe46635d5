#include "ops/op.h"

namespace phoenix {

const OpFamily* FindOpFamily(const GNode& n) {
  static const OpFamily* const kFamilies[] = {&kMatMulFamily, &kConvFamily,        &kLayerNormFamily,
                                              &kSoftmaxFamily, &kGeluFamily,       &kElementwiseFamily,
                                              &kReshapeFamily, &kTransposeFamily};
  if (!n.domain.empty()) return nullptr;
  for (const OpFamily* f : kFamilies)
    if (f->handles(n)) return f;
  return nullptr;
}

std::string ShapeToString(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return r + "]";
}

bool CheckedNumElements(const Shape& s, int64_t* n) {
  int64_t count = 1;
  for (int64_t d : s) {
    if (d < 0) return false;
    if (d != 0 && count > kMaxElements / d) return false;
    count *= d;
  }
  *n = count;
  return true;
}

Status Broadcast(const Shape& a, const Shape& b, Shape* out) {
  const size_t r = std::max(a.size(), b.size());
  Shape s(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    const int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      return Status::Error("shapes " + ShapeToString(a) + " and " + ShapeToString(b) + " do not broadcast");
    s[i] = da == 1 ? db : da;
  }
  *out = std::move(s);
  return Status::OK();
}

bool IsF32(const GraphView& g, int v) { return v >= 0 && g.value(v).dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }

std::string CheckF32(const GraphView& g, const GNode& n, size_t num_inputs) {
  for (size_t i = 0; i < std::min(num_inputs, n.inputs.size()); ++i)
    if (n.inputs[i] >= 0 && !IsF32(g, n.inputs[i])) return "input " + std::to_string(i) + " is not float32";
  for (int v : n.outputs)
    if (v >= 0 && !IsF32(g, v)) return "output is not float32";
  return "";
}

bool IsUsed(const GraphView& g, int v) {
  return v >= 0 && (!g.value(v).consumers.empty() || g.value(v).is_graph_output);
}

}  // namespace phoenix
