// The reference's LayerNorm statistics of one row in scalar FP32 (the same operations in the same
// order as portable::LayerNorm), for the vector bodies' rows that their gathers cannot take
// (n = 1, or rows whose 32-bit gather offsets would wrap). Internal linkage: included by the
// *_avx512.cc and *_avx2.cc files (see common/batch_offsets.h).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/split_bf16.h"

namespace phoenix::kernels {
namespace {

inline float StatsLane(const uint16_t* p) {
  const uint32_t bits = static_cast<uint32_t>(*p) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}
inline float StatsLane(const split_t* p) { return p->v; }

template <typename T>
void RowStatsScalar(const T* x, int64_t n, float eps, float* mean_out, float* inv_out) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += StatsLane(x + i);
  const float mean = sum / static_cast<float>(n);
  float sq = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = StatsLane(x + i) - mean;
    sq += d * d;
  }
  *mean_out = mean;
  *inv_out = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
}

}  // namespace
}  // namespace phoenix::kernels
