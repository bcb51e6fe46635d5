// Plan pass: a Copy that materialises a permuted view of a tensor nothing else reads is folded
// into the tensor's producer, which then writes that layout directly. This is how a Transpose
// followed by a Reshape (attention heads merged back into [T, D]) or by a kernel that needs
// contiguous rows costs no copy. It works on plan tensors, so every alias of the tensor counts:
// a tensor read by anything but the Copy (another call, a region output) keeps its layout.
#include <vector>

#include "lowering.h"

namespace phoenix {
namespace {

bool WritesAnyLayout(KernelKind k) {  // kernels whose output is a strided view (kernels/*/*.h)
  return k == KernelKind::kMatMul || k == KernelKind::kAttention || k == KernelKind::kBinary ||
         k == KernelKind::kBinaryScalar || k == KernelKind::kCopy;
}

bool CoversTensor(const Plan& plan, const PlanOperand& op) {
  return op.view.offset == 0 && op.view.IsContiguous() && op.view.NumElements() == plan.tensors[op.tensor].num_elements;
}

}  // namespace

void FoldCopiesIntoProducers(Plan& plan) {
  const size_t num_tensors = plan.tensors.size();
  std::vector<int> readers(num_tensors, 0), writers(num_tensors, 0), writer(num_tensors, -1);
  std::vector<bool> pinned(num_tensors, false);  // region inputs and outputs keep their layout
  for (const PlanIO& io : plan.inputs) pinned[io.tensor] = true;
  for (const PlanIO& io : plan.outputs) pinned[io.tensor] = true;
  for (size_t i = 0; i < plan.calls.size(); ++i) {
    for (const PlanOperand& op : plan.calls[i].in)
      if (op.present()) ++readers[op.tensor];
    ++writers[plan.calls[i].out.tensor];
    writer[plan.calls[i].out.tensor] = static_cast<int>(i);
  }
  std::vector<bool> dead(plan.calls.size(), false);
  for (size_t ci = 0; ci < plan.calls.size(); ++ci) {
    const PlanCall& copy = plan.calls[ci];
    if (copy.call.kind() != KernelKind::kCopy) continue;
    const int src = copy.in[0].tensor;
    if (pinned[src] || plan.tensors[src].is_weight || readers[src] != 1 || writers[src] != 1) continue;
    if (!CoversTensor(plan, copy.out)) continue;
    PlanCall& producer = plan.calls[writer[src]];
    if (!WritesAnyLayout(producer.call.kind()) || !CoversTensor(plan, producer.out)) continue;
    auto layout = InverseLayout(copy.in[0].view, producer.out.view.Dims());
    if (!layout) continue;
    producer.out = {copy.out.tensor, *layout};
    writer[copy.out.tensor] = writer[src];
    dead[ci] = true;
  }
  std::vector<PlanCall> kept;
  kept.reserve(plan.calls.size());
  for (size_t i = 0; i < plan.calls.size(); ++i)
    if (!dead[i]) kept.push_back(std::move(plan.calls[i]));
  plan.calls = std::move(kept);
}

}  // namespace phoenix
