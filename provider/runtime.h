// Runs one Plan on a Device. Creation allocates the plan's activation arena and resolves every
// operand to a device buffer (weights live in the region's WeightStore). A run then does
// exactly: one host-to-device transfer per input (FP32 -> BF16 into the mapped arena), the
// plan's kernel launches, one wait, and one device-to-host transfer per output (BF16 -> FP32).
// Nothing is allocated on the run path.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "counters.h"
#include "device.h"
#include "plan.h"

namespace phoenix {

class PlanRunner {
 public:
  static Status Create(Plan plan, std::shared_ptr<Device> device, std::unique_ptr<PlanRunner>* out);
  ~PlanRunner();

  const Plan& plan() const { return plan_; }
  // "" or "3 of 72 kernel calls (Softmax x3) have no NPU kernel and run on the host CPU".
  const std::string& host_note() const { return host_note_; }

  // inputs[i] holds plan().inputs[i].shape elements; outputs[i] receives plan().outputs[i].
  // Runs of one runner are serialised (they share the arena); `counters` gets this run's
  // figures (the caller serialises access to it).
  Status Run(const float* const* inputs, float* const* outputs, RegionCounters* counters, std::mutex* counters_mutex);

  // Chrome-trace events of this runner's last run.
  void TraceEvents(std::string* events, int pid) const;

 private:
  PlanRunner() = default;
  Status Resolve();

  Plan plan_;
  std::shared_ptr<Device> device_;
  BufferId arena_ = kNoBuffer;
  std::vector<BufferId> tensor_buffer_;      // per plan tensor
  std::vector<int64_t> tensor_elem_offset_;  // per plan tensor: element offset in its buffer
  std::vector<KernelCall> calls_;            // fully resolved, ready to launch
  int host_calls_ = 0;                       // of calls_, how many the device runs on the host
  std::string host_note_;                    // which kinds, for the log
  mutable std::mutex run_mutex_;
  // Timestamps of the last run, per call (sized once, so recording allocates nothing).
  std::vector<int64_t> call_start_ns_, call_end_ns_;
  int64_t run_start_ns_ = 0, run_end_ns_ = 0;
};

}  // namespace phoenix
