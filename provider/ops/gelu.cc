// The opset-20 Gelu op (the Erf / Tanh patterns of older opsets are matched in patterns.cc).
#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "Gelu"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 1); !why.empty()) return why;
  const std::string approx = n.AttrString("approximate", "none");
  if (approx != "none" && approx != "tanh") return "unknown Gelu approximation " + approx;
  return "";
}

Status InferShapes(const GraphView&, const GNode&, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  out->assign(1, in[0]);
  return Status::OK();
}

Status Lower(Lowering& l, int ni) {
  const GNode& n = l.graph().nodes[ni];
  const auto mode = n.AttrString("approximate", "none") == "tanh" ? kernels::GeluMode::kTanh : kernels::GeluMode::kErf;
  return LowerGelu(l, n.inputs[0], n.outputs[0], mode, n.Label());
}

}  // namespace

// The op and the Erf / Tanh patterns (fusion/gelu.cc) lower alike.
Status LowerGelu(Lowering& l, int x, int y, kernels::GeluMode mode, const std::string& label) {
  Val in;
  PHX_RETURN_IF_ERROR(l.Get(x, &in));
  in = l.Contiguous(in, label);
  Val o = l.NewOutput(l.graph().value(y).name, l.ShapeOf(y));
  PlanCall pc = l.NewCall(GeluParams{mode}, label);
  pc.in[0] = {in.tensor, in.view};
  pc.out = {o.tensor, o.view};
  l.Emit(pc);
  l.Set(y, o);
  return Status::OK();
}

const OpFamily kGeluFamily = {"Gelu", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
