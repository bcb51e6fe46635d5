// Counters of each compiled region (kernel launches and time per kind, bytes in and out,
// weight bytes, device allocations), kept per region and readable from Python through the
// exported C function PhoenixNPU_CountersJson (python/phoenix_npu: counters()).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "device.h"

namespace phoenix {

struct RegionCounters {
  int64_t runs = 0;
  int64_t launches = 0;
  int64_t launches_by_kind[static_cast<int>(KernelKind::kCount)] = {};
  int64_t ns_by_kind[static_cast<int>(KernelKind::kCount)] = {};
  int64_t bytes_in = 0;            // activations synced to the device (inputs)
  int64_t bytes_out = 0;           // activations synced back (outputs)
  int64_t weight_bytes_uploaded = 0;
  int64_t device_allocations = 0;
  int64_t transfers_in = 0, transfers_out = 0;
  int64_t host_launches = 0;       // calls the device ran on the host CPU (hybrid NPU device)
  int64_t plans_built = 0;         // shape-specialised plans built (1 for a static region)
  int64_t plans_loaded = 0;        // plans taken from an EPContext blob (not planned again)
  int64_t plan_cache_hits = 0;     // runs that found their plan in the region's cache
  int64_t plan_evictions = 0;      // plans dropped (least recently used) to stay within max_plans
  int64_t last_run_ns = 0;         // wall time of the last run, plan walk included
  int64_t last_host_overhead_ns = 0;  // last run minus the kernels' own time
};

// What a live region says of itself, for the JSON (taken under the region's own locks).
struct RegionSnapshot {
  std::string name, device, summary;
  int64_t arena_bytes = 0, weight_bytes = 0;
  int num_onnx_nodes = 0, num_calls = 0, plans = 0;
  RegionCounters counters;
};

class RegisteredRegion {
 public:
  virtual ~RegisteredRegion() = default;
  virtual RegionSnapshot Snapshot() const = 0;
  virtual void TraceEvents(std::string* events, int pid) const = 0;  // its last run
  virtual void ResetCounters() = 0;
};

// A live region registers itself; the registry renders all of them (and process totals,
// which keep counting after a region is gone) as JSON.
class CountersRegistry {
 public:
  static CountersRegistry& Get();
  int Add(RegisteredRegion* region);
  void Remove(int id, const RegionCounters& final_counts);
  std::string Json();
  // {"traceEvents": [...]}: the last run of every live region, one process row per region.
  std::string ChromeTrace();
  void Reset();

 private:
  std::mutex mu_;
  std::vector<std::pair<int, RegisteredRegion*>> live_;
  int next_id_ = 0;
  RegionCounters retired_;  // sums of regions already destroyed
  int64_t regions_created_ = 0;
};

std::string EscapeJson(const std::string& s);

}  // namespace phoenix
