// Buffer planning (liveness, 4 KiB aligned, best fit) and the checks every plan passes before it
// runs (ValidatePlan): views inside their tensors, kernel shapes, no write over a read, no two
// live tensors sharing bytes.
#include <vector>

#include "common/testing.h"
#include "plan.h"

using namespace phoenix;
using namespace phoenix::testing;

namespace {

int AddTensor(Plan& p, int64_t n, bool f32 = false) {
  PlanTensor t;
  t.name = "t" + std::to_string(p.tensors.size());
  t.num_elements = n;
  t.f32 = f32;
  p.tensors.push_back(t);
  return static_cast<int>(p.tensors.size()) - 1;
}

PlanCall CopyCall(int from, int to, int64_t n) {
  PlanCall c;
  c.call.params = CopyParams{};
  c.call.label = "copy";
  c.in[0] = {from, TensorView::Contiguous({n})};
  c.out = {to, TensorView::Contiguous({n})};
  return c;
}

// A random DAG of copies and binary ops over fresh tensors: some read early values again.
Plan RandomPlan() {
  Plan p;
  p.name = "random";
  const int64_t n = UniformInt(1, 5000);
  std::vector<int> values{AddTensor(p, n)};
  p.inputs.push_back(PlanIO{"x", values[0], TensorView::Contiguous({n}), {n}});
  const int calls = UniformInt(1, 30);
  for (int i = 0; i < calls; ++i) {
    const int out = AddTensor(p, n);
    const int a = values[UniformInt(0, static_cast<int>(values.size()) - 1)];
    if (UniformInt(0, 1)) {
      p.calls.push_back(CopyCall(a, out, n));
    } else {
      const int b = values[UniformInt(0, static_cast<int>(values.size()) - 1)];
      PlanCall c;
      c.call.params = BinaryParams{kernels::BinaryOp::kAdd};
      c.in[0] = {a, TensorView::Contiguous({n})};
      c.in[1] = {b, TensorView::Contiguous({n})};
      c.out = {out, TensorView::Contiguous({n})};
      p.calls.push_back(c);
    }
    values.push_back(out);
  }
  for (int k = 0; k < UniformInt(1, 3); ++k) {
    const int o = values[UniformInt(1, static_cast<int>(values.size()) - 1)];
    p.outputs.push_back(PlanIO{"y" + std::to_string(k), o, TensorView::Contiguous({n}), {n}});
  }
  return p;
}

}  // namespace

PHX_TEST(buffer_plan_never_overlaps_live_tensors) {
  for (int trial = 0; trial < 300; ++trial) {
    Plan p = RandomPlan();
    PlanBuffers(p);
    const Status s = ValidatePlan(p);
    PHX_CHECK(s.ok()) << s.message();
    // Independently of ValidatePlan: offsets aligned, inside the arena, live ranges disjoint in bytes.
    const std::vector<LiveRange> live = TensorLiveRanges(p);
    for (size_t a = 0; a < p.tensors.size(); ++a) {
      if (live[a].first == LiveRange::kEnd) continue;
      PHX_CHECK(p.tensors[a].arena_offset % 4096 == 0);
      PHX_CHECK(p.tensors[a].arena_offset + static_cast<int64_t>(p.tensors[a].Bytes(p.precision)) <= p.arena_bytes);
      for (size_t b = a + 1; b < p.tensors.size(); ++b) {
        if (live[b].first == LiveRange::kEnd || live[a].last < live[b].first || live[b].last < live[a].first) continue;
        const int64_t a0 = p.tensors[a].arena_offset, a1 = a0 + p.tensors[a].Bytes(p.precision);
        const int64_t b0 = p.tensors[b].arena_offset, b1 = b0 + p.tensors[b].Bytes(p.precision);
        PHX_CHECK(a1 <= b0 || b1 <= a0) << "tensors " << a << " and " << b << " overlap";
      }
    }
  }
}

PHX_TEST(buffer_plan_reuses_memory_of_dead_tensors) {
  Plan p;  // a chain x -> t1 -> t2 -> t3 -> y: two buffers suffice
  const int64_t n = 4096;
  int prev = AddTensor(p, n);
  p.inputs.push_back(PlanIO{"x", prev, TensorView::Contiguous({n}), {n}});
  for (int i = 0; i < 6; ++i) {
    const int t = AddTensor(p, n);
    p.calls.push_back(CopyCall(prev, t, n));
    prev = t;
  }
  p.outputs.push_back(PlanIO{"y", prev, TensorView::Contiguous({n}), {n}});
  PlanBuffers(p);
  PHX_CHECK(ValidatePlan(p).ok());
  PHX_CHECK(p.arena_bytes == 2 * 8192) << p.arena_bytes;
}

