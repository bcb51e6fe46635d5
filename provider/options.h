// Provider options, declared once in a table (key, default, accepted values, doc, parser) from
// which the unknown-key message, `phoenix_npu.option_table()` and the README's table come.
// Users pass them as provider options (Python:
// providers=[("PhoenixNPUExecutionProvider", {"device": "emulator"}), "CPUExecutionProvider"]);
// ORT stores them as session config entries "ep.<name>.<key>".
//
// Test hooks (injected failures, a device that pretends to lack kernels) are not options: they
// come from the environment variable PHOENIX_NPU_TEST_HOOKS ("fail_on=compile;without_kernels=Softmax").
#pragma once

#include <string>
#include <vector>

#include "common/precision.h"
#include "ort_api.h"

namespace phoenix {

struct TestHooks {
  std::string fail_on;          // "compile", "allocate" or "run": that step fails on purpose
  std::string without_kernels;  // "Softmax,LayerNorm": the emulated device pretends to lack these
                                // kernels, so they take the hybrid host path
  std::string machine_root;     // a folder standing in for "/" when looking for the NPU (sys/module/amdxdna,
                                // dev/accel/accel0, lib/firmware/amdnpu): tests fake a machine with one
  static Status FromEnvironment(TestHooks* out);
};

// The session's EPContext settings: ORT's own session config entries, not provider options
// (parsed in ep_context.cc).
struct EpContextSettings {
  bool enable = false;    // ep.context_enable=1: Compile returns EPContext nodes
  int embed_mode = 0;     // ep.context_embed_mode: 0 blob in a file beside the model, 1 in the node
  std::string file_path;  // ep.context_file_path: the compiled model ORT writes ("": <model>_ctx.onnx)
  static Status FromSessionOptions(const OrtSessionOptions* so, EpContextSettings* out);
};

struct ProviderOptions {
  std::string device = "auto";
  int threads = 0;
  std::string manifest;
  bool fuse_attention = true;
  Precision precision = Precision::kBF16;
  int max_plans = 8;
  bool claim_decoders = false;
  TestHooks hooks;
  EpContextSettings ep_context;

  static Status FromSessionOptions(const OrtSessionOptions* so, const std::string& ep_name, ProviderOptions* out);
};

struct OptionSpec {
  const char* key;
  const char* default_value;
  const char* accepted;  // for messages and docs: "auto, emulator, npu"
  const char* doc;
  Status (*parse)(const std::string& value, ProviderOptions* out);
};

const std::vector<OptionSpec>& OptionTable();
std::string OptionTableJson();  // [{"key", "default", "accepted", "doc"}], for Python and the README

}  // namespace phoenix
