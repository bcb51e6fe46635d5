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

// What the session runs on, for the log: one line, and whether it reports a problem (WARNING: an
// NPU present but unusable or failing to open) or the expected outcome (INFO: the device asked
// for, or device=auto on a machine without an NPU). Remedies are for doctor and device=npu errors.
struct DeviceChoice {
  std::string log_line;
  bool problem = false;
};

Status CreateDevice(const ProviderOptions& options, std::shared_ptr<Device>* device, DeviceChoice* choice);

// "npu" or "emulator": what device=auto would choose on this machine with these options (the
// same probe as CreateDevice; for judging a compiled model's compatibility string).
std::string DeviceAutoWouldChoose(const ProviderOptions& options);

}  // namespace phoenix
