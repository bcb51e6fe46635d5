#include "patterns.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
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

// A value of the candidate subgraph as an exact polynomial in x and E, where E is the core's
// erf(a(x)) or tanh(a(x)) and a(x) a polynomial in x alone: coefficient per (power of x,
// power of E). Evaluating the node set symbolically makes the GELU check sound over the whole
// float range (a sampled check accepts look-alikes whose extra terms vanish where it looks).
using Poly = std::map<std::pair<int, int>, double>;

constexpr int kMaxDegree = 8;

bool Multiply(const Poly& a, const Poly& b, Poly* out) {
  Poly r;
  for (const auto& [ka, ca] : a)
    for (const auto& [kb, cb] : b) {
      const std::pair<int, int> k{ka.first + kb.first, ka.second + kb.second};
      if (k.first > kMaxDegree || k.second > kMaxDegree) return false;
      r[k] += ca * cb;
    }
  *out = std::move(r);
  return true;
}

void Simplify(Poly* p) {
  for (auto it = p->begin(); it != p->end();) it = it->second == 0.0 ? p->erase(it) : std::next(it);
}

// Evaluates the node set (ascending, topological) symbolically with x = the input value. The
// one Erf / Tanh node (`core`) becomes E; `arg` receives its argument. False when any node is
// outside this algebra (a non-scalar constant, division by a non-constant, a non-integer power,
// a second transcendental, E inside the argument).
bool EvaluateSymbolically(const GraphView& g, const std::vector<int>& nodes, int core, int x, int y,
                          Poly* result, Poly* arg) {
  std::map<int, Poly> vals;
  vals[x] = Poly{{{1, 0}, 1.0}};
  auto get = [&](int v, Poly* out) -> bool {
    auto it = vals.find(v);
    if (it != vals.end()) {
      *out = it->second;
      return true;
    }
    auto s = g.ScalarConstant(v);
    if (!s || !std::isfinite(*s)) return false;
    *out = Poly{{{0, 0}, *s}};
    return true;
  };
  for (int ni : nodes) {
    const GNode& n = g.nodes[ni];
    Poly a, b, r;
    if (n.inputs.empty() || n.outputs.size() != 1 || !get(n.inputs[0], &a)) return false;
    if (ni == core) {
      for (const auto& [k, c] : a)
        if (k.second != 0) return false;
      *arg = a;
      r = Poly{{{0, 1}, 1.0}};
    } else if (n.op_type == "Pow") {
      auto e = n.inputs.size() == 2 ? g.ScalarConstant(n.inputs[1]) : std::nullopt;
      if (!e || *e != std::floor(*e) || *e < 0 || *e > 4) return false;
      r = Poly{{{0, 0}, 1.0}};
      for (int i = 0; i < static_cast<int>(*e); ++i)
        if (!Multiply(r, a, &r)) return false;
    } else {
      if (n.inputs.size() != 2 || !get(n.inputs[1], &b)) return false;
      if (n.op_type == "Add" || n.op_type == "Sub") {
        r = a;
        for (const auto& [k, c] : b) r[k] += n.op_type == "Add" ? c : -c;
      } else if (n.op_type == "Mul") {
        if (!Multiply(a, b, &r)) return false;
      } else if (n.op_type == "Div") {
        Simplify(&b);
        if (b.size() != 1 || b.begin()->first != std::make_pair(0, 0)) return false;  // only by a constant
        const double d = b.begin()->second;
        for (auto& [k, c] : a) c /= d;
        r = a;
      } else {
        return false;
      }
    }
    Simplify(&r);
    vals[n.outputs[0]] = std::move(r);
  }
  auto it = vals.find(y);
  if (it == vals.end()) return false;
  *result = it->second;
  return true;
}

// p has exactly the terms `want` (relative tolerance 1e-5: constants written as float32 or with
// a few digits), and no other term at all.
bool SameTerms(const Poly& p, const Poly& want) {
  if (p.size() != want.size()) return false;
  for (const auto& [k, c] : want) {
    auto it = p.find(k);
    if (it == p.end() || !(std::fabs(it->second - c) <= 1e-5 * std::fabs(c))) return false;
  }
  return true;
}

// GELU exactly: y = x/2 + x E/2 with E = erf(x / sqrt 2), or E = tanh(sqrt(2/pi) (x + 0.044715 x^3)).
bool IsGelu(const Poly& y, const Poly& arg, bool tanh_form) {
  const Poly want_y{{{1, 0}, 0.5}, {{1, 1}, 0.5}};
  const double k = 0.7978845608028654;  // sqrt(2 / pi)
  const Poly want_arg = tanh_form ? Poly{{{1, 0}, k}, {{3, 0}, k * 0.044715}} : Poly{{{1, 0}, 0.7071067811865476}};
  return SameTerms(y, want_y) && SameTerms(arg, want_arg);
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
        Poly y_poly, arg_poly;
        if (!EvaluateSymbolically(g, ordered, ci, x, y, &y_poly, &arg_poly) || !IsGelu(y_poly, arg_poly, tanh_form))
          continue;
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
