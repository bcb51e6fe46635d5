#include "compiler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "common/bf16.h"
#include "elementwise/elementwise.h"
#include "gelu/gelu.h"
#include "matmul/matmul.h"
#include "patterns.h"

namespace phoenix {
namespace {

// A value during lowering: a view of a plan tensor, times a pending FP32 scale that has not
// been applied yet (a scalar Mul/Div waiting for a consumer that can absorb it).
struct Val {
  int tensor = -1;
  TensorView view;
  float scale = 1.0f;
};

TensorView Permute(const TensorView& v, const std::vector<int64_t>& perm) {
  TensorView r = v;
  for (int i = 0; i < v.rank; ++i) {
    r.shape[i] = v.shape[perm[i]];
    r.strides[i] = v.strides[perm[i]];
  }
  return r;
}

// Reshape without moving data when the view's strides allow it (numpy's no-copy rule: each
// run of merged input dims must be contiguous with itself). False when a copy is needed.
bool ReshapeView(const TensorView& v, const std::vector<int64_t>& dims, TensorView* out) {
  std::vector<int64_t> od, os;  // drop size-1 dims of the input
  for (int i = 0; i < v.rank; ++i) if (v.shape[i] != 1) { od.push_back(v.shape[i]); os.push_back(v.strides[i]); }
  TensorView r;
  r.rank = static_cast<int>(dims.size());
  r.offset = v.offset;
  size_t oi = 0;
  int ni = 0;
  const int nr = r.rank;
  while (ni < nr) {
    if (dims[ni] == 1) { r.shape[ni] = 1; r.strides[ni] = 0; ++ni; continue; }
    if (oi >= od.size()) return false;
    // group: grow input dims [oi, oj) and output dims [ni, nj) until the products match
    int64_t p_in = od[oi], p_out = dims[ni];
    size_t oj = oi + 1;
    int nj = ni + 1;
    while (p_in != p_out) {
      if (p_in < p_out) { if (oj >= od.size()) return false; p_in *= od[oj++]; }
      else { if (nj >= nr) return false; p_out *= dims[nj++]; }
    }
    for (size_t k = oi; k + 1 < oj; ++k) if (os[k] != os[k + 1] * od[k + 1]) return false;
    int64_t stride = os[oj - 1];
    for (int k = nj - 1; k >= ni; --k) {
      r.shape[k] = dims[k];
      r.strides[k] = dims[k] == 1 ? 0 : stride;
      stride *= dims[k];
    }
    oi = oj;
    ni = nj;
  }
  if (oi != od.size()) return false;
  *out = r;
  return true;
}

// Right-aligns `v` to `dims` (numpy broadcasting): missing and size-1 dims get stride 0.
TensorView BroadcastTo(const TensorView& v, const std::vector<int64_t>& dims) {
  TensorView r;
  r.rank = static_cast<int>(dims.size());
  r.offset = v.offset;
  const int shift = r.rank - v.rank;
  for (int i = 0; i < r.rank; ++i) {
    r.shape[i] = dims[i];
    const int j = i - shift;
    r.strides[i] = (j >= 0 && v.shape[j] != 1) ? v.strides[j] : 0;
  }
  return r;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (auto& p : parts) s += (s.empty() ? "" : "+") + p;
  return s;
}

class Lowering {
 public:
  Lowering(const GraphView& g, Plan& plan, const CompileOptions& options)
      : g_(g), p_(plan), options_(options), done_(g.nodes.size(), false) {
    for (const GeluMatch& m : FindGeluPatterns(g)) {
      const int id = static_cast<int>(gelus_.size());
      gelus_.push_back(m);
      for (int n : m.nodes) gelu_of_node_[n] = id;
    }
  }

  Status Run(const std::vector<std::string>& input_names, const std::vector<std::string>& output_names) {
    for (const std::string& name : input_names) {
      const int v = g_.FindValue(name);
      if (v < 0) return Status::Error("region input " + name + " not found in the graph");
      const GValue& gv = g_.value(v);
      if (!gv.IsStatic()) return Status::Error("region input " + name + " has a dynamic shape");
      Val val;
      val.tensor = NewActivation(name, gv.NumElements());
      val.view = TensorView::Contiguous(gv.shape);
      vals_[v] = val;
      p_.inputs.push_back(PlanIO{name, val.tensor, val.view, gv.shape});
    }
    for (const std::string& name : output_names) region_outputs_.insert(g_.FindValue(name));
    for (int i = 0; i < static_cast<int>(g_.nodes.size()); ++i) {
      auto deferred = deferred_.find(i);
      if (deferred != deferred_.end()) PHX_RETURN_IF_ERROR(FinishMatMul(deferred->second));
      auto attention = deferred_attention_.find(i);
      if (attention != deferred_attention_.end()) PHX_RETURN_IF_ERROR(FinishAttention(attention->second));
      if (done_[i]) continue;
      PHX_RETURN_IF_ERROR(Lower(i));
    }
    for (const std::string& name : output_names) {
      const int v = g_.FindValue(name);
      Val val;
      PHX_RETURN_IF_ERROR(Get(v, &val));
      val = ApplyScale(val, name);
      p_.outputs.push_back(PlanIO{name, val.tensor, val.view, g_.value(v).shape});
    }
    p_.num_onnx_nodes = static_cast<int>(g_.nodes.size());
    return Status::OK();
  }

