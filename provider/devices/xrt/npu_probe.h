// Whether this machine can run the Phoenix NPU path, and if not, why: decided here, once.
// The device factory (device=auto / npu), `phoenix-npu doctor` (through PhoenixNPU_NpuStatusJson)
// and ONNX Runtime (the EP factory's GetHardwareDeviceIncompatibilityDetails) all read it.
//
// No XRT dependency: always compiled. Roots can be redirected (tests fake a machine).
#pragma once

#include <string>
#include <vector>

#include "devices/xrt/npu_mode.h"

namespace phoenix {

struct NpuCheck {
  std::string name;    // "amdxdna driver", "NPU device", "NPU firmware", "XRT", "kernel manifest"
  bool ok = false;
  std::string found;   // what was found
  std::string todo;    // what to do about it (empty when ok)
};

struct NpuProbeRoots {
  std::string sys_root = "/";                       // where sys/module/amdxdna is looked for
  std::string accel = "/dev/accel/accel0";
  std::string firmware = "/lib/firmware/amdnpu";
  std::string manifest;                             // empty: DefaultManifestPath()
  // Session creation: the manifest is read only when the hardware checks passed (the NPU path
  // is taken); `phoenix-npu doctor` reads it anyway to report on it.
  bool manifest_only_with_npu = false;
};

// Every check, in the order a user fixes them.
std::vector<NpuCheck> ProbeNpu(const NpuProbeRoots& roots = NpuProbeRoots());

// True when every check passes; else false with the first failure in *why_not ("amdxdna driver:
// not loaded") and, when wanted, what to do about it in *remedy (for device=npu errors and doctor).
bool NpuUsable(const std::vector<NpuCheck>& checks, std::string* why_not, std::string* remedy = nullptr);

// Whether this machine has an NPU at all (the amdxdna driver loaded or its device node present),
// usable or not: without one, the emulated device under device=auto is the expected outcome.
bool NpuPresent(const NpuProbeRoots& roots = NpuProbeRoots());

namespace xrt_device {
struct Manifest;
}
// The mode `device=npu` runs the manifest in (npu_mode.h): its built artifacts, $PHOENIX_NPU_MODE and
// the bring-up record `npu_bringup.txt` next to the manifest. The XRT device and the doctor both ask here.
xrt_device::ModeChoice ChooseNpuModeFor(const xrt_device::Manifest& m);

// $PHOENIX_NPU_MANIFEST, else <this library's folder>/../kernels/manifest.json (the wheel layout).
std::string DefaultManifestPath();

}  // namespace phoenix
