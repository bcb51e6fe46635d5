// Per-stage mode's hardware-context cache: which stages hold an xrt::hw_context, and which one to
// close when a stage needs one and the cache is full. No XRT dependency (the XRT device owns the
// contexts; this class only decides), so it is tested everywhere (provider/tests/test_npu_bringup.cc).
//
// npu1 has 6 hardware contexts for the whole device, all processes (xdna-driver npu1_regs.c,
// hwctx_limit; mlir-aie's CachedXRTRuntime uses 6 for npu1, PR #3526). Whisper-base's encoder plan
// launches 9 distinct stages per layer in a fixed cycle, so a cache of <= 6 must evict. LRU is the
// worst policy for a cycle longer than the cache (it evicts exactly the stage needed next: 48
// creations per run at 6 contexts). The plan is the same every run, so the device records the
// order of the first run and then evicts the open stage whose next use is farthest (Belady's rule
// on a known sequence: 21 creations per run at 6 contexts, 27 at 5, 34 at 4).
// npu_model.context_misses mirrors this accounting; tests check both give the same counts.
//
// When creating a context fails because other processes hold the remaining ones (amdxdna:
// -EINVAL / MGMT_ERT_NOAVAIL; mlir-air PR #2012), the device calls Shrink() and retries.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace phoenix {
namespace xrt_device {

class ContextCache {
 public:
  explicit ContextCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  struct Step {
    bool hit = false;   // the stage already holds a context
    int evicted = -1;   // the stage whose context must be closed first (-1: none)
  };

  // The stage order of one whole run (recorded from the first run); empty = LRU.
  void SetOrder(std::vector<int> order) {
    order_ = std::move(order);
    pos_ = 0;
  }

  // `stage` is about to launch: make it resident, evicting one if full.
  Step Use(int stage) {
    Step step;
    const size_t now = ++clock_;
    const bool known = Advance(stage);
    auto it = std::find(open_.begin(), open_.end(), stage);
    if (it != open_.end()) {
      step.hit = true;
      LastUse(stage) = now;
      return step;
    }
    if (open_.size() >= capacity_) {
      size_t victim = 0;
      for (size_t i = 1; i < open_.size(); ++i)
        if (Worse(open_[i], open_[victim], known)) victim = i;
      step.evicted = open_[victim];
      open_.erase(open_.begin() + static_cast<long>(victim));
      ++evictions_;
    }
    open_.push_back(stage);
    LastUse(stage) = now;
    ++creates_;
    return step;
  }

  // Another process holds contexts: hold one fewer (never below 1). Returns the stage to close, or -1.
  int Shrink() {
    if (capacity_ <= 1) return -1;
    --capacity_;
    if (open_.size() <= capacity_) return -1;
    size_t victim = 0;
    for (size_t i = 1; i < open_.size(); ++i)
      if (LastUse(open_[i]) < LastUse(open_[victim])) victim = i;
    const int stage = open_[victim];
    open_.erase(open_.begin() + static_cast<long>(victim));
    ++evictions_;
    return stage;
  }

  size_t capacity() const { return capacity_; }
  size_t creates() const { return creates_; }
  size_t evictions() const { return evictions_; }
  const std::vector<int>& open() const { return open_; }

 private:
  // When `stage` was last used (0: never); stages are small non-negative indices.
  size_t& LastUse(int stage) {
    const size_t i = static_cast<size_t>(stage < 0 ? 0 : stage);
    if (last_use_.size() <= i) last_use_.resize(i + 1, 0);
    return last_use_[i];
  }

  // Moves the position in the recorded order to `stage`'s next occurrence. False when the order is
  // unknown or `stage` is not in it (then the victim is chosen by LRU).
  bool Advance(int stage) {
    const size_t n = order_.size();
    for (size_t j = 0; j < n; ++j)
      if (order_[(pos_ + j) % n] == stage) {
        pos_ = (pos_ + j) % n;
        return true;
      }
    return false;
  }

  // Distance (in launches) from the current position to `stage`'s next use; n + 1 when never.
  size_t NextUse(int stage) const {
    const size_t n = order_.size();
    for (size_t j = 1; j <= n; ++j)
      if (order_[(pos_ + j) % n] == stage) return j;
    return n + 1;
  }

  // Whether `a` is a better victim than `b`.
  bool Worse(int a, int b, bool known) {
    if (known) {
      const size_t na = NextUse(a), nb = NextUse(b);
      if (na != nb) return na > nb;
    }
    return LastUse(a) < LastUse(b);
  }

  size_t capacity_;
  std::vector<int> order_;
  size_t pos_ = 0;
  std::vector<int> open_;
  std::vector<size_t> last_use_;  // by stage index
  size_t clock_ = 0, creates_ = 0, evictions_ = 0;
};

}  // namespace xrt_device
}  // namespace phoenix
