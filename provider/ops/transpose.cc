// Transpose: a view of its input (permuted strides); a producer may write the permuted layout.
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GNode& n) { return n.op_type == "Transpose"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 1); !why.empty()) return why;
  if (g.value(n.inputs[0]).is_constant) return "Transpose of a constant";
  return "";
}

Status InferShapes(const GraphView&, const GNode& n, const std::vector<Shape>& in, std::vector<Shape>* out) {
  const Shape& x = in[0];
  std::vector<int64_t> perm = n.AttrInts("perm");
  if (perm.empty())
    for (int64_t i = static_cast<int64_t>(x.size()) - 1; i >= 0; --i) perm.push_back(i);
  if (perm.size() != x.size()) return Status::Error("Transpose perm does not match the input rank");
  std::vector<bool> seen(x.size(), false);
  Shape y(x.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= static_cast<int64_t>(x.size()) || seen[perm[i]])
      return Status::Error("Transpose perm is not a permutation");
    seen[perm[i]] = true;
    y[i] = x[perm[i]];
  }
  out->assign(1, y);
  return Status::OK();
}

}  // namespace

const OpFamily kTransposeFamily = {"Transpose", Handles, WhyUnsupported, InferShapes};

}  // namespace phoenix
