#include "capability.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "patterns.h"

namespace phoenix {
namespace {

bool IsF32(const GraphView& g, int v) {
  return v >= 0 && g.value(v).dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

// Every present input and output is a float32 tensor with a static shape.
std::string CheckStaticF32(const GraphView& g, const GNode& n, size_t num_inputs) {
  for (size_t i = 0; i < std::min(num_inputs, n.inputs.size()); ++i) {
    int v = n.inputs[i];
    if (v < 0) continue;
    if (!IsF32(g, v)) return "input " + std::to_string(i) + " is not float32";
    if (!g.value(v).IsStatic()) return "input " + std::to_string(i) + " has a dynamic shape";
    if (g.value(v).NumElements() == 0) return "input " + std::to_string(i) + " is empty";
  }
  for (int v : n.outputs) {
    if (v < 0) continue;
    if (!IsF32(g, v)) return "output is not float32";
    if (!g.value(v).IsStatic()) return "output has a dynamic shape";
  }
  return "";
}

bool Used(const GraphView& g, int v) {
  return v >= 0 && (!g.value(v).consumers.empty() || g.value(v).is_graph_output);
}

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

std::string WhyUnsupported(const GraphView& g, const GNode& n) {
  if (!n.domain.empty()) return "domain " + n.domain + " is not supported";
  const std::string& op = n.op_type;
  auto rank = [&](int v) { return static_cast<int64_t>(g.value(v).shape.size()); };

  if (op == "MatMul") {
    if (auto why = CheckStaticF32(g, n, 2); !why.empty()) return why;
    if (rank(n.inputs[0]) < 2 || rank(n.inputs[1]) < 2) return "1-D MatMul operands are not supported";
    if (rank(n.outputs[0]) > 6) return "more than 4 batch dims";
    if (g.value(n.inputs[0]).is_constant && g.value(n.inputs[1]).is_constant) return "both operands constant";
    return "";
  }
  if (op == "Gemm") {
    if (auto why = CheckStaticF32(g, n, 3); !why.empty()) return why;
    if (!g.value(n.inputs[1]).is_constant) return "Gemm B is not a constant weight";
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const GValue& c = g.value(n.inputs[2]);
      const int64_t N = g.value(n.outputs[0]).shape[1];
      if (!c.is_constant) {  // ORT's MatMulAddFusion writes residual adds this way
        if (c.shape != g.value(n.outputs[0]).shape || n.AttrFloat("beta", 1.0f) != 1.0f)
          return "Gemm C is an activation that is not a full-size residual";
        return "";
      }
      bool row_bias = c.NumElements() == 1 || (c.shape.size() >= 1 && c.shape.back() == N && c.NumElements() == N);
      if (!row_bias) return "Gemm C is not a bias vector";
    }
    return "";
  }
  if (op == "Conv") {  // 1-D convolution (Whisper's conv stem): Im2Col + MatMul
    if (auto why = CheckStaticF32(g, n, 3); !why.empty()) return why;
    if (rank(n.inputs[0]) != 3) return "only 1-D convolution is supported";
    if (!g.value(n.inputs[1]).is_constant) return "Conv weight is not a constant";
    if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !g.value(n.inputs[2]).is_constant) return "Conv bias is not a constant";
    if (n.AttrInt("group", 1) != 1) return "grouped convolution";
    const std::string pad = n.AttrString("auto_pad", "NOTSET");
    if (pad != "NOTSET" && pad != "VALID") return "auto_pad " + pad;
    return "";
  }
  if (op == "LayerNormalization") {
    if (auto why = CheckStaticF32(g, n, 3); !why.empty()) return why;
    const int64_t r = rank(n.inputs[0]);
    int64_t axis = n.AttrInt("axis", -1);
    if (axis < 0) axis += r;
    if (axis != r - 1) return "LayerNormalization over more than the last axis";
    const int64_t N = g.value(n.inputs[0]).shape.back();
    for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
      if (n.inputs[i] < 0) continue;
      const GValue& p = g.value(n.inputs[i]);
      if (!p.is_constant) return "scale/bias are not constants";
      if (p.NumElements() != N) return "scale/bias do not have the normalized size";
    }
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (Used(g, n.outputs[i])) return "Mean/InvStdDev outputs are used";
    return "";
  }
  if (op == "Softmax") {
    if (auto why = CheckStaticF32(g, n, 1); !why.empty()) return why;
    const int64_t r = rank(n.inputs[0]);
    int64_t axis = n.AttrInt("axis", n.since_version >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis != r - 1) return "Softmax over an axis other than the last";
    return "";
  }
  if (op == "Gelu") {
    if (auto why = CheckStaticF32(g, n, 1); !why.empty()) return why;
    std::string approx = n.AttrString("approximate", "none");
    if (approx != "none" && approx != "tanh") return "unknown Gelu approximation " + approx;
    return "";
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    if (auto why = CheckStaticF32(g, n, 2); !why.empty()) return why;
    if (g.value(n.inputs[0]).is_constant && g.value(n.inputs[1]).is_constant) return "both operands constant";
    if (rank(n.outputs[0]) > kMaxRankSupported) return "rank too high";
    return "";
  }
  if (op == "Reshape") {
    if (auto why = CheckStaticF32(g, n, 1); !why.empty()) return why;
    if (n.inputs.size() < 2 || !g.value(n.inputs[1]).is_constant) return "Reshape shape is not a constant";
    if (g.value(n.inputs[0]).is_constant) return "Reshape of a constant";
    if (rank(n.outputs[0]) > kMaxRankSupported) return "rank too high";
    return "";
  }
  if (op == "Transpose") {
    if (auto why = CheckStaticF32(g, n, 1); !why.empty()) return why;
    if (g.value(n.inputs[0]).is_constant) return "Transpose of a constant";
    if (rank(n.outputs[0]) > kMaxRankSupported) return "rank too high";
    return "";
  }
  return "op " + op + " is not supported";
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
    if (!x.IsStatic() || !y.IsStatic() || x.NumElements() == 0 || !IsF32(g, m.x) || !IsF32(g, m.y)) {
      result.rejected.push_back(g.nodes[m.nodes.back()].name + " (GELU pattern): dynamic or empty shape");
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
