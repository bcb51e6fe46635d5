// The Phoenix NPU device: phoenix::Device on XRT's C++ API with xrt::hw_context (the amdxdna
// driver, /dev/accel/accel0). NOT YET RUN ON HARDWARE: written against the public XRT and
// mlir-aie host APIs; this machine has no NPU.
//
// Design (see docs/npu.md, "XRT device"):
// - One xrt::device (index 0). Each xclbin of the kernel manifest is registered once, with one
//   xrt::hw_context and one xrt::kernel per manifest kernel, and its instruction stream
//   (insts.bin) loaded once into an instruction BO (group_id(1)).
// - Allocate() makes one host-visible data BO per device buffer (the runtime allocates one per
//   weight and one arena for all activations), allocated once per session.
// - Plan operands are views into those buffers at an offset. XRT has no "pointer + offset"
//   argument for these kernels (the DDR addresses in insts.bin are patched with each BO
//   argument's base address), so operands are passed as xrt::bo SUB-BUFFERS
//   (xrt::bo(parent, size, offset)), created on first use and cached by (buffer, offset, size):
//   after the first run no BO is created. Offsets are 4 KiB aligned for activations (the
//   buffer planner aligns every tensor) and 0 for weights.
// - A launch is `run(3, bo_instr, n_instr, bo_arg0, ...)` with the manifest's argument order.
//   Runs are started asynchronously; the device waits for the previous run before starting one
//   on a different hw_context or reusing a run object (ordering across contexts is not
//   guaranteed). Sync happens only in SyncToDevice / SyncFromDevice, which the runtime calls
//   at the two ends of the plan (inputs, outputs) and once for weights.
// - Every XRT exception becomes a phoenix::Status naming what to install or check.
#pragma once

#include <memory>
#include <string>

#include "device.h"
#include "common/status.h"

namespace phoenix {

// Opens NPU device 0 and loads every kernel of the manifest. An empty manifest_path means
// $PHOENIX_NPU_MANIFEST, else <library dir>/../kernels/manifest.json (the wheel layout).
Status CreateXrtDevice(const std::string& manifest_path, std::unique_ptr<Device>* out);

// Whether an NPU is usable here: /dev/accel/accel0 exists and XRT can open it (a build without
// a modern XRT always answers false with the reason).
bool XrtAvailable(std::string* why_not);

}  // namespace phoenix
