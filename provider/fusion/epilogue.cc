// Fusion: a MatMul, Gemm or 1-D Conv and the elementwise nodes after it that its kernel's
// epilogue computes (kernels/matmul/matmul.h): scalar Mul / Div (alpha), a constant bias Add, a
// GELU (op or pattern), a residual Add, in that order, each the only reader of the value before
// it. Reshapes in between are absorbed too (the epilogue is elementwise, so it commutes with
// them: ORT writes MatMul + Add on 3-D inputs as Reshape + Gemm + Reshape). Every MatMul, Gemm
// and Conv becomes such a chain, with or without steps; this file also lowers it.
#include <algorithm>
#include <optional>
#include <variant>

#include "fusion/units.h"
#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool IsOp(const GNode& n, const char* op) { return n.domain.empty() && n.op_type == op; }

int64_t Elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

kernels::Epilogue GeluEpilogue(bool tanh) { return tanh ? kernels::Epilogue::kGeluTanh : kernels::Epilogue::kGeluErf; }

// The next node a chain may absorb: v's only reader, or (a GELU pattern reads x in several
// places) a node of the one GELU pattern unit that reads v and nothing else does.
int ChainConsumer(const GraphView& g, const UnitPlan& plan, int v) {
  const GValue& gv = g.value(v);
  if (gv.is_graph_output || gv.consumers.empty()) return -1;
  const int first = gv.consumers[0];
  if (gv.consumers.size() == 1) return first;
  const int unit = plan.unit_of_node[first];
  if (unit < 0 || plan.units[unit].kind != Unit::kGeluPattern || plan.units[unit].gelu.x != v) return -1;
  for (int c : gv.consumers)
    if (plan.unit_of_node[c] != unit) return -1;
  return first;
}

}  // namespace

