// The XRT device's decisions that need no XRT (issue 23 items 3, 4): the run-state policy
// (run_state.h), the per-stage context cache (context_cache.h) and the mode selection
// (npu_mode.h). The numbers are the ones npu_model.context_misses gives (tests/test_npu_model.py).
#include <string>
#include <vector>

#include "common/testing.h"
#include "devices/xrt/context_cache.h"
#include "devices/xrt/npu_mode.h"
#include "devices/xrt/run_state.h"

using namespace phoenix;
using namespace phoenix::xrt_device;
using namespace phoenix::testing;

PHX_TEST(only_completed_is_success_and_every_other_state_is_named) {
  PHX_CHECK(RunFailure("LN (PHX_LN)", kErtCompleted).empty());
  for (int s : {kErtNew, kErtQueued, kErtRunning, kErtError, kErtAbort, kErtSubmitted, kErtTimeout, kErtNoResponse,
                kErtSkError, kErtSkCrashed, 0, 99}) {
    const std::string m = RunFailure("LN (PHX_LN)", s);
    PHX_CHECK(!m.empty()) << s;
    PHX_CHECK(m.find("LN (PHX_LN)") != std::string::npos && m.find("stopped") != std::string::npos) << m;
    PHX_CHECK(m.find(ErtStateName(s)) != std::string::npos) << m;
  }
  PHX_CHECK(std::string(ErtStateName(kErtError)) == "ERT_CMD_STATE_ERROR");
  PHX_CHECK(std::string(ErtStateName(kErtTimeout)) == "ERT_CMD_STATE_TIMEOUT");
  PHX_CHECK(RunFailure("x", kErtTimeout).find("per-stage") != std::string::npos);
  // an exception from wait is fatal even when the state read afterwards says COMPLETED
  const std::string e = RunFailure("x", kErtCompleted, "aie_error: fatal_error_type 0x1");
  PHX_CHECK(!e.empty() && e.find("aie_error") != std::string::npos);
  // only runs that did not reach a final state are aborted
  PHX_CHECK(ErtNeedsAbort(kErtTimeout) && ErtNeedsAbort(kErtRunning) && ErtNeedsAbort(kErtNoResponse));
  PHX_CHECK(!ErtNeedsAbort(kErtCompleted) && !ErtNeedsAbort(kErtError) && !ErtNeedsAbort(kErtAbort));
}

// whisper-base's encoder plan: per layer LN, QKV GEMM + epilogue, out GEMM + epilogue, LN, FC1 + epilogue,
// FC2 + epilogue; six layers, then the final LN (the same LN kernel): 61 launches, 9 stages.
static std::vector<int> BaseOrder() {
  const std::vector<int> layer = {0, 1, 2, 3, 4, 0, 5, 6, 7, 8};
  std::vector<int> seq;
  for (int l = 0; l < 6; ++l) seq.insert(seq.end(), layer.begin(), layer.end());
  seq.push_back(0);
  return seq;
}

// Contexts created in the third run of `seq` (the steady state), with the order known or not.
static size_t SteadyCreates(const std::vector<int>& seq, size_t capacity, bool known) {
  ContextCache cache(capacity);
  if (known) cache.SetOrder(seq);
  for (int run = 0; run < 2; ++run)
    for (int s : seq) cache.Use(s);
  const size_t before = cache.creates();
  for (int s : seq) {
    const size_t created = cache.creates();
    const auto step = cache.Use(s);
    PHX_CHECK(cache.open().size() <= capacity);
    PHX_CHECK(step.hit == (cache.creates() == created));   // a hit creates nothing; a miss creates one
    PHX_CHECK(!step.hit || step.evicted == -1);
  }
  return cache.creates() - before;
}

