// Shape arithmetic: the Shape -> Gather -> Unsqueeze -> Concat chains exporters write so a
// Reshape follows a symbolic batch or sequence dim (Optimum's default Whisper export has one
// per attention reshape). Their values depend only on tensor shapes, so the provider evaluates
// them itself: symbolically at capability (so the Reshape they feed can be judged), concretely
// when a plan is built. They emit no kernel call; their results never leave the region.
#include <algorithm>
#include <climits>

#include "lowering.h"
#include "ops/op.h"

namespace phoenix {
namespace {

constexpr size_t kMaxValues = 64;  // shape values are short; anything longer is not shape arithmetic

// The integer types a shape value may travel in. Add / Sub / Mul / Div only in int32 and int64:
// the CPU EP has no integer arithmetic kernels of other widths, and claiming one would run a model
// the CPU EP rejects.
struct IntType {
  int bits = 0;
  bool is_signed = true;
};
std::optional<IntType> IntTypeOf(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return IntType{8, true};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return IntType{8, false};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return IntType{16, true};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return IntType{16, false};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return IntType{32, true};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return IntType{32, false};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return IntType{64, true};
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return IntType{64, false};
    default: return std::nullopt;
  }
}
bool IsInt(ONNXTensorElementDataType t) { return IntTypeOf(t).has_value(); }
bool IsArith(const std::string& op) { return op == "Add" || op == "Sub" || op == "Mul" || op == "Div"; }

bool Handles(const GraphView& g, const GNode& n) {
  if (n.op_type == "Shape") return true;
  static const char* const kOps[] = {"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Add", "Sub", "Mul", "Div"};
  if (std::find_if(std::begin(kOps), std::end(kOps), [&](const char* op) { return n.op_type == op; }) == std::end(kOps))
    return false;
  return !n.outputs.empty() && n.outputs[0] >= 0 && IsInt(g.value(n.outputs[0]).dtype);
}

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (n.inputs.empty() || n.inputs[0] < 0) return "missing input";
  if (n.op_type == "Shape") return g.value(n.inputs[0]).has_shape ? "" : "Shape of a tensor of unknown rank";
  for (int v : n.inputs)
    if (v >= 0 && !IsInt(g.value(v).dtype)) return "shape arithmetic on a non-integer tensor";
  const auto t = g.value(n.outputs[0]).dtype;
  if (IsArith(n.op_type) && t != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 && t != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64)
    return "integer " + n.op_type + " on a type other than int32 / int64 (the CPU EP has no such kernel)";
  return "";
}

// The integer axis list of a node: from input `index` (opset 13+) or attribute `name`.
bool Axes(const GNode& n, const NodeShapes& io, size_t index, const char* name, std::vector<int64_t>* axes) {
  if (n.inputs.size() > index && n.inputs[index] >= 0) {
    if (!io.in_values[index]) return false;
    *axes = *io.in_values[index];
    return true;
  }
  *axes = n.AttrInts(name);
  return true;
}

bool Literal(int64_t v) { return v > kFirstSymbol; }

// An exact integer held in type t as ONNX Runtime's CPU kernels hold it: two's complement
// wrap-around (static_cast on Cast, the wrapped sum or product in int32 / int64 arithmetic).
// Status error when the result is beyond what a shape value represents exactly (|v| < 2^40:
// lower values are symbols).
Status InType(__int128 v, IntType t, int64_t* out) {
  const unsigned __int128 mask = t.bits == 64 ? ~static_cast<unsigned __int128>(0) >> 64
                                              : (static_cast<unsigned __int128>(1) << t.bits) - 1;
  unsigned __int128 u = static_cast<unsigned __int128>(v) & mask;
  __int128 w = static_cast<__int128>(u);
  if (t.is_signed && (u >> (t.bits - 1)) & 1) w -= static_cast<__int128>(mask) + 1;
  if (w <= kFirstSymbol || w >= -static_cast<__int128>(kFirstSymbol))
    return Status::Error("an integer shape value at or beyond 2^40 (not evaluated)");
  *out = static_cast<int64_t>(w);
  return Status::OK();
}

