// The emulated NPU: device buffers are aligned host memory, and each kernel call runs the
// CPU kernel in kernels/<name>/ that implements the NPU kernel's BF16 numerics.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "device.h"

namespace phoenix {

class EmulatedDevice : public Device {
 public:
  // without_kinds: a bit mask of KernelKinds this device claims it cannot run, to exercise
  // the hybrid path (calls without an NPU kernel) without an NPU. 0 in normal use.
  explicit EmulatedDevice(int num_threads, uint32_t without_kinds = 0);
  ~EmulatedDevice() override;

  std::string Kind() const override { return "emulator"; }
  std::string Description() const override;
  bool CanRun(const KernelCall& call, std::string* why_not) const override;

  Status Allocate(size_t bytes, BufferId* id) override;
  void Free(BufferId id) override;
  uint8_t* Map(BufferId id) override;
  Status SyncToDevice(BufferId id, size_t offset, size_t bytes) override;
  Status SyncFromDevice(BufferId id, size_t offset, size_t bytes) override;
  Status Launch(const KernelCall& call) override;
  Status Wait() override { return Status::OK(); }  // kernels run to completion in Launch

  int num_threads() const { return num_threads_; }

 private:
  struct Buffer {
    uint8_t* data = nullptr;
    size_t bytes = 0;
  };
  Buffer Get(BufferId id) const;

  int num_threads_;
  uint32_t without_ = 0;
  // Plans are built while other plans run (symbolic dims): the table is guarded, and a buffer's
  // memory never moves while it is allocated.
  mutable std::mutex mu_;
  std::vector<Buffer> buffers_;
  std::vector<BufferId> free_ids_;
};

}  // namespace phoenix
