#include "lowering.h"

#include <unordered_map>

#include "ops/op.h"

namespace phoenix {

Lowering::Lowering(const GraphView& g, const ShapeMap& shapes, const CompileOptions& options, WeightStore& weights,
                   Plan& plan)
    : g_(g), shapes_(shapes), options_(options), weights_(weights), p_(plan) {}

int Lowering::NewTensor(const std::string& name, SlotType type, int64_t num_elements) {
  PlanTensor t;
  t.name = name;
  t.type = type;
  t.num_elements = num_elements;
  p_.tensors.push_back(std::move(t));
  return static_cast<int>(p_.tensors.size()) - 1;
}

Status Lowering::Get(int v, Val* out) {
  if (v < 0) return Status::Error("missing input");
  auto it = vals_.find(v);
  if (it != vals_.end()) {
    *out = it->second;
    return Status::OK();
  }
  const GValue& gv = g_.value(v);
  if (!gv.is_constant) return Status::Error("value " + gv.name + " is used before it is computed");
  WeightRef ref;
  PHX_RETURN_IF_ERROR(weights_.Activation(g_, v, &ref));
  int64_t count = 0;
  if (!CheckedNumElements(shapes_[v], &count) || count != ref.num_elements)
    return Status::Error("constant " + gv.name + " does not have the elements its shape says");
  Val val;
  val.tensor = NewTensor(gv.name, SlotType::kActivation, count);
  p_.tensors[val.tensor].is_weight = true;
  p_.tensors[val.tensor].weight = ref;
  val.view = TensorView::Contiguous(shapes_[v]);
  vals_[v] = val;
  *out = val;
  return Status::OK();
}

Status Lowering::ConstantF32(int v, std::vector<float>* out) const {
  auto d = g_.ConstantAsDoubles(v);
  if (!d) return Status::Error("constant " + g_.value(v).name + " could not be read");
  out->assign(d->begin(), d->end());
  return Status::OK();
}

Status Lowering::F32Parameter(const std::string& name, const std::vector<float>& data, int* tensor) {
  WeightRef ref;
  PHX_RETURN_IF_ERROR(weights_.F32(data, &ref));
  *tensor = NewTensor(name, SlotType::kF32, static_cast<int64_t>(data.size()));
  p_.tensors[*tensor].is_weight = true;
  p_.tensors[*tensor].weight = ref;
  return Status::OK();
}

Val Lowering::NewOutput(const std::string& name, const Shape& dims) {
  Val o;
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  o.tensor = NewTensor(name, SlotType::kActivation, n);
  o.view = TensorView::Contiguous(dims);
  return o;
}

PlanCall Lowering::NewCall(KernelParams params, const std::string& label) const {
  PlanCall pc;
  pc.call.params = params;
  pc.call.precision = options_.precision;
  pc.call.label = label;
  return pc;
}

Val Lowering::ApplyScale(const Val& v, const std::string& label) {
  if (v.scale == 1.0f) return v;
  Val o = NewOutput(label + "/scaled", v.view.Dims());
  if (v.quant && v.quant_pending) o.quant = v.quant, o.quant_pending = true;  // fq(scale * x): still to come
  PlanCall pc = NewCall(BinaryScalarParams{kernels::BinaryOp::kMul, v.scale, false}, label);
  pc.in[0] = {v.tensor, v.view};
  pc.out = {o.tensor, o.view};
  Emit(pc);
  return o;
}

Val Lowering::Materialize(const Val& in, const std::string& label) {
  Val v = ApplyScale(in, label);
  if (!v.quant || !v.quant_pending) return v;
  Val o = NewOutput(label + "/fake_quant", v.view.Dims());
  PlanCall pc = NewCall(FakeQuantParams{*v.quant}, label);
  pc.in[0] = {v.tensor, v.view};
  pc.out = {o.tensor, o.view};
  Emit(pc);
  o.quant = v.quant;  // applied now
  return o;
}

bool Lowering::Int8Weights(int value, Int8WeightRef* out, int* data, int* scales, int* zero_points) {
  if (!weights_.Int8(g_, value, out).ok()) return false;
  *data = NewTensor(g_.value(value).name + "/int8", SlotType::kInt8, out->data.num_elements);
  p_.tensors[*data].is_weight = true;
  p_.tensors[*data].weight = out->data;
  *scales = NewTensor(g_.value(value).name + "/scales", SlotType::kF32, out->scales.num_elements);
  p_.tensors[*scales].is_weight = true;
  p_.tensors[*scales].weight = out->scales;
  *zero_points = -1;
  if (out->zero_points.buffer != kNoBuffer) {
    *zero_points = NewTensor(g_.value(value).name + "/zero_points", SlotType::kInt8, out->zero_points.num_elements);
    p_.tensors[*zero_points].is_weight = true;
    p_.tensors[*zero_points].weight = out->zero_points;
  }
  return true;
}

Val Lowering::Contiguous(const Val& in, const std::string& label) { return ContiguousPending(Materialize(in, label), label); }

Val Lowering::ContiguousPending(const Val& v, const std::string& label) {
  if (v.view.IsContiguous()) return v;
  Val o = NewOutput(label + "/contiguous", v.view.Dims());
  PlanCall pc = NewCall(CopyParams{}, label);
  pc.in[0] = {v.tensor, v.view};
  pc.out = {o.tensor, o.view};
  Emit(pc);
  Val r = v.WithView(o.view);
  r.tensor = o.tensor;
  return r;
}

Status InferRegionShapes(const RegionGraph& region, const std::vector<Shape>& input_shapes, ShapeMap* shapes) {
  const GraphView& g = region.graph;
  shapes->assign(g.values.size(), Shape{});
  std::vector<bool> known(g.values.size(), false);
  std::vector<std::optional<Shape>> values(g.values.size());  // integer contents (shape arithmetic)
  if (input_shapes.size() != region.inputs.size()) return Status::Error("internal: input count mismatch");
  for (size_t i = 0; i < region.inputs.size(); ++i) {
    (*shapes)[region.inputs[i]] = input_shapes[i];
    known[region.inputs[i]] = true;
  }
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].is_constant && g.values[v].IsStatic()) {
      (*shapes)[v] = g.values[v].shape;
      known[v] = true;
      values[v] = ShapeValueOfConstant(g, static_cast<int>(v));
    }
  std::unordered_map<int, int> pattern_input;  // node of a GELU pattern -> the pattern's x
  for (const GeluMatch& m : region.gelus)
    for (int n : m.nodes) pattern_input[n] = m.x;

  for (int ni = 0; ni < static_cast<int>(g.nodes.size()); ++ni) {
    const GNode& n = g.nodes[ni];
    NodeShapes io;
    for (int v : n.inputs) {
      if (v >= 0 && !known[v]) return Status::Error("internal: " + n.Label() + " reads " + g.value(v).name + " before it is computed");
      io.in.push_back(v >= 0 ? (*shapes)[v] : Shape{});
      io.in_values.push_back(v >= 0 ? values[v] : std::nullopt);
    }
    auto p = pattern_input.find(ni);
    if (p != pattern_input.end()) {
      io.out.assign(n.outputs.size(), (*shapes)[p->second]);  // every value of a GELU pattern has x's shape
    } else {
      const OpFamily* family = FindOpFamily(g, n);
      if (family == nullptr) return Status::Error("internal: no op family for " + n.op_type);
      Status s = family->infer_shapes(g, n, &io);
      if (!s.ok()) return Status::InvalidArgument(n.op_type + " " + n.Label() + ": " + s.message());
    }
    for (size_t k = 0; k < n.outputs.size() && k < io.out.size(); ++k) {
      const int v = n.outputs[k];
      if (v < 0) continue;
      const Shape& s = io.out[k];
      int64_t count = 0;
      if (static_cast<int>(s.size()) > kMaxViewRank || !CheckedNumElements(s, &count))
        return Status::InvalidArgument(n.op_type + " " + n.Label() + ": output shape " + ShapeToString(s) + " is not supported");
      const GValue& gv = g.value(v);
      if (gv.has_shape) {  // the model's declaration must agree wherever it is static
        bool agree = gv.shape.size() == s.size();
        for (size_t d = 0; agree && d < s.size(); ++d) agree = !IsStaticDim(gv.shape[d]) || gv.shape[d] == s[d];
        if (!agree)
          return Status::InvalidArgument(n.op_type + " " + n.Label() + ": the model declares " + gv.name + " as " +
                                         ShapeToString(gv.shape) + " but the op gives " + ShapeToString(s));
      }
      (*shapes)[v] = s;
      if (k < io.out_values.size()) values[v] = io.out_values[k];
      known[v] = true;
    }
  }
  return Status::OK();
}