 private:
  // A MatMul whose epilogue absorbs later nodes is emitted at the last absorbed node.
  struct PendingMatMul {
    PlanCall call;
    int residual_value = -1;
    int out_value = -1;
    std::vector<int64_t> out_dims;   // of the ONNX value
    std::vector<int64_t> out_perm;   // ONNX value = kernel output permuted by this (conv)
    std::vector<int64_t> final_dims; // of the last absorbed value (after absorbed Reshapes)
    std::vector<int64_t> residual_dims;  // of the value the residual was added to
  };

  // Fused attention, emitted at its second MatMul (V may be computed after QK^T).
  struct PendingAttention {
    PlanCall call;     // in[0] = Q, in[1] = K (as [b..., N, D]) filled; V and out at the end
    int v_value = -1;
    int out_value = -1;
    std::vector<int64_t> out_dims;
  };

  int NewTensor(const std::string& name, DType dtype, int64_t numel, bool weight) {
    PlanTensor t;
    t.name = name;
    t.dtype = dtype;
    t.num_elements = numel;
    t.is_weight = weight;
    p_.tensors.push_back(std::move(t));
    return static_cast<int>(p_.tensors.size()) - 1;
  }
  int NewActivation(const std::string& name, int64_t numel) { return NewTensor(name, options_.element, numel, false); }

  int WeightTensor(const std::string& name, const std::vector<float>& data, DType dtype) {
    const int t = NewTensor(name, dtype, static_cast<int64_t>(data.size()), true);
    auto& bytes = p_.tensors[t].weight_data;
    if (dtype == DType::kF32) {
      bytes.resize(data.size() * 4);
      std::memcpy(bytes.data(), data.data(), bytes.size());
    } else if (dtype == DType::kSplit) {
      bytes.resize(data.size() * 4);
      auto* dst = reinterpret_cast<split_t*>(bytes.data());
      for (size_t i = 0; i < data.size(); ++i) dst[i] = FromF32<split_t>(data[i]);
    } else {
      bytes.resize(data.size() * 2);
      auto* dst = reinterpret_cast<bf16_t*>(bytes.data());
      for (size_t i = 0; i < data.size(); ++i) dst[i] = F32ToBf16(data[i]);
    }
    p_.weight_bytes += static_cast<int64_t>(bytes.size());
    return t;
  }

  Status ConstantFloats(int v, std::vector<float>* out) {
    auto d = g_.ConstantAsDoubles(v);
    if (!d) return Status::Error("constant " + g_.value(v).name + " could not be read");
    out->assign(d->begin(), d->end());
    return Status::OK();
  }

  Status Get(int v, Val* out) {
    if (v < 0) return Status::Error("missing input");
    auto it = vals_.find(v);
    if (it != vals_.end()) {
      *out = it->second;
      return Status::OK();
    }
    const GValue& gv = g_.value(v);
    if (!gv.is_constant) return Status::Error("value " + gv.name + " is used before it is computed");
    std::vector<float> data;
    PHX_RETURN_IF_ERROR(ConstantFloats(v, &data));
    Val val;
    val.tensor = WeightTensor(gv.name, data, options_.element);
    val.view = TensorView::Contiguous(gv.shape);
    vals_[v] = val;
    *out = val;
    return Status::OK();
  }

  int Emit(PlanCall pc) {
    p_.calls.push_back(std::move(pc));
    const int index = static_cast<int>(p_.calls.size()) - 1;
    producer_call_[p_.calls[index].out.tensor] = index;
    return index;
  }

  PlanCall NewCall(KernelParams params, const std::string& label) {
    PlanCall pc;
    pc.call.params = params;
    pc.call.precision = options_.element == DType::kSplit ? Precision::kBF16x3 : Precision::kBF16;
    pc.call.label = label;
    return pc;
  }

  Val NewOutput(const std::string& name, const std::vector<int64_t>& dims) {
    Val o;
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    o.tensor = NewActivation(name, n);
    o.view = TensorView::Contiguous(dims);
    return o;
  }

  // Applies a pending scale with a kernel (used when the consumer cannot absorb it).
  Val ApplyScale(const Val& v, const std::string& label) {
    if (v.scale == 1.0f) return v;
    Val o = NewOutput(label + "/scaled", v.view.Dims());
    PlanCall pc = NewCall(BinaryScalarParams{kernels::BinaryOp::kMul, v.scale, false}, label);
    pc.in[0] = {v.tensor, v.view};
    pc.out = {o.tensor, o.view};
    Emit(pc);
    return o;
  }