PHX_TEST(validate_refuses_views_outside_their_tensor) {
  Plan p;
  const int x = AddTensor(p, 16), y = AddTensor(p, 16);
  p.inputs.push_back(PlanIO{"x", x, TensorView::Contiguous({16}), {16}});
  PlanCall c = CopyCall(x, y, 16);
  c.in[0].view = TensorView::Contiguous({4, 5});  // 20 elements of a 16-element tensor
  c.out.view = TensorView::Contiguous({4, 5});
  p.calls.push_back(c);
  p.outputs.push_back(PlanIO{"y", y, TensorView::Contiguous({16}), {16}});
  PlanBuffers(p);
  const Status s = ValidatePlan(p);
  PHX_CHECK(!s.ok() && s.message().find("overruns") != std::string::npos) << s.message();
}

PHX_TEST(validate_refuses_huge_strides_without_overflow) {
  Plan p;
  const int x = AddTensor(p, 16), y = AddTensor(p, 4);
  p.inputs.push_back(PlanIO{"x", x, TensorView::Contiguous({16}), {16}});
  PlanCall c = CopyCall(x, y, 4);
  c.in[0].view.strides[0] = int64_t{1} << 62;  // (4 - 1) * stride overflows int64
  p.calls.push_back(c);
  p.outputs.push_back(PlanIO{"y", y, TensorView::Contiguous({4}), {4}});
  PlanBuffers(p);
  PHX_CHECK(!ValidatePlan(p).ok());
}

PHX_TEST(validate_refuses_in_place_writes_and_bad_matmul_shapes) {
  Plan p;
  const int x = AddTensor(p, 12);
  p.inputs.push_back(PlanIO{"x", x, TensorView::Contiguous({12}), {12}});
  p.calls.push_back(CopyCall(x, x, 12));
  p.outputs.push_back(PlanIO{"x", x, TensorView::Contiguous({12}), {12}});
  PlanBuffers(p);
  PHX_CHECK(!ValidatePlan(p).ok());

  Plan m;
  const int a = AddTensor(m, 12), b = AddTensor(m, 12), c = AddTensor(m, 9);
  m.inputs.push_back(PlanIO{"a", a, TensorView::Contiguous({3, 4}), {3, 4}});
  m.inputs.push_back(PlanIO{"b", b, TensorView::Contiguous({4, 3}), {4, 3}});
  PlanCall mm;
  mm.call.params = MatMulParams{};
  mm.in[0] = {a, TensorView::Contiguous({3, 4})};
  mm.in[1] = {b, TensorView::Contiguous({3, 4})};  // [3, 4] where [4, 3] is needed
  mm.out = {c, TensorView::Contiguous({3, 3})};
  m.calls.push_back(mm);
  m.outputs.push_back(PlanIO{"c", c, TensorView::Contiguous({3, 3}), {3, 3}});
  PlanBuffers(m);
  const Status s = ValidatePlan(m);
  PHX_CHECK(!s.ok() && s.message().find("[M, K]") != std::string::npos) << s.message();
}

PHX_TEST(validate_refuses_overlapping_live_tensors) {
  Plan p;
  const int x = AddTensor(p, 1024), t = AddTensor(p, 1024), y = AddTensor(p, 1024);
  p.inputs.push_back(PlanIO{"x", x, TensorView::Contiguous({1024}), {1024}});
  p.calls.push_back(CopyCall(x, t, 1024));
  PlanCall add;
  add.call.params = BinaryParams{kernels::BinaryOp::kAdd};
  add.in[0] = {x, TensorView::Contiguous({1024})};
  add.in[1] = {t, TensorView::Contiguous({1024})};
  add.out = {y, TensorView::Contiguous({1024})};
  p.calls.push_back(add);
  p.outputs.push_back(PlanIO{"y", y, TensorView::Contiguous({1024}), {1024}});
  PlanBuffers(p);
  PHX_CHECK(ValidatePlan(p).ok());
  p.tensors[t].arena_offset = p.tensors[x].arena_offset;  // x is still read when t is written
  PHX_CHECK(!ValidatePlan(p).ok());
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
