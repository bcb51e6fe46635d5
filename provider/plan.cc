#include "plan.h"

#include "common/kernel_kinds.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>

namespace phoenix {

std::string Plan::Summary() const {
  std::map<std::string, int> by_kind;
  for (const PlanCall& c : calls) by_kind[KernelKindName(c.call.kind())]++;
  std::string s = name + ": " + std::to_string(num_onnx_nodes) + " ONNX nodes -> " +
                  std::to_string(calls.size()) + " kernel calls (";
  bool first = true;
  for (auto& [k, n] : by_kind) {
    s += (first ? "" : ", ") + std::to_string(n) + " " + k;
    first = false;
  }
  s += "); activation arena " + std::to_string(arena_bytes / 1024) + " KiB";
  if (precision != Precision::kBF16) s += std::string("; precision ") + PrecisionName(precision);
  return s;
}

std::vector<LiveRange> TensorLiveRanges(const Plan& plan) {
  std::vector<LiveRange> r(plan.tensors.size());
  for (const PlanIO& io : plan.inputs) r[io.tensor].first = -1, r[io.tensor].last = std::max(r[io.tensor].last, -1);
  for (int i = 0; i < static_cast<int>(plan.calls.size()); ++i) {
    const PlanCall& c = plan.calls[i];
    for (const PlanOperand& op : c.in)
      if (op.present()) r[op.tensor].last = std::max(r[op.tensor].last, i);
    if (c.out.present()) {
      r[c.out.tensor].first = std::min(r[c.out.tensor].first, i);
      r[c.out.tensor].last = std::max(r[c.out.tensor].last, i);
    }
  }
  for (const PlanIO& io : plan.outputs) r[io.tensor].last = LiveRange::kEnd;
  return r;
}

void PlanBuffers(Plan& plan) {
  const int num_tensors = static_cast<int>(plan.tensors.size());
  const int kEnd = LiveRange::kEnd;
  std::vector<int> first(num_tensors), last(num_tensors);
  const std::vector<LiveRange> ranges = TensorLiveRanges(plan);
  for (int t = 0; t < num_tensors; ++t) first[t] = ranges[t].first, last[t] = ranges[t].last;

  // Best fit by decreasing size: each activation goes to the lowest 4 KiB-aligned offset that
  // does not overlap a placed tensor whose live range [first, last] intersects its own.
  std::vector<int> order;
  for (int t = 0; t < num_tensors; ++t)
    if (!plan.tensors[t].is_weight && first[t] != kEnd) order.push_back(t);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return plan.tensors[a].Bytes(plan.precision) > plan.tensors[b].Bytes(plan.precision); });
  auto align = [](int64_t v) { return (v + int64_t(kBufferAlignment) - 1) / int64_t(kBufferAlignment) * int64_t(kBufferAlignment); };
  std::vector<int> placed;
  int64_t arena = 0;
  for (int t : order) {
    std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) byte ranges in use meanwhile
    for (int p : placed)
      if (!(last[p] < first[t] || last[t] < first[p]))
        busy.push_back({plan.tensors[p].arena_offset, plan.tensors[p].arena_offset + int64_t(plan.tensors[p].Bytes(plan.precision))});
    std::sort(busy.begin(), busy.end());
    const int64_t size = std::max<int64_t>(1, plan.tensors[t].Bytes(plan.precision));
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

