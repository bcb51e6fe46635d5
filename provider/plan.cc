#include "plan.h"

#include <algorithm>
#include <limits>
#include <map>

namespace phoenix {

const char* KernelKindName(KernelKind kind) {
  switch (kind) {
    case KernelKind::kLayerNorm: return "LayerNorm";
    case KernelKind::kMatMul: return "MatMul";
    case KernelKind::kSoftmax: return "Softmax";
    case KernelKind::kGelu: return "Gelu";
    case KernelKind::kBinary: return "Binary";
    case KernelKind::kBinaryScalar: return "BinaryScalar";
    case KernelKind::kCopy: return "Copy";
    case KernelKind::kIm2Col: return "Im2Col";
    case KernelKind::kAttention: return "Attention";
    default: return "?";
  }
}

std::string Plan::Summary() const {
  std::map<std::string, int> by_kind;
  for (const PlanCall& c : calls) by_kind[KernelKindName(c.call.kind)]++;
  std::string s = name + ": " + std::to_string(num_onnx_nodes) + " ONNX nodes -> " +
                  std::to_string(calls.size()) + " kernel calls (";
  bool first = true;
  for (auto& [k, n] : by_kind) {
    s += (first ? "" : ", ") + std::to_string(n) + " " + k;
    first = false;
  }
  s += "); activation arena " + std::to_string(arena_bytes / 1024) + " KiB, weights " +
       std::to_string(weight_bytes / 1024) + " KiB";
  if (element == DType::kSplit) s += "; precision bf16x3";
  return s;
}

void PlanBuffers(Plan& plan) {
  const int num_tensors = static_cast<int>(plan.tensors.size());
  const int kEnd = std::numeric_limits<int>::max();
  std::vector<int> first(num_tensors, kEnd), last(num_tensors, -2);
  for (const PlanIO& io : plan.inputs) { first[io.tensor] = -1; last[io.tensor] = std::max(last[io.tensor], -1); }
  for (int i = 0; i < static_cast<int>(plan.calls.size()); ++i) {
    const PlanCall& c = plan.calls[i];
    for (const PlanOperand& op : c.in)
      if (op.present()) last[op.tensor] = std::max(last[op.tensor], i);
    if (c.out.present()) {
      first[c.out.tensor] = std::min(first[c.out.tensor], i);
      last[c.out.tensor] = std::max(last[c.out.tensor], i);
    }
  }
  for (const PlanIO& io : plan.outputs) last[io.tensor] = kEnd;

  // Best fit by decreasing size: each activation goes to the lowest 4 KiB-aligned offset that
  // does not overlap a placed tensor whose live range [first, last] intersects its own.
  std::vector<int> order;
  for (int t = 0; t < num_tensors; ++t)
    if (!plan.tensors[t].is_weight && first[t] != kEnd) order.push_back(t);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return plan.tensors[a].bytes() > plan.tensors[b].bytes(); });
  auto align = [](int64_t v) { return (v + int64_t(kBufferAlignment) - 1) / int64_t(kBufferAlignment) * int64_t(kBufferAlignment); };
  std::vector<int> placed;
  int64_t arena = 0;
  for (int t : order) {
    std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) byte ranges in use meanwhile
    for (int p : placed)
      if (!(last[p] < first[t] || last[t] < first[p]))
        busy.push_back({plan.tensors[p].arena_offset, plan.tensors[p].arena_offset + int64_t(plan.tensors[p].bytes())});
    std::sort(busy.begin(), busy.end());
    const int64_t size = std::max<int64_t>(1, plan.tensors[t].bytes());
    int64_t offset = 0;
    for (auto& [b, e] : busy) {
      if (offset + size <= b) break;
      offset = std::max(offset, align(e));
    }
    plan.tensors[t].arena_offset = offset;
    arena = std::max(arena, offset + size);
    placed.push_back(t);
  }
  plan.arena_bytes = align(arena);
}

}  // namespace phoenix
