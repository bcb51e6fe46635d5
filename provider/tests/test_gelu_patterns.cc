// GELU pattern matching (provider/patterns.cc): the Erf and Tanh forms exporters write, in any
// operand order and constant spelling, are found; look-alikes (an extra term, a wrong constant,
// a second transcendental) are not, whatever values they take on a sample range.
#include <cmath>

#include "common/testing.h"
#include "graph_builder.h"
#include "gelu/gelu.h"
#include "patterns.h"

using namespace phoenix;
using namespace phoenix::testing;

namespace {

// y = 0.5 * x * (1 + erf(x / sqrt 2)) built with the given spelling choices.
GraphView ErfGelu(bool div_form, bool half_first, bool x_last, double sqrt2 = std::sqrt(2.0), double half = 0.5) {
  GraphBuilder b;
  b.Input("x", {4, 8});
  b.Scalar("k", div_form ? sqrt2 : 1.0 / sqrt2);
  b.Scalar("one", 1.0);
  b.Scalar("half", half);
  b.Node(div_form ? "Div" : "Mul", {"x", "k"}, {"d"}, {4, 8});
  b.Node("Erf", {"d"}, {"e"}, {4, 8});
  b.Node("Add", {"one", "e"}, {"a"}, {4, 8});
  if (half_first) {
    b.Node("Mul", {"x", "half"}, {"h"}, {4, 8});
    b.Node("Mul", x_last ? std::vector<std::string>{"a", "h"} : std::vector<std::string>{"h", "a"}, {"y"}, {4, 8});
  } else {
    b.Node("Mul", x_last ? std::vector<std::string>{"a", "x"} : std::vector<std::string>{"x", "a"}, {"m"}, {4, 8});
    b.Node("Mul", {"m", "half"}, {"y"}, {4, 8});
  }
  b.Output("y");
  b.Finish();
  return b.g;
}

}  // namespace

PHX_TEST(erf_forms_in_any_order_are_found) {
  for (bool div_form : {true, false})
    for (bool half_first : {true, false})
      for (bool x_last : {true, false}) {
        GraphView g = ErfGelu(div_form, half_first, x_last);
        const auto m = FindGeluPatterns(g);
        PHX_CHECK(m.size() == 1 && m[0].nodes.size() == g.nodes.size() && m[0].x == g.FindValue("x") &&
                  m[0].y == g.FindValue("y"))
            << "div " << div_form << " half_first " << half_first << " x_last " << x_last;
      }
  // Constants as float32 or with a few digits still are GELU (relative 1e-5).
  PHX_CHECK(FindGeluPatterns(ErfGelu(true, false, false, static_cast<float>(std::sqrt(2.0)))).size() == 1);
}

PHX_TEST(wrong_constants_are_not_gelu) {
  PHX_CHECK(FindGeluPatterns(ErfGelu(true, false, false, 1.5)).empty());
  PHX_CHECK(FindGeluPatterns(ErfGelu(true, false, false, std::sqrt(2.0), 0.6)).empty());
}

PHX_TEST(tanh_form_with_pow_or_products_is_found) {
  for (bool pow_form : {true, false}) {
    GraphBuilder b;
    b.Input("x", {2, 3});
    b.Scalar("c", 0.044715);
    b.Scalar("k", std::sqrt(2.0 / M_PI));
    b.Scalar("one", 1.0);
    b.Scalar("half", 0.5);
    b.Scalar("three", 3.0);
    if (pow_form) {
      b.Node("Pow", {"x", "three"}, {"x3"}, {2, 3});
    } else {
      b.Node("Mul", {"x", "x"}, {"x2"}, {2, 3});
      b.Node("Mul", {"x2", "x"}, {"x3"}, {2, 3});
    }
    b.Node("Mul", {"x3", "c"}, {"cx3"}, {2, 3});
    b.Node("Add", {"x", "cx3"}, {"inner"}, {2, 3});
    b.Node("Mul", {"inner", "k"}, {"arg"}, {2, 3});
    b.Node("Tanh", {"arg"}, {"t"}, {2, 3});
    b.Node("Add", {"t", "one"}, {"a"}, {2, 3});
    b.Node("Mul", {"x", "a"}, {"m"}, {2, 3});
    b.Node("Mul", {"m", "half"}, {"y"}, {2, 3});
    b.Output("y");
    GraphView& g = b.Finish();
    const auto m = FindGeluPatterns(g);
    PHX_CHECK(m.size() == 1 && m[0].mode == static_cast<int>(kernels::GeluMode::kTanh)) << "pow " << pow_form;
  }
}

PHX_TEST(an_extra_term_that_vanishes_on_a_sample_range_is_not_gelu) {
  // erf(x / sqrt2 + 1e-21 x^20): below 4e-6 on [-6, 6], decisive for |x| >= 13.
  GraphBuilder b;
  b.Input("x", {4, 8});
  b.Scalar("s2", std::sqrt(2.0));
  b.Scalar("p", 20.0);
  b.Scalar("tiny", 1e-21);
  b.Scalar("one", 1.0);
  b.Scalar("half", 0.5);
  b.Node("Div", {"x", "s2"}, {"d0"}, {4, 8});
  b.Node("Pow", {"x", "p"}, {"x20"}, {4, 8});
  b.Node("Mul", {"x20", "tiny"}, {"t"}, {4, 8});
  b.Node("Add", {"d0", "t"}, {"d"}, {4, 8});
  b.Node("Erf", {"d"}, {"e"}, {4, 8});
  b.Node("Add", {"e", "one"}, {"a"}, {4, 8});
  b.Node("Mul", {"x", "a"}, {"m"}, {4, 8});
  b.Node("Mul", {"m", "half"}, {"y"}, {4, 8});
  b.Output("y");
  GraphView& g = b.Finish();
  for (const GeluMatch& m : FindGeluPatterns(g))  // a GELU over fewer nodes would be genuine; none may include t
    for (int n : m.nodes) PHX_CHECK(g.nodes[n].outputs[0] != g.FindValue("t") && g.nodes[n].outputs[0] != g.FindValue("y"));
}

PHX_TEST(an_intermediate_read_outside_blocks_the_match) {
  GraphView g = ErfGelu(true, false, false);
  g.values[g.FindValue("e")].is_graph_output = true;  // erf's output is also a model output
  PHX_CHECK(FindGeluPatterns(g).empty());
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