namespace {

std::string Where(const Plan& plan, size_t call, const char* slot) {
  const KernelCall& c = plan.calls[call].call;
  return std::string("plan ") + plan.name + ", call " + std::to_string(call) + " (" + KernelKindName(c.kind()) +
         " for " + c.label + "), " + slot;
}

Status CheckView(const Plan& plan, const PlanOperand& op, const std::string& where) {
  if (op.tensor < 0 || op.tensor >= static_cast<int>(plan.tensors.size()))
    return Status::Error(where + ": no such tensor");
  const TensorView& v = op.view;
  if (v.rank < 0 || v.rank > kMaxRank) return Status::Error(where + ": rank " + std::to_string(v.rank));
  if (v.offset < 0) return Status::Error(where + ": negative offset");
  // Extent with overflow checks: offset + sum((shape - 1) * stride) + 1 <= the tensor's elements.
  const int64_t limit = plan.tensors[op.tensor].num_elements;
  for (int d = 0; d < v.rank; ++d)
    if (v.shape[d] < 0 || v.strides[d] < 0) return Status::Error(where + ": negative dim or stride " + v.ToString());
  for (int d = 0; d < v.rank; ++d)
    if (v.shape[d] == 0) return Status::OK();  // an empty view touches nothing
  int64_t last = v.offset;
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] > 1 && v.strides[d] > (limit - 1 - last) / (v.shape[d] - 1))
      return Status::Error(where + ": view " + v.ToString() + " overruns its tensor of " + std::to_string(limit) + " elements");
    if (v.shape[d] > 1) last += (v.shape[d] - 1) * v.strides[d];
  }
  if (last >= limit)
    return Status::Error(where + ": view " + v.ToString() + " overruns its tensor of " + std::to_string(limit) + " elements");
  return Status::OK();
}

bool SameDims(const TensorView& a, const TensorView& b) { return a.Dims() == b.Dims(); }

// The shapes each kernel kind reads and writes (kernels/<op>/<op>.h), checked against the views.
Status CheckCallShapes(const PlanCall& pc, const std::string& where) {
  const KernelCall& c = pc.call;
  const TensorView& o = pc.out.view;
  auto in = [&](int i) -> const TensorView& { return pc.in[i].view; };
  auto fail = [&](const std::string& what) { return Status::Error(where + ": " + what); };
  switch (c.kind()) {
    case KernelKind::kLayerNorm:
    case KernelKind::kSoftmax:
    case KernelKind::kGelu: {
      if (!pc.in[0].present() || !SameDims(in(0), o)) return fail("input and output shapes differ");
      if (!in(0).IsContiguous() || !o.IsContiguous()) return fail("rows are not contiguous");
      if (c.kind() == KernelKind::kLayerNorm) {
        const int64_t cols = o.rank ? o.shape[o.rank - 1] : 1;
        for (int i = 1; i <= 2; ++i)
          if (pc.in[i].present() && pc.in[i].view.NumElements() != cols) return fail("gamma/beta size differs from the row");
        if (!pc.in[1].present()) return fail("no gamma");
      }
      return Status::OK();
    }
    case KernelKind::kBinary:
      if (!pc.in[0].present() || !pc.in[1].present() || !SameDims(in(0), o) || !SameDims(in(1), o))
        return fail("operand shapes differ from the output's");
      return Status::OK();
    case KernelKind::kBinaryScalar:
    case KernelKind::kCopy:
      if (!pc.in[0].present() || !SameDims(in(0), o)) return fail("input and output shapes differ");
      return Status::OK();
    case KernelKind::kIm2Col: {
      const TensorView& x = in(0);
      if (!pc.in[0].present() || x.rank != 3 || o.rank != 3 || !o.IsContiguous()) return fail("not [B, C, L] -> [B, L_out, C*k]");
      const Im2ColParams& p = c.Params<Im2ColParams>();
      if (p.kernel < 1 || p.stride < 1 || p.dilation < 1 || p.pad_begin < 0) return fail("bad convolution parameters");
      if (o.shape[0] != x.shape[0] || o.shape[2] != x.shape[1] * p.kernel) return fail("output is not [B, L_out, C*k]");
      return Status::OK();
    }
    case KernelKind::kMatMul:
    case KernelKind::kAttention: {
      const int r = o.rank;
      const int n_in = c.kind() == KernelKind::kMatMul ? 2 : 3;
      if (r < 2) return fail("output rank below 2");
      for (int i = 0; i < n_in; ++i) {
        if (!pc.in[i].present() || in(i).rank != r) return fail("operand rank differs from the output's");
        for (int d = 0; d < r - 2; ++d)
          if (in(i).shape[d] != o.shape[d]) return fail("batch dims differ");
      }
      const TensorView &a = in(0), &b = in(1);
      if (c.kind() == KernelKind::kMatMul) {
        if (a.shape[r - 1] != b.shape[r - 2] || a.shape[r - 2] != o.shape[r - 2] || b.shape[r - 1] != o.shape[r - 1])
          return fail("A, B and C are not [M, K], [K, N], [M, N]");
        if (pc.in[2].present() && pc.in[2].view.NumElements() != o.shape[r - 1]) return fail("bias is not [N]");
        if (pc.in[3].present() && !SameDims(in(3), o)) return fail("residual shape differs from the output's");
      } else {
        const TensorView& v = in(2);
        if (a.shape[r - 2] != o.shape[r - 2] || a.shape[r - 1] != b.shape[r - 1] || b.shape[r - 2] != v.shape[r - 2] ||
            v.shape[r - 1] != o.shape[r - 1])
          return fail("Q, K, V and O are not [M, D], [N, D], [N, Dv], [M, Dv]");
      }
      return Status::OK();
    }
    default:
      return fail("unknown kernel kind");
  }
}

}  // namespace

