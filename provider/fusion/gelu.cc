// Fusion: a GELU written out as Erf / Tanh arithmetic (patterns.cc found and proved it) becomes
// one unit, lowered as one Gelu kernel call, or absorbed by a MatMul chain's epilogue.
#include "fusion/units.h"

namespace phoenix {

void FuseGeluPatterns(const GraphView& g, const std::vector<GeluMatch>& matches, UnitPlan* plan) {
  for (const GeluMatch& m : matches) {
    bool free = true;
    for (int n : m.nodes) free &= plan->Free(n);
    if (!free) continue;
    Unit u;
    u.kind = Unit::kGeluPattern;
    u.nodes = m.nodes;
    u.head = m.nodes.back();
    u.output = m.y;
    u.gelu = m;
    plan->Add(std::move(u));
  }
  (void)g;
}

int SoleConsumer(const GraphView& g, int v) {
  if (v < 0) return -1;
  const GValue& gv = g.value(v);
  return gv.consumers.size() == 1 && !gv.is_graph_output ? gv.consumers[0] : -1;
}

}  // namespace phoenix
