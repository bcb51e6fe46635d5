// The peak microbenchmark (common/peak.h) and the JSON the library exports as
// PhoenixNPU_MeasurePeak: an instruction the CPU has gives a plausible rate (more than 1 GOP/s: a
// loop that measured nothing would not), one it lacks gives 0, the JSON names the entries the
// kernels' path uses.
#include <cstring>
#include <string>

#include "common/cpu_features.h"
#include "common/peak.h"
#include "common/testing.h"

using namespace phoenix;
using namespace phoenix::testing;

PHX_TEST(peak_rates_match_the_cpu) {
  const CpuFeatures& f = GetCpuFeatures();
  const PeakPerCore p = MeasurePeakPerCore(0.02);
  Note("per core: fp32_fma %.1f  fp32_muladd %.1f  int16_madd %.1f  bf16_dot %.1f  int8_dot %.1f  int8_dot_ymm %.1f",
       p.fp32_fma, p.fp32_muladd, p.int16_madd, p.bf16_dot, p.int8_dot, p.int8_dot_ymm);
  const bool avx2 = f.os_avx && f.avx2 && f.fma;
  PHX_CHECK(avx2 ? p.fp32_fma > 1 && p.fp32_muladd > 1 && p.int16_madd > 1 : p.fp32_fma == 0);
  PHX_CHECK((f.os_avx512 && f.avx512bf16) ? p.bf16_dot > 1 : p.bf16_dot == 0);
  PHX_CHECK((f.os_avx512 && f.avx512vnni) ? p.int8_dot > 1 : p.int8_dot == 0);
  PHX_CHECK((avx2 && f.avx_vnni) ? p.int8_dot_ymm > 1 : p.int8_dot_ymm == 0);
}

PHX_TEST(peak_json) {
  const std::string json = PeakJson();
  Note("%s", json.c_str());
  PHX_CHECK(json.find("\"per_core\": {\"fp32_fma\": ") != std::string::npos && json.back() == '}') << json;
  PHX_CHECK(json.find(std::string("\"kernel_isa\": \"") + KernelIsaName() + "\"") != std::string::npos) << json;
  const char* bf16 = UseAvx512Bf16() ? "\"bf16_kernels\": \"bf16_dot\"" : UseAvx2Fma() ? "\"bf16_kernels\": \"fp32_fma\""
                                                                                     : "\"bf16_kernels\": null";
  PHX_CHECK(json.find(bf16) != std::string::npos) << json;
  const char* int8 = UseAvx512Vnni() ? "\"int8_kernels\": \"int8_dot\""
                     : UseAvxVnni()  ? "\"int8_kernels\": \"int8_dot_ymm\""
                     : UseAvx2Fma()  ? "\"int8_kernels\": \"int16_madd\""
                                     : "\"int8_kernels\": null";
  PHX_CHECK(json.find(int8) != std::string::npos) << json;
  PHX_CHECK(PeakJson() == json) << "measured twice";
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