void FuseMatMulEpilogues(const GraphView& g, const ShapeMap& shapes, UnitPlan* plan) {
  for (int ni = 0; ni < static_cast<int>(g.nodes.size()); ++ni) {
    const GNode& n = g.nodes[ni];
    const bool conv = IsOp(n, "Conv"), gemm = IsOp(n, "Gemm");
    if (!(conv || gemm || IsOp(n, "MatMul")) || !plan->Free(ni)) continue;
    Unit u;
    u.kind = Unit::kMatMulChain;
    u.head = ni;
    u.nodes = {ni};
    // The kernel's output columns: a bias is added along them.
    const int64_t N = conv ? shapes[n.inputs[1]][0] : shapes[n.outputs[0]].back();
    bool has_gelu = false;
    bool has_residual = gemm && n.inputs.size() > 2 && n.inputs[2] >= 0 && !g.value(n.inputs[2]).is_constant;
    bool has_bias = false;
    int v = n.outputs[0];
    for (;;) {
      const int c = ChainConsumer(g, *plan, v);
      if (c < 0) break;
      const GNode& cn = g.nodes[c];
      const Shape& cur = shapes[v];
      if (!plan->Free(c)) {  // a GELU pattern unit reading v
        const int pu = plan->unit_of_node[c];
        const Unit& gu = plan->units[pu];
        if (gu.kind != Unit::kGeluPattern || gu.gelu.x != v || has_gelu || has_residual) break;
        ChainStep step{ChainStep::kGelu, gu.head};
        step.gelu = GeluEpilogue(gu.gelu.mode == static_cast<int>(kernels::GeluMode::kTanh));
        step.gelu_unit = pu;
        u.chain.push_back(step);
        u.nodes.insert(u.nodes.end(), gu.nodes.begin(), gu.nodes.end());
        has_gelu = true;
        v = gu.output;
        continue;
      }
      if (IsOp(cn, "QuantizeLinear") && cn.outputs.size() == 1 && g.value(cn.outputs[0]).consumers.size() == 1 &&
          !g.value(cn.outputs[0]).is_graph_output) {  // the output quantized and dequantized: the last step
        const int dq = g.value(cn.outputs[0]).consumers[0];
        ChainStep step{ChainStep::kQuantizeOutput, dq};
        if (!plan->Free(dq) || !FakeQuantPair(g, g.nodes[dq], &step.quant).empty()) break;
        u.chain.push_back(step);
        u.nodes.push_back(c);
        u.nodes.push_back(dq);
        v = g.nodes[dq].outputs[0];
        break;
      }
      if (IsOp(cn, "Reshape") && !conv) {
        u.chain.push_back(ChainStep{ChainStep::kReshape, c});
        u.nodes.push_back(c);
        v = cn.outputs[0];
        continue;
      }
      if (IsOp(cn, "Gelu")) {
        if (has_gelu || has_residual) break;
        ChainStep step{ChainStep::kGelu, c};
        step.gelu = GeluEpilogue(cn.AttrString("approximate", "none") == "tanh");
        u.chain.push_back(step);
        u.nodes.push_back(c);
        has_gelu = true;
        v = cn.outputs[0];
        continue;
      }
      if (!cn.domain.empty() || cn.inputs.size() != 2 || cn.outputs.empty() || cn.inputs[0] < 0 || cn.inputs[1] < 0)
        break;
      const bool v_first = cn.inputs[0] == v;
      const int other = v_first ? cn.inputs[1] : cn.inputs[0];
      const bool same_shape_out = shapes[cn.outputs[0]] == cur;
      const GValue& ov = g.value(other);
      const auto scalar = g.ScalarConstant(other);
      if ((cn.op_type == "Mul" || (cn.op_type == "Div" && v_first)) && scalar && !has_gelu && !has_residual &&
          same_shape_out) {
        ChainStep step{ChainStep::kScale, c};
        step.scale = cn.op_type == "Div" ? 1.0f / static_cast<float>(*scalar) : static_cast<float>(*scalar);
        u.chain.push_back(step);
      } else if (cn.op_type == "Add" && ov.is_constant && !conv && !has_gelu && !has_residual && same_shape_out &&
                 ov.data && !ov.data->values.empty() &&
                 (Elements(shapes[other]) == 1 ||
                  (Elements(shapes[other]) == N && cur.back() == N && shapes[other].back() == N))) {
        ChainStep step{ChainStep::kBias, c};
        step.value = other;
        u.chain.push_back(step);
        has_bias = true;
      } else if (cn.op_type == "Add" && !ov.is_constant && !has_residual && other != v && shapes[other] == cur &&
                 same_shape_out) {
        ChainStep step{ChainStep::kResidual, c};
        step.value = other;
        u.chain.push_back(step);
        has_residual = true;
      } else {
        break;
      }
      u.nodes.push_back(c);
      v = cn.outputs[0];
    }
    (void)has_bias;
    u.output = v;
    std::sort(u.nodes.begin(), u.nodes.end());
    plan->Add(std::move(u));
  }
}

