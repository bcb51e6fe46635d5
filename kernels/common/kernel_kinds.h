// One description per kernel kind, read by every layer: the compiler (which slots a call has),
// the plan checks, the devices (element size of each slot at each precision, the host runner),
// the XRT device and the kernel manifest (the NPU kernel's operation name and the order of its
// buffer arguments: the present input slots in order, then the output).
#pragma once

#include <cstddef>

#include "common/kernel_call.h"
#include "common/status.h"

namespace phoenix {

enum class SlotType : unsigned char {
  kNone,        // the kind has no such slot
  kActivation,  // the precision's element: BF16 (bf16_t) or BF16x3 (split_t)
  kF32,         // FP32 parameters: LayerNorm gamma / beta, MatMul bias
};

struct SlotDesc {
  const char* name = nullptr;  // the manifest's argument name ("A", "gamma", ...)
  SlotType type = SlotType::kNone;
  bool optional = false;
};

// Runs one call to completion with the CPU kernel over host-visible buffers (kernels/<op>/host_call.cc).
using HostRunner = Status (*)(const KernelCall& call, const HostBuffers& buffers, int num_threads);

struct KernelKindDesc {
  KernelKind kind;
  const char* name;         // "MatMul": logs, counters, traces, test hooks
  const char* manifest_op;  // "matmul": the manifest's op name, or nullptr when the NPU has no such kernel
  SlotDesc in[4];
  SlotDesc out;
  HostRunner run_on_host;
};

const KernelKindDesc& DescribeKernel(KernelKind kind);
const char* KernelKindName(KernelKind kind);

// Bytes per element of input slot `slot` (0..3), or of the output for slot == kOutputSlot.
constexpr int kOutputSlot = -1;
size_t SlotElementSize(KernelKind kind, int slot, Precision precision);

// The kind named `name` ("Softmax"); false when there is none.
bool KernelKindFromName(const char* name, KernelKind* kind);

// Checks every present operand lies inside its buffer (a plan bug fails here instead of
// corrupting memory), then runs the kind's host runner.
Status RunOnHost(const KernelCall& call, const HostBuffers& buffers, int num_threads);

}  // namespace phoenix
