// Picks and opens the device a session runs on, from the `device` option:
//   emulator -> the emulated NPU;  npu -> the Phoenix NPU through XRT, or a clear error;
//   auto     -> the NPU when /dev/accel/accel0 and XRT are usable, else the emulated NPU.
// The choice and its reason are returned for the log: never a silent fallback.
#pragma once

#include <memory>
#include <string>

#include "device.h"
#include "options.h"

namespace phoenix {

Status CreateDevice(const ProviderOptions& options, std::shared_ptr<Device>* device, std::string* log_line);

}  // namespace phoenix
