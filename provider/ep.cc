#include "ep.h"

#include <stdexcept>

#include "capability.h"
#include "compiler.h"
#include "factory.h"
#include "graph_view.h"

namespace phoenix {
namespace {

// The compute function of one compiled region: binds ORT's kernel context to the runner.
struct RegionComputeInfo : OrtNodeComputeInfo {
  RegionComputeInfo(PlanRunner* runner, bool fail_on_run) : runner(runner), fail_on_run(fail_on_run) {
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
    auto* info = static_cast<RegionComputeInfo*>(self);
    return info->Run(context);
    PHX_ABI_END
  }

  OrtStatus* Run(OrtKernelContext* context) {
    if (fail_on_run) throw std::runtime_error("injected failure (fail_on=run)");
    const Plan& plan = runner->plan();
    Ort::KernelContext ctx(context);
    if (ctx.GetInputCount() != plan.inputs.size())
      return g_ort->CreateStatus(ORT_EP_FAIL, ("PhoenixNPU: region " + plan.name + " expected " +
                                               std::to_string(plan.inputs.size()) + " inputs, got " +
                                               std::to_string(ctx.GetInputCount())).c_str());
    inputs.resize(plan.inputs.size());
    outputs.resize(plan.outputs.size());
    for (size_t i = 0; i < plan.inputs.size(); ++i) {
      Ort::ConstValue v = ctx.GetInput(i);
      auto info = v.GetTensorTypeAndShapeInfo();
      // Checked through a stack array: the run path allocates nothing on the host.
      const std::vector<int64_t>& want_shape = plan.inputs[i].shape;
      int64_t dims[kMaxRank] = {};
      const size_t rank = info.GetDimensionsCount();
      bool same = info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && rank == want_shape.size() &&
                  rank <= static_cast<size_t>(kMaxRank);
      if (same) {
        Ort::ThrowOnError(g_ort->GetDimensions(info, dims, rank));
        for (size_t d = 0; d < rank; ++d) same &= dims[d] == want_shape[d];
      }
      if (!same) {
        std::string got;
        for (int64_t d : info.GetShape()) got += (got.empty() ? "" : ",") + std::to_string(d);
        std::string want;
        for (int64_t d : plan.inputs[i].shape) want += (want.empty() ? "" : ",") + std::to_string(d);
        return g_ort->CreateStatus(ORT_INVALID_ARGUMENT,
                                   ("PhoenixNPU: input '" + plan.inputs[i].name + "' has shape [" + got +
                                    "] but the region was compiled for float32 [" + want + "]").c_str());
      }
      inputs[i] = v.GetTensorData<float>();
    }
    for (size_t i = 0; i < plan.outputs.size(); ++i) {
      Ort::UnownedValue v = ctx.GetOutput(i, plan.outputs[i].shape.data(), plan.outputs[i].shape.size());
      outputs[i] = v.GetTensorMutableData<float>();
    }
    Status s = runner->Run(inputs, outputs);
    return ToOrtStatus(s);
  }

