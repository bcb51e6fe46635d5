#include "device_factory.h"

#include <sstream>

#include "common/kernel_kinds.h"
#include "devices/emulated/emulated_device.h"
#include "devices/hybrid_device.h"
#include "devices/xrt/npu_probe.h"
#include "devices/xrt/xrt_device.h"  // xrt_device.cc with a modern XRT, else xrt_stub.cc (cmake/XrtDevice.cmake)

namespace phoenix {
namespace {

// The one decision (devices/xrt/npu_probe.cc), also what `phoenix-npu doctor` prints.
NpuProbeRoots Roots(const ProviderOptions& options) {
  NpuProbeRoots roots;
  if (const std::string& r = options.hooks.machine_root; !r.empty()) {
    roots.sys_root = r;
    roots.accel = r + "/dev/accel/accel0";
    roots.firmware = r + "/lib/firmware/amdnpu";
  }
  roots.manifest = options.manifest;
  return roots;
}

bool NpuUsable(const ProviderOptions& options, std::string* why_not, std::string* remedy) {
  NpuProbeRoots roots = Roots(options);
  roots.manifest_only_with_npu = true;  // "Read on the NPU only": never parsed when there is no NPU
  return phoenix::NpuUsable(ProbeNpu(roots), why_not, remedy);
}

Status OpenNpu(const ProviderOptions& options, std::shared_ptr<Device>* device) {
  std::unique_ptr<Device> d;
  PHX_RETURN_IF_ERROR(CreateXrtDevice(options.manifest, &d));
  *device = std::make_shared<HybridDevice>(std::move(d), options.threads);
  return Status::OK();
}

// "Softmax,LayerNorm" -> bit mask of KernelKinds (for the without_kernels test option).
Status KindMask(const std::string& names, uint32_t* mask) {
  *mask = 0;
  std::stringstream ss(names);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    KernelKind kind;
    if (!KernelKindFromName(name.c_str(), &kind))
      return Status::Error("PHOENIX_NPU_TEST_HOOKS without_kernels: unknown kernel '" + name + "'");
    *mask |= 1u << static_cast<int>(kind);
  }
  return Status::OK();
}

}  // namespace

std::string DeviceAutoWouldChoose(const ProviderOptions& options) {
  return options.precision == Precision::kBF16 && NpuUsable(options, nullptr, nullptr) ? "npu" : "emulator";
}

Status CreateDevice(const ProviderOptions& options, std::shared_ptr<Device>* device, DeviceChoice* choice) {
  std::string why_not, remedy;
  const bool bf16_only = options.precision == Precision::kBF16;  // the NPU kernels are BF16 (no BF16x3 yet)
  if (options.device == "npu") {
    if (!bf16_only)
      return Status::Error(std::string("PhoenixNPU: precision=") + PrecisionName(options.precision) + " has no NPU kernels yet (the AIE "
                           "kernels are BF16): use precision=bf16 on the NPU, or device=emulator.");
    if (!NpuUsable(options, &why_not, &remedy))
      return Status::Error("PhoenixNPU: device=npu was requested but no usable NPU was found: " + why_not +
                           (remedy.empty() ? "" : " (" + remedy + ")") +
                           ". Run `phoenix-npu doctor` to see what is missing, or use device=emulator.");
    PHX_RETURN_IF_ERROR(OpenNpu(options, device));
    choice->log_line = "PhoenixNPU: running on " + (*device)->Description();
    return Status::OK();
  }
  if (options.device == "auto" && !bf16_only) {
    why_not = std::string("precision=") + PrecisionName(options.precision) + " runs on the emulated device only";
  } else if (options.device == "auto" && NpuUsable(options, &why_not, &remedy)) {
    Status s = OpenNpu(options, device);
    if (s.ok()) {
      choice->log_line = "PhoenixNPU: running on " + (*device)->Description() + " (device=auto found an NPU)";
      return Status::OK();
    }
    why_not = "the NPU could not be opened: " + s.message();
    choice->problem = true;
  } else if (options.device == "auto") {
    // An NPU that is there but unusable is a problem to fix (WARNING, with the remedy); no NPU
    // at all makes the emulated device the normal outcome (INFO, one short line).
    choice->problem = NpuPresent(Roots(options));
    why_not = choice->problem ? "an NPU is present but unusable: " + why_not + (remedy.empty() ? "" : " (" + remedy + ")")
                              : "no NPU: " + why_not + "; `phoenix-npu doctor` tells more";
  }
  uint32_t without = 0;
  PHX_RETURN_IF_ERROR(KindMask(options.hooks.without_kernels, &without));
  if (without != 0)
    *device = std::make_shared<HybridDevice>(std::make_unique<EmulatedDevice>(options.threads, without), options.threads);
  else
    *device = std::make_shared<EmulatedDevice>(options.threads);
  choice->log_line = "PhoenixNPU: running on the " + (*device)->Description() +
                     (options.device == "emulator" ? std::string(" (device=emulator)") : " (device=auto; " + why_not + ")");
  return Status::OK();
}

}  // namespace phoenix
