// Reshape to a target shape known before the run: a constant, or shape arithmetic the provider
// evaluates (ops/shape_arith.cc). 0 copies the input dim unless allowzero, -1 takes what is
// left. A view of its input, a Copy first only when the input's layout cannot be viewed that
// way. With symbolic dims the element counts are compared as a constant times a product of
// symbols.
#include <algorithm>

#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

bool Handles(const GraphView& g, const GNode& n) { return n.op_type == "Reshape"; }

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "missing input";
  if (auto why = CheckF32(g, n, 1); !why.empty()) return why;
  if (g.value(n.inputs[0]).is_constant) return "Reshape of a constant";
  return "";
}

// An element count: constant * product of named symbols; `unknown` when an anonymous dynamic
// dim takes part (then nothing can be compared before run time).
struct Count {
  int64_t constant = 1;
  std::vector<int64_t> symbols;  // sorted
  bool unknown = false;
  bool overflow = false;
  void Times(int64_t d) {
    if (d == kDynamicDim) unknown = true;
    else if (IsSymbol(d)) symbols.insert(std::upper_bound(symbols.begin(), symbols.end(), d), d);
    else if (d != 0 && constant > kMaxElements / d) overflow = true;
    else constant *= d;
  }
};

Status InferShapes(const GraphView& g, const GNode& n, NodeShapes* io) {
  const std::vector<Shape>& in = io->in;
  std::vector<Shape>* out = &io->out;
  const std::optional<Shape>& target = io->in_values[1];
  if (io->in[1].size() != 1) return Status::Error("Reshape's shape input is not 1-D");  // the CPU EP rejects it
  if (!target) return Status::Error("Reshape's target shape is not known before the run (not a constant or shape arithmetic the provider evaluates)");
  const Shape& x = in[0];
  const bool allowzero = n.AttrInt("allowzero", 0) != 0;
  Count have, want;
  for (int64_t d : x) have.Times(d);
  Shape y(target->size());
  int infer = -1;
  for (size_t i = 0; i < target->size(); ++i) {
    int64_t d = (*target)[i];
    if (d == 0 && !allowzero) {
      if (i >= x.size()) return Status::Error("Reshape target copies a dim the input does not have");
      d = x[i];
    } else if (d == -1) {
      if (infer >= 0) return Status::Error("Reshape target has more than one -1");
      infer = static_cast<int>(i);
      continue;
    } else if (d == kUnknownValue) {
      d = kDynamicDim;
    } else if (d < 0 && !IsSymbol(d)) {
      return Status::Error("Reshape target has a negative dim");
    }
    want.Times(d);
    y[i] = d;
  }
  if (have.overflow || want.overflow) return Status::Error("Reshape is too large");
  const std::string mismatch = "Reshape: input " + ShapeToString(x) + " cannot be reshaped to " + ShapeToString(y);
  if (have.unknown || want.unknown) {  // decided when the plan's shapes are known
    if (infer >= 0) y[infer] = kDynamicDim;
    out->assign(1, y);
    return Status::OK();
  }
  // want's symbols must all be in have's; what remains is the -1 dim, or must be nothing.
  std::vector<int64_t> rest;
  std::set_difference(have.symbols.begin(), have.symbols.end(), want.symbols.begin(), want.symbols.end(),
                      std::back_inserter(rest));
  if (!std::includes(have.symbols.begin(), have.symbols.end(), want.symbols.begin(), want.symbols.end()))
    return Status::Error(mismatch);
  if (infer < 0) {
    if (!rest.empty() || have.constant != want.constant)
      return Status::Error("Reshape: input " + ShapeToString(x) + " and the target " + ShapeToString(y) +
                           " have different element counts");
  } else {
    if (want.constant == 0 || have.constant % want.constant != 0) return Status::Error(mismatch);
    const int64_t c = have.constant / want.constant;
    if (rest.empty()) y[infer] = c;
    else if (rest.size() == 1 && c == 1) y[infer] = rest[0];
    else y[infer] = kDynamicDim;
  }
  out->assign(1, y);
  return Status::OK();
}

Status Lower(Lowering& l, int ni) {
  const GNode& n = l.graph().nodes[ni];
  Val x;
  PHX_RETURN_IF_ERROR(l.Get(n.inputs[0], &x));
  const Shape& dims = l.ShapeOf(n.outputs[0]);
  auto view = ReshapeView(x.view, dims);
  if (!view) {  // the input's layout needs a copy first (pending scale and quantization ride along)
    x = l.ContiguousPending(x, n.Label());
    view = ReshapeView(x.view, dims);
    if (!view) return Status::Error(x.view.ToString() + " cannot be viewed as " + ShapeToString(dims));
  }
  l.Set(n.outputs[0], x.WithView(*view));
  return Status::OK();
}

}  // namespace

const OpFamily kReshapeFamily = {"Reshape", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
