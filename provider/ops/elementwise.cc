// Add, Sub, Mul, Div with numpy broadcasting (scalar constants stay exact FP32 scalars).
#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) {
  return n.op_type == "Add" || n.op_type == "Sub" || n.op_type == "Mul" || n.op_type == "Div";
}

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "missing operand";
  if (auto why = CheckF32(g, n, 2); !why.empty()) return why;
  if (g.value(n.inputs[0]).is_constant && g.value(n.inputs[1]).is_constant) return "both operands constant";
  return "";
}

Status InferShapes(const GraphView&, const GNode&, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  Shape y;
  PHX_RETURN_IF_ERROR(Broadcast(in[0], in[1], &y));
  out->assign(1, y);
  return Status::OK();
}

Status Lower(Lowering& l, int ni) {
  using kernels::BinaryOp;
  const GraphView& g = l.graph();
  const GNode& n = g.nodes[ni];
  const BinaryOp op = n.op_type == "Add" ? BinaryOp::kAdd
                    : n.op_type == "Sub" ? BinaryOp::kSub
                    : n.op_type == "Mul" ? BinaryOp::kMul : BinaryOp::kDiv;
  const int out = n.outputs[0];
  const Shape& dims = l.ShapeOf(out);
  const auto s0 = g.ScalarConstant(n.inputs[0]);
  const auto s1 = g.ScalarConstant(n.inputs[1]);
  if (s0 || s1) {  // one operand a scalar constant: it stays an exact FP32 scalar
    const bool scalar_first = s0.has_value();
    const int xv = scalar_first ? n.inputs[1] : n.inputs[0];
    const float s = static_cast<float>(scalar_first ? *s0 : *s1);
    Val x;
    PHX_RETURN_IF_ERROR(l.Get(xv, &x));
    // x * s and x / s stay pending on the value: the consumer may absorb the scale.
    if (x.view.Dims() == dims && (op == BinaryOp::kMul || (op == BinaryOp::kDiv && !scalar_first))) {
      x.scale *= op == BinaryOp::kMul ? s : 1.0f / s;
      l.Set(out, x);
      return Status::OK();
    }
    x = l.ApplyScale(x, n.Label());
    Val o = l.NewOutput(g.value(out).name, dims);
    PlanCall pc = l.NewCall(BinaryScalarParams{op, s, scalar_first}, n.Label());
    pc.in[0] = {x.tensor, BroadcastTo(x.view, dims)};
    pc.out = {o.tensor, o.view};
    l.Emit(pc);
    l.Set(out, o);
    return Status::OK();
  }
  Val a, b;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &a));
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[1], &b));
  a = l.ApplyScale(a, n.Label());
  b = l.ApplyScale(b, n.Label());
  Val o = l.NewOutput(g.value(out).name, dims);
  PlanCall pc = l.NewCall(BinaryParams{op}, n.Label());
  pc.in[0] = {a.tensor, BroadcastTo(a.view, dims)};
  pc.in[1] = {b.tensor, BroadcastTo(b.view, dims)};
  pc.out = {o.tensor, o.view};
  l.Emit(pc);
  l.Set(out, o);
  return Status::OK();
}

}  // namespace

const OpFamily kElementwiseFamily = {"Elementwise", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
