// PhoenixEp: one per session. Owns the session's device (chosen from the options) and the
// compiled regions; implements OrtEp's GetCapability and Compile.
//
// GetCapability analyses the graph once (ops, GELU patterns, regions) and keeps each claimed
// region's graph; Compile picks it up by the region's node ids instead of analysing again.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "compat_info.h"
#include "device.h"
#include "lowering.h"
#include "options.h"
#include "ort_api.h"
#include "region.h"

namespace phoenix {

class PhoenixEpFactory;

class PhoenixEp : public OrtEp {
 public:
  PhoenixEp(PhoenixEpFactory& factory, const ProviderOptions& options, std::shared_ptr<Device> device,
            const OrtLogger& logger);
  ~PhoenixEp();

  const ProviderOptions& options() const { return options_; }

 private:
  static const char* ORT_API_CALL GetNameImpl(const OrtEp* this_ptr) noexcept;
  static OrtStatus* ORT_API_CALL GetCapabilityImpl(OrtEp* this_ptr, const OrtGraph* graph,
                                                   OrtEpGraphSupportInfo* support) noexcept;
  static OrtStatus* ORT_API_CALL CompileImpl(OrtEp* this_ptr, const OrtGraph** graphs, const OrtNode** fused_nodes,
                                             size_t count, OrtNodeComputeInfo** infos,
                                             OrtNode** ep_context_nodes) noexcept;
  static void ORT_API_CALL ReleaseNodeComputeInfosImpl(OrtEp* this_ptr, OrtNodeComputeInfo** infos,
                                                       size_t count) noexcept;
  static const char* ORT_API_CALL GetCompiledModelCompatibilityInfoImpl(OrtEp* this_ptr,
                                                                        const OrtGraph* graph) noexcept;
  static OrtStatus* ORT_API_CALL IsConcurrentRunSupportedImpl(OrtEp* this_ptr, bool* is_supported) noexcept;

  OrtStatus* ClaimNodes(const OrtGraph* graph, OrtEpGraphSupportInfo* support);
  // Compiles one fused node (from its graph, or from its EPContext blob); with `ep_context_node`
  // also returns the EPContext node that holds it (ep_context.h).
  OrtStatus* CompileOne(const OrtGraph* graph, const OrtNode* fused_node, OrtNodeComputeInfo** info,
                        OrtNode** ep_context_node);
  OrtStatus* CompileFromGraph(Ort::ConstGraph graph, Ort::ConstNode fused, const std::string& name,
                              const std::vector<size_t>& ids, std::unique_ptr<CompiledRegion>* out,
                              std::vector<std::string>* input_names);

  PhoenixEpFactory& factory_;
  ProviderOptions options_;
  std::shared_ptr<Device> device_;
  const PlanOrigin& Origin();                // where this EP's plans are made (compat_info.h), found once
  std::once_flag origin_once_;
  PlanOrigin origin_;
  std::string compat_info_;  // GetCompiledModelCompatibilityInfo's answer, made with origin_ (ORT copies it)
  const OrtLogger& logger_;
  std::mutex mutex_;
  std::map<std::vector<size_t>, RegionGraph> claimed_;  // by the region's ORT node ids, until compiled
  std::map<std::string, std::unique_ptr<CompiledRegion>> regions_;  // by fused node name
};

}  // namespace phoenix
