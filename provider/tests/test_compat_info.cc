// The compiled-model compatibility string and its judgement (compat_info.h; issue 23 item 6): what
// ValidateCompiledModelCompatibilityInfo answers for each difference between the compiling machine
// and this one.
#include <fstream>
#include <string>

#include "common/testing.h"
#include "compat_info.h"
#include "ep_context.h"

using namespace phoenix;
using namespace phoenix::testing;

namespace {
const char* kEp = "PhoenixNPUExecutionProvider";
CompiledCompat Judge(const std::string& info, const std::string& device = "npu", const std::string& isa = "avx512_vnni",
                     const std::string& npu = "00000000000000aa", std::string* why_out = nullptr) {
  std::string why;
  const CompiledCompat c = JudgeCompatInfo(info, kEp, 2, 1, device, isa, npu, &why);
  if (why_out) *why_out = why;
  return c;
}
}  // namespace

PHX_TEST(compat_string_round_trips) {
  const std::string s = MakeCompatInfo(kEp, 1, "npu", "avx2", "00000000000000aa");
  PHX_CHECK(s == "PhoenixNPUExecutionProvider;format=1;device=npu;isa=avx2;npu=00000000000000aa") << s;
  CompatInfo c;
  PHX_CHECK(ParseCompatInfo(s, &c) && c.ep == kEp && c.fields.at("device") == "npu" && c.fields.at("isa") == "avx2");
}

PHX_TEST(each_difference_gets_its_answer) {
  const std::string same = MakeCompatInfo(kEp, 2, "npu", "avx512_vnni", "00000000000000aa");
  std::string why;
  PHX_CHECK(Judge(same) == CompiledCompat::kOptimal);
  PHX_CHECK(Judge(MakeCompatInfo(kEp, 3, "npu", "avx512_vnni", "00000000000000aa"), "npu", "avx512_vnni",
                  "00000000000000aa", &why) == CompiledCompat::kUnsupported && why.find("format 3") != std::string::npos)
      << why;
  // format 1 is still read (its plan is planned again on the NPU: ep_context.h): recompilation preferred
  PHX_CHECK(Judge(MakeCompatInfo(kEp, 1, "npu", "avx512_vnni", "00000000000000aa"), "npu", "avx512_vnni",
                  "00000000000000aa", &why) == CompiledCompat::kPreferRecompilation &&
            why.find("format 1 (read") != std::string::npos) << why;
  PHX_CHECK(Judge(same, "emulator", "avx512_vnni", "none", &why) == CompiledCompat::kPreferRecompilation &&
            why.find("device npu") != std::string::npos) << why;
  PHX_CHECK(Judge(same, "npu", "avx512_vnni", "00000000000000bb", &why) == CompiledCompat::kPreferRecompilation &&
            why.find("NPU artifacts") != std::string::npos) << why;
  PHX_CHECK(Judge(same, "npu", "avx2", "00000000000000aa", &why) == CompiledCompat::kPreferRecompilation &&
            why.find("ISA") != std::string::npos) << why;
  // the emulated device has no NPU artifacts: only format, device and ISA count
  PHX_CHECK(Judge(MakeCompatInfo(kEp, 2, "emulator", "avx2", "none"), "emulator", "avx2", "none") == CompiledCompat::kOptimal);
  PHX_CHECK(Judge("PhoenixNPUExecutionProvider;plan=1") == CompiledCompat::kPreferRecompilation);  // older builds
  PHX_CHECK(Judge("OtherEP;format=1") == CompiledCompat::kNotApplicable);
  PHX_CHECK(Judge("") == CompiledCompat::kNotApplicable);
  PHX_CHECK(Judge("PhoenixNPUExecutionProvider;garbage") == CompiledCompat::kNotApplicable);
}

PHX_TEST(artifact_identity_changes_with_any_file) {
  const std::string a = "/tmp/phx_compat_a.bin", b = "/tmp/phx_compat_b.bin";
  std::ofstream(a) << "manifest";
  std::ofstream(b) << "xclbin 1";
  const std::string h1 = HashFiles({a, b});
  PHX_CHECK(h1.size() == 16 && h1 == HashFiles({a, b}));
  std::ofstream(b) << "xclbin 2";
  PHX_CHECK(HashFiles({a, b}) != h1);
  PHX_CHECK(HashFiles({a, b, "/nonexistent/file"}) == HashFiles({a, b}));  // absent files are skipped
}

// EPContext blobs (ep_context.h): a stored plan runs only where it was made. On the NPU device only a
// format-2 plan made on the NPU against the installed artifacts; on the emulated device any plan not
// made on the NPU (format 1 included); otherwise the reason, and DropPlan leaves the region to be planned
// again from its stored graph.
PHX_TEST(stale_context_plans_are_named_and_dropped) {
  DecodedContext c;
  c.has_plan = true;
  c.format = 2;
  c.device = "npu";
  c.npu_artifacts = "00000000000000aa";
  PHX_CHECK(EpContextCodec::StalePlanReason(c, {"npu", "00000000000000aa"}).empty());
  std::string why = EpContextCodec::StalePlanReason(c, {"npu", "00000000000000bb"});
  PHX_CHECK(why.find("00000000000000aa") != std::string::npos && why.find("00000000000000bb") != std::string::npos) << why;
  why = EpContextCodec::StalePlanReason(c, {"emulator", "none"});
  PHX_CHECK(why.find("made on the npu device") != std::string::npos) << why;
  DecodedContext e = c;
  e.device = "emulator";
  e.npu_artifacts = "none";
  PHX_CHECK(EpContextCodec::StalePlanReason(e, {"emulator", "none"}).empty());
  why = EpContextCodec::StalePlanReason(e, {"npu", "00000000000000aa"});
  PHX_CHECK(why.find("emulator device") != std::string::npos) << why;
  DecodedContext f1;  // format 1: no device, no artifacts
  f1.has_plan = true;
  f1.format = 1;
  PHX_CHECK(EpContextCodec::StalePlanReason(f1, {"emulator", "none"}).empty());
  why = EpContextCodec::StalePlanReason(f1, {"npu", "00000000000000aa"});
  PHX_CHECK(why.find("format 1") != std::string::npos) << why;
  DecodedContext none = c;  // no stored plan: nothing is stale
  none.has_plan = false;
  PHX_CHECK(EpContextCodec::StalePlanReason(none, {"npu", "00000000000000bb"}).empty());
  // dropping: the region (here an empty graph, which the provider's checks pass) is planned again
  PHX_CHECK(EpContextCodec::DropPlan(why, &c).ok() && !c.has_plan);
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