// One element of integer Add / Sub / Mul / Div in type t (int32 or int64). Symbols and unknown
// values keep only the identities, and only in int64 (a symbol never enters a narrower type).
Status Arith(const std::string& op, int64_t a, int64_t b, IntType t, int64_t* out) {
  // Integer division by zero (and INT_MIN / -1) traps in the CPU EP's kernel: never claimed.
  if (op == "Div" && b == 0) return Status::Error("integer Div by zero");
  if (!Literal(a) || !Literal(b)) {
    *out = kUnknownValue;
    if (op == "Mul" && (a == 0 || b == 0)) *out = 0;
    if (t.bits != 64) return Status::OK();
    if ((op == "Mul" || op == "Div") && b == 1) *out = a;
    if ((op == "Add" || op == "Sub") && b == 0) *out = a;
    if (op == "Mul" && a == 1) *out = b;
    if (op == "Add" && a == 0) *out = b;
    return Status::OK();
  }
  const __int128 x = a, y = b;
  if (op == "Add") return InType(x + y, t, out);
  if (op == "Sub") return InType(x - y, t, out);
  if (op == "Mul") return InType(x * y, t, out);
  if (t.bits == 32 && a == INT32_MIN && b == -1) return Status::Error("int32 Div overflows");
  return InType(x / y, t, out);  // ONNX integer Div truncates, as C++ does
}

// Cast of one value to integer type t: symbols survive only a Cast to int64 (a dim is below 2^40).
// A value known only at run time may be negative: as uint64 it would be beyond what the plan can
// hold, so such a Cast is not claimed.
Status CastTo(int64_t v, IntType t, int64_t* out) {
  if (!Literal(v)) {
    if (t.bits == 64 && !t.is_signed) return Status::Error("Cast to uint64 of a value known only at run time");
    *out = t.bits == 64 ? v : kUnknownValue;
    return Status::OK();
  }
  return InType(v, t, out);
}

}  // namespace

std::optional<Shape> ShapeValueOfConstant(const GraphView& g, int v) {
  if (!IsInt(g.value(v).dtype)) return std::nullopt;
  auto ints = g.ConstantAsInts(v);
  if (!ints || ints->size() > kMaxValues) return std::nullopt;
  for (int64_t x : *ints)
    if (!Literal(x) || x >= -kFirstSymbol) return std::nullopt;  // not exactly representable: not known
  return Shape(ints->begin(), ints->end());
}