Status ValidatePlan(const Plan& plan) {
  for (size_t i = 0; i < plan.calls.size(); ++i) {
    const PlanCall& pc = plan.calls[i];
    static const char* kSlots[4] = {"input 0", "input 1", "input 2", "input 3"};
    for (int k = 0; k < 4; ++k)
      if (pc.in[k].present()) PHX_RETURN_IF_ERROR(CheckView(plan, pc.in[k], Where(plan, i, kSlots[k])));
    if (!pc.out.present()) return Status::Error(Where(plan, i, "output") + ": missing");
    PHX_RETURN_IF_ERROR(CheckView(plan, pc.out, Where(plan, i, "output")));
    if (plan.tensors[pc.out.tensor].is_weight) return Status::Error(Where(plan, i, "output") + ": writes a weight");
    for (const PlanOperand& op : pc.in)
      if (op.present() && op.tensor == pc.out.tensor)
        return Status::Error(Where(plan, i, "output") + ": writes a tensor the call reads");
    PHX_RETURN_IF_ERROR(CheckCallShapes(pc, Where(plan, i, "shapes")));
  }
  for (const auto* ios : {&plan.inputs, &plan.outputs})
    for (const PlanIO& io : *ios) {
      PHX_RETURN_IF_ERROR(CheckView(plan, PlanOperand{io.tensor, io.view}, "plan " + plan.name + ", region value " + io.name));
      if (io.view.Dims() != io.shape)
        return Status::Error("plan " + plan.name + ", region value " + io.name + ": view " + io.view.ToString() +
                             " does not have the value's shape");
    }
  // Activations live at the same time must not share bytes (the buffer planner's promise).
  const int n = static_cast<int>(plan.tensors.size());
  const int kEnd = LiveRange::kEnd;
  const std::vector<LiveRange> ranges = TensorLiveRanges(plan);
  std::vector<int> first(n), last(n);
  for (int t = 0; t < n; ++t) first[t] = ranges[t].first, last[t] = ranges[t].last;
  std::vector<int> live;
  for (int t = 0; t < n; ++t) {
    const PlanTensor& pt = plan.tensors[t];
    if (pt.is_weight || first[t] == kEnd) continue;
    if (pt.arena_offset < 0 || pt.arena_offset + static_cast<int64_t>(pt.Bytes(plan.precision)) > plan.arena_bytes)
      return Status::Error("plan " + plan.name + ": tensor " + pt.name + " lies outside the arena");
    live.push_back(t);
  }
  for (size_t a = 0; a < live.size(); ++a)
    for (size_t b = a + 1; b < live.size(); ++b) {
      const int x = live[a], y = live[b];
      if (last[x] < first[y] || last[y] < first[x]) continue;
      const PlanTensor &tx = plan.tensors[x], &ty = plan.tensors[y];
      if (tx.arena_offset < ty.arena_offset + static_cast<int64_t>(ty.Bytes(plan.precision)) &&
          ty.arena_offset < tx.arena_offset + static_cast<int64_t>(tx.Bytes(plan.precision)))
        return Status::Error("plan " + plan.name + ": tensors " + tx.name + " and " + ty.name + " share arena bytes while both are live");
    }
  return Status::OK();
}

}  // namespace phoenix
