#include "weights.h"

#include <cstring>

#include "common/bf16.h"

namespace phoenix {

WeightStore::WeightStore(std::shared_ptr<Device> device, Precision precision)
    : device_(std::move(device)), precision_(precision) {}

WeightStore::~WeightStore() {
  for (BufferId b : buffers_) device_->Free(b);
}

Status WeightStore::Upload(const void* bytes, size_t size, int64_t num_elements, WeightRef* out) {
  BufferId b;
  PHX_RETURN_IF_ERROR(device_->Allocate(size, &b));
  buffers_.push_back(b);
  std::memcpy(device_->Map(b), bytes, size);
  PHX_RETURN_IF_ERROR(device_->SyncToDevice(b, 0, size));
  bytes_ += static_cast<int64_t>(size);
  *out = WeightRef{b, num_elements};
  return Status::OK();
}

Status WeightStore::Activation(const GraphView& g, int value, WeightRef* out) {
  std::lock_guard<std::mutex> lk(mu_);
  const GValue& v = g.value(value);
  auto it = by_name_.find(v.name);
  if (it != by_name_.end()) {
    *out = it->second;
    return Status::OK();
  }
  std::vector<float> data;
  if (!g.ReadConstantF32(value, &data))
    return Status::Error("constant " + v.name + " could not be read (not float, or no longer available)");
  std::vector<uint8_t> bytes(data.size() * ActivationElementSize(precision_));
  if (precision_ == Precision::kBF16x3) {
    auto* dst = reinterpret_cast<split_t*>(bytes.data());
    for (size_t i = 0; i < data.size(); ++i) dst[i] = FromF32<split_t>(data[i]);
  } else {
    auto* dst = reinterpret_cast<bf16_t*>(bytes.data());
    for (size_t i = 0; i < data.size(); ++i) dst[i] = F32ToBf16(data[i]);
  }
  PHX_RETURN_IF_ERROR(Upload(bytes.data(), bytes.size(), static_cast<int64_t>(data.size()), out));
  by_name_[v.name] = *out;
  return Status::OK();
}

Status WeightStore::UploadMatrices(const GraphView& g) {
  for (const GNode& n : g.nodes)
    for (int in : n.inputs) {
      if (in < 0 || !g.value(in).is_constant || g.value(in).dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) continue;
      if (g.value(in).data) continue;  // small: copied into the graph, uploaded when a plan needs it
      WeightRef ref;
      PHX_RETURN_IF_ERROR(Activation(g, in, &ref));
    }
  return Status::OK();
}

Status WeightStore::F32(const std::vector<float>& data, WeightRef* out) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = f32_.find(data);
  if (it != f32_.end()) {
    *out = it->second;
    return Status::OK();
  }
  PHX_RETURN_IF_ERROR(Upload(data.data(), data.size() * sizeof(float), static_cast<int64_t>(data.size()), out));
  f32_[data] = *out;
  return Status::OK();
}

int64_t WeightStore::bytes_uploaded() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_;
}

int64_t WeightStore::allocations() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int64_t>(buffers_.size());
}

}  // namespace phoenix
