#include "common/kernel_kinds.h"

#include <cstring>
#include <string>

namespace phoenix {

// The host runners, one per kernel folder (kernels/<op>/host_call.cc).
Status RunLayerNormCall(const KernelCall&, const HostBuffers&, int);
Status RunMatMulCall(const KernelCall&, const HostBuffers&, int);
Status RunSoftmaxCall(const KernelCall&, const HostBuffers&, int);
Status RunGeluCall(const KernelCall&, const HostBuffers&, int);
Status RunBinaryCall(const KernelCall&, const HostBuffers&, int);
Status RunBinaryScalarCall(const KernelCall&, const HostBuffers&, int);
Status RunCopyCall(const KernelCall&, const HostBuffers&, int);
Status RunIm2ColCall(const KernelCall&, const HostBuffers&, int);
Status RunAttentionCall(const KernelCall&, const HostBuffers&, int);

namespace {

constexpr SlotDesc Act(const char* name, bool optional = false) { return {name, SlotType::kActivation, optional}; }
constexpr SlotDesc F32(const char* name, bool optional = false) { return {name, SlotType::kF32, optional}; }
constexpr SlotDesc None() { return {}; }

// In KernelKind order.
const KernelKindDesc kKinds[] = {
    {KernelKind::kLayerNorm, "LayerNorm", "layernorm", {Act("x"), F32("gamma"), F32("beta", true), None()}, Act("y"),
     RunLayerNormCall},
    {KernelKind::kMatMul, "MatMul", "matmul", {Act("A"), Act("B"), F32("bias", true), Act("residual", true)}, Act("C"),
     RunMatMulCall},
    {KernelKind::kSoftmax, "Softmax", "softmax", {Act("x"), None(), None(), None()}, Act("y"), RunSoftmaxCall},
    {KernelKind::kGelu, "Gelu", "gelu", {Act("x"), None(), None(), None()}, Act("y"), RunGeluCall},
    {KernelKind::kBinary, "Binary", nullptr, {Act("a"), Act("b"), None(), None()}, Act("y"), RunBinaryCall},
    {KernelKind::kBinaryScalar, "BinaryScalar", nullptr, {Act("a"), None(), None(), None()}, Act("y"),
     RunBinaryScalarCall},
    {KernelKind::kCopy, "Copy", nullptr, {Act("x"), None(), None(), None()}, Act("y"), RunCopyCall},
    {KernelKind::kIm2Col, "Im2Col", nullptr, {Act("x"), None(), None(), None()}, Act("y"), RunIm2ColCall},
    {KernelKind::kAttention, "Attention", nullptr, {Act("Q"), Act("K"), Act("V"), None()}, Act("O"), RunAttentionCall},
};
static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == static_cast<size_t>(KernelKind::kCount),
              "one description per kernel kind");

bool Valid(KernelKind kind) {
  return static_cast<int>(kind) >= 0 && static_cast<int>(kind) < static_cast<int>(KernelKind::kCount);
}

}  // namespace

const KernelKindDesc& DescribeKernel(KernelKind kind) {
  return kKinds[Valid(kind) ? static_cast<int>(kind) : static_cast<int>(KernelKind::kCopy)];
}

const char* KernelKindName(KernelKind kind) { return Valid(kind) ? kKinds[static_cast<int>(kind)].name : "?"; }

size_t SlotElementSize(KernelKind kind, int slot, Precision precision) {
  const KernelKindDesc& d = DescribeKernel(kind);
  const SlotType t = slot == kOutputSlot ? d.out.type : (slot >= 0 && slot < 4 ? d.in[slot].type : SlotType::kNone);
  switch (t) {
    case SlotType::kActivation: return ActivationElementSize(precision);
    case SlotType::kF32: return 4;
    default: return 0;
  }
}

bool KernelKindFromName(const char* name, KernelKind* kind) {
  for (const KernelKindDesc& d : kKinds)
    if (std::strcmp(d.name, name) == 0) {
      *kind = d.kind;
      return true;
    }
  return false;
}

namespace {

Status CheckOperand(const HostBuffers& buffers, const Operand& op, size_t elem_size, const std::string& what,
                    const KernelCall& call) {
  const HostBuffer b = op.buffer >= 0 ? buffers(op.buffer) : HostBuffer{};
  if (b.data == nullptr) return Status::Error("host kernel: " + what + " of " + call.label + " has no buffer");
  if (elem_size == 0) return Status::Error("host kernel: " + call.label + " has an operand in a slot its kind lacks");
  const TensorView& v = op.view;
  if (v.offset < 0) return Status::Error("host kernel: negative offset in " + call.label);
  // Largest element touched, with overflow checks (views come from plans; plans from models).
  const int64_t limit = static_cast<int64_t>(b.bytes / elem_size);
  for (int d = 0; d < v.rank; ++d)
    if (v.shape[d] < 0 || v.strides[d] < 0) return Status::Error("host kernel: negative dim or stride in " + call.label);
  for (int d = 0; d < v.rank; ++d)
    if (v.shape[d] == 0) return Status::OK();  // an empty view touches nothing
  int64_t last = v.offset;
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] > 1 && v.strides[d] > (limit - 1 - last) / (v.shape[d] - 1))
      return Status::Error("host kernel: " + what + " of " + call.label + " overruns its buffer");
    if (v.shape[d] > 1) last += (v.shape[d] - 1) * v.strides[d];
  }
  if (last >= limit) return Status::Error("host kernel: " + what + " of " + call.label + " overruns its buffer");
  return Status::OK();
}

}  // namespace

Status RunOnHost(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  if (!Valid(c.kind())) return Status::Error("host kernel: unknown kernel kind");
  for (int i = 0; i < 4; ++i)
    if (c.in[i].present())
      PHX_RETURN_IF_ERROR(CheckOperand(buffers, c.in[i], SlotElementSize(c.kind(), i, c.precision),
                                       "input " + std::to_string(i), c));
  PHX_RETURN_IF_ERROR(CheckOperand(buffers, c.out, SlotElementSize(c.kind(), kOutputSlot, c.precision), "output", c));
  return DescribeKernel(c.kind()).run_on_host(c, buffers, num_threads);
}

}  // namespace phoenix
