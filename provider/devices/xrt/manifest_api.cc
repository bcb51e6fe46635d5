// Exported C functions that give Python the provider's own answers about the NPU path: the
// manifest as the one parser reads it, and whether (and why not) the NPU is usable. Results are
// malloc'd JSON strings the caller frees with PhoenixNPU_FreeString (no two-call size protocol,
// so nothing can change between a size query and a fill). Nothing throws across the C ABI.
#include <cstdlib>
#include <cstring>
#include <string>

#include "counters.h"  // EscapeJson
#include "devices/xrt/manifest.h"
#include "devices/xrt/npu_probe.h"

namespace {

char* Dup(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

std::string Quote(const std::string& s) { return "\"" + phoenix::EscapeJson(s) + "\""; }

std::string Arg(const char* s) { return s ? s : ""; }

}  // namespace

extern "C" {

// {"ok":true,"manifest":{...}} or {"ok":false,"error":"..."}. path NULL or "": the default path.
__attribute__((visibility("default"))) char* PhoenixNPU_LoadManifestJson(const char* path, int check_artifacts) {
  try {
    const std::string p = Arg(path).empty() ? phoenix::DefaultManifestPath() : Arg(path);
    phoenix::xrt_device::Manifest m;
    phoenix::Status s = phoenix::xrt_device::LoadManifest(p, &m, check_artifacts != 0);
    if (!s.ok()) return Dup("{\"ok\":false,\"error\":" + Quote(s.message()) + "}");
    return Dup("{\"ok\":true,\"manifest\":" + m.ToJson() + "}");
  } catch (...) {
    return Dup("{\"ok\":false,\"error\":\"internal error while reading the kernel manifest\"}");
  }
}

// {"usable":bool,"why_not":"...","checks":[{"name","ok","found","todo"}...]}. Each argument may
// be NULL for the real machine's location (tests fake a machine through them).
__attribute__((visibility("default"))) char* PhoenixNPU_NpuStatusJson(const char* sys_root, const char* accel,
                                                                      const char* firmware, const char* manifest) {
  try {
    phoenix::NpuProbeRoots roots;
    if (sys_root) roots.sys_root = sys_root;
    if (accel) roots.accel = accel;
    if (firmware) roots.firmware = firmware;
    roots.manifest = Arg(manifest);
    const auto checks = phoenix::ProbeNpu(roots);
    std::string why;
    const bool usable = phoenix::NpuUsable(checks, &why);
    std::string out = std::string("{\"usable\":") + (usable ? "true" : "false") + ",\"why_not\":" + Quote(why) +
                      ",\"checks\":[";
    for (size_t i = 0; i < checks.size(); ++i)
      out += std::string(i ? "," : "") + "{\"name\":" + Quote(checks[i].name) + ",\"ok\":" +
             (checks[i].ok ? "true" : "false") + ",\"found\":" + Quote(checks[i].found) + ",\"todo\":" +
             Quote(checks[i].todo) + "}";
    return Dup(out + "]}");
  } catch (...) {
    return Dup("{\"usable\":false,\"why_not\":\"internal error while probing the NPU\",\"checks\":[]}");
  }
}

__attribute__((visibility("default"))) void PhoenixNPU_FreeString(char* s) { std::free(s); }

}  // extern "C"
