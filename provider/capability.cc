#include "capability.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <map>
#include <mutex>
#include <set>

#include "counters.h"
#include "ops/op.h"
#include "patterns.h"

namespace phoenix {
namespace {

// A dynamic-size bitset over node indices.
struct Bits {
  std::vector<uint64_t> w;
  explicit Bits(size_t n = 0) : w((n + 63) / 64, 0) {}
  void set(int i) { w[i >> 6] |= 1ull << (i & 63); }
  bool test(int i) const { return (w[i >> 6] >> (i & 63)) & 1; }
  void operator|=(const Bits& o) { for (size_t i = 0; i < w.size(); ++i) w[i] |= o.w[i]; }
  // (a & b & ~c) is non-empty
  static bool AnyAndNot(const Bits& a, const Bits& b, const Bits& c) {
    for (size_t i = 0; i < a.w.size(); ++i) if (a.w[i] & b.w[i] & ~c.w[i]) return true;
    return false;
  }
};

}  // namespace

bool IsComputeOp(const GNode& n) {
  static const std::set<std::string> kCompute = {"LayerNormalization", "MatMul", "Gemm", "Softmax", "Conv",
                                                 "Gelu", "Erf", "Tanh"};
  return n.domain.empty() && kCompute.count(n.op_type) > 0;
}

// The shape facts every claimed tensor must have: a known rank a view holds, no static dim of
// 0, and a static part far from overflow. Symbolic dims are allowed (the op family says which
// dims must be static); they become concrete when a plan is built for a run's shapes.
std::string CheckTensorShape(const GraphView& g, int v, const std::string& what) {
  const GValue& gv = g.value(v);
  if (!gv.has_shape) return what + " has no known shape";
  if (static_cast<int>(gv.shape.size()) > kMaxViewRank)
    return what + " has rank " + std::to_string(gv.shape.size()) + " (at most " + std::to_string(kMaxViewRank) + ")";
  Shape static_part;
  for (int64_t d : gv.shape)
    if (IsStaticDim(d)) static_part.push_back(d);
  int64_t count = 0;
  if (!CheckedNumElements(static_part, &count)) return what + " is too large";
  if (count == 0) return what + " is empty";
  return "";
}

// Declared and computed shapes agree wherever both are static.
bool Agree(const Shape& declared, const Shape& computed) {
  if (declared.size() != computed.size()) return false;
  for (size_t d = 0; d < declared.size(); ++d)
    if (IsStaticDim(declared[d]) && IsStaticDim(computed[d]) && declared[d] != computed[d]) return false;
  return true;
}

std::string WhyUnsupported(const GraphView& g, const GNode& n, std::vector<std::optional<Shape>>* values) {
  if (!n.domain.empty()) return "domain " + n.domain + " is not supported";
  const OpFamily* family = FindOpFamily(g, n);
  if (family == nullptr) return "op " + n.op_type + " is not supported";
  if (std::string why = family->why_unsupported(g, n); !why.empty()) return why;
  NodeShapes io;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const int v = n.inputs[i];
    io.in.emplace_back();
    io.in_values.emplace_back();
    if (v < 0) continue;
    if (IsF32(g, v))
      if (std::string why = CheckTensorShape(g, v, "input " + std::to_string(i)); !why.empty()) return why;
    if (!g.value(v).has_shape) return "input " + std::to_string(i) + " has no shape";
    io.in.back() = g.value(v).shape;
    io.in_values.back() = (*values)[v];
  }
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && IsUsed(g, n.outputs[i]) && IsF32(g, n.outputs[i]))
      if (std::string why = CheckTensorShape(g, n.outputs[i], "output " + std::to_string(i)); !why.empty()) return why;
  // Never trust the declared output shapes: compute them, and refuse a node that disagrees.
  if (Status s = family->infer_shapes(g, n, &io); !s.ok()) return s.message();
  for (size_t i = 0; i < n.outputs.size() && i < io.out.size(); ++i) {
    const int v = n.outputs[i];
    if (v < 0) continue;
    if (i < io.out_values.size()) (*values)[v] = io.out_values[i];
    if (!IsUsed(g, v) || !g.value(v).has_shape) continue;
    if (!Agree(g.value(v).shape, io.out[i]))
      return "the model declares output " + std::to_string(i) + " as " + ShapeToString(g.value(v).shape) +
             " but the op gives " + ShapeToString(io.out[i]);
  }
  return "";
}

