// LayerNormalization over the last axis, with constant scale and bias.
#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "LayerNormalization"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 3); !why.empty()) return why;
  if (n.inputs.size() < 2 || n.inputs[1] < 0) return "no scale";
  for (size_t i = 1; i < n.inputs.size() && i < 3; ++i)
    if (n.inputs[i] >= 0 && !g.value(n.inputs[i]).is_constant) return "scale/bias are not constants";
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (IsUsed(g, n.outputs[i])) return "Mean/InvStdDev outputs are used";
  return "";
}

Status InferShapes(const GraphView& g, const GNode& n, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  const Shape& x = in[0];
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0) return Status::Error("LayerNormalization of a scalar");
  int64_t axis = n.AttrInt("axis", -1);
  if (axis < 0) axis += r;
  if (axis != r - 1) return Status::Error("LayerNormalization over more than the last axis");
  for (size_t i = 1; i < in.size() && i < 3; ++i) {
    if (n.inputs[i] < 0) continue;
    int64_t count = 0;
    if (!CheckedNumElements(in[i], &count) || !MayEqual(count, x.back()))
      return Status::Error("scale/bias do not have the normalized size");
  }
  out->assign(n.outputs.size(), x);  // Mean/InvStdDev (unused, checked above) keep a shape for the check
  return Status::OK();
}

Status Lower(Lowering& l, int ni) {
  const GNode& n = l.graph().nodes[ni];
  Val x;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &x));
  x = l.Contiguous(x, n.Label());
  PlanCall pc = l.NewCall(LayerNormParams{n.AttrFloat("epsilon", 1e-5f)}, n.Label());
  pc.in[0] = {x.tensor, x.view};
  for (int slot = 1; slot <= 2; ++slot) {  // gamma, beta (optional): FP32 parameters
    if (static_cast<int>(n.inputs.size()) <= slot || n.inputs[slot] < 0) continue;
    std::vector<float> data;
    PHX_RETURN_IF_ERROR(l.ConstantF32(n.inputs[slot], &data));
    int t;
    PHX_RETURN_IF_ERROR(l.F32Parameter(l.graph().value(n.inputs[slot]).name, data, &t));
    pc.in[slot] = {t, TensorView::Contiguous({static_cast<int64_t>(data.size())})};
  }
  Val o = l.NewOutput(l.graph().value(n.outputs[0]).name, l.ShapeOf(n.outputs[0]));
  pc.out = {o.tensor, o.view};
  l.Emit(pc);
  l.Set(n.outputs[0], o);
  return Status::OK();
}

}  // namespace

const OpFamily kLayerNormFamily = {"LayerNormalization", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
