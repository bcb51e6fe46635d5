// The opset-20 Gelu op (the Erf / Tanh patterns of older opsets are matched in patterns.cc).
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GNode& n) { return n.op_type == "Gelu"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 1); !why.empty()) return why;
  const std::string approx = n.AttrString("approximate", "none");
  if (approx != "none" && approx != "tanh") return "unknown Gelu approximation " + approx;
  return "";
}

Status InferShapes(const GraphView&, const GNode&, const std::vector<Shape>& in, std::vector<Shape>* out) {
  out->assign(1, in[0]);
  return Status::OK();
}

}  // namespace

const OpFamily kGeluFamily = {"Gelu", Handles, WhyUnsupported, InferShapes};

}  // namespace phoenix
