// The element type activations and matmul weights are carried in, from the provider option
// `precision` down to the kernels (one enum all the way):
//   kBF16   BF16 tensors, the NPU kernels' contract (bf16_t, 2 bytes);
//   kBF16x3 every tensor a BF16 pair hi + lo, matmuls as three BF16 products (split_t, 4 bytes;
//           emulated device only). See kernels/README.md, "Precision".
#pragma once

#include <cstddef>
#include <cstdint>

namespace phoenix {

enum class Precision : uint8_t { kBF16 = 0, kBF16x3 = 1 };

inline const char* PrecisionName(Precision p) { return p == Precision::kBF16x3 ? "bf16x3" : "bf16"; }

// Bytes of one activation element at this precision.
inline size_t ActivationElementSize(Precision p) { return p == Precision::kBF16x3 ? 4 : 2; }

}  // namespace phoenix
