#include "ep.h"

#include "common/cpu_features.h"
#include "compat_info.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "capability.h"
#include "ep_context.h"
#include "factory.h"
#include "graph_view.h"

namespace phoenix {
namespace {

// The compute function of one compiled region.
struct RegionComputeInfo : OrtNodeComputeInfo {
  explicit RegionComputeInfo(CompiledRegion* region) : region(region) {
    ort_version_supported = ORT_API_VERSION;
    CreateState = CreateStateImpl;
    Compute = ComputeImpl;
    ReleaseState = ReleaseStateImpl;
  }

  static OrtStatus* ORT_API_CALL CreateStateImpl(OrtNodeComputeInfo* self, OrtNodeComputeContext*,
                                                 void** state) noexcept {
    *state = self;
    return nullptr;
  }
  static void ORT_API_CALL ReleaseStateImpl(OrtNodeComputeInfo*, void*) noexcept {}

  static OrtStatus* ORT_API_CALL ComputeImpl(OrtNodeComputeInfo* self, void*, OrtKernelContext* context) noexcept {
    PHX_ABI_BEGIN
    return ToOrtStatus(static_cast<RegionComputeInfo*>(self)->region->Compute(context));
    PHX_ABI_END
  }

  CompiledRegion* region;
};

std::vector<size_t> SortedIds(std::vector<size_t> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

PhoenixEp::PhoenixEp(PhoenixEpFactory& factory, const ProviderOptions& options, std::shared_ptr<Device> device,
                     const OrtLogger& logger)
    : OrtEp{}, factory_(factory), options_(options), device_(std::move(device)), logger_(logger) {
  ort_version_supported = ORT_API_VERSION;
  GetName = GetNameImpl;
  GetCapability = GetCapabilityImpl;
  Compile = CompileImpl;
  ReleaseNodeComputeInfos = ReleaseNodeComputeInfosImpl;
  GetCompiledModelCompatibilityInfo = GetCompiledModelCompatibilityInfoImpl;
  IsConcurrentRunSupported = IsConcurrentRunSupportedImpl;
}

// compat_info.h: EP, blob format, device, kernel ISA and (on the NPU) the NPU artifacts' identity.
const char* ORT_API_CALL PhoenixEp::GetCompiledModelCompatibilityInfoImpl(OrtEp* this_ptr, const OrtGraph*) noexcept {
  auto* ep = static_cast<PhoenixEp*>(this_ptr);
  try {
    ep->Origin();
  } catch (...) {
    return ep->factory_.ep_name().c_str();  // not judged: an older build's plain string
  }
  return ep->compat_info_.c_str();
}

// The device and NPU artifacts never change for this EP: found once (on the NPU, hashing the
// manifest and every xclbin / instruction file it names), on first use, with the compatibility
// string made from them.
const PlanOrigin& PhoenixEp::Origin() {
  std::call_once(origin_once_, [this] {
    origin_ = PlanOriginOf(device_->Kind() == "npu", options_.manifest);
    compat_info_ = MakeCompatInfo(factory_.ep_name(), kEpContextFormatVersion, origin_.device, KernelIsaName(),
                                  origin_.npu_artifacts);
  });
  return origin_;
}

// Runs of one plan are serialised inside PlanRunner (they share its arena); runs with other
// shapes use other plans. Concurrent Session.Run calls are safe.
OrtStatus* ORT_API_CALL PhoenixEp::IsConcurrentRunSupportedImpl(OrtEp*, bool* is_supported) noexcept {
  *is_supported = true;
  return nullptr;
}

PhoenixEp::~PhoenixEp() = default;

const char* ORT_API_CALL PhoenixEp::GetNameImpl(const OrtEp* this_ptr) noexcept {
  return static_cast<const PhoenixEp*>(this_ptr)->factory_.ep_name().c_str();
}

OrtStatus* ORT_API_CALL PhoenixEp::GetCapabilityImpl(OrtEp* this_ptr, const OrtGraph* graph,
                                                     OrtEpGraphSupportInfo* support) noexcept {
  PHX_ABI_BEGIN
  return static_cast<PhoenixEp*>(this_ptr)->ClaimNodes(graph, support);
  PHX_ABI_END
}

OrtStatus* PhoenixEp::ClaimNodes(const OrtGraph* graph, OrtEpGraphSupportInfo* support) {
  {  // A compiled model: this EP's EPContext nodes are its regions; nothing is analysed again.
    std::vector<const OrtNode*> contexts;
    for (auto& n : Ort::ConstGraph{graph}.GetNodes()) {
      std::string source;
      if (!IsEpContextNode(n, &source)) continue;
      if (source == factory_.ep_name())
        contexts.push_back(n);
      else
        Log(&logger_, ORT_LOGGING_LEVEL_WARNING,
            "PhoenixNPU: EPContext node '" + n.GetName() + "' was written by '" + source +
                "', not PhoenixNPU: it is left to that execution provider (add it to the session's providers)");
    }
    if (!contexts.empty()) {
      OrtNodeFusionOptions fusion{};
      fusion.ort_version_supported = ORT_API_VERSION;
      fusion.drop_constant_initializers = true;
      for (const OrtNode* n : contexts)
        if (OrtStatus* st = g_ep_api->EpGraphSupportInfo_AddNodesToFuse(support, &n, 1, &fusion)) return st;
      Log(&logger_, ORT_LOGGING_LEVEL_INFO,
          "PhoenixNPU: claimed " + std::to_string(contexts.size()) +
              " EPContext node(s) of a compiled model; capability analysis, lowering and planning are skipped");
      return nullptr;
    }
  }
  GraphView g(graph);
  const std::vector<GeluMatch> gelus = FindGeluPatterns(g);
  const int token_lookup = options_.claim_decoders ? -1 : TokenEmbeddingLookup(g);
  const CapabilityResult result =
      token_lookup < 0 ? FindRegions(g, gelus)
                       : DeclineGraph(g, "a token decoder graph (" + g.nodes[token_lookup].Label() +
                                             " picks rows of an embedding table by token ids): its per-token steps run faster on the CPU EP; "
                                             "claim_decoders=1 takes it");
  Ort::ConstGraph og{graph};
  std::unordered_map<size_t, const OrtNode*> by_id;
  for (auto& n : og.GetNodes()) by_id[n.GetId()] = n;
  size_t claimed = 0;
  for (const auto& nodes : result.regions) {
    std::vector<const OrtNode*> ort_nodes;
    std::vector<size_t> ids;
    for (int ni : nodes) {
      ids.push_back(g.nodes[ni].ort_id);
      ort_nodes.push_back(by_id.at(g.nodes[ni].ort_id));
    }
    OrtNodeFusionOptions fusion{};
    fusion.ort_version_supported = ORT_API_VERSION;
    fusion.drop_constant_initializers = true;  // weights are copied to the device at Compile
    if (OrtStatus* st = g_ep_api->EpGraphSupportInfo_AddNodesToFuse(support, ort_nodes.data(), ort_nodes.size(), &fusion))
      return st;
    claimed += ort_nodes.size();
    // Keep the region's graph (and its GELU patterns) for Compile.
    RegionGraph region;
    region.graph = g.Subgraph(nodes);
    for (const GeluMatch& m : gelus) {
      if (!std::includes(nodes.begin(), nodes.end(), m.nodes.begin(), m.nodes.end())) continue;
      GeluMatch r = m;
      for (int& ni : r.nodes) ni = static_cast<int>(std::lower_bound(nodes.begin(), nodes.end(), ni) - nodes.begin());
      r.x = region.graph.FindValue(g.value(m.x).name);
      r.y = region.graph.FindValue(g.value(m.y).name);
      region.gelus.push_back(std::move(r));
    }
    std::lock_guard<std::mutex> lk(mutex_);
    claimed_[SortedIds(ids)] = std::move(region);
  }
  const std::string graph_name = og.GetName();
  RecordCapabilityReport(CapabilityReportJson(g, result, graph_name));
  Log(&logger_, ORT_LOGGING_LEVEL_INFO,
      "PhoenixNPU: claimed " + std::to_string(claimed) + " of " + std::to_string(g.nodes.size()) + " nodes in " +
          std::to_string(result.regions.size()) + " region(s)");
  const std::string shortfall =
      token_lookup < 0 ? CapabilityShortfall(g, result)
                       : "PhoenixNPU left graph '" + graph_name + "' (" + std::to_string(g.nodes.size()) +
                             " nodes) to the CPU EP: " + result.reasons[token_lookup];
  if (!shortfall.empty()) Log(&logger_, ORT_LOGGING_LEVEL_WARNING, shortfall);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!result.reasons[i].empty())
      Log(&logger_, ORT_LOGGING_LEVEL_VERBOSE,
          "PhoenixNPU: not claimed: " + g.nodes[i].Label() + " (" + g.nodes[i].op_type + "): " + result.reasons[i]);
  return nullptr;
}

OrtStatus* ORT_API_CALL PhoenixEp::CompileImpl(OrtEp* this_ptr, const OrtGraph** graphs, const OrtNode** fused_nodes,
                                               size_t count, OrtNodeComputeInfo** infos,
                                               OrtNode** ep_context_nodes) noexcept {
  PHX_ABI_BEGIN
  auto* ep = static_cast<PhoenixEp*>(this_ptr);
  const bool write_context = ep->options_.ep_context.enable && ep_context_nodes != nullptr;
  for (size_t i = 0; i < count; ++i) {
    infos[i] = nullptr;
    if (write_context) ep_context_nodes[i] = nullptr;
  }
  for (size_t i = 0; i < count; ++i) {
    OrtStatus* st = ep->CompileOne(graphs[i], fused_nodes[i], &infos[i], write_context ? &ep_context_nodes[i] : nullptr);
    if (st) {
      for (size_t k = 0; k <= i; ++k) {
        delete static_cast<RegionComputeInfo*>(infos[k]), infos[k] = nullptr;
        if (write_context && ep_context_nodes[k]) g_ort->ReleaseNode(ep_context_nodes[k]), ep_context_nodes[k] = nullptr;
      }
      return st;
    }
  }
  return nullptr;
  PHX_ABI_END
}

OrtStatus* PhoenixEp::CompileOne(const OrtGraph* graph, const OrtNode* fused_node, OrtNodeComputeInfo** info,
                                  OrtNode** ep_context_node) {
  if (options_.hooks.fail_on == "compile") throw std::runtime_error("injected failure (fail_on=compile)");
  Ort::ConstNode fused{fused_node};
  const std::string name = fused.GetName();
  Ort::ConstGraph og{graph};
  std::vector<size_t> ids;
  std::string source;
  const std::vector<Ort::ConstNode> nodes = og.GetNodes();
  for (auto& n : nodes) ids.push_back(n.GetId());
  std::unique_ptr<CompiledRegion> compiled;
  std::vector<std::string> input_names;  // what ORT feeds at run time, in order
  if (nodes.size() == 1 && IsEpContextNode(nodes[0], &source)) {
    // A region of a compiled model: rebuilt from its blob (no lowering, no planning).
    std::string blob;
    DecodedContext ctx;
    Status s = ReadEpContextBlob(graph, nodes[0], &blob);
    if (s.ok()) s = EpContextCodec::Decode(blob, factory_.ep_name(), &ctx);
    std::string().swap(blob);
    if (s.ok()) {
      std::vector<std::string> want, got;
      for (int v : ctx.region.inputs) want.push_back(ctx.region.graph.value(v).name);
      for (int v : ctx.region.outputs) want.push_back(ctx.region.graph.value(v).name);
      for (auto& vi : fused.GetInputs())
        if (static_cast<const OrtValueInfo*>(vi) != nullptr) got.push_back(vi.GetName()), input_names.push_back(got.back());
      for (auto& vi : fused.GetOutputs()) got.push_back(vi.GetName());
      if (want != got)
        s = Status::InvalidArgument("the inputs and outputs of EPContext node '" + nodes[0].GetName() +
                                    "' differ from its blob's region; re-export the compiled model");
    }
    std::string stale;  // a stored plan not made here (ep_context.h): planned again from the stored graph
    if (s.ok()) {
      stale = EpContextCodec::StalePlanReason(ctx, Origin());
      if (!stale.empty()) s = EpContextCodec::DropPlan(stale, &ctx);
    }
    if (s.ok()) s = EpContextCodec::Restore(std::move(ctx), name, options_, device_, &logger_, &compiled);
    if (!s.ok()) return ToOrtStatus(s, "PhoenixNPU: loading " + name + " from its EPContext node: ");
    if (stale.empty())
      Log(&logger_, ORT_LOGGING_LEVEL_INFO, "PhoenixNPU: " + name + ": rebuilt from its EPContext blob (not planned again)");
    else
      Log(&logger_, ORT_LOGGING_LEVEL_WARNING, "PhoenixNPU: " + name + ": the EPContext blob's plan is not used (" + stale +
                                                   "): planned again from its stored graph and weights");
  } else {
    if (OrtStatus* st = CompileFromGraph(og, fused, name, ids, &compiled, &input_names)) return st;
  }
  if (ep_context_node) {
    std::string blob;
    Status s = EpContextCodec::Serialize(*compiled, factory_.ep_name(), Origin(), &blob);
    if (s.ok()) s = CreateEpContextNode(options_.ep_context, graph, fused, input_names, factory_.ep_name(), blob, ep_context_node);
    if (!s.ok()) return ToOrtStatus(s, "PhoenixNPU: writing the EPContext node of " + name + ": ");
  }
  *info = new RegionComputeInfo(compiled.get());
  std::lock_guard<std::mutex> lk(mutex_);
  regions_[name] = std::move(compiled);
  return nullptr;
}

OrtStatus* PhoenixEp::CompileFromGraph(Ort::ConstGraph og, Ort::ConstNode fused, const std::string& name,
                                       const std::vector<size_t>& ids, std::unique_ptr<CompiledRegion>* out,
                                       std::vector<std::string>* input_names) {
  const OrtGraph* graph = og;
  RegionGraph region;
  {
    std::lock_guard<std::mutex> lk(mutex_);
    auto it = claimed_.find(SortedIds(ids));
    if (it != claimed_.end()) {
      region = std::move(it->second);
      claimed_.erase(it);
    } else {  // not from this EP's GetCapability (should not happen): analyse the subgraph here
      region.graph = GraphView(graph);
      region.gelus = FindGeluPatterns(region.graph);
    }
  }
  region.name = name;
  // Live handles for the weights (uploaded now; ORT drops its copies after Compile).
  for (auto& n : og.GetNodes())
    for (auto& vi : n.GetInputs()) {
      if (static_cast<const OrtValueInfo*>(vi) == nullptr || !vi.IsConstantInitializer()) continue;
      const int v = region.graph.FindValue(vi.GetName());
      if (v >= 0) region.graph.values[v].info = vi;
    }
  // ORT passes the fused node's inputs at run time, less the constant initializers we copy.
  for (auto& vi : fused.GetInputs()) {
    if (static_cast<const OrtValueInfo*>(vi) == nullptr) continue;
    const int v = region.graph.FindValue(vi.GetName());
    if (v < 0) return ToOrtStatus(Status::Error("compiling " + name + ": input " + vi.GetName() + " is not in the region"));
    if (region.graph.value(v).is_constant) continue;
    region.inputs.push_back(v);
    input_names->push_back(vi.GetName());
  }
  for (auto& vi : fused.GetOutputs()) {
    const int v = region.graph.FindValue(vi.GetName());
    if (v < 0) return ToOrtStatus(Status::Error("compiling " + name + ": output " + vi.GetName() + " is not in the region"));
    region.outputs.push_back(v);
  }
  if (options_.hooks.fail_on == "allocate")
    return ToOrtStatus(Status::Error("injected device allocation failure (fail_on=allocate)"));
  Status s = CompiledRegion::Create(std::move(region), options_, device_, &logger_, out);
  if (!s.ok()) return ToOrtStatus(s, "PhoenixNPU: compiling " + name + ": ");
  return nullptr;
}

void ORT_API_CALL PhoenixEp::ReleaseNodeComputeInfosImpl(OrtEp*, OrtNodeComputeInfo** infos, size_t count) noexcept {
  for (size_t i = 0; i < count; ++i) delete static_cast<RegionComputeInfo*>(infos[i]);
}

}  // namespace phoenix
