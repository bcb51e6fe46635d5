#include "options.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>

#include "counters.h"  // EscapeJson

namespace phoenix {
namespace {

Status Invalid(const char* key, const std::string& value, const char* accepted) {
  return Status::InvalidArgument(std::string("PhoenixNPU option ") + key + "=" + value + " is not valid: use " + accepted);
}

Status ParseInt(const char* key, const std::string& value, long lo, long hi, const char* accepted, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) return Invalid(key, value, accepted);
  *out = static_cast<int>(v);
  return Status::OK();
}

const std::vector<OptionSpec> kOptions = {
    {"device", "auto", "auto, emulator, npu",
     "auto: the Phoenix NPU when /dev/accel/accel0 and XRT are usable, else the emulated NPU (logged at INFO; "
     "at WARNING when an NPU is present but unusable); emulator: CPU kernels with the NPU kernels' numerics; npu: the NPU or an error",
     [](const std::string& v, ProviderOptions* o) {
       if (v != "auto" && v != "emulator" && v != "npu") return Invalid("device", v, "auto, emulator or npu");
       o->device = v;
       return Status::OK();
     }},
    {"threads", "0", "0 .. 1024",
     "threads of the emulated device (and of host kernels on the NPU); 0 = every core this process may use. "
     "ORT's intra_op_num_threads does not reach plugin EPs, so set it here too",
     [](const std::string& v, ProviderOptions* o) {
       return ParseInt("threads", v, 0, 1024, "0 (all cores) to 1024", &o->threads);
     }},
    {"precision", "bf16", "bf16, bf16x3",
     "bf16: BF16 tensors (the NPU kernels' contract); bf16x3: every tensor a BF16 pair, FP32-grade results at "
     "about 3x the time (emulated device only)",
     [](const std::string& v, ProviderOptions* o) {
       if (v != "bf16" && v != "bf16x3") return Invalid("precision", v, "bf16 or bf16x3");
       o->precision = v == "bf16x3" ? Precision::kBF16x3 : Precision::kBF16;
       return Status::OK();
     }},
    {"fuse_attention", "1", "1, 0",
     "run MatMul(Q, K^T) -> scale -> Softmax -> MatMul(P, V) as one kernel whose scores are never written",
     [](const std::string& v, ProviderOptions* o) {
       if (v != "0" && v != "1") return Invalid("fuse_attention", v, "1 or 0");
       o->fuse_attention = v == "1";
       return Status::OK();
     }},
    {"max_plans", "8", "1 .. 1024",
     "shape-specialised plans kept per region for models with symbolic dims (least recently used evicted)",
     [](const std::string& v, ProviderOptions* o) {
       return ParseInt("max_plans", v, 1, 1024, "1 to 1024", &o->max_plans);
     }},
    {"claim_decoders", "0", "0, 1",
     "0: a token decoder graph (one that looks token ids up in an embedding table) is left to the CPU EP, where its "
     "per-token steps were measured faster (docs/benchmarks.md, The decoder); 1: claim its MatMuls and glue like any graph",
     [](const std::string& v, ProviderOptions* o) {
       if (v != "0" && v != "1") return Invalid("claim_decoders", v, "1 or 0");
       o->claim_decoders = v == "1";
       return Status::OK();
     }},
    {"manifest", "", "path to a kernel manifest (JSON)",
     "the NPU kernel manifest; default: the one installed with the package. Read on the NPU only",
     [](const std::string& v, ProviderOptions* o) {
       struct stat st;
       if (v.empty() || ::stat(v.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
         return Status::InvalidArgument("PhoenixNPU option manifest=" + v + " is not a readable file: give the path of a "
                              "kernel manifest (JSON), or leave the option out to use the installed one");
       o->manifest = v;
       return Status::OK();
     }},
};

std::string KnownOptions() {
  std::string s;
  for (const OptionSpec& o : kOptions) s += std::string(s.empty() ? "" : ", ") + o.key + " (" + o.accepted + ")";
  return s;
}

}  // namespace

const std::vector<OptionSpec>& OptionTable() { return kOptions; }

std::string OptionTableJson() {
  std::string s = "[";
  for (const OptionSpec& o : kOptions) {
    s += std::string(s.size() > 1 ? "," : "") + "{\"key\":\"" + EscapeJson(o.key) + "\",\"default\":\"" +
         EscapeJson(o.default_value) + "\",\"accepted\":\"" + EscapeJson(o.accepted) + "\",\"doc\":\"" +
         EscapeJson(o.doc) + "\"}";
  }
  return s + "]";
}

Status TestHooks::FromEnvironment(TestHooks* out) {
  *out = TestHooks{};
  const char* env = std::getenv("PHOENIX_NPU_TEST_HOOKS");
  if (env == nullptr || *env == '\0') return Status::OK();
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ';')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "fail_on" && (value == "compile" || value == "allocate" || value == "run")) {
      out->fail_on = value;
    } else if (key == "without_kernels") {
      out->without_kernels = value;
    } else if (key == "machine_root" && !value.empty()) {
      out->machine_root = value;
    } else {
      return Status::InvalidArgument("PHOENIX_NPU_TEST_HOOKS: '" + item +
                           "' is not a test hook (fail_on=compile|allocate|run, without_kernels=Kind,Kind, machine_root=DIR)");
    }
  }
  return Status::OK();
}

