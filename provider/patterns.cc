#include "patterns.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <unordered_map>

#include "gelu/gelu.h"

namespace phoenix {
namespace {

bool IsArith(const GNode& n) {
  return n.domain.empty() &&
         (n.op_type == "Add" || n.op_type == "Sub" || n.op_type == "Mul" || n.op_type == "Div" ||
          n.op_type == "Pow");
}

bool IsFloat(const GraphView& g, int v) {
  return v >= 0 && g.value(v).dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

// Evaluates the node set on `xs` (x's values), nodes in ascending (topological) order.
// Constants must be scalars. Returns y's values, or empty when something is not evaluable.
std::vector<double> Evaluate(const GraphView& g, const std::vector<int>& nodes, int x, int y,
                             const std::vector<double>& xs) {
  std::unordered_map<int, std::vector<double>> vals;
  vals[x] = xs;
  auto get = [&](int v, std::vector<double>& out) -> bool {
    auto it = vals.find(v);
    if (it != vals.end()) {
      out = it->second;
      return true;
    }
    auto s = g.ScalarConstant(v);
    if (!s) return false;
    out.assign(xs.size(), *s);
    return true;
  };
  for (int ni : nodes) {
    const GNode& n = g.nodes[ni];
    std::vector<double> a, b, r(xs.size());
    if (n.inputs.empty() || !get(n.inputs[0], a)) return {};
    if (n.op_type == "Erf" || n.op_type == "Tanh") {
      for (size_t i = 0; i < a.size(); ++i) r[i] = n.op_type == "Erf" ? std::erf(a[i]) : std::tanh(a[i]);
    } else {
      if (n.inputs.size() < 2 || !get(n.inputs[1], b)) return {};
      for (size_t i = 0; i < a.size(); ++i) {
        if (n.op_type == "Add") r[i] = a[i] + b[i];
        else if (n.op_type == "Sub") r[i] = a[i] - b[i];
        else if (n.op_type == "Mul") r[i] = a[i] * b[i];
        else if (n.op_type == "Div") r[i] = a[i] / b[i];
        else if (n.op_type == "Pow") r[i] = std::pow(a[i], b[i]);
        else return {};
      }
    }
    vals[n.outputs[0]] = std::move(r);
  }
  auto it = vals.find(y);
  return it == vals.end() ? std::vector<double>{} : it->second;
}

bool MatchesGelu(const std::vector<double>& xs, const std::vector<double>& ys, bool tanh_form) {
  if (ys.size() != xs.size()) return false;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double ref = tanh_form
        ? 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
        : 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    if (!(std::fabs(ys[i] - ref) <= 1e-4 * (1.0 + std::fabs(ref)))) return false;
  }
  return true;
}

// Nodes strictly between x and `target` (target's producer chain), all arithmetic with inputs
// that are x, scalar constants or outputs of nodes in the set. False if anything else feeds in.
bool CollectBackward(const GraphView& g, int target, int x, std::set<int>& out, int depth) {
  if (target == x) return true;
  if (depth > 8) return false;
  const int p = g.value(target).producer;
  if (p < 0 || !IsArith(g.nodes[p]) || g.nodes[p].outputs.size() != 1) return false;
  for (int in : g.nodes[p].inputs) {
    if (in < 0) return false;
    if (g.ScalarConstant(in)) continue;
    if (!CollectBackward(g, in, x, out, depth + 1)) return false;
  }
  out.insert(p);
  return true;
}

// The candidate x values behind a core node: non-constant values reachable backwards through
// arithmetic nodes, nearest first.
std::vector<int> CandidateInputs(const GraphView& g, int core_input) {
  std::vector<int> found, frontier{core_input};
  for (int depth = 0; depth < 6 && !frontier.empty(); ++depth) {
    std::vector<int> next;
    for (int v : frontier) {
      const int p = g.value(v).producer;
      if (p < 0 || !IsArith(g.nodes[p])) continue;
      for (int in : g.nodes[p].inputs) {
        if (in < 0 || g.ScalarConstant(in)) continue;
        if (std::find(found.begin(), found.end(), in) == found.end()) {
          found.push_back(in);
          next.push_back(in);
        }
      }
    }
    frontier = std::move(next);
  }
  return found;
}

}  // namespace

std::vector<GeluMatch> FindGeluPatterns(const GraphView& g) {
  std::vector<GeluMatch> matches;
  std::set<int> used;
  // Sample points: the shape of GELU around 0, in both tails, and a few awkward values.
  std::vector<double> xs;
  for (int i = -40; i <= 40; ++i) xs.push_back(i * 0.15 + 0.013);
  for (int ci = 0; ci < static_cast<int>(g.nodes.size()); ++ci) {
    const GNode& core = g.nodes[ci];
    if (!core.domain.empty() || (core.op_type != "Erf" && core.op_type != "Tanh")) continue;
    if (core.inputs.empty() || !IsFloat(g, core.inputs[0]) || used.count(ci)) continue;
    const bool tanh_form = core.op_type == "Tanh";
    for (int x : CandidateInputs(g, core.inputs[0])) {
      std::set<int> back;
      if (!CollectBackward(g, core.inputs[0], x, back, 0)) continue;
      // Forward chain from the core: single consumers, arithmetic with scalar constants, x,
      // or a side node computing from x and scalars only (e.g. Mul(x, 0.5)).
      std::vector<std::vector<int>> chains;  // each prefix's added nodes
      std::vector<int> chain;
      int cur = core.outputs[0];
      for (int step = 0; step < 4; ++step) {
        const GValue& cv = g.value(cur);
        if (cv.consumers.size() != 1 || cv.is_graph_output) break;
        const int f = cv.consumers[0];
        const GNode& fn = g.nodes[f];
        if (!IsArith(fn) || fn.inputs.size() != 2 || used.count(f)) break;
        const int other = fn.inputs[0] == cur ? fn.inputs[1] : fn.inputs[0];
        std::vector<int> added{f};
        if (other != x && !g.ScalarConstant(other)) {
          const int s = g.value(other).producer;
          if (s < 0 || !IsArith(g.nodes[s]) || g.value(other).consumers.size() != 1) break;
          bool side_ok = true;
          for (int in : g.nodes[s].inputs) side_ok &= (in == x || g.ScalarConstant(in).has_value());
          if (!side_ok) break;
          added.push_back(s);
        }
        chain.insert(chain.end(), added.begin(), added.end());
        chains.push_back(chain);
        cur = fn.outputs[0];
      }
      bool matched = false;
      for (int len = static_cast<int>(chains.size()); len >= 1 && !matched; --len) {
        std::set<int> all(back.begin(), back.end());
        all.insert(ci);
        all.insert(chains[len - 1].begin(), chains[len - 1].end());
        // y is the output of the chain's final node (the one consuming the previous link).
        int y = -1;
        for (int n : chains[len - 1]) {
          bool consumed_inside = false;
          for (int c : g.value(g.nodes[n].outputs[0]).consumers) consumed_inside |= all.count(c) > 0;
          if (!consumed_inside) y = g.nodes[n].outputs[0];
        }
        if (y < 0) continue;
        // Every intermediate must stay inside the set.
        bool closed = true;
        for (int n : all) {
          for (int o : g.nodes[n].outputs) {
            if (o == y || o < 0) continue;
            if (g.value(o).is_graph_output) closed = false;
            for (int c : g.value(o).consumers) closed &= all.count(c) > 0;
          }
        }
        if (!closed || !IsFloat(g, x) || !IsFloat(g, y)) continue;
        std::vector<int> ordered(all.begin(), all.end());
        if (!MatchesGelu(xs, Evaluate(g, ordered, x, y, xs), tanh_form)) continue;
        GeluMatch m;
        m.nodes = ordered;
        m.x = x;
        m.y = y;
        m.mode = tanh_form ? static_cast<int>(kernels::GeluMode::kTanh)
                           : static_cast<int>(kernels::GeluMode::kErf);
        used.insert(ordered.begin(), ordered.end());
        matches.push_back(std::move(m));
        matched = true;
      }
      if (matched) break;
    }
  }
  return matches;
}

}  // namespace phoenix