  PlanRunner* runner;
  bool fail_on_run;
  // Reused between runs so the run path does not allocate; Compute calls of one region are
  // serialised by the runner, but these vectors are per call site, so guard them too.
  thread_local static std::vector<const float*> inputs;
  thread_local static std::vector<float*> outputs;
};

thread_local std::vector<const float*> RegionComputeInfo::inputs;
thread_local std::vector<float*> RegionComputeInfo::outputs;

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

const char* ORT_API_CALL PhoenixEp::GetCompiledModelCompatibilityInfoImpl(OrtEp*, const OrtGraph*) noexcept {
  return "PhoenixNPUExecutionProvider;plan=1";  // we write no EPContext nodes
}

// Runs of one region are serialised inside PlanRunner (they share the arena), so concurrent
// Session.Run calls are safe; they simply queue on each region.
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
  GraphView g(graph);
  CapabilityResult result = FindRegions(g);
  size_t claimed = 0;
  for (const auto& region : result.regions) {
    std::vector<const OrtNode*> nodes;
    for (int ni : region) nodes.push_back(g.nodes[ni].node);
    OrtNodeFusionOptions fusion{};
    fusion.ort_version_supported = ORT_API_VERSION;
    fusion.drop_constant_initializers = true;  // weights are copied to the device at Compile
    if (OrtStatus* st = g_ep_api->EpGraphSupportInfo_AddNodesToFuse(support, nodes.data(), nodes.size(), &fusion))
      return st;
    claimed += nodes.size();
  }
  std::string msg = "PhoenixNPU: claimed " + std::to_string(claimed) + " of " + std::to_string(g.nodes.size()) +
                    " nodes in " + std::to_string(result.regions.size()) + " region(s)";
  Log(&logger_, ORT_LOGGING_LEVEL_INFO, msg);
  for (const std::string& r : result.rejected) Log(&logger_, ORT_LOGGING_LEVEL_VERBOSE, "PhoenixNPU: not claimed: " + r);
  return nullptr;
}

OrtStatus* ORT_API_CALL PhoenixEp::CompileImpl(OrtEp* this_ptr, const OrtGraph** graphs, const OrtNode** fused_nodes,
                                               size_t count, OrtNodeComputeInfo** infos,
                                               OrtNode** /*ep_context_nodes*/) noexcept {
  PHX_ABI_BEGIN
  auto* ep = static_cast<PhoenixEp*>(this_ptr);
  for (size_t i = 0; i < count; ++i) infos[i] = nullptr;
  for (size_t i = 0; i < count; ++i) {
    if (OrtStatus* st = ep->CompileOne(graphs[i], fused_nodes[i], &infos[i])) {
      for (size_t k = 0; k < i; ++k) delete static_cast<RegionComputeInfo*>(infos[k]), infos[k] = nullptr;
      return st;
    }
  }
  return nullptr;
  PHX_ABI_END
}

OrtStatus* PhoenixEp::CompileOne(const OrtGraph* graph, const OrtNode* fused_node, OrtNodeComputeInfo** info) {
  if (options_.hooks.fail_on == "compile") throw std::runtime_error("injected failure (fail_on=compile)");
  Ort::ConstNode fused{fused_node};
  const std::string name = fused.GetName();
  GraphView g(graph);
  // ORT passes the fused node's inputs at run time, less the constant initializers we copy.
  std::vector<std::string> input_names, output_names;
  for (auto& vi : fused.GetInputs()) {
    if (static_cast<const OrtValueInfo*>(vi) == nullptr) continue;
    const int v = g.FindValue(vi.GetName());
    if (v >= 0 && g.value(v).is_constant) continue;
    input_names.push_back(vi.GetName());
  }
  for (auto& vi : fused.GetOutputs()) output_names.push_back(vi.GetName());

  Plan plan;
  CompileOptions compile_options;
  compile_options.fuse_attention = options_.fuse_attention;
  compile_options.element = options_.precision == Precision::kBF16x3 ? DType::kSplit : DType::kBF16;
  Status s = CompileRegion(g, name, input_names, output_names, compile_options, &plan);
  if (!s.ok()) return g_ort->CreateStatus(ORT_EP_FAIL, ("PhoenixNPU: compiling " + name + ": " + s.message()).c_str());
  Log(&logger_, ORT_LOGGING_LEVEL_INFO, "PhoenixNPU: " + plan.Summary());
  if (options_.hooks.fail_on == "allocate")
    return g_ort->CreateStatus(ORT_EP_FAIL, "PhoenixNPU: injected device allocation failure (fail_on=allocate)");
  std::unique_ptr<PlanRunner> runner;
  s = PlanRunner::Create(std::move(plan), device_, &runner);
  if (!s.ok()) return g_ort->CreateStatus(ORT_EP_FAIL, ("PhoenixNPU: preparing " + name + ": " + s.message()).c_str());
  if (!runner->host_note().empty()) Log(&logger_, ORT_LOGGING_LEVEL_WARNING, "PhoenixNPU: " + name + ": " + runner->host_note());
  *info = new RegionComputeInfo(runner.get(), options_.hooks.fail_on == "run");
  std::lock_guard<std::mutex> lk(mutex_);
  runners_[name] = std::move(runner);
  return nullptr;
}

void ORT_API_CALL PhoenixEp::ReleaseNodeComputeInfosImpl(OrtEp*, OrtNodeComputeInfo** infos, size_t count) noexcept {
  for (size_t i = 0; i < count; ++i) delete static_cast<RegionComputeInfo*>(infos[i]);
}

}  // namespace phoenix
