// Provider options. Users pass them as provider options (Python:
// providers=[("PhoenixNPUExecutionProvider", {"device": "emulator"}), "CPUExecutionProvider"]);
// ORT stores them as session config entries "ep.<name>.<key>". Unknown keys and bad values
// are errors that list what is accepted.
#pragma once

#include <string>

#include "ort_api.h"

namespace phoenix {

struct ProviderOptions {
  std::string device = "auto";   // auto | emulator | npu
  int threads = 0;               // emulated device threads; 0 = all cores this process may use
  std::string manifest;          // NPU kernel manifest (JSON); default: the one shipped with the package
  bool fuse_attention = true;    // QK^T -> Softmax -> PV as one kernel (scores never leave the kernel)
  std::string precision = "bf16";  // bf16 (the NPU's kernels) | bf16x3 (BF16 pairs, 3x the MACs;
                                   // emulated device only, see kernels/README.md "Precision")
  std::string fail_on;           // debug: "compile", "allocate" or "run" makes that step fail (tests)
  std::string without_kernels;   // debug: "Softmax,LayerNorm": the emulated device pretends to lack
                                 // these kernels, so they take the hybrid host path (tests)

  static Status FromSessionOptions(const OrtSessionOptions* so, const std::string& ep_name, ProviderOptions* out);
};

}  // namespace phoenix
