// Transpose: a view of its input (permuted strides). When a later kernel needs the permuted
// layout contiguous, the Copy it gets is folded into the producer (fusion/layout.cc).
#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "Transpose"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 1); !why.empty()) return why;
  if (g.value(n.inputs[0]).is_constant) return "Transpose of a constant";
  return "";
}

Status InferShapes(const GraphView&, const GNode& n, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
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

Status Lower(Lowering& l, int ni) {
  const GNode& n = l.graph().nodes[ni];
  Val x;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &x));
  std::vector<int64_t> perm = n.AttrInts("perm");
  if (perm.empty())
    for (int i = x.view.rank - 1; i >= 0; --i) perm.push_back(i);
  l.Set(n.outputs[0], x.WithView(Permute(x.view, perm)));
  return Status::OK();
}

}  // namespace

const OpFamily kTransposeFamily = {"Transpose", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
