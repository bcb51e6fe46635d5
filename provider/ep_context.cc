#include "ep_context.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/kernel_kinds.h"
#include "capability.h"
#include "patterns.h"

namespace phoenix {
namespace {

constexpr const char* kReexport =
    "; re-export the compiled model from the original .onnx with this PhoenixNPU build (ep.context_enable=1)";

// Messages may quote names read from a damaged blob: only printable ASCII goes out (the Python
// binding turns an error message into str, and invalid UTF-8 there hides the error).
std::string Printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return s;
}

uint64_t Fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// ---- writing ---------------------------------------------------------------------------------

class Writer {
 public:
  std::string out;
  template <typename T> void Pod(T v) { out.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
  void U8(uint8_t v) { Pod(v); }
  void U32(uint32_t v) { Pod(v); }
  void I32(int32_t v) { Pod(v); }
  void I64(int64_t v) { Pod(v); }
  void F32(float v) { Pod(v); }
  void F64(double v) { Pod(v); }
  void Bytes(const void* p, size_t n) {
    I64(static_cast<int64_t>(n));
    out.append(static_cast<const char*>(p), n);
  }
  void Str(const std::string& s) { Bytes(s.data(), s.size()); }
  template <typename T> void PodVec(const std::vector<T>& v) {
    I64(static_cast<int64_t>(v.size()));
    if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void Ints(const std::vector<int>& v) {
    I64(static_cast<int64_t>(v.size()));
    for (int x : v) I32(x);
  }
  void View(const TensorView& v) {
    I32(v.rank);
    for (int d = 0; d < v.rank; ++d) I64(v.shape[d]), I64(v.strides[d]);
    I64(v.offset);
  }
  void Quant(const kernels::QuantParams& q) {
    F32(q.scale);
    I32(q.zero_point);
    U8(q.is_signed ? 1 : 0);
  }
};

// ---- reading ---------------------------------------------------------------------------------

// Every read checks the bytes left; the first failure is kept (with the offset and what was being
// read) and every later read fails too, so decoding can check once per section.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t left() const { return n_ - pos_; }
  void Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " (payload offset " + std::to_string(pos_) + ")";
  }
  template <typename T> T Pod(const char* what) {
    T v{};
    if (!ok()) return v;
    if (left() < sizeof(T)) {
      Fail(std::string("truncated while reading ") + what);
      return v;
    }
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint8_t U8(const char* w) { return Pod<uint8_t>(w); }
  int32_t I32(const char* w) { return Pod<int32_t>(w); }
  int64_t I64(const char* w) { return Pod<int64_t>(w); }
  float F32(const char* w) { return Pod<float>(w); }
  double F64(const char* w) { return Pod<double>(w); }
  bool Bool(const char* w) {
    const uint8_t v = U8(w);
    if (v > 1) Fail(std::string("bad flag in ") + w);
    return v == 1;
  }
  // A count of items of at least `min_item_bytes` each: never more than the bytes left allow.
  size_t Count(const char* what, size_t min_item_bytes) {
    const int64_t n = I64(what);
    if (!ok()) return 0;
    if (n < 0 || static_cast<uint64_t>(n) > left() / std::max<size_t>(min_item_bytes, 1)) {
      Fail(std::string("bad count ") + std::to_string(n) + " for " + what);
      return 0;
    }
    return static_cast<size_t>(n);
  }
  std::string Str(const char* what) {
    const size_t n = Count(what, 1);
    if (!ok()) return {};
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }
  template <typename T> std::vector<T> PodVec(const char* what) {
    const size_t n = Count(what, sizeof(T));
    std::vector<T> v(n);
    if (!ok() || n == 0) return v;
    std::memcpy(v.data(), p_ + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return v;
  }
  std::vector<int> Ints(const char* what) {
    const size_t n = Count(what, 4);
    std::vector<int> v(n);
    for (size_t i = 0; i < n && ok(); ++i) v[i] = I32(what);
    return v;
  }
  TensorView View(const char* what) {
    TensorView v;
    v.rank = I32(what);
    if (v.rank < 0 || v.rank > kMaxRank) {
      Fail(std::string("bad rank in ") + what);
      v.rank = 0;
      return v;
    }
    for (int d = 0; d < v.rank; ++d) v.shape[d] = I64(what), v.strides[d] = I64(what);
    v.offset = I64(what);
    return v;
  }
  kernels::QuantParams Quant(const char* what) {
    kernels::QuantParams q;
    q.scale = F32(what);
    q.zero_point = I32(what);
    q.is_signed = Bool(what);
    if (ok() && (!std::isfinite(q.scale) || q.scale == 0.0f || q.zero_point < (q.is_signed ? -128 : 0) ||
                 q.zero_point > (q.is_signed ? 127 : 255)))
      Fail(std::string("bad quantization parameters in ") + what);
    return q;
  }
  template <typename E> E Enum(const char* what, int count) {
    const int32_t v = I32(what);
    if (ok() && (v < 0 || v >= count)) Fail(std::string("bad value ") + std::to_string(v) + " for " + what);
    return static_cast<E>(ok() ? v : 0);
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string error_;
};

// ---- the region graph ------------------------------------------------------------------------

void WriteGraph(Writer& w, const RegionGraph& r) {
  const GraphView& g = r.graph;
  w.Str(r.name);
  w.I64(static_cast<int64_t>(g.symbols.size()));
  for (const std::string& s : g.symbols) w.Str(s);
  w.I64(static_cast<int64_t>(g.values.size()));
  for (const GValue& v : g.values) {
    w.Str(v.name);
    w.I32(v.dtype);
    w.U8(v.has_shape);
    w.PodVec(v.shape);
    w.U8(v.is_constant);
    w.U8(v.is_graph_input);
    w.U8(v.is_graph_output);
    w.U8(v.data != nullptr);
    if (v.data) {
      w.I32(v.data->dtype);
      w.PodVec(v.data->values);
      w.PodVec(v.data->ints);
      w.PodVec(v.data->bytes);
    }
    w.U8(v.dequantized.has_value());
    if (v.dequantized) {
      w.I32(v.dequantized->quantized);
      w.I32(v.dequantized->scale);
      w.I32(v.dequantized->zero_point);
      w.I64(v.dequantized->axis);
    }
  }
  w.I64(static_cast<int64_t>(g.nodes.size()));
  for (const GNode& n : g.nodes) {
    w.I64(static_cast<int64_t>(n.ort_id));
    w.Str(n.name);
    w.Str(n.op_type);
    w.Str(n.domain);
    w.I32(n.since_version);
    w.Ints(n.inputs);
    w.Ints(n.outputs);
    w.I64(static_cast<int64_t>(n.attributes.size()));
    for (const auto& [name, a] : n.attributes) {
      w.Str(name);
      w.I32(a.type);
      w.I64(a.i);
      w.F32(a.f);
      w.Str(a.s);
      w.PodVec(a.ints);
      w.PodVec(a.floats);
    }
  }
  w.Ints(g.graph_inputs);
  w.Ints(g.graph_outputs);
  w.I64(static_cast<int64_t>(r.gelus.size()));
  for (const GeluMatch& m : r.gelus) {
    w.Ints(m.nodes);
    w.I32(m.x);
    w.I32(m.y);
    w.I32(m.mode);
  }
  w.Ints(r.inputs);
  w.Ints(r.outputs);
}

Status ReadGraph(Reader& r, RegionGraph* out) {
  GraphView& g = out->graph;
  out->name = r.Str("region name");
  const size_t num_symbols = r.Count("symbols", 8);
  for (size_t i = 0; i < num_symbols && r.ok(); ++i) g.symbols.push_back(r.Str("symbol"));
  const size_t num_values = r.Count("values", 16);
  if (num_values > static_cast<size_t>(INT32_MAX)) r.Fail("too many values");
  for (size_t i = 0; i < num_values && r.ok(); ++i) {
    const std::string name = r.Str("value name");
    const auto dtype = static_cast<ONNXTensorElementDataType>(r.I32("value dtype"));
    const bool has_shape = r.Bool("value has_shape");
    std::vector<int64_t> shape = r.PodVec<int64_t>("value shape");
    if (!r.ok()) break;
    if (g.FindValue(name) >= 0) {
      r.Fail("value '" + name + "' appears twice");
      break;
    }
    if (shape.size() > static_cast<size_t>(kMaxRank)) r.Fail("value '" + name + "' has rank above 8");
    for (int64_t d : shape)
      if (!(d >= 0 || d == kDynamicDim ||
            (IsSymbol(d) && kFirstSymbol - d < static_cast<int64_t>(g.symbols.size()))))
        r.Fail("value '" + name + "' has a bad dim");
    const int id = g.AddValue(name, dtype, std::move(shape), has_shape);
    GValue& v = g.values[id];
    v.is_constant = r.Bool("is_constant");
    v.is_graph_input = r.Bool("is_graph_input");
    v.is_graph_output = r.Bool("is_graph_output");
    if (r.Bool("has data")) {
      auto d = std::make_shared<ConstantData>();
      d->dtype = static_cast<ONNXTensorElementDataType>(r.I32("data dtype"));
      d->values = r.PodVec<double>("data values");
      d->ints = r.PodVec<int64_t>("data ints");
      d->bytes = r.PodVec<uint8_t>("data bytes");
      v.data = std::move(d);
    }
    if (r.Bool("has dequantized")) {
      DequantizedConstant dq;
      dq.quantized = r.I32("dequantized");
      dq.scale = r.I32("dequantized");
      dq.zero_point = r.I32("dequantized");
      dq.axis = r.I64("dequantized");
      v.dequantized = dq;
    }
  }
  const int nv = static_cast<int>(g.values.size());
  auto in_range = [nv](int v) { return v >= 0 && v < nv; };
  const size_t num_nodes = r.Count("nodes", 48);
  for (size_t i = 0; i < num_nodes && r.ok(); ++i) {
    GNode n;
    n.ort_id = static_cast<size_t>(r.I64("node id"));
    n.name = r.Str("node name");
    n.op_type = r.Str("op type");
    n.domain = r.Str("domain");
    n.since_version = r.I32("since_version");
    n.inputs = r.Ints("node inputs");
    n.outputs = r.Ints("node outputs");
    const size_t num_attrs = r.Count("attributes", 40);
    for (size_t k = 0; k < num_attrs && r.ok(); ++k) {
      const std::string name = r.Str("attribute name");
      Attribute a;
      a.type = r.Enum<Attribute::Type>("attribute type", Attribute::kOther + 1);
      a.i = r.I64("attribute");
      a.f = r.F32("attribute");
      a.s = r.Str("attribute");
      a.ints = r.PodVec<int64_t>("attribute ints");
      a.floats = r.PodVec<float>("attribute floats");
      n.attributes[name] = std::move(a);
    }
    for (int v : n.inputs)
      if (v != -1 && !in_range(v)) r.Fail("node " + n.Label() + " reads a value out of range");
    for (int v : n.outputs)
      if (v != -1 && !in_range(v)) r.Fail("node " + n.Label() + " writes a value out of range");
    g.AddNode(std::move(n));
  }
  g.graph_inputs = r.Ints("graph inputs");
  g.graph_outputs = r.Ints("graph outputs");
  const size_t num_gelus = r.Count("gelu matches", 20);
  for (size_t i = 0; i < num_gelus && r.ok(); ++i) {
    GeluMatch m;
    m.nodes = r.Ints("gelu nodes");
    m.x = r.I32("gelu x");
    m.y = r.I32("gelu y");
    m.mode = r.I32("gelu mode");
    out->gelus.push_back(std::move(m));
  }
  out->inputs = r.Ints("region inputs");
  out->outputs = r.Ints("region outputs");
  if (!r.ok()) return Status::InvalidArgument(r.error());

  // Cross references: every index in range, producers before consumers, constants where the
  // lowering reads them.
  auto bad = [](const std::string& what) { return Status::InvalidArgument("region graph: " + what); };
  for (int v : g.graph_inputs)
    if (!in_range(v)) return bad("graph input out of range");
  for (int v : g.graph_outputs)
    if (!in_range(v)) return bad("graph output out of range");
  for (int v : out->inputs)
    if (!in_range(v)) return bad("region input out of range");
  for (int v : out->outputs)
    if (!in_range(v)) return bad("region output out of range");
  if (out->outputs.empty()) return bad("no outputs");
  for (const GValue& v : g.values) {
    if (!v.dequantized) continue;
    const DequantizedConstant& d = *v.dequantized;
    if (!in_range(d.quantized) || !g.value(d.quantized).data || !in_range(d.scale) || !g.value(d.scale).data ||
        (d.zero_point != -1 && (!in_range(d.zero_point) || !g.value(d.zero_point).data)))
      return bad("INT8 constant " + v.name + " refers to missing data");
  }
  const int nn = static_cast<int>(g.nodes.size());
  std::vector<int> producer(nv, -1);
  for (int i = 0; i < nn; ++i)
    for (int o : g.nodes[i].outputs) {
      if (o < 0) continue;
      if (producer[o] >= 0 || g.value(o).is_constant) return bad("value " + g.value(o).name + " is written twice");
      producer[o] = i;
    }
  for (int i = 0; i < nn; ++i)
    for (int in : g.nodes[i].inputs)
      if (in >= 0 && producer[in] >= i) return bad("node " + g.nodes[i].Label() + " is not in topological order");
  for (GValue& v : g.values) v.producer = -1, v.consumers.clear();
  for (int i = 0; i < nn; ++i) {
    for (int o : g.nodes[i].outputs)
      if (o >= 0) g.values[o].producer = i;
    for (int in : g.nodes[i].inputs) {
      if (in < 0) continue;
      auto& c = g.values[in].consumers;
      if (std::find(c.begin(), c.end(), i) == c.end()) c.push_back(i);
    }
  }
  for (const GeluMatch& m : out->gelus) {
    if (m.nodes.empty() || !in_range(m.x) || !in_range(m.y) || (m.mode != 0 && m.mode != 1)) return bad("bad GELU match");
    for (size_t k = 0; k < m.nodes.size(); ++k)
      if (m.nodes[k] < 0 || m.nodes[k] >= nn || (k && m.nodes[k] <= m.nodes[k - 1])) return bad("bad GELU match");
  }
  return Status::OK();
}

// ---- the plan --------------------------------------------------------------------------------

void WriteParams(Writer& w, const KernelCall& c) {
  w.I32(static_cast<int32_t>(c.kind()));
  auto matmul = [&](const MatMulParams& p) {
    w.F32(p.alpha);
    w.I32(static_cast<int32_t>(p.epilogue));
    w.U8(p.b_is_constant);
  };
  auto int8 = [&](const MatMulInt8Params& p) {
    matmul(p.matmul);
    w.Quant(p.a);
    w.Quant(p.b);
    w.U8(p.quantize_output);
    w.Quant(p.out);
  };
  switch (c.kind()) {
    case KernelKind::kLayerNorm: w.F32(c.Params<LayerNormParams>().epsilon); break;
    case KernelKind::kMatMul: matmul(c.Params<MatMulParams>()); break;
    case KernelKind::kSoftmax: w.F32(c.Params<SoftmaxParams>().scale); break;
    case KernelKind::kGelu: w.I32(static_cast<int32_t>(c.Params<GeluParams>().mode)); break;
    case KernelKind::kBinary: w.I32(static_cast<int32_t>(c.Params<BinaryParams>().op)); break;
    case KernelKind::kBinaryScalar: {
      const auto& p = c.Params<BinaryScalarParams>();
      w.I32(static_cast<int32_t>(p.op));
      w.F32(p.scalar);
      w.U8(p.scalar_first);
      break;
    }
    case KernelKind::kCopy: break;
    case KernelKind::kIm2Col: {
      const auto& p = c.Params<Im2ColParams>();
      w.I64(p.kernel), w.I64(p.stride), w.I64(p.dilation), w.I64(p.pad_begin);
      break;
    }
    case KernelKind::kAttention: w.F32(c.Params<AttentionParams>().scale); break;
    case KernelKind::kMatMulInt8: int8(c.Params<MatMulInt8Params>()); break;
    case KernelKind::kMatMulInt8Activations: int8(c.Params<MatMulInt8ActivationsParams>()); break;
    case KernelKind::kFakeQuant: w.Quant(c.Params<FakeQuantParams>().q); break;
    case KernelKind::kCount: break;
  }
}

KernelParams ReadParams(Reader& r) {
  const auto kind = r.Enum<KernelKind>("kernel kind", static_cast<int>(KernelKind::kCount));
  auto matmul = [&]() {
    MatMulParams p;
    p.alpha = r.F32("alpha");
    p.epilogue = r.Enum<kernels::Epilogue>("epilogue", 3);
    p.b_is_constant = r.Bool("b_is_constant");
    return p;
  };
  auto int8 = [&](MatMulInt8Params& p) {
    p.matmul = matmul();
    p.a = r.Quant("A quantization");
    p.b = r.Quant("B quantization");
    p.quantize_output = r.Bool("quantize_output");
    p.out = r.Quant("output quantization");
  };
  switch (kind) {
    case KernelKind::kLayerNorm: return LayerNormParams{r.F32("epsilon")};
    case KernelKind::kMatMul: return matmul();
    case KernelKind::kSoftmax: return SoftmaxParams{r.F32("softmax scale")};
    case KernelKind::kGelu: return GeluParams{r.Enum<kernels::GeluMode>("gelu mode", 2)};
    case KernelKind::kBinary: return BinaryParams{r.Enum<kernels::BinaryOp>("binary op", 4)};
    case KernelKind::kBinaryScalar: {
      BinaryScalarParams p;
      p.op = r.Enum<kernels::BinaryOp>("binary op", 4);
      p.scalar = r.F32("scalar");
      p.scalar_first = r.Bool("scalar_first");
      return p;
    }
    case KernelKind::kCopy: return CopyParams{};
    case KernelKind::kIm2Col: {
      Im2ColParams p;
      p.kernel = r.I64("im2col"), p.stride = r.I64("im2col"), p.dilation = r.I64("im2col"), p.pad_begin = r.I64("im2col");
      return p;
    }
    case KernelKind::kAttention: return AttentionParams{r.F32("attention scale")};
    case KernelKind::kMatMulInt8: {
      MatMulInt8Params p;
      int8(p);
      return p;
    }
    case KernelKind::kMatMulInt8Activations: {
      MatMulInt8ActivationsParams p;
      int8(p);
      return p;
    }
    case KernelKind::kFakeQuant: return FakeQuantParams{r.Quant("fake quantization")};
    case KernelKind::kCount: break;
  }
  return CopyParams{};
}

void WriteOperand(Writer& w, const PlanOperand& o) {
  w.I32(o.tensor);
  if (o.present()) w.View(o.view);
}

PlanOperand ReadOperand(Reader& r, int num_tensors) {
  PlanOperand o;
  o.tensor = r.I32("operand tensor");
  if (o.tensor < -1 || o.tensor >= num_tensors) {
    r.Fail("operand tensor out of range");
    o.tensor = -1;
  }
  if (o.present()) o.view = r.View("operand view");
  return o;
}

void WritePlan(Writer& w, const Plan& p, const std::map<BufferId, int>& weight_index) {
  w.Str(p.name);
  w.U8(static_cast<uint8_t>(p.precision));
  w.I64(p.arena_bytes);
  w.I32(p.num_onnx_nodes);
  w.I64(static_cast<int64_t>(p.tensors.size()));
  for (const PlanTensor& t : p.tensors) {
    w.Str(t.name);
    w.U8(static_cast<uint8_t>(t.type));
    w.I64(t.num_elements);
    w.U8(t.is_weight);
    w.I32(t.is_weight ? weight_index.at(t.weight.buffer) : -1);
    w.I64(t.arena_offset);
  }
  w.I64(static_cast<int64_t>(p.calls.size()));
  for (const PlanCall& c : p.calls) {
    WriteParams(w, c.call);
    w.U8(static_cast<uint8_t>(c.call.precision));
    w.Str(c.call.label);
    for (const PlanOperand& o : c.in) WriteOperand(w, o);
    WriteOperand(w, c.out);
  }
  for (const auto* ios : {&p.inputs, &p.outputs}) {
    w.I64(static_cast<int64_t>(ios->size()));
    for (const PlanIO& io : *ios) {
      w.Str(io.name);
      w.I32(io.tensor);
      w.View(io.view);
      w.PodVec(io.shape);
    }
  }
}

Status ReadPlan(Reader& r, const std::vector<DecodedContext::Weight>& weights, Plan* p) {
  p->name = r.Str("plan name");
  p->precision = static_cast<Precision>(r.U8("plan precision"));
  if (r.ok() && p->precision != Precision::kBF16 && p->precision != Precision::kBF16x3) r.Fail("bad plan precision");
  p->arena_bytes = r.I64("arena bytes");
  if (r.ok() && (p->arena_bytes < 0 || p->arena_bytes > (int64_t{1} << 40))) r.Fail("bad arena size");
  p->num_onnx_nodes = r.I32("plan nodes");
  const size_t num_tensors = r.Count("plan tensors", 30);
  for (size_t i = 0; i < num_tensors && r.ok(); ++i) {
    PlanTensor t;
    t.name = r.Str("tensor name");
    const uint8_t type = r.U8("tensor type");
    if (type < static_cast<uint8_t>(SlotType::kActivation) || type > static_cast<uint8_t>(SlotType::kInt8))
      r.Fail("bad tensor type");
    t.type = static_cast<SlotType>(type);
    t.num_elements = r.I64("tensor elements");
    if (r.ok() && (t.num_elements < 0 || t.num_elements > (int64_t{1} << 40))) r.Fail("bad tensor size");
    t.is_weight = r.Bool("tensor is_weight");
    const int32_t w = r.I32("tensor weight");
    t.arena_offset = r.I64("arena offset");
    if (!r.ok()) break;
    if (t.is_weight) {
      if (w < 0 || w >= static_cast<int32_t>(weights.size())) return Status::InvalidArgument("plan tensor " + t.name + " names no stored weight");
      const auto& sw = weights[w];
      if (sw.type != t.type || sw.num_elements < t.num_elements)
        return Status::InvalidArgument("plan tensor " + t.name + " does not match its stored weight buffer");
      t.weight = WeightRef{w, sw.num_elements};
    } else if (t.arena_offset >= 0 && t.arena_offset % static_cast<int64_t>(t.ElementSize(p->precision)) != 0) {
      return Status::InvalidArgument("plan tensor " + t.name + " is misaligned in the arena");
    }
    p->tensors.push_back(std::move(t));
  }
  const int nt = static_cast<int>(p->tensors.size());
  const size_t num_calls = r.Count("plan calls", 20);
  for (size_t i = 0; i < num_calls && r.ok(); ++i) {
    PlanCall c;
    c.call.params = ReadParams(r);
    c.call.precision = static_cast<Precision>(r.U8("call precision"));
    if (r.ok() && c.call.precision != p->precision) r.Fail("a call's precision differs from the plan's");
    c.call.label = r.Str("call label");
    for (PlanOperand& o : c.in) o = ReadOperand(r, nt);
    c.out = ReadOperand(r, nt);
    p->calls.push_back(std::move(c));
  }
  for (auto* ios : {&p->inputs, &p->outputs}) {
    const size_t n = r.Count("plan inputs / outputs", 20);
    for (size_t i = 0; i < n && r.ok(); ++i) {
      PlanIO io;
      io.name = r.Str("io name");
      io.tensor = r.I32("io tensor");
      io.view = r.View("io view");
      io.shape = r.PodVec<int64_t>("io shape");
      ios->push_back(std::move(io));
    }
  }
  if (!r.ok()) return Status::InvalidArgument(r.error());
  return Status::OK();
}

// A region planned again after loading (symbolic dims, or a stored plan not made here) is lowered
// from its stored graph, so it must pass the provider's own checks as when it was claimed: every
// node supported, the same GELU matches. "" when it does.
std::string StoredGraphProblem(const RegionGraph& region) {
  const GraphView& g = region.graph;
  const std::vector<GeluMatch> gelus = FindGeluPatterns(g);
  const CapabilityResult check = FindRegions(g, gelus);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!check.reasons[i].empty())
      return "node " + g.nodes[i].Label() + " of the stored region fails the provider's checks: " + check.reasons[i];
  bool same = gelus.size() == region.gelus.size();
  for (size_t i = 0; same && i < gelus.size(); ++i) {
    const GeluMatch &a = gelus[i], &b = region.gelus[i];
    same = a.nodes == b.nodes && a.x == b.x && a.y == b.y && a.mode == b.mode;
  }
  return same ? "" : "the stored GELU matches differ from the region graph's";
}

}  // namespace

// ---- the codec -------------------------------------------------------------------------------

Status EpContextCodec::Serialize(const CompiledRegion& region, const std::string& ep_name, const PlanOrigin& origin,
                                 std::string* blob) {
  Writer w;
  w.Str(ep_name);
  w.U8(static_cast<uint8_t>(region.compile_options_.precision));
  w.U8(region.compile_options_.fuse_attention);
  w.Str(origin.device);          // format 2
  w.Str(origin.npu_artifacts);
  WriteGraph(w, region.region_);

  // Every weight buffer, in upload order, with what finds it again.
  const WeightStore& ws = region.weights_;
  std::map<BufferId, int> index;
  {
    std::lock_guard<std::mutex> lk(ws.mu_);
    struct Info {
      Role role;
      std::string name;
      SlotType type;
      int64_t num_elements;
    };
    std::map<BufferId, Info> info;
    for (const auto& [name, ref] : ws.by_name_) info[ref.buffer] = {kActivationWeight, name, SlotType::kActivation, ref.num_elements};
    for (const auto& [data, ref] : ws.f32_) info[ref.buffer] = {kF32Vector, "", SlotType::kF32, ref.num_elements};
    for (const auto& [name, ref] : ws.int8_) {
      info[ref.data.buffer] = {kInt8Data, name, SlotType::kInt8, ref.data.num_elements};
      info[ref.scales.buffer] = {kInt8Scales, name, SlotType::kF32, ref.scales.num_elements};
      if (ref.zero_points.buffer != kNoBuffer)
        info[ref.zero_points.buffer] = {kInt8ZeroPoints, name, SlotType::kInt8, ref.zero_points.num_elements};
    }
    w.I64(static_cast<int64_t>(ws.buffers_.size()));
    for (BufferId b : ws.buffers_) {
      auto it = info.find(b);
      if (it == info.end()) return Status::Error("internal: weight buffer " + std::to_string(b) + " has no entry");
      const Info& in = it->second;
      const size_t bytes = static_cast<size_t>(in.num_elements) *
                           (in.type == SlotType::kActivation ? ActivationElementSize(ws.precision_)
                                                              : in.type == SlotType::kF32 ? 4 : 1);
      index[b] = static_cast<int>(index.size());
      w.U8(in.role);
      w.Str(in.name);
      w.U8(static_cast<uint8_t>(in.type));
      w.I64(in.num_elements);
      w.Bytes(ws.device_->Map(b), bytes);
    }
  }
  std::shared_ptr<PlanRunner> runner;
  {
    std::lock_guard<std::mutex> lk(region.cache_mutex_);
    if (region.all_static_ && !region.cache_.empty()) runner = region.cache_.front().runner;
  }
  w.U8(runner != nullptr);
  if (runner) WritePlan(w, runner->plan(), index);

  Writer h;
  h.out.append(kEpContextMagic, sizeof(kEpContextMagic));
  h.U32(kEpContextFormatVersion);
  h.U32(static_cast<uint32_t>(kEpContextHeaderBytes));
  h.I64(static_cast<int64_t>(w.out.size()));
  h.Pod<uint64_t>(Fnv1a64(reinterpret_cast<const uint8_t*>(w.out.data()), w.out.size()));
  h.Pod<uint64_t>(0);
  *blob = std::move(h.out);
  blob->append(w.out);
  return Status::OK();
}

Status EpContextCodec::Decode(const std::string& blob, const std::string& ep_name, DecodedContext* out) {
  auto bad = [](const std::string& what) {
    return Status::InvalidArgument("bad PhoenixNPU context blob: " + Printable(what) + kReexport);
  };
  const auto* p = reinterpret_cast<const uint8_t*>(blob.data());
  if (blob.size() < kEpContextHeaderBytes)
    return bad("it has " + std::to_string(blob.size()) + " bytes, less than its " + std::to_string(kEpContextHeaderBytes) +
               "-byte header (truncated, or not a PhoenixNPU blob)");
  if (std::memcmp(p, kEpContextMagic, sizeof(kEpContextMagic)) != 0)
    return bad("no PHXNPUCX magic (not written by PhoenixNPU, or damaged)");
  uint32_t version, header;
  uint64_t payload, checksum;
  std::memcpy(&version, p + 8, 4);
  std::memcpy(&header, p + 12, 4);
  std::memcpy(&payload, p + 16, 8);
  std::memcpy(&checksum, p + 24, 8);
  if (version < kEpContextOldestFormat || version > kEpContextFormatVersion)
    return bad("format version " + std::to_string(version) + ", this build reads versions " +
               std::to_string(kEpContextOldestFormat) + " to " + std::to_string(kEpContextFormatVersion));
  out->format = version;
  if (header != kEpContextHeaderBytes) return bad("header size " + std::to_string(header));
  if (payload != blob.size() - kEpContextHeaderBytes)
    return bad("the header announces " + std::to_string(payload) + " payload bytes, the blob has " +
               std::to_string(blob.size() - kEpContextHeaderBytes) + " (truncated or padded)");
  const uint8_t* body = p + kEpContextHeaderBytes;
  if (Fnv1a64(body, payload) != checksum) return bad("checksum mismatch (the blob was modified or damaged)");

  Reader r(body, payload);
  const std::string writer = r.Str("EP name");
  if (r.ok() && writer != ep_name) return bad("written by '" + writer + "', not " + ep_name);
  out->precision = static_cast<Precision>(r.U8("precision"));
  if (r.ok() && out->precision != Precision::kBF16 && out->precision != Precision::kBF16x3) r.Fail("bad precision");
  out->fuse_attention = r.Bool("fuse_attention");
  if (version >= 2) {
    out->device = r.Str("device");
    out->npu_artifacts = r.Str("NPU artifacts");
    if (r.ok() && out->device != "npu" && out->device != "emulator") r.Fail("bad device '" + Printable(out->device) + "'");
  }
  if (!r.ok()) return bad(r.error());
  Status s = ReadGraph(r, &out->region);
  if (!s.ok()) return bad(s.message());
  const size_t num_weights = r.Count("weights", 19);
  for (size_t i = 0; i < num_weights && r.ok(); ++i) {
    DecodedContext::Weight wt;
    wt.role = r.U8("weight role");
    wt.name = r.Str("weight name");
    const uint8_t type = r.U8("weight type");
    wt.num_elements = r.I64("weight elements");
    wt.bytes = r.PodVec<uint8_t>("weight bytes");
    if (!r.ok()) break;
    if (wt.role > kInt8ZeroPoints || type < 1 || type > 3) return bad("weight " + std::to_string(i) + ": bad role or type");
    wt.type = static_cast<SlotType>(type);
    const SlotType want = wt.role == kActivationWeight ? SlotType::kActivation
                          : (wt.role == kF32Vector || wt.role == kInt8Scales) ? SlotType::kF32
                                                                              : SlotType::kInt8;
    const size_t esize = wt.type == SlotType::kActivation ? ActivationElementSize(out->precision) : wt.type == SlotType::kF32 ? 4 : 1;
    if (wt.type != want || wt.num_elements < 0 || wt.bytes.size() / esize != static_cast<uint64_t>(wt.num_elements) ||
        wt.bytes.size() % esize != 0)
      return bad("weight " + std::to_string(i) + " (" + wt.name + "): its size does not match its element count");
    out->weights.push_back(std::move(wt));
  }
  out->has_plan = r.Bool("has plan");
  if (!r.ok()) return bad(r.error());
  if (out->has_plan) {
    s = ReadPlan(r, out->weights, &out->plan);
    if (!s.ok()) return bad(s.message());
    if (out->plan.precision != out->precision) return bad("the plan's precision differs from the region's");
  }
  if (r.left() != 0) return bad(std::to_string(r.left()) + " bytes after the plan");
  if (!out->has_plan) {
    const std::string why = StoredGraphProblem(out->region);
    if (!why.empty()) return bad(why);
  }
  // The INT8 entries come in complete groups (data, scales, optional zero points) by name.
  std::map<std::string, int> int8_parts;
  for (const auto& wt : out->weights)
    if (wt.role >= kInt8Data) int8_parts[wt.name] |= 1 << (wt.role - kInt8Data);
  for (const auto& [name, parts] : int8_parts)
    if ((parts & 3) != 3) return bad("INT8 weight " + name + " lacks its data or scales");
  return Status::OK();
}

std::string EpContextCodec::StalePlanReason(const DecodedContext& ctx, const PlanOrigin& here) {
  if (!ctx.has_plan) return "";
  const std::string& npu_artifacts = here.npu_artifacts;
  if (here.device == "npu") {
    if (ctx.format < 2) return "the blob is format " + std::to_string(ctx.format) + ", which records no NPU artifacts";
    if (ctx.device != "npu") return "its plan was made on the " + ctx.device + " device";
    if (ctx.npu_artifacts != npu_artifacts)
      return "its plan was made against NPU artifacts " + ctx.npu_artifacts + ", the installed ones are " + npu_artifacts;
    return "";
  }
  if (ctx.device == "npu") return "its plan was made on the npu device (NPU artifacts " + ctx.npu_artifacts + ")";
  return "";
}

Status EpContextCodec::DropPlan(const std::string& reason, DecodedContext* ctx) {
  const std::string why = StoredGraphProblem(ctx->region);
  if (!why.empty())
    return Status::InvalidArgument("PhoenixNPU context blob: " + Printable(reason) +
                                   ", and its region cannot be planned again here (" + Printable(why) + ")" + kReexport);
  ctx->has_plan = false;
  ctx->plan = Plan{};
  return Status::OK();
}

Status EpContextCodec::Restore(DecodedContext ctx, const std::string& name, const ProviderOptions& session_options,
                               std::shared_ptr<Device> device, const OrtLogger* logger,
                               std::unique_ptr<CompiledRegion>* out) {
  ProviderOptions options = session_options;  // what the region was compiled with wins
  options.precision = ctx.precision;
  options.fuse_attention = ctx.fuse_attention;
  ctx.region.name = name;
  auto refs = std::make_shared<std::vector<WeightRef>>();
  auto weights = std::make_shared<std::vector<DecodedContext::Weight>>(std::move(ctx.weights));
  RegionRestore restore;
  restore.weights = [refs, weights](WeightStore& ws) -> Status {
    std::map<std::string, Int8WeightRef> int8;
    for (DecodedContext::Weight& wt : *weights) {
      WeightRef ref;
      {
        std::lock_guard<std::mutex> lk(ws.mu_);
        PHX_RETURN_IF_ERROR(ws.Upload(wt.bytes.data(), wt.bytes.size(), wt.num_elements, &ref));
        switch (wt.role) {
          case kActivationWeight: ws.by_name_[wt.name] = ref; break;
          case kF32Vector: {
            std::vector<float> key(static_cast<size_t>(wt.num_elements));
            if (!key.empty()) std::memcpy(key.data(), wt.bytes.data(), key.size() * 4);
            ws.f32_[std::move(key)] = ref;
            break;
          }
          case kInt8Data: int8[wt.name].data = ref; break;
          case kInt8Scales: int8[wt.name].scales = ref; break;
          default: int8[wt.name].zero_points = ref; break;
        }
      }
      refs->push_back(ref);
      std::vector<uint8_t>().swap(wt.bytes);  // the device has them now
    }
    std::lock_guard<std::mutex> lk(ws.mu_);
    for (auto& [n, ref] : int8) ws.int8_[n] = ref;
    return Status::OK();
  };
  if (ctx.has_plan) {
    auto plan = std::make_shared<Plan>(std::move(ctx.plan));
    restore.plan = [refs, plan, name](Plan* p) -> Status {
      for (PlanTensor& t : plan->tensors)
        if (t.is_weight) t.weight = (*refs)[static_cast<size_t>(t.weight.buffer)];
      plan->name = name;
      *p = std::move(*plan);
      return Status::OK();
    };
  }
  Status s = CompiledRegion::Create(std::move(ctx.region), options, std::move(device), logger, out, &restore);
  if (!s.ok()) {
    const std::string msg = s.message().find("re-export") == std::string::npos
                                ? "bad PhoenixNPU context blob: " + Printable(s.message()) + kReexport
                                : Printable(s.message());
    return s.code() == StatusCode::kInvalidArgument ? Status::InvalidArgument(msg) : Status::Error(msg);
  }
  return s;
}

// ---- ORT glue --------------------------------------------------------------------------------

Status EpContextSettings::FromSessionOptions(const OrtSessionOptions* so, EpContextSettings* out) {
  *out = EpContextSettings{};
  auto get = [so](const char* key, std::string* value) -> bool {
    int has = 0;
    if (OrtStatus* st = g_ort->HasSessionConfigEntry(so, key, &has)) {
      g_ort->ReleaseStatus(st);
      return false;
    }
    if (!has) return false;
    size_t size = 0;
    if (OrtStatus* st = g_ort->GetSessionConfigEntry(so, key, nullptr, &size)) g_ort->ReleaseStatus(st);
    std::string buf(size, '\0');
    if (OrtStatus* st = g_ort->GetSessionConfigEntry(so, key, buf.data(), &size)) {
      g_ort->ReleaseStatus(st);
      return false;
    }
    buf.resize(size ? size - 1 : 0);
    *value = buf;
    return true;
  };
  std::string v;
  if (get("ep.context_enable", &v)) out->enable = v == "1";
  if (get("ep.context_embed_mode", &v)) {
    if (v != "0" && v != "1")
      return Status::InvalidArgument("ep.context_embed_mode must be 0 (blob in a file beside the model) or 1 (in the model), not '" + v + "'");
    out->embed_mode = v == "1";
  }
  if (get("ep.context_file_path", &v)) out->file_path = v;
  return Status::OK();
}

bool IsEpContextNode(Ort::ConstNode node, std::string* source) {
  if (node.GetOperatorType() != "EPContext" || node.GetDomain() != "com.microsoft") return false;
  source->clear();
  Ort::ConstOpAttr attr;
  Ort::Status st = node.GetAttributeByName("source", attr);
  if (st.IsOK() && static_cast<const OrtOpAttr*>(attr) != nullptr) {
    std::string s;
    if (attr.GetValue(s).IsOK()) *source = s;
  }
  return true;
}

namespace {

std::string ModelPath(const OrtGraph* graph) {
  const ORTCHAR_T* path = nullptr;
  if (OrtStatus* st = g_ort->Graph_GetModelPath(graph, &path)) {
    g_ort->ReleaseStatus(st);
    return {};
  }
  return path ? std::string(path) : std::string();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Status CreateEpContextNode(const EpContextSettings& settings, const OrtGraph* graph, Ort::ConstNode fused_node,
                           const std::vector<std::string>& inputs, const std::string& ep_name,
                           const std::string& blob, OrtNode** node) {
  const std::string name = fused_node.GetName();
  std::string cache = blob;
  if (settings.embed_mode == 0) {
    // The blob goes beside the compiled model; the node names it relative to the model's folder.
    std::string ctx_model = settings.file_path;
    if (ctx_model.empty()) {
      const std::string model = ModelPath(graph);
      if (model.empty())
        return Status::InvalidArgument(
            "ep.context_embed_mode=0 needs a folder for the context file: set ep.context_file_path (the model was "
            "loaded from bytes), or use ep.context_embed_mode=1");
      ctx_model = model.size() > 5 && model.compare(model.size() - 5, 5, ".onnx") == 0
                      ? model.substr(0, model.size() - 5) + "_ctx.onnx"
                      : model + "_ctx.onnx";
    }
    std::string stem = BaseName(ctx_model);
    if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".onnx") == 0) stem.resize(stem.size() - 5);
    std::string safe = name;
    for (char& c : safe)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
    const std::string file = stem + "_phoenix_" + safe + ".bin";
    const std::string path = DirName(ctx_model) + file;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(blob.data(), static_cast<std::streamsize>(blob.size()));
    f.close();
    if (!f) return Status::Error("could not write the context file " + path);
    cache = file;
  }
  const int64_t main_context = 1, embed = settings.embed_mode;
  const std::string sdk = "PhoenixNPU context format " + std::to_string(kEpContextFormatVersion);
  std::vector<Ort::OpAttr> attrs;
  attrs.emplace_back("main_context", &main_context, 1, ORT_OP_ATTR_INT);
  attrs.emplace_back("ep_cache_context", cache.data(), static_cast<int>(cache.size()), ORT_OP_ATTR_STRING);
  attrs.emplace_back("embed_mode", &embed, 1, ORT_OP_ATTR_INT);
  attrs.emplace_back("ep_sdk_version", sdk.data(), static_cast<int>(sdk.size()), ORT_OP_ATTR_STRING);
  attrs.emplace_back("partition_name", name.data(), static_cast<int>(name.size()), ORT_OP_ATTR_STRING);
  attrs.emplace_back("source", ep_name.data(), static_cast<int>(ep_name.size()), ORT_OP_ATTR_STRING);
  std::vector<const char*> in_names, out_names;
  for (const std::string& s : inputs) in_names.push_back(s.c_str());
  std::vector<std::string> outputs;
  for (auto& vi : fused_node.GetOutputs()) outputs.push_back(vi.GetName());
  for (const std::string& s : outputs) out_names.push_back(s.c_str());
  const OrtModelEditorApi& editor = *g_ort->GetModelEditorApi();
  if (OrtStatus* st = editor.CreateNode("EPContext", "com.microsoft", name.c_str(), in_names.data(), in_names.size(),
                                        out_names.data(), out_names.size(),
                                        reinterpret_cast<OrtOpAttr**>(attrs.data()), attrs.size(), node)) {
    std::string msg = g_ort->GetErrorMessage(st);
    g_ort->ReleaseStatus(st);
    return Status::Error("could not create the EPContext node for " + name + ": " + msg);
  }
  return Status::OK();
}

Status ReadEpContextBlob(const OrtGraph* graph, Ort::ConstNode node, std::string* blob) {
  const std::string label = "EPContext node '" + node.GetName() + "'";
  auto attr_int = [&](const char* key, int64_t fallback) {
    Ort::ConstOpAttr a;
    int64_t v = fallback;
    if (node.GetAttributeByName(key, a).IsOK() && static_cast<const OrtOpAttr*>(a) != nullptr) (void)a.GetValue(v);
    return v;
  };
  const int64_t embed = attr_int("embed_mode", 1);
  Ort::ConstOpAttr cache_attr;
  std::string cache;
  if (!node.GetAttributeByName("ep_cache_context", cache_attr).IsOK() ||
      static_cast<const OrtOpAttr*>(cache_attr) == nullptr || !cache_attr.GetValue(cache).IsOK())
    return Status::InvalidArgument(label + " has no ep_cache_context attribute" + kReexport);
  if (embed == 1) {
    *blob = std::move(cache);
    return Status::OK();
  }
  if (embed != 0) return Status::InvalidArgument(label + ": embed_mode " + std::to_string(embed) + " is neither 0 nor 1" + kReexport);
  // A file beside the model: a relative path inside the model's folder.
  if (cache.empty() || cache[0] == '/' || cache.find('\0') != std::string::npos)
    return Status::InvalidArgument(label + ": the context file name '" + cache + "' is not a relative path" + kReexport);
  for (size_t start = 0; start <= cache.size();) {
    size_t end = cache.find('/', start);
    if (end == std::string::npos) end = cache.size();
    if (cache.compare(start, end - start, "..") == 0)
      return Status::InvalidArgument(label + ": the context file name '" + cache + "' leaves the model's folder");
    start = end + 1;
  }
  const std::string model = ModelPath(graph);
  if (model.empty())
    return Status::InvalidArgument(label + " names the context file '" + cache +
                                   "' beside the model, but the model was loaded from bytes: load it from its file, "
                                   "or re-export with ep.context_embed_mode=1");
  const std::string path = DirName(model) + cache;
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::InvalidArgument(label + ": cannot open its context file " + path + " (it must stay beside the compiled model)");
  std::ostringstream ss;
  ss << f.rdbuf();
  *blob = ss.str();
  return Status::OK();
}

}  // namespace phoenix
