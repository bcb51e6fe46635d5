// QuantizeLinear and DequantizeLinear, as quantized (QDQ) models use them (AMD Quark, ORT's
// static quantizer):
//   * DequantizeLinear of constants (INT8 / UINT8 weights, per tensor or per channel): the graph
//     snapshot folds it into a constant (graph_view.cc); the node emits nothing.
//   * QuantizeLinear -> DequantizeLinear on an activation (per-tensor scale and zero point): a
//     fake quantization of the value. Its readers get the value with the quantization pending:
//     a quantized MatMul folds it into its INT8 kernel (A quantized while packing), any other
//     reader gets a FakeQuant kernel call (kernels/fake_quant). Both compute the integers as
//     ORT's CPU QuantizeLinear does.
// Nothing else of QDQ is claimed: a quantized value read by anything but its DequantizeLinear,
// per-axis or blocked activation quantization, other integer types.
#include <cmath>

#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool IsQuantType(ONNXTensorElementDataType t) {
  return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 || t == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
}

bool Handles(const GraphView& g, const GNode& n) {
  return n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear";
}

// The per-tensor quantization of a QuantizeLinear / DequantizeLinear node, when its scale and
// zero point are scalar constants of a supported type.
std::optional<kernels::QuantParams> PerTensor(const GraphView& g, const GNode& n, ONNXTensorElementDataType qtype) {
  if (n.inputs.size() < 2 || n.HasAttribute("block_size") || !IsQuantType(qtype)) return std::nullopt;
  if (!g.QuantParamShapesValid(n)) return std::nullopt;
  const auto scale = g.ScalarConstant(n.inputs[1]);
  if (!scale) return std::nullopt;
  kernels::QuantParams q;
  q.is_signed = qtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const auto zp = g.ScalarConstant(n.inputs[2]);
    if (!zp || g.value(n.inputs[2]).dtype != qtype) return std::nullopt;
    q.zero_point = static_cast<int32_t>(*zp);
  }
  q.scale = static_cast<float>(*scale);
  if (kernels::QuantParamsRefusal(q)) return std::nullopt;  // what the kernels refuse (matmul_int8.h)
  return q;
}

bool Same(const kernels::QuantParams& a, const kernels::QuantParams& b) {
  return a.scale == b.scale && a.zero_point == b.zero_point && a.is_signed == b.is_signed;
}

}  // namespace

// For a DequantizeLinear of an activation: the QuantizeLinear feeding it and the pair's
// quantization, or why not.
std::string FakeQuantPair(const GraphView& g, const GNode& dq, kernels::QuantParams* out) {
  const int qv = dq.inputs[0];
  const int qn = g.value(qv).producer;
  if (qn < 0 || g.nodes[qn].op_type != "QuantizeLinear" || !g.nodes[qn].domain.empty())
    return "DequantizeLinear of a value no QuantizeLinear of the model made";
  const GNode& q = g.nodes[qn];
  const auto qp = PerTensor(g, q, g.value(qv).dtype);
  const auto dp = PerTensor(g, dq, g.value(qv).dtype);
  if (!qp || !dp) return "quantization that is not per tensor with constant scale and zero point (int8 / uint8)";
  if (!Same(*qp, *dp)) return "QuantizeLinear and DequantizeLinear with different scales or zero points";
  *out = *qp;
  return "";
}

namespace {

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.outputs.empty() || n.outputs[0] < 0) return "missing input";
  if (n.op_type == "DequantizeLinear") {
    if (g.value(n.outputs[0]).dequantized) return "";  // constants: folded
    if (g.value(n.outputs[0]).dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) return "DequantizeLinear to a type other than float32";
    kernels::QuantParams q;
    return FakeQuantPair(g, n, &q);
  }
  // QuantizeLinear: of a float activation, read only by DequantizeLinear nodes undoing it.
  if (!IsF32(g, n.inputs[0])) return "QuantizeLinear of a tensor that is not float32";
  const int qv = n.outputs[0];
  if (!PerTensor(g, n, g.value(qv).dtype)) return "quantization that is not per tensor with constant scale and zero point (int8 / uint8)";
  if (g.value(qv).is_graph_output) return "its quantized value is a model output";
  for (int c : g.value(qv).consumers) {
    kernels::QuantParams q;
    if (g.nodes[c].op_type != "DequantizeLinear" || !FakeQuantPair(g, g.nodes[c], &q).empty())
      return "its quantized value is read by something other than a DequantizeLinear undoing it";
  }
  return "";
}

Status InferShapes(const GraphView&, const GNode& n, NodeShapes* io) {
  io->out.assign(n.outputs.size(), io->in[0]);
  return Status::OK();
}

Status Lower(Lowering& l, int ni) {
  const GraphView& g = l.graph();
  const GNode& n = g.nodes[ni];
  if (n.op_type == "QuantizeLinear" || g.value(n.outputs[0]).dequantized) return Status::OK();
  kernels::QuantParams q;
  if (std::string why = FakeQuantPair(g, n, &q); !why.empty()) return Status::Error(why);
  const GNode& quantize = g.nodes[g.value(n.inputs[0]).producer];
  Val x;
  PHX_RETURN_IF_ERROR(l.Get(quantize.inputs[0], &x));
  x = l.ApplyScale(x, n.Label());
  const bool same = x.quant && x.quant->scale == q.scale && x.quant->zero_point == q.zero_point &&
                    x.quant->is_signed == q.is_signed;
  if (!same) {  // (quantized again with other parameters: the first quantization is applied first)
    x = l.Materialize(x, n.Label());
    x.quant = q;
    x.quant_pending = true;
  }
  l.Set(n.outputs[0], x);
  return Status::OK();
}

}  // namespace

const OpFamily kQdqFamily = {"QDQ", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
