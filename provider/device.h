// The narrow device interface every backend implements: allocate a buffer, map it, sync a
// byte range to or from the device, launch a kernel, wait. The emulated device (CPU kernels
// with the NPU's BF16 numerics) and the XRT device (Phoenix NPU) are its two implementations.
//
// Buffers follow XRT's buffer-object model: the host writes through a mapped pointer and then
// syncs the range to the device; the device writes and the host syncs the range back before
// reading. On the emulated device the sync is a no-op, but the runtime counts it all the same,
// so the counters mean the same thing on both devices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/kernel_call.h"
#include "common/status.h"

namespace phoenix {

constexpr size_t kBufferAlignment = 4096;

class Device {
 public:
  virtual ~Device() = default;

  // "emulator" or "npu"; and a one-line description for the log ("emulated NPU on 2 CPU
  // threads, AVX512_BF16 kernels", "Phoenix NPU /dev/accel/accel0, XRT 2.19").
  virtual std::string Kind() const = 0;
  virtual std::string Description() const = 0;

  // Whether this device can run the call (the NPU only has kernels for some shapes; see the
  // kernel manifest). The emulated device runs everything the compiler emits.
  virtual bool CanRun(const KernelCall& call, std::string* why_not) const = 0;

  // True when this device runs the call on the host CPU instead of its accelerator (the
  // hybrid NPU device, for calls without an NPU kernel). Counted, and logged per plan.
  virtual bool OnHost(const KernelCall& call) const { return false; }

  virtual Status Allocate(size_t bytes, BufferId* id) = 0;  // kBufferAlignment-aligned
  virtual void Free(BufferId id) = 0;
  virtual uint8_t* Map(BufferId id) = 0;                    // host view of the buffer
  virtual Status SyncToDevice(BufferId id, size_t offset, size_t bytes) = 0;
  virtual Status SyncFromDevice(BufferId id, size_t offset, size_t bytes) = 0;

  virtual Status Launch(const KernelCall& call) = 0;  // may return before the kernel ends
  virtual Status Wait() = 0;                          // all launched kernels have finished
};

}  // namespace phoenix