namespace {

// Groups units (node lists, each claimed or left as a whole) into maximal convex regions: a
// unit joins a region of one of its producers when no path leaves the union and re-enters it.
std::vector<std::vector<int>> FormRegions(const GraphView& g, const std::vector<std::vector<int>>& units) {
  const int N = static_cast<int>(g.nodes.size());
  // Descendants and ancestors of every node (nodes are in topological order).
  std::vector<Bits> desc(N, Bits(N)), anc(N, Bits(N));
  for (int i = N - 1; i >= 0; --i)
    for (int o : g.nodes[i].outputs)
      if (o >= 0) for (int c : g.value(o).consumers) { desc[i].set(c); desc[i] |= desc[c]; }
  for (int i = 0; i < N; ++i)
    for (int in : g.nodes[i].inputs)
      if (in >= 0 && g.value(in).producer >= 0) {
        int p = g.value(in).producer;
        anc[i].set(p);
        anc[i] |= anc[p];
      }

  struct Region {
    Bits members, desc, anc;
    std::vector<int> nodes;
    bool alive = true;
  };
  std::vector<Region> regions;
  std::vector<int> region_of(N, -1);
  // A set is convex (fusable without creating a cycle) when no node outside it is both a
  // descendant and an ancestor of its members.
  auto convex_union = [&](const std::vector<int>& rs, const std::vector<int>& extra) {
    Bits m(N), d(N), a(N);
    for (int r : rs) { m |= regions[r].members; d |= regions[r].desc; a |= regions[r].anc; }
    for (int i : extra) { m.set(i); d |= desc[i]; a |= anc[i]; }
    return !Bits::AnyAndNot(d, a, m);
  };

  // Visit units in topological order of their last node.
  std::vector<int> order(units.size());
  for (size_t u = 0; u < units.size(); ++u) order[u] = static_cast<int>(u);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return units[a].back() < units[b].back(); });
  for (int u : order) {
    const std::vector<int>& un = units[u];
    std::vector<int> cand;
    for (int ni : un)
      for (int in : g.nodes[ni].inputs) {
        if (in < 0) continue;
        int p = g.value(in).producer;
        if (p >= 0 && region_of[p] >= 0 && std::find(cand.begin(), cand.end(), region_of[p]) == cand.end())
          cand.push_back(region_of[p]);
      }
    int target = -1;
    if (!cand.empty() && convex_union(cand, un)) {
      target = cand[0];
      for (size_t k = 1; k < cand.size(); ++k) {  // merge the others into the first
        Region& src = regions[cand[k]];
        for (int ni : src.nodes) region_of[ni] = target;
        regions[target].nodes.insert(regions[target].nodes.end(), src.nodes.begin(), src.nodes.end());
        regions[target].members |= src.members;
        regions[target].desc |= src.desc;
        regions[target].anc |= src.anc;
        src.alive = false;
      }
    } else {
      std::sort(cand.begin(), cand.end(), [&](int a, int b) { return regions[a].nodes.size() > regions[b].nodes.size(); });
      for (int r : cand) if (convex_union({r}, un)) { target = r; break; }
    }
    if (target < 0) {
      target = static_cast<int>(regions.size());
      regions.push_back(Region{Bits(N), Bits(N), Bits(N), {}, true});
    }
    Region& r = regions[target];
    for (int ni : un) {
      region_of[ni] = target;
      r.nodes.push_back(ni);
      r.members.set(ni);
      r.desc |= desc[ni];
      r.anc |= anc[ni];
    }
  }
  std::vector<std::vector<int>> out;
  for (Region& r : regions) {
    if (!r.alive) continue;
    std::sort(r.nodes.begin(), r.nodes.end());
    out.push_back(std::move(r.nodes));
  }
  return out;
}