namespace {

// The MatMul parameters of a MatMul or quantized MatMul call.
MatMulParams& MatMulBase(KernelCall& c) {
  if (auto* p = std::get_if<MatMulInt8Params>(&c.params)) return p->matmul;
  if (auto* p = std::get_if<MatMulInt8ActivationsParams>(&c.params)) return p->matmul;
  return std::get<MatMulParams>(c.params);
}

// The kernel call of a chain's head before its epilogue: operands, alpha, bias, and the layout
// of its output (a Conv's MatMul writes [B, L, D]; its ONNX value is that permuted to [B, D, L]).
struct HeadCall {
  PlanCall call;
  Shape onnx_dims;                // the head's ONNX output shape
  std::vector<int64_t> out_perm;  // ONNX value = kernel output permuted by this (Conv)
  int64_t N = 0;                  // the kernel's output columns
  std::vector<float> bias;        // FP32, empty for none
  int residual = -1;              // Gemm with an activation C
};

Status LowerConvHead(Lowering& l, const GNode& n, HeadCall* h) {
  // Im2Col into [B, L_out, C*k], then a MatMul with the weight [D, C*k] read transposed.
  Val x;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &x));
  x = l.Materialize(x, n.Label());
  const Shape& wd = l.ShapeOf(n.inputs[1]);  // [D, C, k]
  const Shape& od = l.ShapeOf(n.outputs[0]);  // [B, D, L_out]
  const int64_t B = od[0], D = wd[0], C = wd[1], k = wd[2], L_out = od[2];
  auto first = [&](const char* name, int64_t fallback) {
    std::vector<int64_t> v = n.AttrInts(name);
    return v.empty() ? fallback : v[0];
  };
  PlanCall im = l.NewCall(Im2ColParams{k, first("strides", 1), first("dilations", 1), first("pads", 0)}, n.Label());
  Val cols = l.NewOutput(n.Label() + "/im2col", {B, L_out, C * k});
  im.in[0] = {x.tensor, x.view};
  im.out = {cols.tensor, cols.view};
  l.Emit(im);
  Val w;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[1], &w));
  h->call = l.NewCall(MatMulParams{1.0f, kernels::Epilogue::kNone, true}, n.Label());
  h->call.in[0] = {cols.tensor, cols.view};
  const TensorView wt = Permute(TensorView::Contiguous({D, C * k}, w.view.offset), {1, 0});  // [C*k, D]
  h->call.in[1] = {w.tensor, BroadcastTo(wt, {B, C * k, D})};
  h->onnx_dims = od;
  h->out_perm = {0, 2, 1};
  h->N = D;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) PHX_RETURN_IF_ERROR(l.ConstantF32(n.inputs[2], &h->bias));
  return Status::OK();
}

// The channel axis per-channel weight scales must run along for the INT8 kernel: the axis of
// B's ONNX shape that becomes the kernel's N.
int64_t OutputChannelAxis(const GNode& n, int64_t b_rank) {
  if (n.op_type == "Gemm") return n.AttrInt("transB", 0) ? 0 : 1;
  return b_rank - 1;
}

