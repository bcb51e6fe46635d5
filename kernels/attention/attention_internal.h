// Internal interface between the attention dispatcher (emulated.cc, baseline x86-64) and its
// AVX-512 body (emulated_avx512.cc). Not part of the public kernel API (that is attention.h).
// Same rules as common/kernel_isa.h: the dispatcher owns threading, scratch and packing buffers;
// the AVX-512 bodies are plain functions over ranges with no allocation.
#pragma once

#include <cstdint>

#include "attention/attention.h"
#include "common/bf16.h"
#include "common/kernel_isa.h"

namespace phoenix::kernels {

namespace portable {
// The reference form (one query row at a time, sequential FP32 sums): the numerics specification,
// and the path on CPUs without AVX512_BF16.
void Attention(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, bf16_t* O,
               int num_threads);
void Attention(const AttentionArgs& a, const split_t* Q, const split_t* K, const split_t* V, split_t* O,
               int num_threads);
}  // namespace portable

namespace avx512 {

// Packed operands, made once per call and head (batch):
//   Q^T: avx512::PackB(Q, D, M, rs = q_cs, cs = q_rs): panels of 16 queries, pairs of D
//        interleaved (PackedBElems(D, M) elements);
//   K:   PackKeyTiles below: tiles of kKeyTile keys, [tile][pair of D][key] 32-bit pairs
//        (KeyTileElems(N, D) elements);
//   V:   avx512::PackB(V, N, Dv, rs = v_rs, cs = v_cs): panels of 16 columns, pairs of keys
//        interleaved (PackedBElems(N, Dv) elements).
// For BF16x3 the same layouts hold Q' [M][3D], K' [N][3D] and V' [3N][Dv] (split_operands.h):
// the plan's D and NP are then 3D and 3N.
constexpr int kKeyTile = 12;
inline int64_t KeyTileElems(int64_t N, int64_t D) { return (N + kKeyTile - 1) / kKeyTile * ((D + 1) / 2) * 2 * kKeyTile; }
// Packs key tiles [t0, t1) of K (element (n, d) at K[n * rs + d * cs]) into dst (the whole buffer).
void PackKeyTiles(const bf16_t* K, int64_t N, int64_t D, int64_t rs, int64_t cs, bf16_t* dst, int64_t t0, int64_t t1);

// A work unit is one block of query rows (block_rows, a multiple of 16, at most 64) of one batch
// (head); units are numbered (batch, block) with the block fastest.
struct AttentionPlan {
  const AttentionArgs* args = nullptr;
  int64_t D = 0;                             // head dim of the packed Q and K: args->D, or 3D (BF16x3)
  int64_t NP = 0;                            // keys of P and the packed V: args->N, or 3N (BF16x3)
  bool split = false;                        // BF16x3: P' = [P_hi | P_hi* | P_lo], O is split_t
  void* O = nullptr;                         // bf16_t, or split_t when `split`
  const int64_t* o_offsets = nullptr;        // per batch, elements
  const bf16_t* const* packed_q = nullptr;   // per batch
  const bf16_t* const* packed_k = nullptr;   // per batch
  const bf16_t* const* packed_v = nullptr;   // per batch
  int64_t block_rows = 0;
  int64_t blocks = 0;                        // blocks per batch
  int64_t units = 0;
};

// Per-thread scratch of one unit (the dispatcher keeps one per thread and reuses it): the
// transposed FP32 score block S^T [N][block_rows] and the BF16 P block [ceil(N/2)][block_rows]
// of key pairs.
inline int64_t AttentionScratchFloats(int64_t rows, int64_t N) { return (N + 1) * rows + 64; }
inline int64_t AttentionScratchBf16(int64_t rows, int64_t NP) { return (NP + 1) / 2 * 2 * rows + 64; }
struct AttentionScratch {
  float* f = nullptr;    // AttentionScratchFloats(block_rows, N), 64-byte aligned
  bf16_t* h = nullptr;   // AttentionScratchBf16(block_rows, N), 64-byte aligned
};

void AttentionUnits(const AttentionPlan& p, const AttentionScratch& s, int64_t u0, int64_t u1);

}  // namespace avx512

// The AVX2 body (CPUs without AVX512_BF16), BF16 only: bit-identical to portable::Attention.
namespace avx2 {

// Packed per head (FP32, by the dispatcher): K as key panels [N/6][D][6] and V^T as value-dim
// panels [Dv/6][N][6] (PackKeyPanels, V with its strides swapped), Q^T as avx2::PackB panels of
// 16 queries [M/16][D][16].
constexpr int kKeyPanel = 6;
inline int64_t KeyPanelFloats(int64_t N, int64_t D) { return (N + kKeyPanel - 1) / kKeyPanel * kKeyPanel * D; }
void PackKeyPanels(const bf16_t* K, int64_t N, int64_t D, int64_t rs, int64_t cs, float* dst);

// A unit is one block of kBlockRows queries of one head.
constexpr int kBlockRows = 48;  // 3 query panels of 16; 8 output tiles of 6 rows
struct AttentionPlan {
  const AttentionArgs* args = nullptr;
  bf16_t* O = nullptr;
  const int64_t* o_offsets = nullptr;  // per batch
  const float* const* packed_q = nullptr;
  const float* const* packed_k = nullptr;
  const float* const* packed_v = nullptr;
  const OperandRange* q_range = nullptr;  // per batch: the ranges of packed Q, K and V, for the
  const OperandRange* k_range = nullptr;  // choice of the FMA tile (ProductsExact, kernel_isa.h)
  const OperandRange* v_range = nullptr;
  int64_t blocks = 0, units = 0;       // blocks per head, all units
};
// O^T = V^T P^T runs over blocks of kValueKeys keys (16 queries' P lines of a block: 16 KiB, stay
// in L1 while the value dims' tiles pass them), the tiles' accumulators parked between blocks.
constexpr int kValueKeys = 256;
inline int64_t AttentionParkFloats(int64_t Dv) { return (Dv + kKeyPanel - 1) / kKeyPanel * 6 * 16; }
// Per-thread scratch of a unit: a tile, the parked accumulators, S^T / P [N rounded up to 6][kBlockRows].
inline int64_t AttentionScratchFloats(int64_t N, int64_t Dv) {
  return 6 * 16 + AttentionParkFloats(Dv) + (N + kKeyPanel) * kBlockRows;
}
void AttentionUnits(const AttentionPlan& p, float* scratch, int64_t u0, int64_t u1);

}  // namespace avx2
}  // namespace phoenix::kernels
