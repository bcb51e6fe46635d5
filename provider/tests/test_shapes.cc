// Shape inference over a region at concrete shapes (provider/lowering.cc InferRegionShapes and
// the op families): Reshape with 0 / -1 and symbolic counts, shape arithmetic evaluated from the
// run's shapes, a 1-D Conv's length, and the errors a malformed model or input gets.
#include "common/testing.h"
#include "graph_builder.h"
#include "lowering.h"

using namespace phoenix;
using namespace phoenix::testing;

namespace {

RegionGraph Region(GraphBuilder& b, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
  RegionGraph r;
  r.name = "test";
  r.graph = b.Finish();
  for (const auto& n : inputs) r.inputs.push_back(r.graph.FindValue(n));
  for (const auto& n : outputs) r.outputs.push_back(r.graph.FindValue(n));
  return r;
}

}  // namespace

PHX_TEST(reshape_with_zero_and_minus_one_follows_the_run_shape) {
  GraphBuilder b;
  const int64_t batch = b.g.Symbol("batch"), seq = b.g.Symbol("seq");
  b.Input("x", {batch, seq, 8});
  b.Const("target", {3}, {0, -1, 4}, GraphBuilder::kI64);
  b.Node("Reshape", {"x", "target"}, {"y"}, {batch, kDynamicDim, 4});
  RegionGraph r = Region(b, {"x"}, {"y"});
  ShapeMap shapes;
  PHX_CHECK(InferRegionShapes(r, {{3, 5, 8}}, &shapes).ok());
  PHX_CHECK(shapes[r.graph.FindValue("y")] == Shape({3, 10, 4}));
  // 5 * 6 elements per batch item are not a multiple of 4: the run fails with the reason.
  GraphBuilder b2;
  b2.Input("x", {batch, seq, 6});
  b2.Const("target", {3}, {0, -1, 4}, GraphBuilder::kI64);
  b2.Node("Reshape", {"x", "target"}, {"y"}, {batch, kDynamicDim, 4});
  RegionGraph r2 = Region(b2, {"x"}, {"y"});
  const Status s = InferRegionShapes(r2, {{1, 5, 6}}, &shapes);
  PHX_CHECK(!s.ok() && s.message().find("Reshape") != std::string::npos) << s.message();
}

PHX_TEST(shape_arithmetic_is_evaluated_from_the_run_shape) {
  GraphBuilder b;
  const int64_t batch = b.g.Symbol("batch");
  b.Input("x", {batch, 6, 8});
  b.Const("zero", {}, {0}, GraphBuilder::kI64);
  b.Const("axes", {1}, {0}, GraphBuilder::kI64);
  b.Const("rest", {3}, {-1, 2, 4}, GraphBuilder::kI64);
  b.Node("Shape", {"x"}, {"shp"}, {3}, GraphBuilder::kI64);
  b.Node("Gather", {"shp", "zero"}, {"n"}, {}, GraphBuilder::kI64);
  b.Node("Unsqueeze", {"n", "axes"}, {"n1"}, {1}, GraphBuilder::kI64);
  b.Node("Concat", {"n1", "rest"}, {"target"}, {4}, GraphBuilder::kI64).attributes["axis"] = Attribute{Attribute::kInt, 0};
  b.Node("Reshape", {"x", "target"}, {"y"}, {batch, 6, 2, 4});
  RegionGraph r = Region(b, {"x"}, {"y"});
  ShapeMap shapes;
  for (int64_t n : {1, 7}) {
    const Status s = InferRegionShapes(r, {{n, 6, 8}}, &shapes);
    PHX_CHECK(s.ok()) << s.message();
    PHX_CHECK(shapes[r.graph.FindValue("y")] == Shape({n, 6, 2, 4}));
  }
}

PHX_TEST(conv_output_length_and_declared_shape_check) {
  GraphBuilder b;
  const int64_t frames = b.g.Symbol("frames");
  b.Input("x", {1, 4, frames});
  b.Const("w", {6, 4, 3}, std::vector<double>(72, 0.1));
  GNode& c = b.Node("Conv", {"x", "w"}, {"y"}, {1, 6, kDynamicDim});
  GraphBuilder::SetInts(c, "pads", {1, 1});
  GraphBuilder::SetInts(c, "strides", {2});
  RegionGraph r = Region(b, {"x"}, {"y"});
  ShapeMap shapes;
  PHX_CHECK(InferRegionShapes(r, {{1, 4, 3000}}, &shapes).ok());
  PHX_CHECK(shapes[r.graph.FindValue("y")] == Shape({1, 6, 1500}));
  // A declared static dim that the op contradicts is an error, not trusted.
  r.graph.values[r.graph.FindValue("y")].shape = {1, 6, 1499};
  PHX_CHECK(!InferRegionShapes(r, {{1, 4, 3000}}, &shapes).ok());
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
