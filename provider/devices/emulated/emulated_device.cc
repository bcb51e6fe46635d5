#include "devices/emulated/emulated_device.h"

#include <cstdlib>
#include <cstring>

#include "common/parallel.h"
#include "common/kernel_kinds.h"
#include "matmul/matmul.h"

namespace phoenix {

EmulatedDevice::EmulatedDevice(int num_threads, uint32_t without_kinds)
    : num_threads_(num_threads > 0 ? num_threads : HardwareThreads()), without_(without_kinds) {}

EmulatedDevice::~EmulatedDevice() {
  for (Buffer& b : buffers_) std::free(b.data);
}

std::string EmulatedDevice::Description() const {
  return "emulated NPU (CPU kernels with the NPU's BF16 numerics) on " + std::to_string(num_threads_) +
         " thread" + (num_threads_ == 1 ? "" : "s");
}

Status EmulatedDevice::Allocate(size_t bytes, BufferId* id) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  void* p = std::aligned_alloc(kBufferAlignment, rounded);
  if (p == nullptr) return Status::Error("emulated device: out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  buffers_.push_back(Buffer{static_cast<uint8_t*>(p), rounded});
  *id = static_cast<BufferId>(buffers_.size()) - 1;
  return Status::OK();
}

void EmulatedDevice::Free(BufferId id) {
  if (id < 0 || id >= static_cast<BufferId>(buffers_.size())) return;
  kernels::ReleasePackedWeights(buffers_[id].data, buffers_[id].bytes);
  std::free(buffers_[id].data);
  buffers_[id] = Buffer{};
}

uint8_t* EmulatedDevice::Map(BufferId id) { return buffers_[id].data; }

Status EmulatedDevice::SyncToDevice(BufferId id, size_t offset, size_t bytes) {
  if (offset + bytes > buffers_[id].bytes) return Status::Error("emulated device: sync past the end of a buffer");
  return Status::OK();
}

Status EmulatedDevice::SyncFromDevice(BufferId id, size_t offset, size_t bytes) {
  return SyncToDevice(id, offset, bytes);
}

Status EmulatedDevice::Launch(const KernelCall& c) {
  std::string why;
  if (!CanRun(c, &why)) return Status::Error("emulated device: " + why);
  return RunOnHost(c, [this](BufferId id) {
    if (id < 0 || id >= static_cast<BufferId>(buffers_.size())) return HostBuffer{};
    return HostBuffer{buffers_[id].data, buffers_[id].bytes};
  }, num_threads_);
}

bool EmulatedDevice::CanRun(const KernelCall& call, std::string* why_not) const {
  if (!(without_ & (1u << static_cast<int>(call.kind())))) return true;
  if (why_not) *why_not = std::string("no ") + KernelKindName(call.kind()) + " kernel (restricted for testing)";
  return false;
}

}  // namespace phoenix
