// GetCapability's logic: which nodes the provider can run exactly, and how they group into
// regions (connected, convex sets of supported nodes, each fused into one compiled node).
#pragma once

#include <string>
#include <vector>

#include "graph_view.h"

namespace phoenix {

struct CapabilityResult {
  std::vector<std::vector<int>> regions;  // node indices per region, ascending
  std::vector<std::string> rejected;      // "NodeName (Op): reason" for float nodes not claimed
};

// Why `node` cannot run on the provider, or "" when it can. Nodes inside a GELU pattern are
// judged by the pattern, not here.
std::string WhyUnsupported(const GraphView& g, const GNode& node);

// True for the ops that do the work (a region of only glue ops is left to the CPU EP: it
// would only add BF16 rounding and a copy).
bool IsComputeOp(const GNode& node);

CapabilityResult FindRegions(const GraphView& g);

}  // namespace phoenix