Status LowerMatMulHead(Lowering& l, const GNode& n, HeadCall* h) {
  const GraphView& g = l.graph();
  const bool gemm = n.op_type == "Gemm";
  Val a, b;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &a));
  float alpha = gemm ? n.AttrFloat("alpha", 1.0f) : 1.0f;
  const MatMulParams base{1.0f, kernels::Epilogue::kNone, g.value(n.inputs[1]).is_constant};
  // Quantized (QDQ) models: A quantized, B INT8 weights or a quantized activation -> the INT8
  // kernel (at bf16; bf16x3 keeps the dequantized path for FP32-grade results).
  const GValue& bv = g.value(n.inputs[1]);
  const bool int8_ok = l.options().precision == Precision::kBF16 && a.quant.has_value();
  int b_int8 = -1, b_scales = -1, b_zero_points = -1;
  Int8WeightRef int8_weights;
  if (int8_ok && bv.dequantized) {
    const int64_t rank = static_cast<int64_t>(l.ShapeOf(n.inputs[1]).size());
    int64_t axis = bv.dequantized->axis < 0 ? bv.dequantized->axis + rank : bv.dequantized->axis;
    const bool per_tensor = g.value(bv.dequantized->scale).data->values.size() == 1;
    if ((per_tensor || axis == OutputChannelAxis(n, rank)) &&
        l.Int8Weights(n.inputs[1], &int8_weights, &b_int8, &b_scales, &b_zero_points)) {
      b.tensor = b_int8;
      b.view = TensorView::Contiguous(l.ShapeOf(n.inputs[1]));
    }
  }
  if (b_int8 < 0) PHX_RETURN_IF_ERROR(l.Get(n.inputs[1], &b));
  // activation x activation: K is known only now (a sequence length); beyond the kernel's exact
  // bound the dequantized path runs it (capability refused such INT8 weights already).
  const Shape& a_shape = l.ShapeOf(n.inputs[0]);
  const int64_t K = gemm && n.AttrInt("transA", 0) ? a_shape.front() : a_shape.back();
  const bool int8_activations =
      int8_ok && b_int8 < 0 && b.quant.has_value() && kernels::Int8MatMulRefusal(K, nullptr, 0) == nullptr;
  if (b_int8 >= 0 || int8_activations) {
    a = l.ApplyScale(a, n.Label());  // quant(scale * x): the scale goes first, the quantization into the kernel
    if (int8_activations) b = l.ApplyScale(b, n.Label());
    MatMulInt8Params p;
    p.matmul = base;
    p.a = *a.quant;
    if (int8_activations) {
      p.b = *b.quant;
      h->call = l.NewCall(MatMulInt8ActivationsParams{p}, n.Label());
    } else {
      h->call = l.NewCall(p, n.Label());
      h->call.in[4] = {b_scales, TensorView::Contiguous({int8_weights.scales.num_elements})};
      if (b_zero_points >= 0) h->call.in[5] = {b_zero_points, TensorView::Contiguous({int8_weights.zero_points.num_elements})};
    }
  } else {
    if (a.quant_pending) a = l.Materialize(a, n.Label());  // pending quantizations applied; scales go to alpha
    if (b.quant_pending) b = l.Materialize(b, n.Label());
    alpha *= a.scale * b.scale;
    h->call = l.NewCall(base, n.Label());
  }
  MatMulBase(h->call.call).alpha = alpha;
  if (gemm) {
    if (n.AttrInt("transA", 0)) a.view = Permute(a.view, {1, 0});
    if (n.AttrInt("transB", 0)) b.view = Permute(b.view, {1, 0});
  }
  const Shape& out = l.ShapeOf(n.outputs[0]);
  if (static_cast<int>(out.size()) - 2 > kernels::kMaxBatchRank) return Status::Error("too many batch dims");
  // A: [batch..., M, K] and B: [batch..., K, N], batch dims broadcast to the output's.
  Shape a_dims(out.begin(), out.end() - 2), b_dims = a_dims;
  a_dims.push_back(a.view.shape[a.view.rank - 2]);
  a_dims.push_back(a.view.shape[a.view.rank - 1]);
  b_dims.push_back(b.view.shape[b.view.rank - 2]);
  b_dims.push_back(b.view.shape[b.view.rank - 1]);
  h->call.in[0] = {a.tensor, BroadcastTo(a.view, a_dims)};
  h->call.in[1] = {b.tensor, BroadcastTo(b.view, b_dims)};
  h->onnx_dims = out;
  h->N = out.back();
  if (gemm && n.inputs.size() > 2 && n.inputs[2] >= 0) {
    if (!g.value(n.inputs[2]).is_constant) {
      h->residual = n.inputs[2];  // Gemm with an activation C (beta 1): a residual add
    } else {
      std::vector<float> c;
      PHX_RETURN_IF_ERROR(l.ConstantF32(n.inputs[2], &c));
      const float beta = n.AttrFloat("beta", 1.0f);
      h->bias.assign(h->N, 0.0f);
      for (int64_t j = 0; j < h->N; ++j) h->bias[j] = beta * (c.size() == 1 ? c[0] : c[j]);
    }
  }
  return Status::OK();
}

}  // namespace

