// Lowering: the region graph at one set of concrete shapes -> a Plan of kernel calls.
//
//   BuildPlan runs the passes in order:
//     1. shapes      every value's concrete shape from the input shapes (ops/*: infer_shapes)
//     2. fusion      which nodes lower together (fusion/gelu, attention, epilogue)
//     3. lowering    unit by unit in topological order (ops/*: lower; fusion/*: fused units)
//     4. layout      copies folded into their producers' output layout (fusion/layout.cc)
//     5. buffers     arena offsets by liveness (plan.cc), then every view validated
//
// Views, not copies: Transpose and Reshape produce views of their input; a scalar Mul / Div
// stays a pending scale on the value until a consumer absorbs it (MatMul alpha, Softmax or
// Attention scale) or needs it applied.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fusion/units.h"
#include "graph_view.h"
#include "plan.h"
#include "views.h"
#include "weights.h"

namespace phoenix {

struct CompileOptions {
  bool fuse_attention = true;  // MatMul(Q, K^T) [-> scale] -> Softmax -> MatMul(P, V) as one kernel
  Precision precision = Precision::kBF16;
};

// A region ready to be specialised: its graph, GELU patterns, and the order ORT passes its
// inputs and expects its outputs (value ids in `graph`).
struct RegionGraph {
  std::string name;
  GraphView graph;
  std::vector<GeluMatch> gelus;
  std::vector<int> inputs, outputs;
};

// The plan of `region` for these input shapes (in region.inputs order). Weights come from
// `weights` (uploaded once per region).
Status BuildPlan(const RegionGraph& region, const std::vector<Shape>& input_shapes, const CompileOptions& options,
                 WeightStore& weights, Plan* plan);

// Every value's concrete shape from the region's input shapes.
Status InferRegionShapes(const RegionGraph& region, const std::vector<Shape>& input_shapes, ShapeMap* shapes);

// A value during lowering: a view of a plan tensor, times an FP32 scale not applied yet. A value
// of a QuantizeLinear -> DequantizeLinear pair also carries its quantization: pending (the tensor
// holds the value before it; a quantized MatMul quantizes while packing, other readers get a
// FakeQuant call) or applied (the tensor holds the fake-quantized values; a quantized MatMul
// quantizes them again to the same integers).
struct Val {
  int tensor = -1;
  TensorView view;
  float scale = 1.0f;
  std::optional<kernels::QuantParams> quant;
  bool quant_pending = false;

  // The same value through another view of its tensor (Transpose, Reshape): what is pending
  // (scale, quantization) stays pending.
  Val WithView(const TensorView& v) const {
    Val o = *this;
    o.view = v;
    return o;
  }
};

// The state one plan's lowering shares between the op families and the fused units.
class Lowering {
 public:
  Lowering(const GraphView& g, const ShapeMap& shapes, const CompileOptions& options, WeightStore& weights, Plan& plan);

  const GraphView& graph() const { return g_; }
  const CompileOptions& options() const { return options_; }
  const Shape& ShapeOf(int value) const { return shapes_[value]; }
  Plan& plan() { return p_; }

  // A value already lowered, or a constant (as a weight in activation elements).
  Status Get(int value, Val* out);
  void Set(int value, const Val& v) { vals_[value] = v; }
  // A small constant's data as FP32.
  Status ConstantF32(int value, std::vector<float>* out) const;
  // A plan tensor for an FP32 parameter vector (the store shares equal ones).
  Status F32Parameter(const std::string& name, const std::vector<float>& data, int* tensor);

  Val NewOutput(const std::string& name, const Shape& dims);
  PlanCall NewCall(KernelParams params, const std::string& label) const;
  void Emit(PlanCall call) { p_.calls.push_back(std::move(call)); }

  // The value with its pending scale applied by a kernel (a pending quantization stays pending).
  Val ApplyScale(const Val& v, const std::string& label);
  // The value with everything pending applied: scale, then fake quantization (for consumers
  // that can absorb neither).
  Val Materialize(const Val& v, const std::string& label);
  // The value as a contiguous tensor (pending work applied first), copying only when needed.
  Val Contiguous(const Val& v, const std::string& label);
  // A contiguous copy of the value's tensor elements, with its scale and quantization still
  // pending (for views that need another layout first).
  Val ContiguousPending(const Val& v, const std::string& label);
  // A plan tensor for INT8 weights: constant `value` (a folded DequantizeLinear) as its int8
  // data, scales and zero points; false when the weights are not such a constant.
  bool Int8Weights(int value, Int8WeightRef* out, int* data, int* scales, int* zero_points);

 private:
  int NewTensor(const std::string& name, SlotType type, int64_t num_elements);

  const GraphView& g_;
  const ShapeMap& shapes_;
  CompileOptions options_;
  WeightStore& weights_;
  Plan& p_;
  std::unordered_map<int, Val> vals_;
};

// Lowering of the fused units (fusion/*.cc).
Status LowerMatMulChain(Lowering& l, const Unit& unit);
Status LowerAttention(Lowering& l, const Unit& unit);
// The plan pass of fusion/layout.cc.
void FoldCopiesIntoProducers(Plan& plan);

}  // namespace phoenix
