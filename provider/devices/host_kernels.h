// Runs one KernelCall with the CPU kernels of kernels/<name>/ on host-visible buffers. The
// emulated device is this over its own memory; the hybrid device uses it for the calls the
// NPU has no kernel for, over the NPU's host-mapped buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "device.h"

namespace phoenix {

struct HostBuffer {
  uint8_t* data = nullptr;
  size_t bytes = 0;
};
using HostBuffers = std::function<HostBuffer(BufferId)>;

// Checks every operand lies inside its buffer (a plan bug fails here instead of corrupting
// memory), then runs the kernel to completion.
Status RunOnHost(const KernelCall& call, const HostBuffers& buffers, int num_threads);

}  // namespace phoenix
