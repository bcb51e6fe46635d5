// Add, Sub, Mul, Div with numpy broadcasting (scalar constants stay exact FP32 scalars).
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GNode& n) {
  return n.op_type == "Add" || n.op_type == "Sub" || n.op_type == "Mul" || n.op_type == "Div";
}

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "missing operand";
  if (auto why = CheckF32(g, n, 2); !why.empty()) return why;
  if (g.value(n.inputs[0]).is_constant && g.value(n.inputs[1]).is_constant) return "both operands constant";
  return "";
}

Status InferShapes(const GraphView&, const GNode&, const std::vector<Shape>& in, std::vector<Shape>* out) {
  Shape y;
  PHX_RETURN_IF_ERROR(Broadcast(in[0], in[1], &y));
  out->assign(1, y);
  return Status::OK();
}

}  // namespace

const OpFamily kElementwiseFamily = {"Elementwise", Handles, WhyUnsupported, InferShapes};

}  // namespace phoenix
