#include "weights.h"

#include <algorithm>

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
      // Small constants are copied into the graph and INT8 weights kept there: uploaded (as INT8,
      // or dequantized) when a plan needs them.
      if (g.value(in).data || g.value(in).dequantized) continue;
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

Status WeightStore::Int8(const GraphView& g, int value, Int8WeightRef* out) {
  const GValue& v = g.value(value);
  if (!v.dequantized) return Status::Error(v.name + " is not an INT8 constant");
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = int8_.find(v.name);
    if (it != int8_.end()) {
      *out = it->second;
      return Status::OK();
    }
  }
  const DequantizedConstant& d = *v.dequantized;
  const ConstantData& q = *g.value(d.quantized).data;
  if (q.bytes.empty()) return Status::Error(v.name + " is not INT8 / UINT8 (a quantized bias stays FP32)");
  const std::vector<double>& scale = g.value(d.scale).data->values;
  const ConstantData* zp = d.zero_point >= 0 ? g.value(d.zero_point).data.get() : nullptr;
  const bool is_unsigned = q.dtype == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
  // uint8 q and zero point become int8 by subtracting 128 from both: the same q - zero_point.
  std::vector<int8_t> data(q.bytes.size());
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<int8_t>(is_unsigned ? q.bytes[i] - 128 : q.bytes[i]);
  std::vector<float> scales(scale.begin(), scale.end());
  std::lock_guard<std::mutex> lk(mu_);
  PHX_RETURN_IF_ERROR(Upload(data.data(), data.size(), static_cast<int64_t>(data.size()), &out->data));
  PHX_RETURN_IF_ERROR(Upload(scales.data(), scales.size() * sizeof(float), static_cast<int64_t>(scales.size()), &out->scales));
  out->zero_points = WeightRef{};
  if (zp || is_unsigned) {
    std::vector<int8_t> z(scales.size(), static_cast<int8_t>(is_unsigned ? -128 : 0));
    if (zp)
      for (size_t c = 0; c < z.size() && c < zp->bytes.size(); ++c)
        z[c] = static_cast<int8_t>(is_unsigned ? zp->bytes[c] - 128 : zp->bytes[c]);
    // All-zero zero points (ORT's quantizer writes them for symmetric int8 weights; uint8 weights
    // with zero point 128) are no zero points: the same dequantized values, and the call then takes
    // the symmetric-weight paths (the NPU INT8 stages, docs/npu.md 2d; the kernels' row-sum skip).
    if (std::any_of(z.begin(), z.end(), [](int8_t v) { return v != 0; }))
      PHX_RETURN_IF_ERROR(Upload(z.data(), z.size(), static_cast<int64_t>(z.size()), &out->zero_points));
  }
  int8_[v.name] = *out;
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