// Values that stay inside the provider: its regions take and give float32 activations only, so
// integer tensors (shape arithmetic, quantized activations) and the constants it folds out of
// DequantizeLinear nodes never cross a region boundary.
bool StaysInside(const GraphView& g, int v) {
  if (v < 0) return false;
  const GValue& gv = g.value(v);
  if (gv.dequantized) return true;
  return !gv.is_constant && gv.dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

}  // namespace

CapabilityResult FindRegions(const GraphView& g, const std::vector<GeluMatch>& gelus) {
  CapabilityResult result;
  const int N = static_cast<int>(g.nodes.size());
  std::vector<std::string> excluded(N);  // nodes a region check ruled out, with the reason
  // Shape values stay inside the provider: a region never takes or gives an integer tensor.
  // Excluding a node can break another region's shape chain, so this settles in a few rounds.
  for (int round = 0; round < 16; ++round) {
    result = CapabilityResult{};
    result.reasons.assign(N, "");
    if (N == 0) return result;
    std::vector<std::optional<Shape>> values(g.values.size());  // integer contents known before the run
    for (size_t v = 0; v < g.values.size(); ++v)
      if (g.values[v].is_constant)
        values[v] = ShapeValueOfConstant(g, static_cast<int>(v));

    // Units: a GELU pattern is one unit; every other supported node is a unit of its own.
    std::vector<int> unit_of(N, -1);
    std::vector<std::vector<int>> units;
    for (const GeluMatch& m : gelus) {
      // The pattern's own input and output must pass the same checks as any node's.
      const GValue& x = g.value(m.x);
      const GValue& y = g.value(m.y);
      std::string why = !IsF32(g, m.x) || !IsF32(g, m.y) ? "not float32" : CheckTensorShape(g, m.x, "input");
      if (why.empty()) why = CheckTensorShape(g, m.y, "output");
      if (why.empty() && !Agree(y.shape, x.shape)) why = "output shape differs from the input's";
      for (int ni : m.nodes)
        if (why.empty() && !excluded[ni].empty()) why = excluded[ni];
      if (!why.empty()) {
        for (int ni : m.nodes) result.reasons[ni] = "GELU pattern: " + why;
        continue;
      }
      for (int ni : m.nodes) unit_of[ni] = static_cast<int>(units.size());
      units.push_back(m.nodes);
    }
    for (int i = 0; i < N; ++i) {
      if (unit_of[i] >= 0 || !result.reasons[i].empty()) continue;
      std::string why = excluded[i].empty() ? WhyUnsupported(g, g.nodes[i], &values) : excluded[i];
      if (why.empty()) {
        unit_of[i] = static_cast<int>(units.size());
        units.push_back({i});
      } else {
        result.reasons[i] = why;
      }
    }

    bool changed = false;
    for (std::vector<int>& nodes : FormRegions(g, units)) {
      std::vector<bool> inside(N, false);
      for (int ni : nodes) inside[ni] = true;
      bool has_compute = false;
      for (int ni : nodes) {
        has_compute |= IsComputeOp(g.nodes[ni]);
        for (int o : g.nodes[ni].outputs) {
          if (!StaysInside(g, o)) continue;
          bool outside = g.value(o).is_graph_output;
          for (int c : g.value(o).consumers) outside |= !inside[c];
          if (outside && excluded[ni].empty()) {
            excluded[ni] = "its integer (or dequantized constant) result is also used outside the provider's region";
            changed = true;
          }
        }
        for (int in : g.nodes[ni].inputs) {
          if (!StaysInside(g, in)) continue;
          const int p = g.value(in).producer;
          if ((p < 0 || !inside[p]) && excluded[ni].empty()) {
            excluded[ni] = "its integer (or dequantized constant) input is computed outside the provider's region";
            changed = true;
          }
        }
      }
      if (!has_compute) {
        for (int ni : nodes) result.reasons[ni] = "only glue ops around it (no gain from the NPU)";
        continue;
      }
      result.regions.push_back(std::move(nodes));
    }
    if (!changed) return result;
  }
  return result;
}

