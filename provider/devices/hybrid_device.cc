#include "devices/hybrid_device.h"

#include "common/parallel.h"
#include "common/kernel_kinds.h"

namespace phoenix {
namespace {

// Byte range [first, end) an operand touches (views never have negative strides).
void Range(const Operand& op, size_t elem, size_t* first, size_t* bytes) {
  *first = static_cast<size_t>(op.view.offset) * elem;
  *bytes = static_cast<size_t>(op.view.Extent() - op.view.offset) * elem;
}

size_t ElemSize(const KernelCall& c, int slot) { return SlotElementSize(c.kind(), slot, c.precision); }

}  // namespace

HybridDevice::HybridDevice(std::unique_ptr<Device> npu, int host_threads)
    : npu_(std::move(npu)), host_threads_(host_threads > 0 ? host_threads : HardwareThreads()) {}

std::string HybridDevice::Description() const {
  return npu_->Description() + "; calls without an NPU kernel run on the host CPU (" +
         std::to_string(host_threads_) + " threads)";
}

Status HybridDevice::Launch(const KernelCall& c) {
  if (npu_->CanRun(c, nullptr)) return npu_->Launch(c);
  PHX_RETURN_IF_ERROR(npu_->Wait());  // the inputs may still be being written by the NPU
  size_t first, bytes;
  for (int i = 0; i < 4; ++i) {
    if (!c.in[i].present() || c.in[i].view.NumElements() == 0) continue;
    Range(c.in[i], ElemSize(c, i), &first, &bytes);
    PHX_RETURN_IF_ERROR(npu_->SyncFromDevice(c.in[i].buffer, first, bytes));
  }
  // Sizes are not part of the Device interface: bound each buffer by what this call touches
  // (RunOnHost's own checks then only guard the kernels' arithmetic on those views).
  PHX_RETURN_IF_ERROR(RunOnHost(c, [&](BufferId id) {
    size_t need = 0;
    for (int i = -1; i < 4; ++i) {
      const Operand& op = i < 0 ? c.out : c.in[i];
      if (op.present() && op.buffer == id) {
        size_t f, b;
        Range(op, ElemSize(c, i), &f, &b);
        need = std::max(need, f + b);
      }
    }
    return HostBuffer{npu_->Map(id), need};
  }, host_threads_));
  Range(c.out, ElemSize(c, kOutputSlot), &first, &bytes);
  return npu_->SyncToDevice(c.out.buffer, first, bytes);
}

}  // namespace phoenix
