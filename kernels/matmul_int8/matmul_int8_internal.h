// Internal interface between the INT8 MatMul dispatcher (emulated.cc, baseline x86-64) and its
// AVX2 body (emulated_avx2.cc); same rules as common/kernel_isa.h. Not the public API
// (matmul_int8.h).
#pragma once

#include <cstdint>

#include "matmul_int8/matmul_int8.h"

namespace phoenix::kernels {

namespace portable {
// The reference (README.md, "Numerics"), one output at a time, int32 accumulation in k order.
void MatMulInt8(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16, bf16_t* C,
                int num_threads);
}  // namespace portable

namespace avx2 {

// Packed B: int16 pairs (qb - zb), panels of 16 columns: [panel][k2][16][2] (k = 2 k2 + h), zero
// outside K x N: Int8PackedBElems(K, N) int16 values. Each value lies in [-255, 255].
constexpr int kInt8PanelCols = 16;
inline int64_t Int8PackedBElems(int64_t K, int64_t N) {
  return (N + kInt8PanelCols - 1) / kInt8PanelCols * ((K + 1) / 2) * 2 * kInt8PanelCols;
}
constexpr int kInt8MR = 4;     // rows per register tile (4 x 16 int32 accumulators: 6 rows spill)
constexpr int kInt8MC = 96;    // rows per unit
constexpr int kInt8KC = 512;   // k per block (a B micro-panel of 16 KiB stays in L1)

// One call split into units of kInt8MC rows x one N chunk of one batch, (batch, n_chunk, m_block)
// with m_block fastest. A: BF16 rows with unit column stride.
struct Int8Plan {
  const MatMulArgs* args = nullptr;
  QuantParams a_quant;
  const bf16_t* A = nullptr;
  int64_t a_rs = 0;
  const int64_t* a_batch_offsets = nullptr;
  const int16_t* const* packed_b = nullptr;  // per batch
  const float* col_scale = nullptr;           // [N]: sa * sb[n]
  bool quantize_output = false;
  QuantParams out;
  bf16_t* C = nullptr;
  int64_t m_blocks = 0, n_chunks = 1, n_chunk_cols = 0, units = 0;
};
// Per-thread scratch (int32 values): the quantized A block and the parked accumulators.
inline int64_t Int8ScratchWords(int64_t n_chunk_cols) {
  return int64_t{kInt8MC + kInt8MR} * (kInt8KC / 2 + 1) +
         (kInt8MC + kInt8MR) * ((n_chunk_cols + kInt8PanelCols - 1) / kInt8PanelCols * kInt8PanelCols);
}
void Int8Units(const Int8Plan& p, int32_t* scratch, int64_t u0, int64_t u1);

}  // namespace avx2
}  // namespace phoenix::kernels