int TokenEmbeddingLookup(const GraphView& g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const GNode& n = g.nodes[i];
    if (n.op_type != "Gather" || !n.domain.empty() || n.inputs.size() != 2 || n.inputs[0] < 0 || n.inputs[1] < 0) continue;
    const GValue& table = g.value(n.inputs[0]);
    const GValue& ids = g.value(n.inputs[1]);
    const bool integer_ids = ids.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || ids.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    // Rows of a float table picked by ids known only at run time (exporters reshape the graph's
    // input_ids first; in a merged decoder the table is an outer-scope value of the If branch).
    if (table.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && table.has_shape && table.shape.size() == 2 && integer_ids &&
        !ids.is_constant)
      return static_cast<int>(i);
  }
  return -1;
}

CapabilityResult DeclineGraph(const GraphView& g, const std::string& reason) {
  CapabilityResult r;
  r.reasons.assign(g.nodes.size(), reason);
  return r;
}

std::string CapabilityReportJson(const GraphView& g, const CapabilityResult& r, const std::string& graph_name) {
  std::vector<int> region_of(g.nodes.size(), -1);
  for (size_t k = 0; k < r.regions.size(); ++k)
    for (int ni : r.regions[k]) region_of[ni] = static_cast<int>(k);
  size_t claimed = 0;
  for (int x : region_of) claimed += x >= 0;
  std::string s = "{\"graph\":\"" + EscapeJson(graph_name) + "\",\"nodes\":" + std::to_string(g.nodes.size()) +
                  ",\"claimed\":" + std::to_string(claimed) + ",\"regions\":" + std::to_string(r.regions.size()) +
                  ",\"per_node\":[";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    s += std::string(i ? "," : "") + "{\"name\":\"" + EscapeJson(g.nodes[i].name) + "\",\"op\":\"" +
         EscapeJson(g.nodes[i].op_type) + "\",\"region\":" + std::to_string(region_of[i]) + ",\"reason\":\"" +
         EscapeJson(region_of[i] >= 0 ? "" : r.reasons[i]) + "\"}";
  }
  return s + "]}";
}

std::string CapabilityShortfall(const GraphView& g, const CapabilityResult& r) {
  size_t taken = 0, candidates = 0;
  std::map<std::string, std::pair<std::string, int>> first_reason;  // op -> (reason, nodes)
  std::vector<bool> claimed(g.nodes.size(), false);
  for (const auto& region : r.regions)
    for (int ni : region) claimed[ni] = true;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const GNode& n = g.nodes[i];
    bool float_data = false;  // shape arithmetic on int64 is not the provider's business
    for (int v : n.inputs) float_data |= IsF32(g, v);
    const bool supported_op = FindOpFamily(g, n) != nullptr || (n.domain.empty() && (n.op_type == "Erf" || n.op_type == "Tanh"));
    if (!supported_op || !float_data) continue;
    ++candidates;
    if (claimed[i]) {
      ++taken;
      continue;
    }
    auto& entry = first_reason[n.op_type];
    if (entry.second++ == 0) entry.first = r.reasons[i];
  }
  if (taken == candidates) return "";
  std::string s = "PhoenixNPU took " + std::to_string(taken) + " of " + std::to_string(candidates) +
                  " float nodes of ops it supports (" + std::to_string(g.nodes.size()) + " nodes in the graph); left to the CPU EP: ";
  bool first = true;
  for (const auto& [op, reason] : first_reason) {
    s += std::string(first ? "" : "; ") + op + " x" + std::to_string(reason.second) + ": " + reason.first;
    first = false;
  }
  return s;
}

namespace {
std::mutex g_reports_mutex;
std::deque<std::string> g_reports;
constexpr size_t kReportsKept = 16;
}  // namespace

void RecordCapabilityReport(std::string json) {
  std::lock_guard<std::mutex> lk(g_reports_mutex);
  g_reports.push_back(std::move(json));
  while (g_reports.size() > kReportsKept) g_reports.pop_front();
}

std::string CapabilityReportsJson() {
  std::lock_guard<std::mutex> lk(g_reports_mutex);
  std::string s = "[";
  for (size_t i = 0; i < g_reports.size(); ++i) s += (i ? "," : "") + g_reports[i];
  return s + "]";
}

}  // namespace phoenix
