// MatMul (weights, or activation x activation with batch dims) and Gemm (linear layers, also
// with ORT's MatMulAddFusion writing the residual add as an activation C). Both are lowered as a
// MatMul chain (fusion/epilogue.cc), which also takes the bias, GELU and residual after them.
#include "ops/op.h"

namespace phoenix {
namespace {

constexpr int kMaxBatchDims = 4;  // kernels/matmul/matmul.h kMaxBatchRank

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "MatMul" || n.op_type == "Gemm"; }

// INT8 weights (a folded DequantizeLinear of int8 / uint8) the INT8 kernel would refuse: the
// kernel's own predicate, on the static K and scales. (Left to the CPU EP; capability logs why.)
std::string Int8WeightsRefusal(const GraphView& g, const GNode& n) {
  const GValue& b = g.value(n.inputs[1]);
  if (!b.dequantized || !b.has_shape || b.shape.size() < 2) return "";
  const GValue& q = g.value(b.dequantized->quantized);
  if (!q.data || q.data->bytes.empty()) return "";  // not int8 / uint8: never the INT8 kernel
  const size_t r = b.shape.size();
  const int64_t K = n.op_type == "Gemm" && n.AttrInt("transB", 0) ? b.shape[1] : b.shape[r - 2];
  const std::vector<double>& s = g.value(b.dequantized->scale).data->values;
  std::vector<float> scales(s.begin(), s.end());
  const char* why = kernels::Int8MatMulRefusal(IsStaticDim(K) ? K : 0, scales.data(), static_cast<int64_t>(scales.size()));
  return why ? why : "";
}

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  const bool gemm = n.op_type == "Gemm";
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "missing operand";
  if (auto why = CheckF32(g, n, gemm ? 3 : 2); !why.empty()) return why;
  if (g.value(n.inputs[0]).is_constant && g.value(n.inputs[1]).is_constant) return "both operands constant";
  if (std::string why = Int8WeightsRefusal(g, n); !why.empty()) return why;
  for (int i = 0; i < 2; ++i) {  // weights whose DequantizeLinear the provider does not fold stay with it
    const int p = g.value(n.inputs[i]).producer;
    if (p >= 0 && g.nodes[p].op_type == "DequantizeLinear" && !g.value(n.inputs[i]).dequantized &&
        g.nodes[p].inputs[0] >= 0 && g.value(g.nodes[p].inputs[0]).is_constant)
      return "weights from a DequantizeLinear whose parameters the provider does not read (left with it to the CPU EP)";
  }
  if (gemm) {  // B may be an activation too (ORT's MatMulAddFusion writes activation MatMul + Add so)
    if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !g.value(n.inputs[2]).is_constant &&
        n.AttrFloat("beta", 1.0f) != 1.0f)
      return "Gemm C is an activation scaled by beta != 1";
  }
  return "";
}

Status InferShapes(const GraphView& g, const GNode& n, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  Shape a = in[0], b = in[1];
  if (n.op_type == "Gemm") {
    if (a.size() != 2 || b.size() != 2) return Status::Error("Gemm operands must be 2-D");
    if (n.AttrInt("transA", 0)) std::swap(a[0], a[1]);
    if (n.AttrInt("transB", 0)) std::swap(b[0], b[1]);
    if (!MayEqual(a[1], b[0])) return Status::Error("Gemm inner dims differ: " + ShapeToString(a) + " x " + ShapeToString(b));
    Shape y{a[0], b[1]};
    if (in.size() > 2 && n.inputs[2] >= 0) {
      const Shape& c = in[2];
      Shape bc;
      PHX_RETURN_IF_ERROR(Broadcast(c, y, &bc));
      if (bc.size() != y.size() || !MayEqual(bc[0], y[0]) || !MayEqual(bc[1], y[1]))
        return Status::Error("Gemm C " + ShapeToString(c) + " does not broadcast to " + ShapeToString(y));
      // A constant C must be a bias along N (or a scalar); an activation C a full residual.
      if (g.value(n.inputs[2]).is_constant) {
        int64_t count = 0;
        CheckedNumElements(c, &count);
        if (!(count == 1 || (!c.empty() && MayEqual(c.back(), y[1]) && MayEqual(count, y[1]))))
          return Status::Error("Gemm C " + ShapeToString(c) + " is not a bias vector");
      } else if (c.size() != 2 || !SurelyEqual(c[0], y[0]) || !SurelyEqual(c[1], y[1])) {
        // the kernel adds C as a full residual, for every run: a C that may broadcast is the CPU EP's
        return Status::Error("Gemm C " + ShapeToString(c) + " is an activation that is not a full-size residual");
      }
    }
    out->assign(1, y);
    return Status::OK();
  }
  if (a.size() < 2 || b.size() < 2) return Status::Error("1-D MatMul operands are not supported");
  if (!MayEqual(a.back(), b[b.size() - 2]))
    return Status::Error("MatMul inner dims differ: " + ShapeToString(a) + " x " + ShapeToString(b));
  Shape batch;
  PHX_RETURN_IF_ERROR(Broadcast(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2), &batch));
  if (static_cast<int>(batch.size()) > kMaxBatchDims) return Status::Error("more than 4 batch dims");
  batch.push_back(a[a.size() - 2]);
  batch.push_back(b.back());
  out->assign(1, batch);
  return Status::OK();
}

}  // namespace

const OpFamily kMatMulFamily = {"MatMul", Handles, WhyUnsupported, InferShapes, nullptr};

}  // namespace phoenix
