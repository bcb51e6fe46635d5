// Internal interface between the kernels' dispatchers (kernels/*/emulated.cc, baseline x86-64)
// and their ISA-specific bodies (kernels/*/emulated_avx512.cc). Not part of the public kernel API.
//
// Dispatch rule: every public kernel entry point checks UseAvx512Bf16() (common/cpu_features.h)
// once per call; the AVX-512 bodies are plain functions over a range of rows / units with no
// std:: templates and no allocation, and the dispatcher (baseline code) owns threading
// (ParallelFor), scratch buffers and the packed-weight cache.
// The row kernels come in BF16 and BF16x3 (split_t) overloads, each pair one template in its .cc.
#pragma once

#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/bf16.h"
#include "elementwise/elementwise.h"
#include "gelu/gelu.h"
#include "layernorm/layernorm.h"
#include "matmul/matmul.h"
#include "softmax/softmax.h"

namespace phoenix::kernels {

// The reference kernels (the lead's scalar forms): the numerics specification, and the path on
// CPUs without AVX512_BF16.
namespace portable {
void MatMul(const MatMulArgs& a, const bf16_t* A, const bf16_t* B, bf16_t* C, int num_threads);
void MatMul(const MatMulArgs& a, const split_t* A, const split_t* B, split_t* C, int num_threads);
void LayerNorm(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int num_threads);
void LayerNorm(const LayerNormArgs& a, const split_t* x, split_t* y, int num_threads);
void Softmax(const SoftmaxArgs& a, const bf16_t* x, bf16_t* y, int num_threads);
void Softmax(const SoftmaxArgs& a, const split_t* x, split_t* y, int num_threads);
void Gelu(GeluMode mode, int64_t n, const bf16_t* x, bf16_t* y, int num_threads);
void Gelu(GeluMode mode, int64_t n, const split_t* x, split_t* y, int num_threads);
void Binary(BinaryOp op, const bf16_t* a, const TensorView& av, const bf16_t* b, const TensorView& bv,
            bf16_t* y, const TensorView& yv, int num_threads);
void Binary(BinaryOp op, const split_t* a, const TensorView& av, const split_t* b, const TensorView& bv,
            split_t* y, const TensorView& yv, int num_threads);
void BinaryScalar(BinaryOp op, const bf16_t* a, const TensorView& av, float s, bool scalar_first, bf16_t* y,
                  const TensorView& yv, int num_threads);
void BinaryScalar(BinaryOp op, const split_t* a, const TensorView& av, float s, bool scalar_first, split_t* y,
                  const TensorView& yv, int num_threads);
void Copy(const bf16_t* x, const TensorView& xv, bf16_t* y, const TensorView& yv, int num_threads);
void Copy(const split_t* x, const TensorView& xv, split_t* y, const TensorView& yv, int num_threads);
}  // namespace portable

namespace avx512 {

// ---- MatMul -------------------------------------------------------------------------------
// Packed B ("vdpbf16ps layout"): ceil(N/16) panels of 16 columns; panel p holds ceil(K/2) rows
// of 32 BF16: element [p][k2][j][h] = B[2*k2 + h][16*p + j], zero outside K x N.
constexpr int kPanelCols = 16;
inline int64_t PackedPanelElems(int64_t K) { return ((K + 1) / 2) * 32; }
inline int64_t PackedBElems(int64_t K, int64_t N) { return ((N + 15) / 16) * PackedPanelElems(K); }

// Packs panels [p0, p1) of B (element (k, n) at B[k * rs + n * cs]) into dst (the whole packed
// buffer, PackedBElems(K, N) elements).
void PackB(const bf16_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, bf16_t* dst, int64_t p0, int64_t p1);

// The halves of n contiguous BF16x3 values (common/split_operands.h): hi, hi* (0 for Inf / NaN)
// and lo, each written to n contiguous BF16 (any of the three may be nullptr).
void SplitRow(const split_t* src, int64_t n, bf16_t* hi, bf16_t* hi_cross, bf16_t* lo);

// One MatMul call, split into units for the threads. A unit is MR rows x (one N chunk) of one
// batch; units are numbered (batch, n_chunk, m_unit) with m_unit fastest.
struct MatMulPlan {
  const MatMulArgs* args = nullptr;
  int64_t K = 0;                      // K of the BF16 operands: args->K, or 3 * args->K for BF16x3
  const bf16_t* A = nullptr;          // [.., K] rows, column stride 1 (the dispatcher packs A otherwise)
  int64_t a_rs = 0;                   // row stride of A actually used
  const int64_t* a_batch_offsets = nullptr;  // per batch (elements), overriding args strides
  void* C = nullptr;                  // bf16_t, or split_t when `split`
  bool split = false;                 // C and the residual hold BF16x3 elements
  const bf16_t* const* packed_b = nullptr;  // per batch: packed B (PackB layout)
  int64_t m_units = 0, n_chunks = 1, n_chunk_cols = 0, units = 0;
};
constexpr int kMatMulMR = 12;  // rows per micro-tile; the micro-tile is 12 x 32 (24 zmm accumulators)
void MatMulUnits(const MatMulPlan& p, int64_t u0, int64_t u1);

// ---- Row kernels --------------------------------------------------------------------------
void SoftmaxRows(const SoftmaxArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1);
void SoftmaxRows(const SoftmaxArgs& a, const split_t* x, split_t* y, int64_t r0, int64_t r1);
void LayerNormRows(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1);
void LayerNormRows(const LayerNormArgs& a, const split_t* x, split_t* y, int64_t r0, int64_t r1);
void GeluRange(GeluMode mode, const bf16_t* x, bf16_t* y, int64_t i0, int64_t i1);
void GeluRange(GeluMode mode, const split_t* x, split_t* y, int64_t i0, int64_t i1);
// y[i] = a[i * as] (op) b[i * bs] for i < n, with as, bs in {0, 1}.
void BinaryRow(BinaryOp op, const bf16_t* a, int64_t as, const bf16_t* b, int64_t bs, bf16_t* y, int64_t n);
void BinaryRow(BinaryOp op, const split_t* a, int64_t as, const split_t* b, int64_t bs, split_t* y, int64_t n);
// y[i] = a[i] (op) s, or s (op) a[i] when scalar_first.
void BinaryScalarRow(BinaryOp op, const bf16_t* a, float s, bool scalar_first, bf16_t* y, int64_t n);
void BinaryScalarRow(BinaryOp op, const split_t* a, float s, bool scalar_first, split_t* y, int64_t n);

}  // namespace avx512

// The AVX2 bodies (CPUs with AVX2 + FMA but no AVX512_BF16), same rules as above.
namespace avx2 {

// ---- Exact products: when a tile may use FMA ------------------------------------------------
// The AVX2 BF16 kernels accumulate acc = acc + a * b in the reference's order. A product of two
// BF16 values has at most 16 significant bits, so it is exact in FP32 unless it overflows or
// falls below FP32's normal range. When every product of a tile's operands is exact, an FMA (one
// rounding of acc + a * b) gives the reference's multiply-then-add bits, at 1.4-1.5x the
// throughput on Zen 3 (`phoenix-npu bench` prints both peaks). The tiles take the FMA form when
// ProductsExact says so for their operands' ranges, else the multiply-then-add form (an Inf or
// a NaN, or magnitudes around 1e+-19 and beyond); the results are the same bits either way.
struct OperandRange {
  uint32_t min_nonzero = 0xFFFFFFFFu;  // smallest nonzero |x| as FP32 bits (0xFFFFFFFF: none)
  uint32_t max = 0;                     // largest |x| as FP32 bits (>= 0x7F800000: an Inf or NaN)
};
inline float RangeBitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
// True when every product of a value in range a by a value in range b is zero or a finite
// normal FP32 number (hence exact, and an FMA rounds acc + a * b as the reference does).
inline bool ProductsExact(const OperandRange& a, const OperandRange& b) {
  if (a.max >= 0x7F800000u || b.max >= 0x7F800000u) return false;
  if (a.min_nonzero == 0xFFFFFFFFu || b.min_nonzero == 0xFFFFFFFFu) return true;  // all products are 0
  const double lo = double(RangeBitsToFloat(a.min_nonzero)) * RangeBitsToFloat(b.min_nonzero);
  const double hi = double(RangeBitsToFloat(a.max)) * RangeBitsToFloat(b.max);
  return lo >= 0x1p-126 && hi <= double(FLT_MAX);
}
// The range of n FP32 values (vectorised; emulated_avx2.cc).
OperandRange RangeOf(const float* x, int64_t n);

// ---- MatMul -------------------------------------------------------------------------------
// Bit-identical to portable::MatMul (emulated_avx2.cc says why). Packed B: FP32 panels of 16
// columns, [panel][k][16], zero outside K x N (PackedBFloats(K, N) floats), then the panels'
// OperandRange in kRangeSlotFloats more (StoreRange / LoadRange), so that a cached pack of a
// constant carries its range.
constexpr int kPanelCols = 16;
inline int64_t PackedBFloats(int64_t K, int64_t N) { return (N + kPanelCols - 1) / kPanelCols * K * kPanelCols; }
constexpr int64_t kRangeSlotFloats = 2;
inline void StoreRange(float* slot, const OperandRange& r) {
  std::memcpy(slot, &r.min_nonzero, 4);
  std::memcpy(slot + 1, &r.max, 4);
}
inline OperandRange LoadRange(const float* slot) {
  OperandRange r;
  std::memcpy(&r.min_nonzero, slot, 4);
  std::memcpy(&r.max, slot + 1, 4);
  return r;
}
void PackB(const bf16_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, float* dst, int64_t p0, int64_t p1);

constexpr int kMatMulMR = 6;      // rows per register tile (6 x 16: 12 accumulators)
constexpr int kMatMulMC = 96;     // rows per unit: the unit's packed A block stays in L2
constexpr int kMatMulKC = 256;    // K per block: a B micro-panel (16 KiB) stays in L1

// One MatMul call, split into units for the threads: kMatMulMC rows x one N chunk of one batch,
// numbered (batch, n_chunk, m_block) with m_block fastest.
struct MatMulPlan {
  const MatMulArgs* args = nullptr;
  int64_t K = 0;                       // K of the BF16 operands (3K for BF16x3)
  const bf16_t* A = nullptr;           // [.., K] rows, column stride 1
  int64_t a_rs = 0;
  const int64_t* a_batch_offsets = nullptr;
  void* C = nullptr;                   // bf16_t, or split_t when `split`
  bool split = false;
  const float* const* packed_b = nullptr;  // per batch (PackB layout), each followed by its range slot
  int64_t packed_b_floats = 0;             // PackedBFloats(K, N): where each range slot starts
  int64_t m_blocks = 0, n_chunks = 1, n_chunk_cols = 0, units = 0;
};
// Per-thread scratch of MatMulUnits: the FP32 A block and the parked accumulators of a unit.
inline int64_t MatMulScratchFloats(int64_t n_chunk_cols) {
  return int64_t{kMatMulMC} * kMatMulKC +
         (kMatMulMC + kMatMulMR - 1) / kMatMulMR * kMatMulMR * ((n_chunk_cols + kPanelCols - 1) / kPanelCols * kPanelCols);
}
void MatMulUnits(const MatMulPlan& p, float* scratch, int64_t u0, int64_t u1);

// ---- Row kernels --------------------------------------------------------------------------
void LayerNormRows(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1);
void LayerNormRows(const LayerNormArgs& a, const split_t* x, split_t* y, int64_t r0, int64_t r1);

}  // namespace avx2
}  // namespace phoenix::kernels
