// Multi-node patterns the provider runs as one kernel. Today: GELU as exported below opset 20
// (the Erf form torch writes, and the tanh form), in any operand order. A candidate subgraph
// is found structurally around its Erf / Tanh node and then CONFIRMED SYMBOLICALLY: its nodes
// are evaluated as polynomials in x and E = erf(.) or tanh(.), and the result must be exactly
// x/2 + x E/2 with GELU's argument (constants to 1e-5). One check covers every operand order and
// constant spelling (Div by sqrt(2) or Mul by 1/sqrt(2), x*x*x or Pow(x, 3), ...), and it holds
// for every x, not only where samples were taken.
#pragma once

#include <vector>

#include "graph_view.h"

namespace phoenix {

struct GeluMatch {
  std::vector<int> nodes;  // node indices in the GraphView, ascending
  int x = -1;              // input value
  int y = -1;              // output value
  int mode = 0;            // kernels::GeluMode
};

std::vector<GeluMatch> FindGeluPatterns(const GraphView& g);

}  // namespace phoenix
