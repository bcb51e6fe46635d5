// Softmax over the last axis.
#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "Softmax"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  return CheckF32(g, n, 1);
}

Status InferShapes(const GraphView& g, const GNode& n, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  const int64_t r = static_cast<int64_t>(in[0].size());
  if (r == 0) return Status::Error("Softmax of a scalar");
  int64_t axis = n.AttrInt("axis", n.since_version >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis != r - 1) return Status::Error("Softmax over an axis other than the last");
  out->assign(1, in[0]);
  return Status::OK();
}

// softmax(scale * x): a pending scale on x is absorbed.
Status Lower(Lowering& l, int ni) {
  const GNode& n = l.graph().nodes[ni];
  Val x;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &x));
  const float scale = x.scale;
  x.scale = 1.0f;
  x = l.Contiguous(x, n.Label());
  Val o = l.NewOutput(l.graph().value(n.outputs[0]).name, l.ShapeOf(n.outputs[0]));
  PlanCall pc = l.NewCall(SoftmaxParams{scale}, n.Label());
  pc.in[0] = {x.tensor, x.view};
  pc.out = {o.tensor, o.view};
  l.Emit(pc);
  l.Set(n.outputs[0], o);
  return Status::OK();
}

}  // namespace

const OpFamily kSoftmaxFamily = {"Softmax", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