PHX_TEST(context_cache_counts_match_the_model) {
  const auto seq = BaseOrder();
  PHX_CHECK(seq.size() == 61);
  // the numbers npu_model.context_misses gives (tests/test_npu_model.py)
  PHX_CHECK(SteadyCreates(seq, 9, true) == 0);
  PHX_CHECK(SteadyCreates(seq, 6, true) == 21) << SteadyCreates(seq, 6, true);
  PHX_CHECK(SteadyCreates(seq, 5, true) == 27) << SteadyCreates(seq, 5, true);
  PHX_CHECK(SteadyCreates(seq, 4, true) == 34) << SteadyCreates(seq, 4, true);
  PHX_CHECK(SteadyCreates(seq, 6, false) == 48) << SteadyCreates(seq, 6, false);   // LRU
  const std::vector<int> abc = {0, 1, 2};
  PHX_CHECK(SteadyCreates(abc, 2, false) == 3 && SteadyCreates(abc, 2, true) == 2 && SteadyCreates(abc, 3, true) == 0);
}

PHX_TEST(context_cache_evicts_and_shrinks) {
  ContextCache c(2);
  PHX_CHECK(!c.Use(0).hit && !c.Use(1).hit && c.Use(0).hit);
  const auto s = c.Use(2);  // LRU without an order: 1 is the least recently used
  PHX_CHECK(!s.hit && s.evicted == 1 && c.creates() == 3 && c.evictions() == 1);
  PHX_CHECK(c.Shrink() == 0 && c.capacity() == 1 && c.open().size() == 1 && c.open()[0] == 2);
  PHX_CHECK(c.Shrink() == -1 && c.capacity() == 1);  // never below one
  ContextCache z(0);
  PHX_CHECK(z.capacity() == 1);
}

PHX_TEST(mode_selection_follows_the_bringup_record) {
  ModeFacts f;
  f.per_stage_built = f.one_xclbin_built = true;
  ModeChoice c = ChooseNpuMode(f);  // nothing run yet: per-stage, the configuration #906 reports working
  PHX_CHECK(c.ok && c.mode == NpuMode::kPerStage) << c.why;
  f.record.one_xclbin = "pass";
  c = ChooseNpuMode(f);
  PHX_CHECK(c.ok && c.mode == NpuMode::kOneXclbin) << c.why;
  f.record.one_xclbin = "fail";
  c = ChooseNpuMode(f);
  PHX_CHECK(c.ok && c.mode == NpuMode::kPerStage) << c.why;
  f.record.per_stage = "fail";
  c = ChooseNpuMode(f);
  PHX_CHECK(!c.ok && c.why.find("FAILED") != std::string::npos) << c.why;
  // only the one xclbin built: used, and said to be unproven
  ModeFacts g;
  g.one_xclbin_built = true;
  c = ChooseNpuMode(g);
  PHX_CHECK(c.ok && c.mode == NpuMode::kOneXclbin && c.why.find("UNPROVEN") != std::string::npos) << c.why;
  // requests
  g.requested = "per-stage";
  c = ChooseNpuMode(g);
  PHX_CHECK(!c.ok && c.why.find("not built") != std::string::npos) << c.why;
  g.requested = "full-elf";
  PHX_CHECK(!ChooseNpuMode(g).ok);
  g.requested = "one-xclbin";
  PHX_CHECK(ChooseNpuMode(g).ok && ChooseNpuMode(g).mode == NpuMode::kOneXclbin);
  PHX_CHECK(!ChooseNpuMode(ModeFacts()).ok);
}

PHX_TEST(bringup_record_parses_strictly) {
  BringupRecord r;
  std::string err;
  PHX_CHECK(ParseBringupRecord("# written by the bring-up\none-xclbin fail  # timed out\nper-stage pass\n", &r, &err));
  PHX_CHECK(r.one_xclbin == "fail" && r.per_stage == "pass");
  PHX_CHECK(ParseBringupRecord("", &r, &err) && r.one_xclbin.empty() && r.per_stage.empty());
  PHX_CHECK(!ParseBringupRecord("per-stage ok\n", &r, &err) && err.find("line 1") != std::string::npos);
  PHX_CHECK(!ParseBringupRecord("\nfull-elf pass\n", &r, &err) && err.find("line 2") != std::string::npos);
  PHX_CHECK(!ParseBringupRecord("per-stage pass extra\n", &r, &err));
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
