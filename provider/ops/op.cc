#include "ops/op.h"

namespace phoenix {

const OpFamily* FindOpFamily(const GraphView& g, const GNode& n) {
  // Shape arithmetic first: an integer Add is shape arithmetic, a float Add is elementwise.
  static const OpFamily* const kFamilies[] = {&kShapeArithFamily, &kMatMulFamily,      &kConvFamily,
                                              &kLayerNormFamily,  &kSoftmaxFamily,     &kGeluFamily,
                                              &kElementwiseFamily, &kReshapeFamily,    &kTransposeFamily};
  if (!n.domain.empty()) return nullptr;
  for (const OpFamily* f : kFamilies)
    if (f->handles(g, n)) return f;
  return nullptr;
}

std::string ShapeToString(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + (IsStaticDim(s[i]) ? std::to_string(s[i]) : std::string("?"));
  return r + "]";
}

bool CheckedNumElements(const Shape& s, int64_t* n) {
  int64_t count = 1;
  for (int64_t d : s) {
    if (!IsStaticDim(d)) return false;
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
    if (da == db && da != kDynamicDim) {
      s[i] = da;
    } else if (da == 1 || db == 1) {
      s[i] = da == 1 ? db : da;
    } else if (IsStaticDim(da) && IsStaticDim(db)) {
      return Status::Error("shapes " + ShapeToString(a) + " and " + ShapeToString(b) + " do not broadcast");
    } else if (IsStaticDim(da) || IsStaticDim(db)) {
      s[i] = IsStaticDim(da) ? da : db;  // a symbolic dim that broadcasts must be 1 or this size at run time
    } else {
      s[i] = kDynamicDim;  // two different symbols: known only at run time
    }
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
