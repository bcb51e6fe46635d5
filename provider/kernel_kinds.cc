#include "kernel_kinds.h"

#include <cstring>

namespace phoenix {
namespace {

constexpr SlotDesc Act(const char* name, bool optional = false) { return {name, SlotType::kActivation, optional}; }
constexpr SlotDesc F32(const char* name, bool optional = false) { return {name, SlotType::kF32, optional}; }
constexpr SlotDesc None() { return {}; }

// In KernelKind order.
const KernelKindDesc kKinds[] = {
    {KernelKind::kLayerNorm, "LayerNorm", "layernorm", {Act("x"), F32("gamma"), F32("beta", true), None()}, Act("y")},
    {KernelKind::kMatMul, "MatMul", "matmul", {Act("A"), Act("B"), F32("bias", true), Act("residual", true)}, Act("C")},
    {KernelKind::kSoftmax, "Softmax", "softmax", {Act("x"), None(), None(), None()}, Act("y")},
    {KernelKind::kGelu, "Gelu", "gelu", {Act("x"), None(), None(), None()}, Act("y")},
    {KernelKind::kBinary, "Binary", nullptr, {Act("a"), Act("b"), None(), None()}, Act("y")},
    {KernelKind::kBinaryScalar, "BinaryScalar", nullptr, {Act("a"), None(), None(), None()}, Act("y")},
    {KernelKind::kCopy, "Copy", nullptr, {Act("x"), None(), None(), None()}, Act("y")},
    {KernelKind::kIm2Col, "Im2Col", nullptr, {Act("x"), None(), None(), None()}, Act("y")},
    {KernelKind::kAttention, "Attention", nullptr, {Act("Q"), Act("K"), Act("V"), None()}, Act("O")},
};
static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == static_cast<size_t>(KernelKind::kCount),
              "one description per kernel kind");

}  // namespace

const KernelKindDesc& DescribeKernel(KernelKind kind) {
  const int k = static_cast<int>(kind);
  return kKinds[k >= 0 && k < static_cast<int>(KernelKind::kCount) ? k : static_cast<int>(KernelKind::kCopy)];
}

const char* KernelKindName(KernelKind kind) {
  const int k = static_cast<int>(kind);
  return k >= 0 && k < static_cast<int>(KernelKind::kCount) ? kKinds[k].name : "?";
}

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

}  // namespace phoenix
