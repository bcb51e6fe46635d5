// The device copies of a region's constants, made once and shared by every plan of the region
// (a model with symbolic dims gets one plan per input shape; its weights are uploaded once).
// Weight matrices are converted to the precision's element type (BF16 or BF16x3) and uploaded
// when the region is compiled; FP32 parameter vectors (biases, LayerNorm gamma / beta, with any
// scale folded in) are made by the plans that need them and shared when their bytes are equal.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "device.h"
#include "graph_view.h"

namespace phoenix {

struct WeightRef {
  BufferId buffer = kNoBuffer;
  int64_t num_elements = 0;
};

// INT8 weights of a quantized model (a folded DequantizeLinear): the int8 data (uint8 stored as
// q - 128), FP32 scales per tensor or per output channel, and int8 zero points (or none).
struct Int8WeightRef {
  WeightRef data, scales, zero_points;
};

class WeightStore {
 public:
  WeightStore(std::shared_ptr<Device> device, Precision precision);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Constant `value` of `g` in activation elements; converted and uploaded on first use (large
  // constants must be uploaded while `g` can still read them from ORT: see UploadMatrices).
  Status Activation(const GraphView& g, int value, WeightRef* out);
  // Every constant float matrix `g`'s nodes read (called during Compile, when ORT's data is live).
  Status UploadMatrices(const GraphView& g);
  // An FP32 parameter vector; equal contents share one buffer.
  Status F32(const std::vector<float>& data, WeightRef* out);
  // Constant `value` of `g` (a folded DequantizeLinear of INT8 / UINT8 weights) kept INT8.
  Status Int8(const GraphView& g, int value, Int8WeightRef* out);

  int64_t bytes_uploaded() const;
  int64_t allocations() const;

 private:
  friend class EpContextCodec;  // ep_context.cc: exports and re-creates the buffers
  Status Upload(const void* bytes, size_t size, int64_t num_elements, WeightRef* out);

  std::shared_ptr<Device> device_;
  Precision precision_;
  mutable std::mutex mu_;
  std::map<std::string, WeightRef> by_name_;                // activation-typed constants, by value name
  std::map<std::vector<float>, WeightRef> f32_;             // FP32 vectors, by content
  std::map<std::string, Int8WeightRef> int8_;               // INT8 weights, by value name
  std::vector<BufferId> buffers_;
  int64_t bytes_ = 0;
};

}  // namespace phoenix
