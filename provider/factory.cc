#include "factory.h"

#include <memory>

#include "common/cpu_features.h"
#include "compat_info.h"
#include "device_factory.h"
#include "ep_context.h"
#include "devices/xrt/npu_probe.h"
#include "ep.h"
#include "options.h"

namespace phoenix {

namespace {
constexpr const char* kVendor = "PhoenixNPU project";
constexpr uint32_t kAmdVendorId = 0x1022;
constexpr const char* kVersion = "0.1.0";
}  // namespace

PhoenixEpFactory::PhoenixEpFactory(const char* ep_name, const OrtLogger* default_logger)
    : OrtEpFactory{}, ep_name_(ep_name), default_logger_(default_logger) {
  ort_version_supported = ORT_API_VERSION;
  GetName = GetNameImpl;
  GetVendor = GetVendorImpl;
  GetVendorId = GetVendorIdImpl;
  GetVersion = GetVersionImpl;
  GetSupportedDevices = GetSupportedDevicesImpl;
  CreateEp = CreateEpImpl;
  ReleaseEp = ReleaseEpImpl;
  ValidateCompiledModelCompatibilityInfo = ValidateCompiledModelCompatibilityInfoImpl;
  CreateAllocator = CreateAllocatorImpl;
  ReleaseAllocator = ReleaseAllocatorImpl;
  CreateDataTransfer = CreateDataTransferImpl;
  IsStreamAware = IsStreamAwareImpl;
  CreateSyncStreamForDevice = CreateSyncStreamForDeviceImpl;
  GetHardwareDeviceIncompatibilityDetails = GetHardwareDeviceIncompatibilityDetailsImpl;
  GetNumCustomOpDomains = GetNumCustomOpDomainsImpl;
  GetCustomOpDomains = GetCustomOpDomainsImpl;
}

const char* ORT_API_CALL PhoenixEpFactory::GetNameImpl(const OrtEpFactory* this_ptr) noexcept {
  return static_cast<const PhoenixEpFactory*>(this_ptr)->ep_name_.c_str();
}
const char* ORT_API_CALL PhoenixEpFactory::GetVendorImpl(const OrtEpFactory*) noexcept { return kVendor; }
uint32_t ORT_API_CALL PhoenixEpFactory::GetVendorIdImpl(const OrtEpFactory*) noexcept { return kAmdVendorId; }
const char* ORT_API_CALL PhoenixEpFactory::GetVersionImpl(const OrtEpFactory*) noexcept { return kVersion; }

OrtStatus* ORT_API_CALL PhoenixEpFactory::GetSupportedDevicesImpl(OrtEpFactory* this_ptr,
                                                                  const OrtHardwareDevice* const* devices,
                                                                  size_t num_devices, OrtEpDevice** ep_devices,
                                                                  size_t max_ep_devices, size_t* num_ep_devices) noexcept {
  PHX_ABI_BEGIN
  auto* factory = static_cast<PhoenixEpFactory*>(this_ptr);
  *num_ep_devices = 0;
  for (size_t i = 0; i < num_devices && *num_ep_devices < max_ep_devices; ++i) {
    if (g_ort->HardwareDevice_Type(devices[i]) != OrtHardwareDeviceType_CPU) continue;
    OrtKeyValuePairs* metadata = nullptr;
    g_ort->CreateKeyValuePairs(&metadata);
    g_ort->AddKeyValuePair(metadata, "phoenix_npu.devices", "emulator,npu");
    OrtEpDevice* ep_device = nullptr;
    OrtStatus* st = g_ep_api->CreateEpDevice(factory, devices[i], metadata, nullptr, &ep_device);
    g_ort->ReleaseKeyValuePairs(metadata);
    if (st) return st;
    ep_devices[(*num_ep_devices)++] = ep_device;
    break;  // one OrtEpDevice is enough: the option picks emulator or NPU
  }
  if (*num_ep_devices == 0)
    Log(factory->default_logger_, ORT_LOGGING_LEVEL_WARNING,
        "PhoenixNPU: ONNX Runtime reported no CPU hardware device; the provider cannot publish a device");
  return nullptr;
  PHX_ABI_END
}

OrtStatus* ORT_API_CALL PhoenixEpFactory::CreateEpImpl(OrtEpFactory* this_ptr, const OrtHardwareDevice* const*,
                                                       const OrtKeyValuePairs* const*, size_t,
                                                       const OrtSessionOptions* session_options,
                                                       const OrtLogger* logger, OrtEp** ep) noexcept {
  PHX_ABI_BEGIN
  auto* factory = static_cast<PhoenixEpFactory*>(this_ptr);
  *ep = nullptr;
  ProviderOptions options;
  Status s = ProviderOptions::FromSessionOptions(session_options, factory->ep_name_, &options);
  if (!s.ok()) return g_ort->CreateStatus(ORT_INVALID_ARGUMENT, s.message().c_str());
  std::shared_ptr<Device> device;
  DeviceChoice choice;
  s = CreateDevice(options, &device, &choice);
  if (!s.ok()) return g_ort->CreateStatus(ORT_FAIL, s.message().c_str());
  Log(logger, choice.problem ? ORT_LOGGING_LEVEL_WARNING : ORT_LOGGING_LEVEL_INFO, choice.log_line);
  if (!options.manifest.empty() && device->Kind() != "npu")
    Log(logger, ORT_LOGGING_LEVEL_WARNING,
        "PhoenixNPU: option manifest=" + options.manifest + " has no effect on the " + device->Kind() +
            " device (the manifest lists NPU kernels)");
  *ep = new PhoenixEp(*factory, options, std::move(device), *logger);
  return nullptr;
  PHX_ABI_END
}

void ORT_API_CALL PhoenixEpFactory::ReleaseEpImpl(OrtEpFactory*, OrtEp* ep) noexcept {
  delete static_cast<PhoenixEp*>(ep);
}

// A compiled model's compatibility string (compat_info.h, written by PhoenixEp) against this
// machine: the blob format, the device device=auto would choose, the NPU artifacts, the kernel ISA.
OrtStatus* ORT_API_CALL PhoenixEpFactory::ValidateCompiledModelCompatibilityInfoImpl(
    OrtEpFactory* this_ptr, const OrtHardwareDevice* const*, size_t, const char* compatibility_info,
    OrtCompiledModelCompatibility* model_compatibility) noexcept {
  PHX_ABI_BEGIN
  auto* factory = static_cast<PhoenixEpFactory*>(this_ptr);
  *model_compatibility = OrtCompiledModelCompatibility_EP_NOT_APPLICABLE;
  if (compatibility_info == nullptr || *compatibility_info == 0) return nullptr;
  const PlanOrigin here = PlanOriginOf(DeviceAutoWouldChoose(ProviderOptions()) == "npu", "");
  std::string why;
  switch (JudgeCompatInfo(compatibility_info, factory->ep_name(), kEpContextFormatVersion, kEpContextOldestFormat,
                          here.device, KernelIsaName(), here.npu_artifacts, &why)) {
    case CompiledCompat::kOptimal: *model_compatibility = OrtCompiledModelCompatibility_EP_SUPPORTED_OPTIMAL; break;
    case CompiledCompat::kPreferRecompilation:
      *model_compatibility = OrtCompiledModelCompatibility_EP_SUPPORTED_PREFER_RECOMPILATION;
      break;
    case CompiledCompat::kUnsupported: *model_compatibility = OrtCompiledModelCompatibility_EP_UNSUPPORTED; break;
    case CompiledCompat::kNotApplicable: break;
  }
  return nullptr;
  PHX_ABI_END
}

OrtStatus* ORT_API_CALL PhoenixEpFactory::CreateAllocatorImpl(OrtEpFactory*, const OrtMemoryInfo*,
                                                              const OrtKeyValuePairs*, OrtAllocator** allocator) noexcept {
  *allocator = nullptr;  // ORT's CPU allocator serves our inputs and outputs
  return nullptr;
}

void ORT_API_CALL PhoenixEpFactory::ReleaseAllocatorImpl(OrtEpFactory*, OrtAllocator*) noexcept {}

OrtStatus* ORT_API_CALL PhoenixEpFactory::CreateDataTransferImpl(OrtEpFactory*, OrtDataTransferImpl** data_transfer) noexcept {
  *data_transfer = nullptr;  // inputs and outputs live in host memory; the device copies are ours
  return nullptr;
}

bool ORT_API_CALL PhoenixEpFactory::IsStreamAwareImpl(const OrtEpFactory*) noexcept { return false; }

OrtStatus* ORT_API_CALL PhoenixEpFactory::CreateSyncStreamForDeviceImpl(OrtEpFactory*, const OrtMemoryDevice*,
                                                                        const OrtKeyValuePairs*,
                                                                        OrtSyncStreamImpl** stream) noexcept {
  *stream = nullptr;
  return nullptr;
}

// ORT asks whether a hardware device suits this EP. The CPU device always does (the emulated
// NPU runs there); for an NPU device the answer is npu_probe's, the same one device=auto and
// `phoenix-npu doctor` use.
OrtStatus* ORT_API_CALL PhoenixEpFactory::GetHardwareDeviceIncompatibilityDetailsImpl(
    OrtEpFactory*, const OrtHardwareDevice* hw, OrtDeviceEpIncompatibilityDetails* details) noexcept {
  PHX_ABI_BEGIN
  if (g_ort->HardwareDevice_Type(hw) != OrtHardwareDeviceType_NPU) return nullptr;
  const auto checks = ProbeNpu();
  std::string why, remedy;
  if (NpuUsable(checks, &why, &remedy)) return nullptr;
  if (!remedy.empty()) why += " (" + remedy + ")";
  uint32_t reasons = OrtDeviceEpIncompatibility_MISSING_DEPENDENCY;  // XRT, firmware, kernels
  for (const NpuCheck& c : checks)
    if (!c.ok && c.name == "amdxdna driver") reasons = OrtDeviceEpIncompatibility_DRIVER_INCOMPATIBLE;
  return g_ep_api->DeviceEpIncompatibilityDetails_SetDetails(details, reasons, 0, ("PhoenixNPU: " + why).c_str());
  PHX_ABI_END
}

OrtStatus* ORT_API_CALL PhoenixEpFactory::GetNumCustomOpDomainsImpl(OrtEpFactory*, size_t* num_domains) noexcept {
  *num_domains = 0;
  return nullptr;
}

OrtStatus* ORT_API_CALL PhoenixEpFactory::GetCustomOpDomainsImpl(OrtEpFactory*, OrtCustomOpDomain**, size_t) noexcept {
  return nullptr;
}

}  // namespace phoenix