Status LowerMatMulChain(Lowering& l, const Unit& u) {
  const GraphView& g = l.graph();
  const GNode& n = g.nodes[u.head];
  HeadCall h;
  PHX_RETURN_IF_ERROR(n.op_type == "Conv" ? LowerConvHead(l, n, &h) : LowerMatMulHead(l, n, &h));
  MatMulParams& p = MatMulBase(h.call.call);
  std::string label = n.Label();
  int residual = h.residual;
  Shape residual_dims = h.onnx_dims;  // the shape the residual is added at
  Shape cur = h.onnx_dims;
  std::optional<kernels::QuantParams> output_quant;
  bool output_pending = false;
  for (const ChainStep& step : u.chain) {
    label += "+" + g.nodes[step.node].Label();
    switch (step.kind) {
      case ChainStep::kScale:
        p.alpha *= step.scale;
        for (float& x : h.bias) x *= step.scale;
        break;
      case ChainStep::kBias: {
        std::vector<float> c;
        PHX_RETURN_IF_ERROR(l.ConstantF32(step.value, &c));
        if (h.bias.empty()) h.bias.assign(h.N, 0.0f);
        for (int64_t j = 0; j < h.N; ++j) h.bias[j] += c.size() == 1 ? c[0] : c[j];
        break;
      }
      case ChainStep::kGelu:
        p.epilogue = step.gelu;
        break;
      case ChainStep::kResidual:
        residual = step.value;
        residual_dims = cur;
        break;
      case ChainStep::kReshape:
        cur = l.ShapeOf(g.nodes[step.node].outputs[0]);
        break;
      case ChainStep::kQuantizeOutput:
        output_quant = step.quant;
        break;
    }
  }
  // The INT8 kernel fake-quantizes its output itself; the BF16 one leaves it pending on the value.
  if (output_quant) {
    MatMulInt8Params* q8 = std::get_if<MatMulInt8Params>(&h.call.call.params);
    if (!q8) q8 = std::get_if<MatMulInt8ActivationsParams>(&h.call.call.params);
    if (q8) {
      q8->quantize_output = true;
      q8->out = *output_quant;
    }
    output_pending = q8 == nullptr;
  }
  h.call.call.label = label;
  if (!h.bias.empty()) {
    int t;
    PHX_RETURN_IF_ERROR(l.F32Parameter(label + "/bias", h.bias, &t));
    h.call.in[2] = {t, TensorView::Contiguous({h.N})};
  }
  // The kernel writes [batch..., M, N]; a Conv's ONNX value is that, permuted by out_perm.
  Shape kernel_dims = h.onnx_dims;
  for (size_t i = 0; i < h.out_perm.size(); ++i) kernel_dims[h.out_perm[i]] = h.onnx_dims[i];
  auto to_kernel_layout = [&](const TensorView& onnx_view) {
    TensorView k = onnx_view;
    for (size_t i = 0; i < h.out_perm.size(); ++i) {
      k.shape[h.out_perm[i]] = onnx_view.shape[i];
      k.strides[h.out_perm[i]] = onnx_view.strides[i];
    }
    return k;
  };
  if (residual >= 0) {
    Val r;
    PHX_RETURN_IF_ERROR(l.Get(residual, &r));
    r = l.Materialize(r, label);
    TensorView rv = BroadcastTo(r.view, residual_dims);
    if (residual_dims != h.onnx_dims) {  // added after an absorbed Reshape: read it in the head's shape
      auto as_head = ReshapeView(rv, h.onnx_dims);
      if (!as_head) {
        r = l.Contiguous(r, label);
        as_head = ReshapeView(r.view, h.onnx_dims);
        if (!as_head) return Status::Error("the residual cannot be viewed in the MatMul's shape");
      }
      rv = *as_head;
    }
    h.call.in[3] = {r.tensor, to_kernel_layout(rv)};
  }
  Val o = l.NewOutput(g.value(u.output).name, kernel_dims);
  h.call.out = {o.tensor, o.view};
  l.Emit(h.call);
  if (!h.out_perm.empty()) o.view = Permute(o.view, h.out_perm);
  if (cur != h.onnx_dims) {
    auto v = ReshapeView(o.view, cur);
    if (!v) return Status::Error("the MatMul's output cannot be viewed in its ONNX shape");
    o.view = *v;
  }
  o.quant = output_quant;
  o.quant_pending = output_pending;
  l.Set(u.output, o);
  return Status::OK();
}

}  // namespace phoenix
