// An NPU device that also runs the calls it has no NPU kernel for: those run on the host CPU
// (the emulated kernels) over the NPU's host-mapped buffers, with a sync from the device before
// and to the device after. This keeps the "claim only what we can run" promise on the real
// NPU while its kernel library grows: nothing claimed fails for lack of an xclbin. How many
// calls take the host path is logged when a plan is prepared and counted per run.
#pragma once

#include <memory>
#include <string>

#include "device.h"

namespace phoenix {

class HybridDevice : public Device {
 public:
  HybridDevice(std::unique_ptr<Device> npu, int host_threads);

  std::string Kind() const override { return npu_->Kind(); }
  std::string Description() const override;
  bool CanRun(const KernelCall&, std::string*) const override { return true; }
  bool OnHost(const KernelCall& call) const override { return !npu_->CanRun(call, nullptr); }

  Status Allocate(size_t bytes, BufferId* id) override { return npu_->Allocate(bytes, id); }
  void Free(BufferId id) override { npu_->Free(id); }
  uint8_t* Map(BufferId id) override { return npu_->Map(id); }
  Status SyncToDevice(BufferId id, size_t offset, size_t bytes) override { return npu_->SyncToDevice(id, offset, bytes); }
  Status SyncFromDevice(BufferId id, size_t offset, size_t bytes) override {
    return npu_->SyncFromDevice(id, offset, bytes);
  }
  Status Launch(const KernelCall& call) override;
  Status Wait() override { return npu_->Wait(); }

 private:
  std::unique_ptr<Device> npu_;
  int host_threads_;
};

}  // namespace phoenix
