// One compiled region (a fused node): its graph, the weights uploaded once, and the plans built
// for the input shapes it has run at. A region whose shapes are all static has exactly one
// plan, built when the session is created. A region with symbolic dims (batch, sequence) gets a
// plan per set of input shapes, built the first time those shapes run and kept in a small
// least-recently-used cache (option max_plans); an evicted plan frees its arena when the last
// run using it ends. Runs with different shapes proceed in parallel; runs of one plan queue on
// that plan (they share its arena).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "counters.h"
#include "lowering.h"
#include "options.h"
#include "ort_api.h"
#include "runtime.h"
#include "weights.h"

namespace phoenix {

// A region rebuilt from an EPContext blob (ep_context.cc): its weights, and with static shapes its
// plan, come from the blob instead of ORT's graph and the planner.
struct RegionRestore {
  std::function<Status(WeightStore&)> weights;
  std::function<Status(Plan*)> plan;  // empty when the region has symbolic dims
};

class CompiledRegion : public RegisteredRegion {
 public:
  // Uploads the weights (the OrtGraph of region.graph must still be live: this is Compile) and,
  // when every input shape is static, builds the one plan. With `restore`, both come from it.
  static Status Create(RegionGraph region, const ProviderOptions& options, std::shared_ptr<Device> device,
                       const OrtLogger* logger, std::unique_ptr<CompiledRegion>* out,
                       const RegionRestore* restore = nullptr);
  ~CompiledRegion() override;

  // The fused node's Compute: checks the inputs, finds or builds the plan for their shapes, runs it.
  Status Compute(OrtKernelContext* context);

  RegionSnapshot Snapshot() const override;
  void TraceEvents(std::string* events, int pid) const override;
  void ResetCounters() override;

 private:
  CompiledRegion(RegionGraph region, const ProviderOptions& options, std::shared_ptr<Device> device,
                 const OrtLogger* logger);
  // The plan for these input shapes (cache hit, or built now).
  Status PlanFor(const int64_t* dims, const size_t* ranks, std::shared_ptr<PlanRunner>* runner);
  Status Build(const std::vector<Shape>& shapes, std::shared_ptr<PlanRunner>* runner,
               const std::function<Status(Plan*)>* stored = nullptr);
  friend class EpContextCodec;  // writes the region's graph, weights and plan into a blob

  struct CachedPlan {
    std::vector<Shape> shapes;
    std::shared_ptr<PlanRunner> runner;
    uint64_t last_used = 0;
  };

  RegionGraph region_;
  CompileOptions compile_options_;
  int max_plans_;
  bool fail_on_run_;
  std::shared_ptr<Device> device_;
  const OrtLogger* logger_;
  WeightStore weights_;
  bool all_static_ = false;

  mutable std::mutex cache_mutex_;  // the cache, and building into it
  std::vector<CachedPlan> cache_;
  uint64_t tick_ = 0;
  std::shared_ptr<PlanRunner> last_run_;

  mutable std::mutex counters_mutex_;
  RegionCounters counters_;
  int registry_id_ = -1;
};

}  // namespace phoenix
