// GetCapability's logic: which nodes the provider can run exactly, and how they group into
// regions (connected, convex sets of supported nodes, each fused into one compiled node).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "graph_view.h"
#include "patterns.h"

namespace phoenix {

struct CapabilityResult {
  std::vector<std::vector<int>> regions;  // node indices per region, ascending
  std::vector<std::string> reasons;       // per node: "" when claimed, else why it is left to the CPU EP
};

// Why `node` cannot run on the provider, or "" when it can; `values` holds the integer contents
// known so far (constants, shape arithmetic) and receives the node's. Nodes inside a GELU
// pattern are judged by the pattern, not here.
std::string WhyUnsupported(const GraphView& g, const GNode& node, std::vector<std::optional<Shape>>* values);

// True for the ops that do the work (a region of only glue ops is left to the CPU EP: it
// would only add BF16 rounding and a copy).
bool IsComputeOp(const GNode& node);

CapabilityResult FindRegions(const GraphView& g, const std::vector<GeluMatch>& gelus);

// What the provider took of a graph, node by node, as JSON: {"graph", "nodes", "claimed",
// "regions", "per_node": [{"name", "op", "region", "reason"}]}.
std::string CapabilityReportJson(const GraphView& g, const CapabilityResult& r, const std::string& graph_name);
// One line for the session log when the provider took fewer float nodes of ops it supports than
// the graph has (how many, and the first reason per op type), or "" when it took them all.
std::string CapabilityShortfall(const GraphView& g, const CapabilityResult& r);

// The last reports of this process (newest last), for phoenix_npu.capability_reports().
void RecordCapabilityReport(std::string json);
std::string CapabilityReportsJson();

}  // namespace phoenix
