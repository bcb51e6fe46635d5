// Softmax over the last axis.
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GNode& n) { return n.op_type == "Softmax"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  return CheckF32(g, n, 1);
}

Status InferShapes(const GraphView& g, const GNode& n, const std::vector<Shape>& in, std::vector<Shape>* out) {
  const int64_t r = static_cast<int64_t>(in[0].size());
  if (r == 0) return Status::Error("Softmax of a scalar");
  int64_t axis = n.AttrInt("axis", n.since_version >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis != r - 1) return Status::Error("Softmax over an axis other than the last");
  out->assign(1, in[0]);
  return Status::OK();
}

}  // namespace

const OpFamily kSoftmaxFamily = {"Softmax", Handles, WhyUnsupported, InferShapes};

}  // namespace phoenix
