#include "devices/emulated/emulated_device.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/cpu_features.h"
#include "common/parallel.h"
#include "common/kernel_kinds.h"
#include "matmul/matmul.h"

namespace phoenix {

EmulatedDevice::EmulatedDevice(int num_threads, uint32_t without_kinds)
    : num_threads_(num_threads > 0 ? num_threads : HardwareThreads()), without_(without_kinds) {}

EmulatedDevice::~EmulatedDevice() {
  for (Buffer& b : buffers_)
    if (b.data) munmap(b.data, b.bytes);
}

std::string EmulatedDevice::Description() const {
  return "emulated NPU, " + std::to_string(num_threads_) + " thread" + (num_threads_ == 1 ? "" : "s") +
         ", kernel path " + KernelIsaName();
}

// Anonymous mappings: page aligned (kBufferAlignment), zero, and resident only once touched, so
// an arena costs memory when a run uses it, not when a session is created.
Status EmulatedDevice::Allocate(size_t bytes, BufferId* id) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::Error("emulated device: out of memory allocating " + std::to_string(bytes) + " bytes");
  std::lock_guard<std::mutex> lk(mu_);
  if (!free_ids_.empty()) {
    *id = free_ids_.back();
    free_ids_.pop_back();
    buffers_[*id] = Buffer{static_cast<uint8_t*>(p), rounded};
  } else {
    buffers_.push_back(Buffer{static_cast<uint8_t*>(p), rounded});
    *id = static_cast<BufferId>(buffers_.size()) - 1;
  }
  return Status::OK();
}

EmulatedDevice::Buffer EmulatedDevice::Get(BufferId id) const {
  std::lock_guard<std::mutex> lk(mu_);
  return id >= 0 && id < static_cast<BufferId>(buffers_.size()) ? buffers_[id] : Buffer{};
}

void EmulatedDevice::Free(BufferId id) {
  Buffer b;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (id < 0 || id >= static_cast<BufferId>(buffers_.size()) || buffers_[id].data == nullptr) return;
    b = buffers_[id];
    buffers_[id] = Buffer{};
    free_ids_.push_back(id);
  }
  kernels::ReleasePackedWeights(b.data, b.bytes);
  munmap(b.data, b.bytes);
}

uint8_t* EmulatedDevice::Map(BufferId id) { return Get(id).data; }

Status EmulatedDevice::SyncToDevice(BufferId id, size_t offset, size_t bytes) {
  const Buffer b = Get(id);
  if (b.data == nullptr || offset > b.bytes || bytes > b.bytes - offset)
    return Status::Error("emulated device: sync past the end of a buffer");
  return Status::OK();
}

Status EmulatedDevice::SyncFromDevice(BufferId id, size_t offset, size_t bytes) {
  return SyncToDevice(id, offset, bytes);
}

Status EmulatedDevice::Launch(const KernelCall& c) {
  std::string why;
  if (!CanRun(c, &why)) return Status::Error("emulated device: " + why);
  return RunOnHost(c, [this](BufferId id) {
    const Buffer b = Get(id);
    return HostBuffer{b.data, b.bytes};
  }, num_threads_);
}

bool EmulatedDevice::CanRun(const KernelCall& call, std::string* why_not) const {
  if (!(without_ & (1u << static_cast<int>(call.kind())))) return true;
  if (why_not) *why_not = std::string("no ") + KernelKindName(call.kind()) + " kernel (restricted for testing)";
  return false;
}

}  // namespace phoenix
