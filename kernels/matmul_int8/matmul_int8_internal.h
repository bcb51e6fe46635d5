// Internal interface between the INT8 MatMul dispatcher (emulated.cc, baseline x86-64) and its
// bodies: AVX2 (emulated_avx2.cc, vpmaddwd), AVX-VNNI (emulated_avx_vnni.cc, VEX vpdpbusd ymm)
// and AVX-512 VNNI (emulated_avx512_vnni.cc, vpdpbusd zmm); same rules as common/kernel_isa.h.
// Not the public API (matmul_int8.h).
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

// ---- The vpdpbusd bodies (AVX-512 VNNI zmm, AVX-VNNI ymm): one packing, one plan -------------
// vpdpbusd multiplies u8 by s8 (4 products per 32-bit lane, added to the lane modulo 2^32). The
// dispatcher hands over
//   A: qa' = qa + 128 for int8 activations (qa for uint8) as u8, za' likewise (README step 1);
//   B: qb' = qb (int8 weights and int8 activations) or qb - 128 (uint8 activations) as s8, with
//      zb'[n] = zb[n] or zb - 128 likewise, so qa - za = qa' - za' and qb - zb = qb' - zb';
// and the body computes, per output, in int32 arithmetic modulo 2^32,
//   acc = S + corr[n] - zb'[n] * rowsum[m],   S = sum_k qa' qb' (vpdpbusd),
//   corr[n] = za' * (K zb'[n] - colsum[n]),   colsum[n] = sum_k qb',  rowsum[m] = sum_k qa',
// which is sum_k (qa' - za') (qb' - zb') modulo 2^32. The true sum lies in int32 (K <= kMaxInt8K:
// |each product| <= 255^2), so the value modulo 2^32 read as int32 IS the exact sum: wrapping
// anywhere on the way (S itself can pass 2^31) changes nothing, and the K limit is the
// reference's.
namespace vnni {

// Packed B: panels of 16 columns, s8 qb' as [panel][k4][16][4] (k = 4 k4 + h), zero outside
// K x N (PanelBytes(K) bytes per panel); then int32 colsum[n] and int32 zb'[n] for the padded N
// (Panels(N) * 16 each). Shared by both bodies: the ymm body reads a panel as two 8-column halves.
constexpr int kPanelCols = 16;
inline int64_t Quads(int64_t K) { return (K + 3) / 4; }
inline int64_t PanelBytes(int64_t K) { return Quads(K) * 4 * kPanelCols; }
inline int64_t Panels(int64_t N) { return (N + kPanelCols - 1) / kPanelCols; }
inline int64_t PackedBBytes(int64_t K, int64_t N) {
  return Panels(N) * PanelBytes(K) + Panels(N) * kPanelCols * 2 * int64_t{sizeof(int32_t)};
}
// Quantized A: u8 qa' in row panels of the body's MR rows, [panel][k4][MR][4] (k = 4 k4 + h),
// zero past K (APanelBytes(K, MR) bytes a panel), so that a micro-tile's broadcasts of 4 A bytes
// come from one address stream; rows of a last, partial panel past M are never stored.
inline int64_t APanelBytes(int64_t K, int64_t mr) { return Quads(K) * 4 * mr; }

// One call split into units of MR rows x one N chunk of one batch, (batch, n_chunk, m_unit) with
// m_unit fastest; MR is the body's (kAvx512MR, kAvxMR).
struct Plan {
  const MatMulArgs* args = nullptr;
  const uint8_t* A = nullptr;        // qa' panels [batch][m_units][APanelBytes(K, MR)]
  const int32_t* rowsum = nullptr;   // [batch][M], or nullptr when every zb' is 0
  const int8_t* const* packed_b = nullptr;   // per batch
  const int32_t* const* corr = nullptr;      // per batch: corr[n] (padded to the panels)
  const int32_t* const* zb = nullptr;        // per batch: zb'[n] (padded), read when rowsum
  const float* col_scale = nullptr;          // [N]: sa * sb[n]
  bool quantize_output = false;
  QuantParams out;
  bf16_t* C = nullptr;
  int64_t m_units = 0, n_chunks = 1, n_chunk_cols = 0, units = 0;
  // Fused quantization (the zmm body, one N chunk, A rows with unit column stride): A is left
  // null and each unit quantizes its own rows (QuantizeRowU8, same bytes and sums as the
  // dispatcher's pass) into a per-thread panel block right before its tiles read them.
  bool fused_quant = false;
  bool fused_rowsum = false;         // the rows' sums are needed (some zb' is not 0)
  const bf16_t* a_bf16 = nullptr;    // A (BF16) and its layout
  int64_t a_rs = 0;
  const int64_t* a_off = nullptr;    // [batch]
  QuantParams a_quant;
};

}  // namespace vnni

namespace avx512_vnni {
constexpr int kMR = 12;  // micro-tile 12 x 32 (24 zmm accumulators)
// README step 1 into qa' (u8, + 128 for int8) of one row of A (n BF16 values): quad k4 (4 values,
// zero past n) to dst + k4 * 4 * kMR (the row's place in its panel); returns sum qa'.
int32_t QuantizeRowU8(const bf16_t* x, int64_t n, const QuantParams& q, uint8_t* dst);
void Units(const vnni::Plan& p, int64_t u0, int64_t u1);
}  // namespace avx512_vnni

namespace avx_vnni {
constexpr int kMR = 6;   // micro-tile 6 x 16 (12 ymm accumulators); quads at dst + k4 * 4 * kMR
int32_t QuantizeRowU8(const bf16_t* x, int64_t n, const QuantParams& q, uint8_t* dst);
void Units(const vnni::Plan& p, int64_t u0, int64_t u1);
}  // namespace avx_vnni

// The paths, for the tests (every path this CPU can run against the reference, whatever
// PHOENIX_KERNEL_ISA says) and the bench.
enum class Int8Path { kPortable, kAvx2, kAvxVnni, kAvx512Vnni };
bool Int8PathRuns(Int8Path path);  // this CPU (and OS) can run it
void MatMulInt8On(Int8Path path, const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16,
                  bf16_t* C, int num_threads);

}  // namespace phoenix::kernels