namespace {

Status InferShapes(const GraphView& g, const GNode& n, NodeShapes* io) {
  const std::string& op = n.op_type;
  auto unknown = [&](size_t i) {
    return Status::Error("the value of input " + std::to_string(i) + " is not known before the run");
  };
  io->out.assign(n.outputs.size(), Shape{});
  io->out_values.assign(n.outputs.size(), std::nullopt);
  Shape y;  // the output's value
  if (op == "Shape") {
    const Shape& x = io->in[0];
    const int64_t r = static_cast<int64_t>(x.size());
    int64_t start = n.AttrInt("start", 0), end = n.AttrInt("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
    for (int64_t d = start; d < end; ++d) y.push_back(DimToValue(x[d]));
    io->out[0] = {static_cast<int64_t>(y.size())};
  } else {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.inputs[i] < 0) continue;
      if (op == "Unsqueeze" || op == "Squeeze" || op == "Slice") {
        if (i == 0 && !io->in_values[0]) return unknown(0);
      } else if (!io->in_values[i]) {
        return unknown(i);
      }
    }
    const Shape& a = *io->in_values[0];
    const Shape& shape_a = io->in[0];
    if (op == "Gather") {
      if (shape_a.size() != 1 || n.AttrInt("axis", 0) != 0) return Status::Error("Gather of a shape must be 1-D, axis 0");
      for (int64_t k : *io->in_values[1]) {
        if (!Literal(k)) return Status::Error("Gather index is not known before the run");
        if (k < 0) k += static_cast<int64_t>(a.size());
        if (k < 0 || k >= static_cast<int64_t>(a.size())) return Status::Error("Gather index out of range");
        y.push_back(a[k]);
      }
      io->out[0] = io->in[1];  // a scalar index gives a scalar
    } else if (op == "Unsqueeze" || op == "Squeeze") {
      std::vector<int64_t> axes;
      if (!Axes(n, *io, 1, "axes", &axes)) return unknown(1);
      Shape s = shape_a;
      if (op == "Unsqueeze") {
        const int64_t r = static_cast<int64_t>(s.size() + axes.size());
        for (int64_t& ax : axes) ax = ax < 0 ? ax + r : ax;
        std::sort(axes.begin(), axes.end());
        for (int64_t ax : axes) {
          if (ax < 0 || ax > static_cast<int64_t>(s.size())) return Status::Error("Unsqueeze axis out of range");
          s.insert(s.begin() + ax, 1);
        }
      } else {
        const int64_t r = static_cast<int64_t>(s.size());
        if (axes.empty())
          for (int64_t d = 0; d < r; ++d) if (s[d] == 1) axes.push_back(d);
        for (int64_t& ax : axes) ax = ax < 0 ? ax + r : ax;
        std::sort(axes.rbegin(), axes.rend());
        for (int64_t ax : axes) {
          if (ax < 0 || ax >= r || s[ax] != 1) return Status::Error("Squeeze of a dim that is not 1");
          s.erase(s.begin() + ax);
        }
      }
      y = a;
      io->out[0] = s;
    } else if (op == "Concat") {
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (io->in[i].size() != 1) return Status::Error("Concat of shapes must be of 1-D values");
        y.insert(y.end(), io->in_values[i]->begin(), io->in_values[i]->end());
      }
      io->out[0] = {static_cast<int64_t>(y.size())};
    } else if (op == "Slice") {
      if (shape_a.size() != 1) return Status::Error("Slice of a shape must be 1-D");
      for (size_t i = 1; i < n.inputs.size(); ++i)
        if (n.inputs[i] >= 0 && !io->in_values[i]) return unknown(i);
      if (n.inputs.size() < 3) return Status::Error("Slice without starts and ends");
      const int64_t len = static_cast<int64_t>(a.size());
      if (io->in_values[1]->size() != 1 || io->in_values[2]->size() != 1) return Status::Error("Slice of a shape on one axis");
      if (n.inputs.size() > 3 && n.inputs[3] >= 0 && ((*io->in_values[3]) != Shape{0} && (*io->in_values[3]) != Shape{-1}))
        return Status::Error("Slice of a shape on one axis");
      const int64_t step = n.inputs.size() > 4 && n.inputs[4] >= 0 ? (*io->in_values[4])[0] : 1;
      if (step <= 0 || !Literal(step)) return Status::Error("Slice of a shape with a step other than positive");
      int64_t start = (*io->in_values[1])[0], end = (*io->in_values[2])[0];
      if (!Literal(start) || !Literal(end)) return Status::Error("Slice bounds are not known before the run");
      const int64_t big = int64_t{1} << 40;
      start = std::clamp(start, -big, big);
      end = std::clamp(end, -big, big);
      if (start < 0) start += len;
      if (end < 0) end += len;
      start = std::clamp<int64_t>(start, 0, len);
      end = std::clamp<int64_t>(end, 0, len);
      for (int64_t k = start; k < end; k += step) y.push_back(a[k]);
      io->out[0] = {static_cast<int64_t>(y.size())};
    } else if (op == "Cast") {
      const auto t = IntTypeOf(g.value(n.outputs[0]).dtype);
      if (!t) return Status::Error("Cast to a non-integer type");
      y.resize(a.size());
      for (size_t k = 0; k < a.size(); ++k) PHX_RETURN_IF_ERROR(CastTo(a[k], *t, &y[k]));
      io->out[0] = shape_a;
    } else {  // Add, Sub, Mul, Div, elementwise with a size-1 operand broadcast
      const auto t = IntTypeOf(g.value(n.outputs[0]).dtype);
      if (!t || (t->bits != 32 && t->bits != 64) || !t->is_signed) return Status::Error("integer arithmetic on this type");
      const Shape& b = *io->in_values[1];
      if (a.size() != b.size() && a.size() != 1 && b.size() != 1) return Status::Error("shape arithmetic that does not broadcast");
      const size_t len = std::max(a.size(), b.size());
      y.resize(len);
      for (size_t k = 0; k < len; ++k) PHX_RETURN_IF_ERROR(Arith(op, a[a.size() == 1 ? 0 : k], b[b.size() == 1 ? 0 : k], *t, &y[k]));
      PHX_RETURN_IF_ERROR(Broadcast(io->in[0], io->in[1], &io->out[0]));
    }
  }
  if (y.size() > kMaxValues) return Status::Error("too long for a shape value");
  io->out_values[0] = std::move(y);
  return Status::OK();
}

Status Lower(Lowering&, int) { return Status::OK(); }  // evaluated by shape inference; no kernel

}  // namespace

const OpFamily kShapeArithFamily = {"ShapeArith", Handles, WhyUnsupported, InferShapes, Lower};

}  // namespace phoenix
