// Conv, 1-D only (Whisper's conv stem): Im2Col + a MatMul chain (fusion/epilogue.cc), so the
// conv bias and a following GELU land in the MatMul's epilogue.
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "Conv"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "missing operand";
  if (auto why = CheckF32(g, n, 3); !why.empty()) return why;
  if (!g.value(n.inputs[1]).is_constant) return "Conv weight is not a constant";
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !g.value(n.inputs[2]).is_constant) return "Conv bias is not a constant";
  if (n.AttrInt("group", 1) != 1) return "grouped convolution";
  const std::string pad = n.AttrString("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "VALID") return "auto_pad " + pad;
  return "";
}

// A 1-element attribute list's value (ONNX gives one value per spatial dim), or `fallback`.
bool OneValue(const GNode& n, const char* name, int64_t fallback, size_t count, int64_t* out, int64_t* second = nullptr) {
  std::vector<int64_t> v = n.AttrInts(name);
  if (v.empty()) {
    *out = fallback;
    if (second) *second = fallback;
    return true;
  }
  if (v.size() != count) return false;
  *out = v[0];
  if (second) *second = v[1];
  return true;
}

Status InferShapes(const GraphView& g, const GNode& n, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  const Shape& x = in[0];
  const Shape& w = in[1];
  if (x.size() != 3) return Status::Error("only 1-D convolution is supported");
  if (w.size() != 3) return Status::Error("Conv weight " + ShapeToString(w) + " is not [D, C, k]");
  if (!MayEqual(w[1], x[1])) return Status::Error("Conv weight " + ShapeToString(w) + " does not match input channels of " + ShapeToString(x));
  int64_t stride, dilation, pad_begin, pad_end, kernel;
  if (!OneValue(n, "strides", 1, 1, &stride) || !OneValue(n, "dilations", 1, 1, &dilation) ||
      !OneValue(n, "pads", 0, 2, &pad_begin, &pad_end) || !OneValue(n, "kernel_shape", w[2], 1, &kernel))
    return Status::Error("Conv attributes are not those of a 1-D convolution");
  if (kernel != w[2]) return Status::Error("Conv kernel_shape disagrees with the weight");
  if (stride < 1 || dilation < 1 || pad_begin < 0 || pad_end < 0 || kernel < 1 || stride > (1 << 20) ||
      dilation > (1 << 20) || pad_begin > (1 << 20) || pad_end > (1 << 20))
    return Status::Error("Conv strides / dilations / pads out of range");
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    int64_t count = 0;
    if (!CheckedNumElements(in[2], &count) || count != w[0]) return Status::Error("Conv bias does not have D elements");
  }
  const int64_t span = dilation * (kernel - 1) + 1;
  if (!IsStaticDim(x[2])) {  // a symbolic length: known when a plan is built
    out->assign(1, Shape{x[0], w[0], kDynamicDim});
    return Status::OK();
  }
  const int64_t padded = x[2] + pad_begin + pad_end;
  if (padded < span) return Status::Error("Conv input is shorter than its kernel");
  out->assign(1, Shape{x[0], w[0], (padded - span) / stride + 1});
  return Status::OK();
}

}  // namespace

const OpFamily kConvFamily = {"Conv", Handles, WhyUnsupported, InferShapes, nullptr};

}  // namespace phoenix
