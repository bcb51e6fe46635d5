// Region finding (provider/capability.cc) on hand-built graphs: convex regions only, glue-only
// regions left to the CPU EP, integer values never crossing a region boundary, and the reasons
// for what is not claimed.
#include <algorithm>

#include "capability.h"
#include "common/testing.h"
#include "graph_builder.h"
#include "patterns.h"

using namespace phoenix;
using namespace phoenix::testing;

namespace {

CapabilityResult Find(GraphView& g) { return FindRegions(g, FindGeluPatterns(g)); }

const std::string& Reason(const GraphView& g, const CapabilityResult& r, const std::string& op) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].op_type == op) return r.reasons[i];
  static const std::string none = "<no such node>";
  return none;
}

}  // namespace

PHX_TEST(unsupported_node_splits_regions_without_a_cycle) {
  // m1 = x W; r = Relu(m1) (CPU); m2 = r W; y = m1 + m2. Fusing m1 and m2 would need Relu inside.
  GraphBuilder b;
  b.Input("x", {4, 8});
  b.Const("W", {8, 8}, std::vector<double>(64, 0.1));
  b.Node("MatMul", {"x", "W"}, {"m1"}, {4, 8});
  b.Node("Relu", {"m1"}, {"r"}, {4, 8});
  b.Node("MatMul", {"r", "W"}, {"m2"}, {4, 8});
  b.Node("Add", {"m1", "m2"}, {"y"}, {4, 8});
  b.Output("y");
  GraphView& g = b.Finish();
  const CapabilityResult r = Find(g);
  PHX_CHECK(r.regions.size() == 2) << r.regions.size() << " regions";
  for (const auto& region : r.regions) {
    // No path may leave the region and come back: the relu must not sit between two members.
    const bool has_m1 = std::count_if(region.begin(), region.end(), [&](int n) { return g.nodes[n].outputs[0] == g.FindValue("m1"); });
    const bool has_y = std::count_if(region.begin(), region.end(), [&](int n) { return g.nodes[n].outputs[0] == g.FindValue("y"); });
    PHX_CHECK(!(has_m1 && has_y));
  }
  PHX_CHECK(Reason(g, r, "Relu").find("not supported") != std::string::npos);
}

PHX_TEST(glue_only_region_is_left_to_the_cpu) {
  GraphBuilder b;
  b.Input("x", {3, 5});
  GNode& t = b.Node("Transpose", {"x"}, {"t"}, {5, 3});
  GraphBuilder::SetInts(t, "perm", {1, 0});
  b.Node("Add", {"t", "t"}, {"y"}, {5, 3});
  b.Output("y");
  GraphView& g = b.Finish();
  const CapabilityResult r = Find(g);
  PHX_CHECK(r.regions.empty());
  PHX_CHECK(Reason(g, r, "Add").find("glue") != std::string::npos);
}

PHX_TEST(declared_shapes_are_not_trusted) {
  GraphBuilder b;
  b.Input("x", {1, 4});
  b.Const("W", {4, 4}, std::vector<double>(16, 0.5));
  b.Const("target", {2}, {1024, 4}, GraphBuilder::kI64);
  b.Node("MatMul", {"x", "W"}, {"m"}, {1, 4});
  b.Node("Reshape", {"m", "target"}, {"r"}, {1024, 4});
  b.Node("Softmax", {"r"}, {"y"}, {1024, 4});
  b.Output("y");
  GraphView& g = b.Finish();
  const CapabilityResult r = Find(g);
  PHX_CHECK(Reason(g, r, "Reshape").find("element counts") != std::string::npos) << Reason(g, r, "Reshape");
}

PHX_TEST(rank_above_eight_is_refused) {
  GraphBuilder b;
  const Shape s(9, 2);
  b.Input("x", s);
  b.Node("Softmax", {"x"}, {"y"}, s);
  b.Output("y");
  GraphView& g = b.Finish();
  const CapabilityResult r = Find(g);
  PHX_CHECK(r.regions.empty());
  PHX_CHECK(Reason(g, r, "Softmax").find("rank 9") != std::string::npos) << Reason(g, r, "Softmax");
}

PHX_TEST(shape_arithmetic_joins_the_region_unless_its_value_leaves_it) {
  for (bool leaks : {false, true}) {
    GraphBuilder b;
    const int64_t sym = b.g.Symbol("batch");
    b.Input("x", {sym, 6, 8});
    b.Const("W", {8, 8}, std::vector<double>(64, 0.1));
    b.Const("zero", {}, {0}, GraphBuilder::kI64);
    b.Const("axes", {1}, {0}, GraphBuilder::kI64);
    b.Const("rest", {3}, {-1, 2, 4}, GraphBuilder::kI64);
    b.Node("MatMul", {"x", "W"}, {"q"}, {sym, 6, 8});
    b.Node("Shape", {"x"}, {"shp"}, {3}, GraphBuilder::kI64);
    b.Node("Gather", {"shp", "zero"}, {"n"}, {}, GraphBuilder::kI64);
    b.Node("Unsqueeze", {"n", "axes"}, {"n1"}, {1}, GraphBuilder::kI64);
    b.Node("Concat", {"n1", "rest"}, {"target"}, {4}, GraphBuilder::kI64).attributes["axis"] = Attribute{Attribute::kInt, 0};
    b.Node("Reshape", {"q", "target"}, {"h"}, {sym, 6, 2, 4});
    b.Node("Softmax", {"h"}, {"y"}, {sym, 6, 2, 4});
    b.Output("y");
    if (leaks) b.Output("target");
    GraphView& g = b.Finish();
    const CapabilityResult r = Find(g);
    PHX_CHECK(Reason(g, r, "Softmax").empty());
    if (!leaks) {
      PHX_CHECK(r.regions.size() == 1 && r.regions[0].size() == g.nodes.size()) << r.regions.size();
    } else {
      PHX_CHECK(Reason(g, r, "Concat").find("outside") != std::string::npos) << Reason(g, r, "Concat");
      PHX_CHECK(!Reason(g, r, "Reshape").empty());  // its target is no longer known inside a region
    }
  }
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
