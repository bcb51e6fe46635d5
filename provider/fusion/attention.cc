// Fusion: MatMul(Q, K^T) -> [scalar Mul / Div]* -> Softmax(last axis) -> MatMul(P, V), every
// intermediate read only by the next, becomes one Attention kernel call: the scores are never
// written (kernels/attention/README.md).
#include <algorithm>

#include "fusion/units.h"
#include "lowering.h"

namespace phoenix {
namespace {

bool IsOp(const GNode& n, const char* op) { return n.domain.empty() && n.op_type == op; }

}  // namespace

void FuseAttention(const GraphView& g, const ShapeMap& shapes, bool enabled, UnitPlan* plan) {
  if (!enabled) return;
  for (int ni = 0; ni < static_cast<int>(g.nodes.size()); ++ni) {
    const GNode& n = g.nodes[ni];
    if (!IsOp(n, "MatMul") || !plan->Free(ni)) continue;
    if (g.value(n.inputs[0]).is_constant || g.value(n.inputs[1]).is_constant) continue;
    Unit u;
    u.kind = Unit::kAttention;
    u.head = ni;
    u.nodes = {ni};
    float scale = 1.0f;
    int v = n.outputs[0];
    int c = SoleConsumer(g, v);
    while (c >= 0 && plan->Free(c) &&
           (IsOp(g.nodes[c], "Mul") || (IsOp(g.nodes[c], "Div") && g.nodes[c].inputs[0] == v))) {
      const GNode& cn = g.nodes[c];
      const int other = cn.inputs[0] == v ? cn.inputs[1] : cn.inputs[0];
      const auto s = g.ScalarConstant(other);
      if (!s || shapes[cn.outputs[0]] != shapes[v]) break;
      scale *= cn.op_type == "Mul" ? static_cast<float>(*s) : 1.0f / static_cast<float>(*s);
      u.nodes.push_back(c);
      v = cn.outputs[0];
      c = SoleConsumer(g, v);
    }
    if (c < 0 || !plan->Free(c) || !IsOp(g.nodes[c], "Softmax")) continue;
    u.softmax = c;
    u.nodes.push_back(c);
    const int p = g.nodes[c].outputs[0];
    const int pv = SoleConsumer(g, p);
    if (pv < 0 || !plan->Free(pv) || !IsOp(g.nodes[pv], "MatMul") || g.nodes[pv].inputs[0] != p ||
        g.nodes[pv].inputs[1] == p)
      continue;
    const Shape& s_dims = shapes[n.outputs[0]];      // [b..., M, N]
    const Shape& o_dims = shapes[g.nodes[pv].outputs[0]];  // [b..., M, Dv]
    const int v_value = g.nodes[pv].inputs[1];
    if (o_dims.size() != s_dims.size() || shapes[v_value].size() < 2 || g.value(v_value).is_constant ||
        s_dims.size() - 2 > static_cast<size_t>(kernels::kMaxBatchRank))
      continue;
    u.pv = pv;
    u.nodes.push_back(pv);
    u.attention_scale = scale;
    u.output = g.nodes[pv].outputs[0];
    std::sort(u.nodes.begin(), u.nodes.end());
    plan->Add(std::move(u));
  }
}

Status LowerAttention(Lowering& l, const Unit& u) {
  const GraphView& g = l.graph();
  const GNode& n = g.nodes[u.head];
  const GNode& pvn = g.nodes[u.pv];
  Val q, kt, v;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &q));
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[1], &kt));
  PHX_RETURN_IF_ERROR(l.Get(pvn.inputs[1], &v));
  const std::string label = n.Label() + "+" + g.nodes[u.softmax].Label() + "+" + pvn.Label();
  v = l.ApplyScale(v, label);
  const Shape& s_dims = l.ShapeOf(n.outputs[0]);  // [b..., M, N]
  const Shape& o_dims = l.ShapeOf(u.output);      // [b..., M, Dv]
  auto batched = [&](const Shape& batch_of, const TensorView& m) {  // [b..., rows, cols] of m
    Shape d(batch_of.begin(), batch_of.end() - 2);
    d.push_back(m.shape[m.rank - 2]);
    d.push_back(m.shape[m.rank - 1]);
    return d;
  };
  const int r = static_cast<int>(s_dims.size());
  std::vector<int64_t> swap(r);
  for (int i = 0; i < r; ++i) swap[i] = i;
  std::swap(swap[r - 1], swap[r - 2]);
  PlanCall pc = l.NewCall(AttentionParams{u.attention_scale * q.scale * kt.scale}, label);
  pc.in[0] = {q.tensor, BroadcastTo(q.view, batched(s_dims, q.view))};
  pc.in[1] = {kt.tensor, Permute(BroadcastTo(kt.view, batched(s_dims, kt.view)), swap)};  // K^T -> K [b, N, D]
  pc.in[2] = {v.tensor, BroadcastTo(v.view, batched(o_dims, v.view))};
  Val o = l.NewOutput(g.value(u.output).name, o_dims);
  pc.out = {o.tensor, o.view};
  l.Emit(pc);
  l.Set(u.output, o);
  return Status::OK();
}

}  // namespace phoenix