  // Contiguous rows for kernels that need them (scale applied first).
  Val Contiguous(const Val& in, const std::string& label) {
    Val v = ApplyScale(in, label);
    if (v.view.IsContiguous()) return v;
    Val o = NewOutput(label + "/contiguous", v.view.Dims());
    PlanCall pc = NewCall(CopyParams{}, label);
    pc.in[0] = {v.tensor, v.view};
    pc.out = {o.tensor, o.view};
    Emit(pc);
    return o;
  }

  std::vector<int64_t> Dims(int v) const { return g_.value(v).shape; }

  Status Lower(int ni) {
    const GNode& n = g_.nodes[ni];
    done_[ni] = true;
    auto gelu = gelu_of_node_.find(ni);
    if (gelu != gelu_of_node_.end()) return LowerGelu(gelus_[gelu->second].x, gelus_[gelu->second].y,
                                                      gelus_[gelu->second].mode, gelus_[gelu->second].nodes);
    const std::string& op = n.op_type;
    if (op == "MatMul" || op == "Gemm") return LowerMatMul(ni);
    if (op == "Conv") return LowerConv(ni);
    if (op == "LayerNormalization") return LowerLayerNorm(n);
    if (op == "Softmax") return LowerSoftmax(n);
    if (op == "Gelu") {
      const int mode = n.AttrString("approximate", "none") == "tanh" ? static_cast<int>(kernels::GeluMode::kTanh)
                                                                       : static_cast<int>(kernels::GeluMode::kErf);
      return LowerGelu(n.inputs[0], n.outputs[0], mode, {ni});
    }
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return LowerBinary(n);
    if (op == "Reshape") return LowerReshape(n);
    if (op == "Transpose") return LowerTranspose(n);
    return Status::Error("internal: no lowering for " + op + " (" + n.name + ")");
  }

  Status LowerGelu(int x, int y, int mode, const std::vector<int>& nodes) {
    for (int k : nodes) done_[k] = true;
    Val in;
    PHX_RETURN_IF_ERROR(Get(x, &in));
    const std::string label = g_.nodes[nodes.back()].name;
    in = Contiguous(in, label);
    Val o = NewOutput(g_.value(y).name, Dims(y));
    PlanCall pc = NewCall(GeluParams{static_cast<kernels::GeluMode>(mode)}, label);
    pc.in[0] = {in.tensor, in.view};
    pc.out = {o.tensor, o.view};
    Emit(pc);
    vals_[y] = o;
    return Status::OK();
  }