Status BuildPlan(const RegionGraph& region, const std::vector<Shape>& input_shapes, const CompileOptions& options,
                 WeightStore& weights, Plan* plan) {
  const GraphView& g = region.graph;
  ShapeMap shapes;
  PHX_RETURN_IF_ERROR(InferRegionShapes(region, input_shapes, &shapes));

  UnitPlan units(g.nodes.size());
  FuseGeluPatterns(g, region.gelus, &units);
  FuseAttention(g, shapes, options.fuse_attention, &units);
  FuseMatMulEpilogues(g, shapes, &units);
  for (int ni = 0; ni < static_cast<int>(g.nodes.size()); ++ni)
    if (units.Free(ni)) {
      Unit u;
      u.kind = Unit::kNode;
      u.nodes = {ni};
      u.head = ni;
      units.Add(std::move(u));
    }

  *plan = Plan{};
  plan->name = region.name;
  plan->precision = options.precision;
  Lowering l(g, shapes, options, weights, *plan);
  for (int v : region.inputs) {
    Val val = l.NewOutput(g.value(v).name, shapes[v]);
    l.Set(v, val);
    plan->inputs.push_back(PlanIO{g.value(v).name, val.tensor, val.view, shapes[v]});
  }
  for (int ni = 0; ni < static_cast<int>(g.nodes.size()); ++ni) {
    const Unit& u = units.units[units.unit_of_node[ni]];
    if (u.nodes.back() != ni) continue;
    Status s;
    switch (u.kind) {
      case Unit::kMatMulChain: s = LowerMatMulChain(l, u); break;
      case Unit::kAttention: s = LowerAttention(l, u); break;
      case Unit::kGeluPattern:
        s = LowerGelu(l, u.gelu.x, u.gelu.y, static_cast<kernels::GeluMode>(u.gelu.mode), g.nodes[ni].Label());
        break;
      case Unit::kNode: {
        const OpFamily* family = FindOpFamily(g, g.nodes[ni]);
        s = family && family->lower ? family->lower(l, ni)
                                    : Status::Error("internal: no lowering for " + g.nodes[ni].op_type);
        break;
      }
    }
    if (!s.ok()) return Status::Error(g.nodes[ni].op_type + " " + g.nodes[ni].Label() + ": " + s.message());
  }
  for (int v : region.outputs) {
    Val val;
    PHX_RETURN_IF_ERROR(l.Get(v, &val));
    val = l.Materialize(val, g.value(v).name);
    plan->outputs.push_back(PlanIO{g.value(v).name, val.tensor, val.view, shapes[v]});
  }
  plan->num_onnx_nodes = static_cast<int>(g.nodes.size());
  FoldCopiesIntoProducers(*plan);
  PlanBuffers(*plan);
  return ValidatePlan(*plan);
}

}  // namespace phoenix