Status ProviderOptions::FromSessionOptions(const OrtSessionOptions* so, const std::string& ep_name,
                                           ProviderOptions* out) {
  *out = ProviderOptions{};
  PHX_RETURN_IF_ERROR(TestHooks::FromEnvironment(&out->hooks));
  std::string lower = ep_name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  // ORT writes provider options as "ep.<lower-case name>.<key>"; the name as spelled is accepted too.
  std::vector<std::string> prefixes = {"ep." + lower + "."};
  if (ep_name != lower) prefixes.push_back("ep." + ep_name + ".");

  OrtKeyValuePairs* kvps = nullptr;
  if (OrtStatus* st = g_ort->GetSessionOptionsConfigEntries(so, &kvps)) {
    std::string msg = g_ort->GetErrorMessage(st);
    g_ort->ReleaseStatus(st);
    return Status::InvalidArgument("could not read session options: " + msg);
  }
  const char* const* keys = nullptr;
  const char* const* values = nullptr;
  size_t count = 0;
  g_ort->GetKeyValuePairs(kvps, &keys, &values, &count);
  std::map<std::string, std::string> given;  // option -> the config key it came from
  Status result;
  for (size_t i = 0; i < count && result.ok(); ++i) {
    const std::string key = keys[i];
    const std::string* prefix = nullptr;
    for (const std::string& p : prefixes)
      if (key.compare(0, p.size(), p) == 0) prefix = &p;
    if (prefix == nullptr) continue;
    const std::string option = key.substr(prefix->size());
    if (option.empty()) {
      result = Status::InvalidArgument("PhoenixNPU: a provider option has an empty name (session config key '" + key + "')");
      break;
    }
    if (!given.emplace(option, key).second) {
      result = Status::InvalidArgument("PhoenixNPU option " + option + " is given twice ('" + given[option] + "' and '" + key +
                             "'): give it once");
      break;
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& o : kOptions)
      if (option == o.key) spec = &o;
    if (spec == nullptr) {
      result = Status::InvalidArgument("PhoenixNPU: unknown provider option '" + option + "'. Known options: " + KnownOptions());
      break;
    }
    result = spec->parse(values[i] ? values[i] : "", out);
  }
  g_ort->ReleaseKeyValuePairs(kvps);
  if (result.ok()) result = EpContextSettings::FromSessionOptions(so, &out->ep_context);
  return result;
}

}  // namespace phoenix
