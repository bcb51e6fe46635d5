// Reshape to a constant shape (0 copies the input dim unless allowzero, -1 takes what is left):
// a view of its input, never a kernel unless the input's layout needs a copy first.
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GNode& n) { return n.op_type == "Reshape"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 1); !why.empty()) return why;
  if (!g.value(n.inputs[1]).is_constant || !g.ConstantAsInts(n.inputs[1])) return "Reshape shape is not a constant";
  if (g.value(n.inputs[0]).is_constant) return "Reshape of a constant";
  return "";
}

Status InferShapes(const GraphView& g, const GNode& n, const std::vector<Shape>& in, std::vector<Shape>* out) {
  const auto target = g.ConstantAsInts(n.inputs[1]);
  if (!target) return Status::Error("Reshape shape is not a constant");
  const Shape& x = in[0];
  int64_t count = 0;
  if (!CheckedNumElements(x, &count)) return Status::Error("Reshape input is too large");
  const bool allowzero = n.AttrInt("allowzero", 0) != 0;
  Shape y(target->size());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target->size(); ++i) {
    int64_t d = (*target)[i];
    if (d == 0 && !allowzero) {
      if (i >= x.size()) return Status::Error("Reshape target " + ShapeToString(*target) + " copies a dim the input does not have");
      d = x[i];
    }
    if (d == -1) {
      if (infer >= 0) return Status::Error("Reshape target " + ShapeToString(*target) + " has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    if (d < 0) return Status::Error("Reshape target " + ShapeToString(*target) + " has a negative dim");
    if (d != 0 && known > kMaxElements / d) return Status::Error("Reshape target is too large");
    known *= d;
    y[i] = d;
  }
  if (infer >= 0) {
    if (known == 0 || count % known != 0)
      return Status::Error("Reshape: input " + ShapeToString(x) + " cannot be reshaped to " + ShapeToString(*target));
    y[infer] = count / known;
    known *= y[infer];
  }
  if (known != count)
    return Status::Error("Reshape: input " + ShapeToString(x) + " has " + std::to_string(count) +
                         " elements, the target " + ShapeToString(y) + " " + std::to_string(known));
  out->assign(1, y);
  return Status::OK();
}

}  // namespace

const OpFamily kReshapeFamily = {"Reshape", Handles, WhyUnsupported, InferShapes};

}  // namespace phoenix
