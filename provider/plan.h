// The plan: what the compiler produces for one fused region at one set of input shapes, and
// the runtime executes.
//
// Tensors are logical. Weights live in the region's WeightStore (uploaded once, shared by all
// plans of the region); a plan only refers to them. Activations are placed at byte offsets
// inside ONE arena buffer by a liveness pass, so tensors whose live ranges do not overlap share
// memory (ping-pong falls out of this). Every operand of every call is a (tensor, view) pair;
// the runtime turns the tensor into a device buffer and the view's offset into an element
// offset inside it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor_view.h"
#include "device.h"
#include "weights.h"

namespace phoenix {

struct PlanTensor {
  std::string name;
  bool f32 = false;                  // FP32 parameters; else activation elements (the plan's precision)
  int64_t num_elements = 0;
  bool is_weight = false;
  WeightRef weight;                  // weights only: the store's device buffer
  int64_t arena_offset = -1;         // activations only: byte offset in the arena
  size_t ElementSize(Precision p) const { return f32 ? 4 : ActivationElementSize(p); }
  size_t Bytes(Precision p) const { return static_cast<size_t>(num_elements) * ElementSize(p); }
};

// A tensor operand before buffers exist: the runtime resolves `tensor` to a device buffer.
struct PlanOperand {
  int tensor = -1;
  TensorView view;
  bool present() const { return tensor >= 0; }
};

struct PlanCall {
  KernelCall call;           // operands' buffer fields are filled in by the runtime
  PlanOperand in[4];
  PlanOperand out;
};

// A fused-node input or output: which tensor, through which view, with which ONNX shape.
struct PlanIO {
  std::string name;
  int tensor = -1;
  TensorView view;
  std::vector<int64_t> shape;
};

struct Plan {
  std::string name;                 // the fused node's name
  std::vector<PlanTensor> tensors;
  std::vector<PlanCall> calls;
  std::vector<PlanIO> inputs;       // in the order ORT passes them to Compute
  std::vector<PlanIO> outputs;      // in the fused node's output order
  int64_t arena_bytes = 0;          // set by the buffer planner
  int num_onnx_nodes = 0;
  Precision precision = Precision::kBF16;  // what activation tensors hold

  std::string Summary() const;      // one line: calls by kind, arena bytes
};

// The calls between which a tensor is live: first writer (-1 for a region input) to last
// reader (kEnd for a region output). kEnd in `first` marks a tensor no call touches.
struct LiveRange {
  static constexpr int kEnd = 2147483647;
  int first = kEnd, last = -2;
};
std::vector<LiveRange> TensorLiveRanges(const Plan& plan);

// Assigns arena offsets by liveness (4 KiB aligned, best fit) and sets arena_bytes.
void PlanBuffers(Plan& plan);

// Checks a finished plan before anything runs it: every view lies inside its tensor (64-bit
// arithmetic), has the shape its kernel reads or writes, kernels that need contiguous rows get
// them, no call writes a tensor it reads or a weight, and tensors live at the same time do not
// share arena bytes. An error here is a compiler bug caught before it can touch memory.
Status ValidatePlan(const Plan& plan);

}  // namespace phoenix
