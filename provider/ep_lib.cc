// The library's exported C entry points: the two ORT looks for (CreateEpFactories,
// ReleaseEpFactory) and the counters API the Python package reads with ctypes.
#include <cstring>
#include <string>

#include "capability.h"
#include "common/peak.h"
#include "counters.h"
#include "factory.h"
#include "options.h"
#include "ort_api.h"

using phoenix::g_ort;

extern "C" {

__attribute__((visibility("default"))) OrtStatus* CreateEpFactories(const char* registered_name,
                                                                    const OrtApiBase* ort_api_base,
                                                                    const OrtLogger* default_logger,
                                                                    OrtEpFactory** factories, size_t max_factories,
                                                                    size_t* num_factories) {
  const OrtApi* api = ort_api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) return nullptr;  // cannot even report: ORT is older than our ABI (< 1.29)
  phoenix::InitOrtApi(api);
  PHX_ABI_BEGIN
  if (max_factories < 1) return g_ort->CreateStatus(ORT_INVALID_ARGUMENT, "PhoenixNPU: no room for a factory");
  // The EP's name is fixed; the registration name is only the library's handle in ORT.
  (void)registered_name;
  factories[0] = new phoenix::PhoenixEpFactory("PhoenixNPUExecutionProvider", default_logger);
  *num_factories = 1;
  return nullptr;
  PHX_ABI_END
}

__attribute__((visibility("default"))) OrtStatus* ReleaseEpFactory(OrtEpFactory* factory) {
  delete static_cast<phoenix::PhoenixEpFactory*>(factory);
  return nullptr;
}

// JSON out through a caller's buffer: returns the length needed including the NUL. When that
// exceeds cap nothing partial is written (buf becomes ""): the caller asks again with a bigger
// buffer, and since the text may have grown meanwhile, it only trusts an answer that fit.
// 0 on an internal error.
static size_t CopyJsonOut(std::string (*render)(), char* buf, size_t cap) {
  try {
    const std::string json = render();
    if (buf && cap > 0) {
      if (json.size() + 1 <= cap) {
        std::memcpy(buf, json.data(), json.size());
        buf[json.size()] = '\0';
      } else {
        buf[0] = '\0';
      }
    }
    return json.size() + 1;
  } catch (...) {
    return 0;
  }
}

// The counters of all live regions and the process totals.
__attribute__((visibility("default"))) size_t PhoenixNPU_CountersJson(char* buf, size_t cap) {
  return CopyJsonOut([] { return phoenix::CountersRegistry::Get().Json(); }, buf, cap);
}

// The last run of every live region as a Chrome trace (chrome://tracing, Perfetto).
__attribute__((visibility("default"))) size_t PhoenixNPU_ChromeTraceJson(char* buf, size_t cap) {
  return CopyJsonOut([] { return phoenix::CountersRegistry::Get().ChromeTrace(); }, buf, cap);
}

// The provider options: [{"key", "default", "accepted", "doc"}] (the README's table comes from it).
__attribute__((visibility("default"))) size_t PhoenixNPU_OptionTableJson(char* buf, size_t cap) {
  return CopyJsonOut([] { return phoenix::OptionTableJson(); }, buf, cap);
}

// What the provider took of the last graphs it was offered, node by node, with reasons.
__attribute__((visibility("default"))) size_t PhoenixNPU_CapabilityReportsJson(char* buf, size_t cap) {
  return CopyJsonOut([] { return phoenix::CapabilityReportsJson(); }, buf, cap);
}

// This CPU's per-core dot-product peak (kernels/common/peak.h: JSON, measured once per process).
__attribute__((visibility("default"))) size_t PhoenixNPU_MeasurePeak(char* buf, size_t cap) {
  return CopyJsonOut([] { return phoenix::PeakJson(); }, buf, cap);
}

__attribute__((visibility("default"))) void PhoenixNPU_ResetCounters() {
  try {
    phoenix::CountersRegistry::Get().Reset();
  } catch (...) {
  }
}

}  // extern "C"
