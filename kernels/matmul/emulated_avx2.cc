// MatMul on AVX2 (CPUs without AVX512_BF16): the emulated device's fast path there, bit-identical
// to the reference (portable::MatMul).
//
// Why bit-identical: a product of two BF16 values has at most 16 significant bits, so the FP32
// multiply a * b of each step is the reference's product unless it overflows or leaves FP32's
// normal range; each step adds it to one FP32 accumulator per output in the reference's order
// k = 0, 1, ..., K-1. Per unit and K block the tile is the FMA form when the block's A range and
// B's range make every product exact (ProductsExact, common/kernel_isa.h: then acc + a * b
// rounds once either way), else a separate vmulps and vaddps (the #pragma below keeps the
// compiler from fusing them). K is cut into blocks of kMatMulKC, and the accumulators are parked
// in FP32 between blocks (exact). The epilogue (alpha, bias, GELU, residual) is the reference's
// FP32 sequence in 8 lanes (common/avx2_math.h) and the store rounds once (BF16, or hi + lo for
// BF16x3, whose A' and B' the dispatcher hands over with K' = 3K).
//
// Blocking (Zen 3: 32 KiB L1, 512 KiB L2): a unit is kMatMulMC rows x one N chunk of one batch.
// Per K block the unit packs its A block to FP32 micro-panels [row panel][k][6] (96 KiB, L2);
// each B micro-panel (FP32 [k][16] of the packed weight, 16 KiB) stays in L1 while the 16 row
// panels pass it; the 6 x 16 register tile holds 12 accumulators. Rows and columns past M and N
// are zero in the packed operands and their outputs are never stored.
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx2_math.h
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "common/avx2_math.h"
#include "common/batch_offsets.h"
#include "common/kernel_isa.h"
#include "matmul/epilogue_avx2.h"
#include "matmul/tile_avx2.h"

namespace phoenix::kernels::avx2 {
namespace {

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

constexpr int MR = kMatMulMR, NR = kPanelCols;
static_assert(NR == kEpilogueCols && MR == kTileRows && NR == kTileCols, "one tile shape");

// Rows [m0, m0 + MC) x k in [k0, k0 + kc) of A (BF16 rows, unit column stride) as FP32 panels of
// MR rows: panel i at dst + i * kc * MR, element (r, k) at [k * MR + r]; rows >= rows_valid are 0.
void PackA(const bf16_t* A, int64_t lda, int64_t rows_valid, int64_t k0, int64_t kc, float* dst) {
  const int64_t panels = (rows_valid + MR - 1) / MR;
  for (int64_t i = 0; i < panels; ++i) {
    float* out = dst + i * kc * MR;
    for (int r = 0; r < MR; ++r) {
      const int64_t row = i * MR + r;
      if (row >= rows_valid) {
        for (int64_t k = 0; k < kc; ++k) out[k * MR + r] = 0.0f;
        continue;
      }
      const bf16_t* src = A + row * lda + k0;
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8) {  // 8 at a time, scattered into the panel's column r
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, Load8(src + k));
        for (int j = 0; j < 8; ++j) out[(k + j) * MR + r] = tmp[j];
      }
      for (; k < kc; ++k) {
        const uint32_t bits = static_cast<uint32_t>(src[k]) << 16;
        std::memcpy(&out[k * MR + r], &bits, sizeof(float));
      }
    }
  }
}

}  // namespace

OperandRange RangeOf(const float* x, int64_t n) {
  RangeAcc acc;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc.Add(_mm256_loadu_ps(x + i));
  OperandRange r = acc.Finish();
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bits &= 0x7FFFFFFFu;
    if (bits > r.max) r.max = bits;
    if (bits != 0 && bits < r.min_nonzero) r.min_nonzero = bits;
  }
  return r;
}

