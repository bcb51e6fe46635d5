#include "options.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace phoenix {

Status ProviderOptions::FromSessionOptions(const OrtSessionOptions* so, const std::string& ep_name,
                                           ProviderOptions* out) {
  *out = ProviderOptions{};
  std::string lower = ep_name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string prefixes[2] = {"ep." + lower + ".", "ep." + ep_name + "."};

  OrtKeyValuePairs* kvps = nullptr;
  if (OrtStatus* st = g_ort->GetSessionOptionsConfigEntries(so, &kvps)) {
    std::string msg = g_ort->GetErrorMessage(st);
    g_ort->ReleaseStatus(st);
    return Status::Error("could not read session options: " + msg);
  }
  const char* const* keys = nullptr;
  const char* const* values = nullptr;
  size_t count = 0;
  g_ort->GetKeyValuePairs(kvps, &keys, &values, &count);
  Status result;
  for (size_t i = 0; i < count && result.ok(); ++i) {
    std::string key = keys[i];
    std::string option;
    for (const std::string& p : prefixes)
      if (key.compare(0, p.size(), p) == 0) option = key.substr(p.size());
    if (option.empty()) continue;
    const std::string value = values[i];
    if (option == "device") {
      if (value != "auto" && value != "emulator" && value != "npu")
        result = Status::Error("PhoenixNPU option device=" + value + " is not valid: use auto, emulator or npu");
      else
        out->device = value;
    } else if (option == "threads") {
      char* end = nullptr;
      long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < 0 || v > 1024)
        result = Status::Error("PhoenixNPU option threads=" + value + " is not valid: use 0 (all cores) to 1024");
      else
        out->threads = static_cast<int>(v);
    } else if (option == "manifest") {
      out->manifest = value;
    } else if (option == "fail_on") {
      if (value != "compile" && value != "allocate" && value != "run" && !value.empty())
        result = Status::Error("PhoenixNPU option fail_on=" + value + " is not valid: use compile, allocate or run");
      else
        out->fail_on = value;
    } else if (option == "fuse_attention") {
      if (value != "0" && value != "1")
        result = Status::Error("PhoenixNPU option fuse_attention=" + value + " is not valid: use 1 or 0");
      else
        out->fuse_attention = value == "1";
    } else if (option == "precision") {
      if (value != "bf16" && value != "bf16x3")
        result = Status::Error("PhoenixNPU option precision=" + value + " is not valid: use bf16 or bf16x3");
      else
        out->precision = value;
    } else if (option == "without_kernels") {
      out->without_kernels = value;
    } else {
      result = Status::Error("PhoenixNPU: unknown provider option '" + option +
                             "'. Known options: device (auto|emulator|npu), threads (0 = all cores), "
                             "manifest (path to an NPU kernel manifest), fuse_attention (1|0), precision (bf16|bf16x3)");
    }
  }
  g_ort->ReleaseKeyValuePairs(kvps);
  return result;
}

}  // namespace phoenix
