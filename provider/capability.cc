#include "capability.h"

#include <algorithm>
#include <cstdint>
#include <set>

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

// The shape facts every claimed tensor must have: static, not empty, of a rank a view holds,
// with an element count far from overflow.
std::string CheckTensorShape(const GraphView& g, int v, const std::string& what) {
  const GValue& gv = g.value(v);
  if (!gv.IsStatic()) return what + " has a dynamic shape";
  if (static_cast<int>(gv.shape.size()) > kMaxViewRank)
    return what + " has rank " + std::to_string(gv.shape.size()) + " (at most " + std::to_string(kMaxViewRank) + ")";
  int64_t count = 0;
  if (!CheckedNumElements(gv.shape, &count)) return what + " is too large";
  if (count == 0) return what + " is empty";
  return "";
}

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (!n.domain.empty()) return "domain " + n.domain + " is not supported";
  const OpFamily* family = FindOpFamily(n);
  if (family == nullptr) return "op " + n.op_type + " is not supported";
  if (std::string why = family->why_unsupported(g, n); !why.empty()) return why;
  std::vector<Shape> inputs;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const int v = n.inputs[i];
    if (v < 0) {
      inputs.emplace_back();
      continue;
    }
    if (IsF32(g, v))
      if (std::string why = CheckTensorShape(g, v, "input " + std::to_string(i)); !why.empty()) return why;
    if (!g.value(v).has_shape) return "input " + std::to_string(i) + " has no shape";
    inputs.push_back(g.value(v).shape);
  }
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && IsUsed(g, n.outputs[i]))
      if (std::string why = CheckTensorShape(g, n.outputs[i], "output " + std::to_string(i)); !why.empty()) return why;
  // Never trust the declared output shapes: compute them, and refuse a node that disagrees.
  std::vector<Shape> computed;
  if (Status s = family->infer_shapes(g, n, inputs, &computed); !s.ok()) return s.message();
  for (size_t i = 0; i < n.outputs.size() && i < computed.size(); ++i) {
    if (n.outputs[i] < 0 || !IsUsed(g, n.outputs[i])) continue;
    if (g.value(n.outputs[i]).shape != computed[i])
      return "the model declares output " + std::to_string(i) + " as " + ShapeToString(g.value(n.outputs[i]).shape) +
             " but the op gives " + ShapeToString(computed[i]);
  }
  return "";
}

CapabilityResult FindRegions(const GraphView& g) {
  CapabilityResult result;
  const int N = static_cast<int>(g.nodes.size());
  if (N == 0) return result;

  // Units: a GELU pattern is one unit; every other supported node is a unit of its own.
  std::vector<int> unit_of(N, -1);
  std::vector<std::vector<int>> units;
  for (const GeluMatch& m : FindGeluPatterns(g)) {
    // The pattern's own input and output must pass the same checks as any node's: float32,
    // static, not empty (a decoder's GELU has a dynamic sequence length).
    const GValue& x = g.value(m.x);
    const GValue& y = g.value(m.y);
    std::string why = !IsF32(g, m.x) || !IsF32(g, m.y) ? "not float32" : CheckTensorShape(g, m.x, "input");
    if (why.empty()) why = CheckTensorShape(g, m.y, "output");
    if (why.empty() && x.shape != y.shape) why = "output shape differs from the input's";
    if (!why.empty()) {
      result.rejected.push_back(g.nodes[m.nodes.back()].name + " (GELU pattern): " + why);
      continue;
    }
    for (int ni : m.nodes) unit_of[ni] = static_cast<int>(units.size());
    units.push_back(m.nodes);
  }
  for (int i = 0; i < N; ++i) {
    if (unit_of[i] >= 0) continue;
    std::string why = WhyUnsupported(g, g.nodes[i]);
    if (why.empty()) {
      unit_of[i] = static_cast<int>(units.size());
      units.push_back({i});
    } else {
      bool has_float = false;
      for (int v : g.nodes[i].inputs) has_float |= IsF32(g, v);
      if (has_float) result.rejected.push_back(g.nodes[i].name + " (" + g.nodes[i].op_type + "): " + why);
    }
  }

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

  for (Region& r : regions) {
    if (!r.alive) continue;
    bool has_compute = false;
    for (int ni : r.nodes) has_compute |= IsComputeOp(g.nodes[ni]);
    if (!has_compute) {
      for (int ni : r.nodes)
        result.rejected.push_back(g.nodes[ni].name + " (" + g.nodes[ni].op_type +
                                  "): only glue ops around it; left to the CPU EP");
      continue;
    }
    std::sort(r.nodes.begin(), r.nodes.end());
    result.regions.push_back(r.nodes);
  }
  return result;
}

}  // namespace phoenix
