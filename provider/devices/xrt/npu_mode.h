// How the XRT device holds the manifest's stages on the NPU, and which way `device=npu` picks.
// No XRT dependency: decided from the manifest's artifacts, the request and the bring-up record,
// and tested everywhere (provider/tests/test_npu_bringup.cc). docs/npu.md 5 gives the bring-up order.
//
//   one-xclbin  every stage chained into ONE xclbin (aiecc --xclbin-input), one hw_context. The
//               cheapest (no context creation), but the configuration upstream disabled on npu1 as
//               flaky (mlir-aie #2695) and reported to time out with several kernels in one context
//               (xdna-driver #906, open). Used only once the bring-up record says it passed here.
//   per-stage   each stage built alone into its own xclbin, one hw_context per stage, at most
//               `contexts` open (context_cache.h evicts). Separate contexts are the configuration
//               #906 reports working. The default until the record says otherwise.
//   full ELF    not offered on npu1: aiecc's --get-full-elf (in the 1.4.x C++ aiecc) relies on the
//               `load_pdi` instruction, which upstream runs on aie2p (npu2) only; every upstream
//               full-ELF test REQUIRES ryzen_ai_npu2 (docs/npu.md 5).
//
// The bring-up record (`npu_bringup.txt` next to the manifest) is written on a real machine by the
// bring-up (docs/npu.md 5a): one line per mode, "<mode> pass" or "<mode> fail", '#' comments.
#pragma once

#include <sstream>
#include <string>

namespace phoenix {
namespace xrt_device {

enum class NpuMode { kOneXclbin, kPerStage };

inline const char* NpuModeName(NpuMode m) { return m == NpuMode::kOneXclbin ? "one-xclbin" : "per-stage"; }

inline bool ParseNpuMode(const std::string& s, NpuMode* m) {
  if (s == "one-xclbin") *m = NpuMode::kOneXclbin;
  else if (s == "per-stage") *m = NpuMode::kPerStage;
  else return false;
  return true;
}

// One mode's line of the bring-up record: "" (not tried), "pass" or "fail".
struct BringupRecord {
  std::string one_xclbin, per_stage;
};

// Parses the record's text; unknown modes or results are errors (*error says which line).
inline bool ParseBringupRecord(const std::string& text, BringupRecord* out, std::string* error) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  BringupRecord r;
  while (std::getline(in, line)) {
    ++n;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string mode, result, extra;
    if (!(words >> mode)) continue;
    NpuMode m;
    if (!(words >> result) || (words >> extra) || !ParseNpuMode(mode, &m) || (result != "pass" && result != "fail")) {
      if (error) *error = "line " + std::to_string(n) + ": expected \"one-xclbin|per-stage pass|fail\"";
      return false;
    }
    (m == NpuMode::kOneXclbin ? r.one_xclbin : r.per_stage) = result;
  }
  *out = r;
  return true;
}

struct ModeFacts {
  std::string requested;       // PHOENIX_NPU_MODE: "", "auto", "one-xclbin" or "per-stage"
  bool one_xclbin_built = false;
  bool per_stage_built = false;
  BringupRecord record;
};

struct ModeChoice {
  bool ok = false;
  NpuMode mode = NpuMode::kPerStage;
  std::string why;             // why this mode (ok) or why none (not ok)
};

inline ModeChoice ChooseNpuMode(const ModeFacts& f) {
  ModeChoice c;
  auto built = [&](NpuMode m) { return m == NpuMode::kOneXclbin ? f.one_xclbin_built : f.per_stage_built; };
  auto result = [&](NpuMode m) { return m == NpuMode::kOneXclbin ? f.record.one_xclbin : f.record.per_stage; };
  if (!f.requested.empty() && f.requested != "auto") {
    NpuMode m;
    if (!ParseNpuMode(f.requested, &m)) {
      c.why = "PHOENIX_NPU_MODE=" + f.requested + " is not one of auto, one-xclbin, per-stage";
      return c;
    }
    if (!built(m)) {
      c.why = std::string("PHOENIX_NPU_MODE=") + NpuModeName(m) + " but its xclbin(s) are not built (" +
              (m == NpuMode::kOneXclbin ? "`make` in kernels/" : "`make per-stage` in kernels/") + ")";
      return c;
    }
    c.ok = true;
    c.mode = m;
    c.why = std::string("requested by PHOENIX_NPU_MODE") +
            (result(m) == "fail" ? " (the bring-up record says it FAILED on this machine)" : "");
    return c;
  }
  if (f.one_xclbin_built && f.record.one_xclbin == "pass") {
    c.ok = true;
    c.mode = NpuMode::kOneXclbin;
    c.why = "the bring-up record says the one-xclbin mode passed on this machine (one hw_context, no context creation)";
    return c;
  }
  if (f.per_stage_built && f.record.per_stage != "fail") {
    c.ok = true;
    c.mode = NpuMode::kPerStage;
    c.why = f.record.per_stage == "pass"
                ? "the bring-up record says the per-stage mode passed on this machine"
                : "per-stage is the default until the bring-up passes one-xclbin (mlir-aie #2695, xdna-driver #906); "
                  "not yet run on this machine";
    return c;
  }
  if (f.one_xclbin_built && f.record.one_xclbin != "fail") {
    c.ok = true;
    c.mode = NpuMode::kOneXclbin;
    c.why = "only the one-xclbin build exists; UNPROVEN on npu1 (mlir-aie #2695, xdna-driver #906): build the "
            "per-stage xclbins (`make per-stage`) and run the bring-up (docs/npu.md 5a)";
    return c;
  }
  c.why = !f.one_xclbin_built && !f.per_stage_built
              ? "no NPU xclbin is built (`make` or `make per-stage` in kernels/)"
              : "the bring-up record says every built mode FAILED on this machine (docs/npu.md 5a)";
  return c;
}

}  // namespace xrt_device
}  // namespace phoenix