  Status LowerLayerNorm(const GNode& n) {
    Val x;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &x));
    x = Contiguous(x, n.name);
    std::vector<float> gamma, beta;
    PHX_RETURN_IF_ERROR(ConstantFloats(n.inputs[1], &gamma));
    PlanCall pc = NewCall(LayerNormParams{n.AttrFloat("epsilon", 1e-5f)}, n.name);
    pc.in[0] = {x.tensor, x.view};
    pc.in[1] = {WeightTensor(g_.value(n.inputs[1]).name, gamma, DType::kF32),
                TensorView::Contiguous({static_cast<int64_t>(gamma.size())})};
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      PHX_RETURN_IF_ERROR(ConstantFloats(n.inputs[2], &beta));
      pc.in[2] = {WeightTensor(g_.value(n.inputs[2]).name, beta, DType::kF32),
                  TensorView::Contiguous({static_cast<int64_t>(beta.size())})};
    }
    Val o = NewOutput(g_.value(n.outputs[0]).name, Dims(n.outputs[0]));
    pc.out = {o.tensor, o.view};
    Emit(pc);
    vals_[n.outputs[0]] = o;
    return Status::OK();
  }

  Status LowerSoftmax(const GNode& n) {
    Val x;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &x));
    const float scale = x.scale;  // softmax(scale * x): the pending scale is absorbed
    x.scale = 1.0f;
    x = Contiguous(x, n.name);
    Val o = NewOutput(g_.value(n.outputs[0]).name, Dims(n.outputs[0]));
    PlanCall pc = NewCall(SoftmaxParams{scale}, n.name);
    pc.in[0] = {x.tensor, x.view};
    pc.out = {o.tensor, o.view};
    Emit(pc);
    vals_[n.outputs[0]] = o;
    return Status::OK();
  }

  Status LowerReshape(const GNode& n) {
    Val x;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &x));
    const std::vector<int64_t> dims = Dims(n.outputs[0]);
    TensorView r;
    if (!ReshapeView(x.view, dims, &r)) {
      const float scale = x.scale;
      x.scale = 1.0f;
      x = Contiguous(x, n.name);
      x.scale = scale;
      if (!ReshapeView(x.view, dims, &r))
        return Status::Error("Reshape " + n.name + ": " + x.view.ToString() + " cannot be viewed as the target shape");
    }
    vals_[n.outputs[0]] = Val{x.tensor, r, x.scale};
    return Status::OK();
  }

  // True when nothing but `value` can still read plan tensor `tensor`: only then may the
  // tensor's producer change the layout it writes. Several ONNX values alias one tensor through
  // views and pending scales (v and Mul(v, 2), a Reshape of v): any of them that is a region
  // output, or has a consumer not lowered yet, or is waited on by a deferred call, still reads
  // it; so do calls already emitted.
  bool SoleAlias(int value, int tensor) const {
    for (const auto& [v, val] : vals_) {
      if (val.tensor != tensor || v == value) continue;
      if (region_outputs_.count(v) || g_.value(v).is_graph_output) return false;
      for (int c : g_.value(v).consumers)
        if (!done_[c]) return false;
    }
    auto reads = [&](const PlanCall& c) {
      for (const PlanOperand& op : c.in)
        if (op.tensor == tensor) return true;
      return false;
    };
    auto value_in = [&](int v) { return v >= 0 && vals_.count(v) && vals_.at(v).tensor == tensor; };
    for (const auto& entry : deferred_)
      if (reads(entry.second.call) || value_in(entry.second.residual_value)) return false;
    for (const auto& entry : deferred_attention_)
      if (reads(entry.second.call) || value_in(entry.second.v_value)) return false;
    for (const PlanCall& c : p_.calls)
      if (reads(c)) return false;
    for (const PlanIO& io : p_.outputs)
      if (io.tensor == tensor) return false;
    return true;
  }

  Status LowerTranspose(const GNode& n) {
    Val x;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &x));
    std::vector<int64_t> perm = n.AttrInts("perm");
    if (perm.empty())
      for (int i = x.view.rank - 1; i >= 0; --i) perm.push_back(i);
    // If the producer is a kernel that writes through a strided view, and this Transpose is
    // the only reader, let the producer write the transposed layout directly: no copy, and
    // the result is contiguous (heads merge back into [T, D] as a free reshape).
    const GValue& in = g_.value(n.inputs[0]);
    auto pc_it = producer_call_.find(x.tensor);
    if (in.consumers.size() == 1 && !in.is_graph_output && pc_it != producer_call_.end() && SoleAlias(n.inputs[0], x.tensor) &&
        x.view.IsContiguous() && x.view.offset == 0 &&
        x.view.NumElements() == p_.tensors[x.tensor].num_elements &&
        p_.calls[pc_it->second].out.view.Dims() == x.view.Dims() &&
        p_.calls[pc_it->second].out.view.IsContiguous()) {
      PlanCall& producer = p_.calls[pc_it->second];
      const KernelKind k = producer.call.kind();
      if (k == KernelKind::kMatMul || k == KernelKind::kBinary || k == KernelKind::kBinaryScalar ||
          k == KernelKind::kCopy || k == KernelKind::kAttention) {
        const TensorView t = TensorView::Contiguous(Permute(x.view, perm).Dims());
        TensorView written;  // the producer's output view: element (i...) lands at t[perm^-1(i)]
        written.rank = t.rank;
        for (int i = 0; i < t.rank; ++i) {
          written.shape[perm[i]] = t.shape[i];
          written.strides[perm[i]] = t.strides[i];
        }
        producer.out.view = written;
        vals_[n.outputs[0]] = Val{x.tensor, t, x.scale};
        return Status::OK();
      }
    }
    vals_[n.outputs[0]] = Val{x.tensor, Permute(x.view, perm), x.scale};
    return Status::OK();
  }

  Status LowerBinary(const GNode& n) {
    using kernels::BinaryOp;
    const BinaryOp op = n.op_type == "Add" ? BinaryOp::kAdd
                      : n.op_type == "Sub" ? BinaryOp::kSub
                      : n.op_type == "Mul" ? BinaryOp::kMul : BinaryOp::kDiv;
    const int out = n.outputs[0];
    const std::vector<int64_t> dims = Dims(out);
    const auto s0 = g_.ScalarConstant(n.inputs[0]);
    const auto s1 = g_.ScalarConstant(n.inputs[1]);
    if (s0 || s1) {
      const bool scalar_first = s0.has_value();
      const int xv = scalar_first ? n.inputs[1] : n.inputs[0];
      const float s = static_cast<float>(scalar_first ? *s0 : *s1);
      Val x;
      PHX_RETURN_IF_ERROR(Get(xv, &x));
      const bool same_shape = x.view.Dims() == dims;
      // x * s and x / s stay pending on the value: the consumer may absorb the scale.
      if (same_shape && (op == BinaryOp::kMul || (op == BinaryOp::kDiv && !scalar_first))) {
        x.scale *= op == BinaryOp::kMul ? s : 1.0f / s;
        vals_[out] = x;
        return Status::OK();
      }
      x = ApplyScale(x, n.name);
      Val o = NewOutput(g_.value(out).name, dims);
      PlanCall pc = NewCall(BinaryScalarParams{op, s, scalar_first}, n.name);
      pc.in[0] = {x.tensor, BroadcastTo(x.view, dims)};
      pc.out = {o.tensor, o.view};
      Emit(pc);
      vals_[out] = o;
      return Status::OK();
    }
    Val a, b;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &a));
    PHX_RETURN_IF_ERROR(Get(n.inputs[1], &b));
    a = ApplyScale(a, n.name);
    b = ApplyScale(b, n.name);
    Val o = NewOutput(g_.value(out).name, dims);
    PlanCall pc = NewCall(BinaryParams{op}, n.name);
    pc.in[0] = {a.tensor, BroadcastTo(a.view, dims)};
    pc.in[1] = {b.tensor, BroadcastTo(b.view, dims)};
    pc.out = {o.tensor, o.view};
    Emit(pc);
    vals_[out] = o;
    return Status::OK();
  }

  // The single consumer of `v` that can be folded into a MatMul epilogue, or -1.
  // A GELU pattern reads its input from several of its nodes: they count as one consumer.
  int SoleConsumer(int v) const {
    const GValue& gv = g_.value(v);
    if (gv.is_graph_output || gv.consumers.empty()) return -1;
    const int c = gv.consumers[0];
    if (gv.consumers.size() > 1) {
      auto m = gelu_of_node_.find(c);
      if (m == gelu_of_node_.end() || gelus_[m->second].x != v) return -1;
      for (int other : gv.consumers) {
        auto mo = gelu_of_node_.find(other);
        if (mo == gelu_of_node_.end() || mo->second != m->second) return -1;
      }
    }
    return done_[c] ? -1 : c;
  }

  Status LowerMatMul(int ni) {
    const GNode& n = g_.nodes[ni];
    const bool gemm = n.op_type == "Gemm";
    Val a, b;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &a));
    PHX_RETURN_IF_ERROR(Get(n.inputs[1], &b));
    float alpha = a.scale * b.scale;
    if (gemm) {
      alpha *= n.AttrFloat("alpha", 1.0f);
      if (n.AttrInt("transA", 0)) a.view = Permute(a.view, {1, 0});
      if (n.AttrInt("transB", 0)) b.view = Permute(b.view, {1, 0});
    }
    const std::vector<int64_t> out_dims = Dims(n.outputs[0]);
    const int rank = static_cast<int>(out_dims.size());
    const int batch_rank = rank - 2;
    if (batch_rank > kernels::kMaxBatchRank) return Status::Error("too many batch dims in " + n.name);
    if (!gemm && options_.fuse_attention && TryAttention(ni, a, b, alpha)) return Status::OK();

    PendingMatMul pm;
    PlanCall& pc = pm.call;
    pc = NewCall(MatMulParams{}, "");
    // A: [batch..., M, K] and B: [batch..., K, N], batch dims broadcast to the output's.
    std::vector<int64_t> a_dims(out_dims.begin(), out_dims.end() - 2), b_dims = a_dims;
    a_dims.push_back(a.view.shape[a.view.rank - 2]);
    a_dims.push_back(a.view.shape[a.view.rank - 1]);
    b_dims.push_back(b.view.shape[b.view.rank - 2]);
    b_dims.push_back(b.view.shape[b.view.rank - 1]);
    pc.in[0] = {a.tensor, BroadcastTo(a.view, a_dims)};
    pc.in[1] = {b.tensor, BroadcastTo(b.view, b_dims)};
    pc.call.Params<MatMulParams>().b_is_constant = g_.value(n.inputs[1]).is_constant;
    const int64_t N = out_dims.back();
    std::vector<float> bias;
    if (gemm && n.inputs.size() > 2 && n.inputs[2] >= 0 && !g_.value(n.inputs[2]).is_constant) {
      pm.residual_value = n.inputs[2];  // Gemm with an activation C (beta 1): a residual add
    } else if (gemm && n.inputs.size() > 2 && n.inputs[2] >= 0) {
      std::vector<float> c;
      PHX_RETURN_IF_ERROR(ConstantFloats(n.inputs[2], &c));
      const float beta = n.AttrFloat("beta", 1.0f);
      bias.assign(N, 0.0f);
      for (int64_t j = 0; j < N; ++j) bias[j] = beta * (c.size() == 1 ? c[0] : c[j]);
    }

    pc.call.Params<MatMulParams>().alpha = alpha;
    return Absorb(ni, n.outputs[0], out_dims, N, std::move(bias), /*allow_bias_add=*/true, std::move(pm));
  }

  // Folds the chain after a MatMul-like call into its epilogue (scalar scale, bias Add, GELU,
  // residual Add) and emits it, or defers it to the last absorbed node.
  // N is the kernel's output columns (the bias length).
  Status Absorb(int ni, int v, const std::vector<int64_t>& out_dims, int64_t N, std::vector<float> bias,
                bool allow_bias_add, PendingMatMul pm) {
    PlanCall& pc = pm.call;
    float alpha = pc.call.Params<MatMulParams>().alpha;
    std::vector<std::string> labels{g_.nodes[ni].name};
    int epilogue = static_cast<int>(kernels::Epilogue::kNone);
    int last_node = ni;
    std::vector<int64_t> cur_dims = out_dims;  // ONNX dims of v
    for (;;) {
      const int c = SoleConsumer(v);
      if (c < 0) break;
      const GNode& cn = g_.nodes[c];
      // Epilogues are elementwise, so they commute with a Reshape: ORT's default optimisation
      // writes MatMul + Add on 3-D inputs as Reshape + Gemm + Reshape, and the Reshape must not
      // stop the bias, GELU and residual from fusing.
      if (cn.domain.empty() && cn.op_type == "Reshape" && pm.out_perm.empty()) {
        done_[c] = true;
        labels.push_back(cn.name);
        last_node = std::max(last_node, c);
        v = cn.outputs[0];
        cur_dims = Dims(v);
        continue;
      }
      if (gelu_of_node_.count(c)) {
        const GeluMatch& m = gelus_[gelu_of_node_[c]];
        if (m.x != v || epilogue != 0 || pm.residual_value >= 0) break;
        bool all_free = true;
        for (int k : m.nodes) all_free &= !done_[k];
        if (!all_free) break;
        for (int k : m.nodes) done_[k] = true;
        epilogue = m.mode == static_cast<int>(kernels::GeluMode::kTanh) ? static_cast<int>(kernels::Epilogue::kGeluTanh)
                                                                         : static_cast<int>(kernels::Epilogue::kGeluErf);
        labels.push_back(g_.nodes[m.nodes.back()].name);
        last_node = std::max(last_node, m.nodes.back());
        v = m.y;
        continue;
      }
      if (!cn.domain.empty() || cn.outputs.empty()) break;
      if (cn.op_type == "Gelu") {
        if (epilogue != 0 || pm.residual_value >= 0) break;
        epilogue = cn.AttrString("approximate", "none") == "tanh" ? static_cast<int>(kernels::Epilogue::kGeluTanh)
                                                                  : static_cast<int>(kernels::Epilogue::kGeluErf);
        done_[c] = true;
        labels.push_back(cn.name);
        last_node = std::max(last_node, c);
        v = cn.outputs[0];
        continue;
      }
      if (cn.inputs.size() < 2) break;
      const int other = cn.inputs[0] == v ? cn.inputs[1] : cn.inputs[0];
      const bool v_first = cn.inputs[0] == v;
      const bool same_shape_out = g_.value(cn.outputs[0]).shape == cur_dims;
      if ((cn.op_type == "Mul" || (cn.op_type == "Div" && v_first)) && g_.ScalarConstant(other) &&
          epilogue == 0 && pm.residual_value < 0 && same_shape_out) {
        float s = static_cast<float>(*g_.ScalarConstant(other));
        if (cn.op_type == "Div") s = 1.0f / s;
        alpha *= s;
        for (float& x : bias) x *= s;
      } else if (allow_bias_add && cn.op_type == "Add" && g_.value(other).is_constant && epilogue == 0 &&
                 pm.residual_value < 0 && same_shape_out &&
                 (g_.value(other).NumElements() == N || g_.value(other).NumElements() == 1) &&
                 (cur_dims.back() == N || g_.value(other).NumElements() == 1) &&
                 (g_.value(other).shape.empty() || g_.value(other).shape.back() == N ||
                  g_.value(other).NumElements() == 1)) {
        std::vector<float> c;
        PHX_RETURN_IF_ERROR(ConstantFloats(other, &c));
        if (bias.empty()) bias.assign(N, 0.0f);
        for (int64_t j = 0; j < N; ++j) bias[j] += c.size() == 1 ? c[0] : c[j];
      } else if (cn.op_type == "Add" && !g_.value(other).is_constant && pm.residual_value < 0 &&
                 g_.value(other).shape == cur_dims && same_shape_out && other != v) {
        pm.residual_value = other;
        pm.residual_dims = cur_dims;
      } else {
        break;
      }
      done_[c] = true;
      labels.push_back(cn.name);
      last_node = std::max(last_node, c);
      v = cn.outputs[0];
    }
    pc.call.Params<MatMulParams>().alpha = alpha;
    pc.call.Params<MatMulParams>().epilogue = static_cast<kernels::Epilogue>(epilogue);
    pc.call.label = Join(labels);
    if (!bias.empty()) {
      pc.in[2] = {WeightTensor(g_.nodes[ni].name + "/bias", bias, DType::kF32), TensorView::Contiguous({N})};
    }
    pm.out_value = v;
    pm.out_dims = out_dims;
    pm.final_dims = cur_dims;
    if (last_node == ni) return FinishMatMul(pm);
    deferred_.emplace(last_node, std::move(pm));
    return Status::OK();
  }

  // MatMul(Q, K^T) -> [scalar Mul/Div]* -> Softmax(last axis) -> MatMul(P, V), every
  // intermediate read only by the next: one kAttention call, the scores never written.
  bool TryAttention(int ni, const Val& q, const Val& kt, float scale) {
    const GNode& n = g_.nodes[ni];
    if (g_.value(n.inputs[0]).is_constant || g_.value(n.inputs[1]).is_constant) return false;
    std::vector<int> absorbed;
    int v = n.outputs[0];
    int c = SoleConsumer(v);
    while (c >= 0 && g_.nodes[c].domain.empty() &&
           (g_.nodes[c].op_type == "Mul" || (g_.nodes[c].op_type == "Div" && g_.nodes[c].inputs[0] == v))) {
      const GNode& cn = g_.nodes[c];
      const int other = cn.inputs[0] == v ? cn.inputs[1] : cn.inputs[0];
      const auto s = g_.ScalarConstant(other);
      if (!s || g_.value(cn.outputs[0]).shape != g_.value(v).shape) return false;
      scale *= cn.op_type == "Mul" ? static_cast<float>(*s) : 1.0f / static_cast<float>(*s);
      absorbed.push_back(c);
      v = cn.outputs[0];
      c = SoleConsumer(v);
    }
    if (c < 0 || gelu_of_node_.count(c) || g_.nodes[c].op_type != "Softmax" || !g_.nodes[c].domain.empty()) return false;
    absorbed.push_back(c);
    const int p = g_.nodes[c].outputs[0];
    const int pv = SoleConsumer(p);
    if (pv < 0 || g_.nodes[pv].op_type != "MatMul" || !g_.nodes[pv].domain.empty() ||
        g_.nodes[pv].inputs[0] != p || g_.nodes[pv].inputs[1] == p)
      return false;
    const std::vector<int64_t> s_dims = Dims(n.outputs[0]);     // [b..., M, N]
    const std::vector<int64_t> o_dims = Dims(g_.nodes[pv].outputs[0]);  // [b..., M, Dv]
    const std::vector<int64_t> v_dims = Dims(g_.nodes[pv].inputs[1]);
    if (o_dims.size() != s_dims.size() || v_dims.size() < 2 || g_.value(g_.nodes[pv].inputs[1]).is_constant ||
        s_dims.size() - 2 > static_cast<size_t>(kernels::kMaxBatchRank))
      return false;
    absorbed.push_back(pv);
    for (int k : absorbed) done_[k] = true;

    PendingAttention pa;
    pa.call = NewCall(AttentionParams{scale}, n.name + "+" + g_.nodes[c].name + "+" + g_.nodes[pv].name);
    std::vector<int64_t> q_dims(s_dims.begin(), s_dims.end() - 2), k_dims = q_dims;
    q_dims.push_back(q.view.shape[q.view.rank - 2]);
    q_dims.push_back(q.view.shape[q.view.rank - 1]);
    k_dims.push_back(kt.view.shape[kt.view.rank - 2]);
    k_dims.push_back(kt.view.shape[kt.view.rank - 1]);
    const int r = static_cast<int>(s_dims.size());
    std::vector<int64_t> swap(r);
    for (int i = 0; i < r; ++i) swap[i] = i;
    std::swap(swap[r - 1], swap[r - 2]);
    pa.call.in[0] = {q.tensor, BroadcastTo(q.view, q_dims)};
    pa.call.in[1] = {kt.tensor, Permute(BroadcastTo(kt.view, k_dims), swap)};  // K^T [b, D, N] -> K [b, N, D]
    pa.v_value = g_.nodes[pv].inputs[1];
    pa.out_value = g_.nodes[pv].outputs[0];
    pa.out_dims = o_dims;
    deferred_attention_.emplace(pv, std::move(pa));
    return true;
  }

  Status FinishAttention(PendingAttention& pa) {
    PlanCall pc = pa.call;
    Val v;
    PHX_RETURN_IF_ERROR(Get(pa.v_value, &v));
    v = ApplyScale(v, pc.call.label);
    std::vector<int64_t> v_dims(pa.out_dims.begin(), pa.out_dims.end() - 2);
    v_dims.push_back(v.view.shape[v.view.rank - 2]);
    v_dims.push_back(v.view.shape[v.view.rank - 1]);
    pc.in[2] = {v.tensor, BroadcastTo(v.view, v_dims)};
    Val o = NewOutput(g_.value(pa.out_value).name, pa.out_dims);
    pc.out = {o.tensor, o.view};
    Emit(pc);
    vals_[pa.out_value] = o;
    return Status::OK();
  }

  Status FinishMatMul(PendingMatMul& pm) {
    PlanCall pc = pm.call;
    // The kernel writes [batch..., M, N]; a conv's ONNX value is that, permuted by out_perm.
    std::vector<int64_t> kernel_dims = pm.out_dims;
    if (!pm.out_perm.empty())
      for (size_t i = 0; i < pm.out_perm.size(); ++i) kernel_dims[pm.out_perm[i]] = pm.out_dims[i];
    auto to_kernel_layout = [&](const TensorView& onnx_view) {
      if (pm.out_perm.empty()) return onnx_view;
      TensorView k = onnx_view;
      for (size_t i = 0; i < pm.out_perm.size(); ++i) {
        k.shape[pm.out_perm[i]] = onnx_view.shape[i];
        k.strides[pm.out_perm[i]] = onnx_view.strides[i];
      }
      return k;
    };
    if (pm.residual_value >= 0) {
      Val r;
      PHX_RETURN_IF_ERROR(Get(pm.residual_value, &r));
      r = ApplyScale(r, pc.call.label);
      if (pm.residual_dims.empty()) pm.residual_dims = pm.out_dims;  // Gemm's C
      TensorView rv = BroadcastTo(r.view, pm.residual_dims), as_out;
      if (pm.residual_dims != pm.out_dims) {  // an absorbed Reshape: read the residual in the kernel's shape
        if (!ReshapeView(rv, pm.out_dims, &as_out)) {
          r = Contiguous(r, pc.call.label);
          if (!ReshapeView(r.view, pm.out_dims, &as_out))
            return Status::Error("residual of " + pc.call.label + " cannot be viewed in the kernel's shape");
        }
        rv = as_out;
      }
      pc.in[3] = {r.tensor, to_kernel_layout(rv)};
    }
    Val o = NewOutput(g_.value(pm.out_value).name, kernel_dims);
    pc.out = {o.tensor, o.view};
    Emit(pc);
    if (!pm.out_perm.empty()) o.view = Permute(o.view, pm.out_perm);
    if (pm.final_dims != pm.out_dims && !ReshapeView(o.view, pm.final_dims, &o.view))
      return Status::Error("output of " + pc.call.label + " cannot be viewed in its ONNX shape");
    vals_[pm.out_value] = o;
    return Status::OK();
  }

  // Conv (1-D): Im2Col into [B, L_out, C*k], then a MatMul with the weight [D, C*k] read
  // transposed, the conv bias and any GELU in its epilogue. The MatMul writes [B, L_out, D],
  // and the ONNX value [B, D, L_out] is that tensor through a permuted view.
  Status LowerConv(int ni) {
    const GNode& n = g_.nodes[ni];
    Val x;
    PHX_RETURN_IF_ERROR(Get(n.inputs[0], &x));
    x = ApplyScale(x, n.name);
    const std::vector<int64_t> wd = Dims(n.inputs[1]);  // [D, C, k]
    const std::vector<int64_t> od = Dims(n.outputs[0]);  // [B, D, L_out]
    const int64_t B = od[0], D = wd[0], C = wd[1], k = wd[2], L_out = od[2];
    auto ints = [&](const char* name, int64_t fallback) {
      std::vector<int64_t> v = n.AttrInts(name);
      return v.empty() ? fallback : v[0];
    };
    PlanCall im = NewCall(Im2ColParams{k, ints("strides", 1), ints("dilations", 1), ints("pads", 0)}, n.name);
    Val cols = NewOutput(n.name + "/im2col", {B, L_out, C * k});
    im.in[0] = {x.tensor, x.view};
    im.out = {cols.tensor, cols.view};
    Emit(im);

    Val w;
    PHX_RETURN_IF_ERROR(Get(n.inputs[1], &w));
    PendingMatMul pm;
    pm.call = NewCall(MatMulParams{1.0f, kernels::Epilogue::kNone, true}, n.name);
    pm.call.in[0] = cols.tensor >= 0 ? PlanOperand{cols.tensor, cols.view} : PlanOperand{};
    TensorView wv = TensorView::Contiguous({D, C * k}, w.view.offset);
    wv = Permute(wv, {1, 0});                            // [C*k, D]
    pm.call.in[1] = {w.tensor, BroadcastTo(wv, {B, C * k, D})};
    pm.out_perm = {0, 2, 1};
    std::vector<float> bias;
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) PHX_RETURN_IF_ERROR(ConstantFloats(n.inputs[2], &bias));
    return Absorb(ni, n.outputs[0], od, D, std::move(bias), /*allow_bias_add=*/false, std::move(pm));
  }

  const GraphView& g_;
  Plan& p_;
  CompileOptions options_;
  std::vector<bool> done_;
  std::vector<GeluMatch> gelus_;
  std::unordered_map<int, int> gelu_of_node_;
  std::unordered_map<int, Val> vals_;
  std::unordered_map<int, int> producer_call_;  // tensor -> index of the call writing it
  std::unordered_map<int, PendingMatMul> deferred_;
  std::unordered_set<int> region_outputs_;  // values the fused node outputs
  std::unordered_map<int, PendingAttention> deferred_attention_;
};

}  // namespace

Status CompileRegion(const GraphView& g, const std::string& name, const std::vector<std::string>& input_names,
                     const std::vector<std::string>& output_names, const CompileOptions& options, Plan* plan) {
  *plan = Plan{};
  plan->name = name;
  plan->element = options.element;
  Lowering lowering(g, *plan, options);
  PHX_RETURN_IF_ERROR(lowering.Run(input_names, output_names));
  PlanBuffers(*plan);
  return ValidatePlan(*plan);
}

}  // namespace phoenix