void PackB(const bf16_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, float* dst, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    float* out = dst + p * K * NR;
    const int64_t n0 = p * NR, nn = Min64(NR, N - n0);
    for (int64_t k = 0; k < K; ++k) {
      float* o = out + k * NR;
      const bf16_t* row = B + k * rs + n0 * cs;
      if (cs == 1 && nn == NR) {
        _mm256_storeu_ps(o, Load8(row));
        _mm256_storeu_ps(o + 8, Load8(row + 8));
        continue;
      }
      for (int j = 0; j < NR; ++j) {
        const uint32_t bits = j < nn ? static_cast<uint32_t>(row[j * cs]) << 16 : 0u;
        std::memcpy(o + j, &bits, sizeof(float));
      }
    }
  }
}

void MatMulUnits(const MatMulPlan& p, float* scratch, int64_t u0, int64_t u1) {
  const MatMulArgs& a = *p.args;
  const int64_t per_batch = p.n_chunks * p.m_blocks;
  const size_t c_elem = p.split ? sizeof(split_t) : sizeof(bf16_t);
  float* apack = scratch;                                   // kMatMulMC x kMatMulKC
  float* park = scratch + kMatMulMC * kMatMulKC;            // kMatMulMC x n_chunk_cols, tile by tile
  EpilogueCtx e;
  e.col_scale = nullptr;
  e.out_quant = nullptr;
  e.alpha = a.alpha;
  e.gelu = a.epilogue == Epilogue::kGeluErf ? 1 : a.epilogue == Epilogue::kGeluTanh ? 2 : 0;
  e.r_rs = a.r_rs;
  e.r_cs = a.r_cs;
  e.c_rs = a.c_rs;
  e.c_cs = a.c_cs;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t bidx = u / per_batch, rem = u % per_batch;
    const int64_t nc = rem / p.m_blocks, mb = rem % p.m_blocks;
    const int64_t* strides[2] = {a.c_batch_strides, a.r_batch_strides};
    int64_t off[2];
    BatchOffsets(bidx, a.batch_rank, a.batch_shape, 2, strides, off);
    const int64_t co = off[0], ro = off[1];
    const bf16_t* Ab = p.A + p.a_batch_offsets[bidx];
    const float* Bp = p.packed_b[bidx];
    const OperandRange b_range = LoadRange(Bp + p.packed_b_floats);
    const int64_t n_begin = nc * p.n_chunk_cols, n_end = Min64(a.N, n_begin + p.n_chunk_cols);
    const int64_t m_begin = mb * kMatMulMC, rows = Min64(kMatMulMC, a.M - m_begin);
    const int64_t row_panels = (rows + MR - 1) / MR;
    for (int64_t k0 = 0; k0 < p.K; k0 += kMatMulKC) {
      const int64_t kc = Min64(kMatMulKC, p.K - k0);
      const bool first = k0 == 0, last = k0 + kc >= p.K;
      PackA(Ab + m_begin * p.a_rs, p.a_rs, rows, k0, kc, apack);
      const bool fused = ProductsExact(RangeOf(apack, row_panels * kc * MR), b_range);
      for (int64_t n = n_begin; n < n_end; n += NR) {
        const float* bpanel = Bp + (n / NR) * p.K * NR + k0 * NR;
        for (int64_t i = 0; i < row_panels; ++i) {
          float* tile_park = park + ((n - n_begin) / NR * row_panels + i) * MR * NR;
          TileAccumulate(fused, apack + i * kc * MR, MR, bpanel, NR, kc, first, tile_park);
          if (!last) continue;
          const int64_t m = m_begin + i * MR;
          e.rows = static_cast<int>(Min64(MR, m_begin + rows - m));
          e.cols = static_cast<int>(Min64(NR, n_end - n));
          e.bias = a.bias ? a.bias + n : nullptr;
          e.r = a.residual ? static_cast<const char*>(a.residual) + (ro + m * a.r_rs + n * a.r_cs) * c_elem : nullptr;
          e.c = static_cast<char*>(p.C) + (co + m * a.c_rs + n * a.c_cs) * c_elem;
          if (p.split) StoreTile<split_t>(e, tile_park);
          else StoreTile<bf16_t>(e, tile_park);
        }
      }
    }
  }
}

}  // namespace phoenix::kernels::avx2
