// The compiled-model compatibility string (ORT's GetCompiledModelCompatibilityInfo, stored by ORT in
// a compiled model's metadata) and its judgement (the factory's ValidateCompiledModelCompatibilityInfo).
//
//   PhoenixNPUExecutionProvider;format=2;device=npu;isa=avx512_vnni;npu=<16 hex digits>
//
// format: the EPContext blob format (kEpContextFormatVersion); device: what the compiling session
// ran on ("emulator" | "npu"); isa: the host kernels' ISA (KernelIsaName); npu: on the NPU device,
// the identity of the NPU artifacts the plan was made against: FNV-1a 64 over the kernel manifest and
// every xclbin / instruction file it names that exists ("none" on the emulated device). The blob
// holds no xclbin or instructions; this is the reference to them.
//
// Judgement, worst first: not ours or unreadable -> NOT_APPLICABLE; a blob format this build does not
// read -> UNSUPPORTED (the loader refuses it); an older format it reads (1), another device, other NPU
// artifacts, another kernel ISA or a string without these fields (builds before format 1's compat
// string) -> SUPPORTED_PREFER_RECOMPILATION (it loads and runs; where its stored plan was not made
// here the loader plans again from the stored graph: ep_context.h); all equal -> SUPPORTED_OPTIMAL. No ORT dependency: unit-tested in the C++ tier.
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace phoenix {

enum class CompiledCompat { kNotApplicable, kOptimal, kPreferRecompilation, kUnsupported };

struct CompatInfo {
  std::string ep;
  std::map<std::string, std::string> fields;  // format, device, isa, npu
};

inline std::string MakeCompatInfo(const std::string& ep, uint32_t format, const std::string& device,
                                  const std::string& isa, const std::string& npu_artifacts) {
  return ep + ";format=" + std::to_string(format) + ";device=" + device + ";isa=" + isa + ";npu=" + npu_artifacts;
}

inline bool ParseCompatInfo(const std::string& s, CompatInfo* out) {
  std::stringstream in(s);
  std::string part;
  if (!std::getline(in, part, ';') || part.empty()) return false;
  out->ep = part;
  out->fields.clear();
  while (std::getline(in, part, ';')) {
    const size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    out->fields[part.substr(0, eq)] = part.substr(eq + 1);
  }
  return true;
}

// format: the blob format this build writes; oldest_format: the oldest it still reads (an older
// readable format loads, planned again where its plan cannot be trusted: ep_context.h).
inline CompiledCompat JudgeCompatInfo(const std::string& info, const std::string& ep, uint32_t format,
                                      uint32_t oldest_format, const std::string& device, const std::string& isa,
                                      const std::string& npu_artifacts, std::string* why) {
  CompatInfo c;
  if (!ParseCompatInfo(info, &c) || c.ep != ep) {
    *why = "not a " + ep + " compatibility string";
    return CompiledCompat::kNotApplicable;
  }
  auto get = [&](const char* k) { auto it = c.fields.find(k); return it == c.fields.end() ? std::string() : it->second; };
  const std::string f = get("format");
  if (f.empty()) {
    *why = "written by an older build (no format field)";
    return CompiledCompat::kPreferRecompilation;
  }
  if (f != std::to_string(format)) {
    for (uint32_t old = oldest_format; old < format; ++old)
      if (f == std::to_string(old)) {
        *why = "context format " + f + " (read; this build writes format " + std::to_string(format) + ")";
        return CompiledCompat::kPreferRecompilation;
      }
    *why = "context format " + f + ", this build reads formats " + std::to_string(oldest_format) + " to " +
           std::to_string(format);
    return CompiledCompat::kUnsupported;
  }
  if (get("device") != device) {
    *why = "compiled on device " + get("device") + ", this machine runs " + device;
    return CompiledCompat::kPreferRecompilation;
  }
  if (device == "npu" && get("npu") != npu_artifacts) {
    *why = "compiled against other NPU artifacts (" + get("npu") + ", installed " + npu_artifacts + ")";
    return CompiledCompat::kPreferRecompilation;
  }
  if (get("isa") != isa) {
    *why = "compiled with kernel ISA " + get("isa") + ", this CPU runs " + isa;
    return CompiledCompat::kPreferRecompilation;
  }
  *why = "same format, device, ISA and NPU artifacts";
  return CompiledCompat::kOptimal;
}

// FNV-1a 64 over the files (name and bytes of each that exists), as 16 hex digits.
inline std::string HashFiles(const std::vector<std::string>& paths) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 1099511628211ull;
  };
  for (const std::string& path : paths) {
    std::ifstream f(path, std::ios::binary);
    if (!f) continue;
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    mix(path.data(), path.size());
    mix(bytes.data(), bytes.size());
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Where a plan is made, as the compatibility string and the EPContext blob record it: the device
// ("npu" | "emulator") and, on the NPU, the NPU artifacts' identity ("none" elsewhere).
struct PlanOrigin {
  std::string device;
  std::string npu_artifacts;
};

// On this machine (compat_info.cc): the identity of the NPU artifacts of a manifest ("" = the
// default one; "none" when it cannot be read), and the origin of a plan made on the NPU or not.
std::string NpuArtifactsIdentity(const std::string& manifest_path);
PlanOrigin PlanOriginOf(bool on_npu, const std::string& manifest_path);

}  // namespace phoenix
